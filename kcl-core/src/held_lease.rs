//! [`HeldLease`]: the in-memory state of a lease this worker holds, shared by the renewer and
//! the checkpointer of that lease.
//!
//! All writes to one held lease (renewals, checkpoints, eviction) are serialized by an async
//! mutex, so a checkpoint's counter bump never makes a concurrent renewal fail spuriously: each
//! write is sent with the counter the previous one produced. A lease is **lost** when a write's
//! condition fails, when it is evicted, or when it has not been renewed for a failover time by
//! the local monotonic clock — by then another worker may have taken it, so it is neither renewed
//! nor checkpointed any more. Every acquisition gets a new [`HeldLease`] with a new
//! [`ConcurrencyToken`]; a re-acquired lease never resurrects an old one.
//!
//! Do not cancel a renewal or checkpoint future while its write is in flight: the store may
//! apply the write while this worker never learns the new counter, so the next write would find
//! the lease lost.
//!
//! ```
//! use kcl_core::clock::ManualClock;
//! use kcl_core::config::LeaseConfig;
//! use kcl_core::held_lease::{HeldLease, renew_leases};
//! use kcl_core::kinesis::{EpochMillis, ShardId};
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use kcl_core::lease_store::LeaseStore;
//! use kcl_core::memory::InMemoryLeaseStore;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new(EpochMillis(0));
//! let config = LeaseConfig::default();
//! let store = InMemoryLeaseStore::new();
//! let shard = ShardId::from_index(0);
//! store.create_lease_if_absent(&Lease::new(shard.clone(), ExtendedSequenceNumber::TRIM_HORIZON)).await?;
//! let taken = store.take_lease(&shard, 0, "worker-a").await?;
//! let held = HeldLease::new(taken, "worker-a", Duration::ZERO, &config);
//!
//! clock.advance(config.renew_interval());
//! let report = renew_leases(&store, &[held.clone()], &clock).await?;
//! assert_eq!(report.renewed, vec![shard.clone()]);
//!
//! // Not renewed for longer than the failover time: lost, and not renewed any more.
//! clock.advance(config.failover_time() + Duration::from_millis(1));
//! let report = renew_leases(&store, &[held.clone()], &clock).await?;
//! assert_eq!(report.lost.len(), 1);
//! assert!(held.is_lost());
//! # Ok::<(), kcl_core::lease_store::LeaseStoreError>(())
//! # });
//! ```

use crate::clock::Clock;
use crate::config::LeaseConfig;
use crate::kinesis::ShardId;
use crate::lease::Lease;
use crate::lease_store::{LeaseStore, LeaseStoreError, Renewal};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Identifies one acquisition of a lease; a new one is issued each time a lease is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConcurrencyToken(u64);

impl ConcurrencyToken {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConcurrencyToken(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConcurrencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token-{}", self.0)
    }
}

/// The lease as last written by this worker. Only reachable through the async mutex.
#[derive(Debug)]
pub(crate) struct HeldState {
    pub(crate) lease: Lease,
}

/// A lease this worker holds. Share it as `Arc<HeldLease>`.
#[derive(Debug)]
pub struct HeldLease {
    shard_id: ShardId,
    worker_id: String,
    token: ConcurrencyToken,
    failover_time: Duration,
    state: tokio::sync::Mutex<HeldState>,
    lost: AtomicBool,
    last_renewal_nanos: AtomicU64,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl HeldLease {
    /// Wraps `lease`, just returned by a successful `take_lease` for `worker_id`.
    /// `acquired_at` is the local monotonic time read *before* the take was sent (the write
    /// happened no earlier, so local expiry is conservative).
    pub fn new(
        lease: Lease,
        worker_id: impl Into<String>,
        acquired_at: Duration,
        config: &LeaseConfig,
    ) -> Arc<Self> {
        Arc::new(HeldLease {
            shard_id: lease.lease_key.clone(),
            worker_id: worker_id.into(),
            token: ConcurrencyToken::next(),
            failover_time: config.failover_time(),
            state: tokio::sync::Mutex::new(HeldState { lease }),
            lost: AtomicBool::new(false),
            last_renewal_nanos: AtomicU64::new(nanos(acquired_at)),
        })
    }

    /// The shard this lease is for.
    pub fn shard_id(&self) -> &ShardId {
        &self.shard_id
    }

    /// The worker holding it.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// This acquisition's token.
    pub fn token(&self) -> ConcurrencyToken {
        self.token
    }

    /// Whether the lease was lost (condition failed, evicted, or locally expired).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Marks the lease lost (e.g. a scan shows another owner). Irreversible.
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Local monotonic time of the last successful write (taken before it was sent).
    pub fn last_renewal(&self) -> Duration {
        Duration::from_nanos(self.last_renewal_nanos.load(Ordering::SeqCst))
    }

    /// Whether the lease is locally expired at `now`: no successful write for a failover time.
    pub fn is_locally_expired(&self, now: Duration) -> bool {
        now.saturating_sub(self.last_renewal()) > self.failover_time
    }

    /// Whether this worker may still act on the lease at `now`: not lost, not locally expired.
    pub fn is_held(&self, now: Duration) -> bool {
        !self.is_lost() && !self.is_locally_expired(now)
    }

    /// A copy of the lease as last written by this worker.
    pub async fn lease(&self) -> Lease {
        self.state.lock().await.lease.clone()
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, HeldState> {
        self.state.lock().await
    }

    /// Records a successful write made with the lock held, sent at `sent_at`.
    pub(crate) fn record_write(&self, state: &mut HeldState, lease: Lease, sent_at: Duration) {
        state.lease = lease;
        self.last_renewal_nanos
            .fetch_max(nanos(sent_at), Ordering::SeqCst);
    }

    /// Gives the lease up gracefully: marks it lost locally (no more checkpoints or renewals)
    /// and removes the owner in the store, so another worker can take it at once.
    pub async fn evict(&self, store: &dyn LeaseStore) -> Result<Lease, LeaseStoreError> {
        let _state = self.lock().await;
        self.mark_lost();
        store.evict_lease(&self.shard_id, &self.worker_id).await
    }
}

/// A lease that stopped being held during a renewal run.
#[derive(Debug)]
pub struct LostLease {
    /// The shard.
    pub shard_id: ShardId,
    /// Why: "not renewed within the failover time" or the failed condition.
    pub reason: String,
}

/// The outcome of one renewal run.
#[derive(Debug, Default)]
pub struct RenewalReport {
    /// Leases renewed.
    pub renewed: Vec<ShardId>,
    /// Leases lost (and marked lost).
    pub lost: Vec<LostLease>,
    /// Leases whose renewal failed for a transient reason (still held until locally expired).
    pub failed: Vec<(ShardId, LeaseStoreError)>,
}

/// Renews `held` leases in ONE `renew_leases` batch.
///
/// Leases already lost are skipped; a lease locally expired is marked lost and not renewed; a
/// failed condition marks the lease lost. `clock` is read after all the leases are locked,
/// just before the batch is sent. An error of the whole batch leaves every lease as it was.
pub async fn renew_leases(
    store: &dyn LeaseStore,
    held: &[Arc<HeldLease>],
    clock: &dyn Clock,
) -> Result<RenewalReport, LeaseStoreError> {
    // Lock in a fixed order (by shard id) so concurrent multi-lease lockers cannot deadlock;
    // checkpointers only ever lock one lease.
    let mut ordered: Vec<&Arc<HeldLease>> = held.iter().filter(|lease| !lease.is_lost()).collect();
    ordered.sort_by(|a, b| a.shard_id.cmp(&b.shard_id).then(a.token.cmp(&b.token)));
    let mut guards = Vec::with_capacity(ordered.len());
    for lease in ordered {
        let guard = lease.lock().await;
        guards.push((lease, guard));
    }
    let now = clock.monotonic();
    let mut report = RenewalReport::default();
    let mut batch = Vec::with_capacity(guards.len());
    let mut batched = Vec::with_capacity(guards.len());
    for (lease, guard) in guards {
        if lease.is_lost() {
            continue;
        }
        if lease.is_locally_expired(now) {
            tracing::warn!(
                worker_id = %lease.worker_id,
                shard_id = %lease.shard_id,
                since_last_renewal_ms = now.saturating_sub(lease.last_renewal()).as_millis() as u64,
                "lease not renewed within the failover time; treating it as lost"
            );
            lease.mark_lost();
            report.lost.push(LostLease {
                shard_id: lease.shard_id.clone(),
                reason: "not renewed within the failover time".to_owned(),
            });
            continue;
        }
        batch.push(Renewal {
            lease_key: lease.shard_id.clone(),
            expected_counter: guard.lease.lease_counter,
            owner: lease.worker_id.clone(),
        });
        batched.push((lease, guard));
    }
    if batch.is_empty() {
        return Ok(report);
    }
    let results = store.renew_leases(&batch).await?;
    if results.len() != batched.len() {
        // A store bug; nothing is known about individual leases, so leave them as they are.
        return Err(LeaseStoreError::Storage(format!(
            "lease store answered {} results for {} renewals",
            results.len(),
            batched.len()
        )));
    }
    for ((lease, mut guard), result) in batched.into_iter().zip(results) {
        match result {
            Ok(renewed) => {
                lease.record_write(&mut guard, renewed, now);
                report.renewed.push(lease.shard_id.clone());
            }
            Err(error) if error.is_condition_failed() => {
                tracing::info!(
                    worker_id = %lease.worker_id,
                    shard_id = %lease.shard_id,
                    %error,
                    "lease lost: renewal condition failed"
                );
                lease.mark_lost();
                report.lost.push(LostLease {
                    shard_id: lease.shard_id.clone(),
                    reason: error.to_string(),
                });
            }
            Err(error) => {
                tracing::warn!(
                    worker_id = %lease.worker_id,
                    shard_id = %lease.shard_id,
                    %error,
                    "lease renewal failed; will retry"
                );
                report.failed.push((lease.shard_id.clone(), error));
            }
        }
    }
    Ok(report)
}
