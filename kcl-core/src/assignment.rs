//! Lease assignment as pure functions: which leases this worker should take or steal.
//!
//! A worker keeps one [`LeaseObservations`] and feeds it every full scan of the lease table
//! with the local monotonic time of the scan. Expiry is judged only by how long the *local*
//! clock has seen a lease's counter unchanged — clocks of different hosts are never compared.
//! [`plan_takes`] then decides, deterministically for a given seed:
//!
//! 1. **Very old leases** (unchanged for `very_old_lease_multiplier` × failover; an unowned lease
//!    never seen changing counts as changed at monotonic time zero, as in the Java KCL) are taken
//!    first, ignoring the target, up to `max_leases_for_worker`.
//! 2. Otherwise the **target** is `ceil(leases / workers)` (1 if there are more workers than
//!    leases) capped by `max_leases_for_worker`, counting workers that hold unexpired leases
//!    plus this one. Free or expired leases are taken, at random, up to the target.
//! 3. Only when none are available, leases are **stolen** from the most loaded worker(s):
//!    from a worker over the target, at most `max_leases_to_steal_at_one_time` each. With
//!    `parallel_stealing` (default; beyond the Java KCL) several over-loaded workers are stolen
//!    from in one run, so a new worker converges in one or two runs instead of many.
//!
//! Finished leases (checkpoint `SHARD_END`) need no processing: they are neither counted nor
//! taken; cleanup deletes them once their children have started.
//!
//! ```
//! use kcl_core::assignment::{LeaseObservations, plan_takes};
//! use kcl_core::config::LeaseConfig;
//! use kcl_core::kinesis::ShardId;
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use std::time::Duration;
//!
//! let leases: Vec<Lease> = (0..4)
//!     .map(|i| Lease::new(ShardId::from_index(i), ExtendedSequenceNumber::TRIM_HORIZON))
//!     .collect();
//! let mut observations = LeaseObservations::new();
//! observations.observe_scan(leases, Duration::from_secs(100));
//! let plan = plan_takes(&observations, "worker-a", Duration::from_secs(100), &LeaseConfig::default(), 7);
//! // Unowned leases never seen changing are very old: a lone worker takes them all.
//! assert_eq!(plan.take.len(), 4);
//! assert!(plan.steal.is_empty());
//! ```

use crate::config::LeaseConfig;
use crate::kinesis::ShardId;
use crate::lease::Lease;
use std::collections::BTreeMap;
use std::time::Duration;

/// A lease as last scanned, with the local time its counter was last seen changing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLease {
    /// The lease as of the last scan (or this worker's last successful write).
    pub lease: Lease,
    /// Local monotonic time the counter was last seen changing; `None` means "never": an
    /// unowned lease seen for the first time, available at once (and very old once the local
    /// monotonic clock is past the very-old age).
    pub last_counter_change: Option<Duration>,
}

impl ObservedLease {
    /// How long the counter has been unchanged as of `now`. A lease never seen changing counts
    /// as changed at monotonic time zero (the Java KCL's `lastCounterIncrementNanos = 0`).
    pub fn unchanged_for(&self, now: Duration) -> Duration {
        now.saturating_sub(self.last_counter_change.unwrap_or(Duration::ZERO))
    }

    /// Whether the lease is expired: never seen changing, or unchanged for more than the
    /// failover time.
    pub fn is_expired(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.last_counter_change.is_none() || self.unchanged_for(now) > config.failover_time()
    }

    /// Whether anyone may take the lease: unowned, or expired.
    pub fn is_available(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.lease.lease_owner.is_none() || self.is_expired(now, config)
    }

    /// Whether the lease is very old: unchanged for more than the very-old age (see
    /// [`ObservedLease::unchanged_for`] for leases never seen changing).
    pub fn is_very_old(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.unchanged_for(now) > config.very_old_lease_age()
    }
}

/// What one worker has seen of the lease table across successive scans.
#[derive(Debug, Clone, Default)]
pub struct LeaseObservations {
    leases: BTreeMap<ShardId, ObservedLease>,
}

impl LeaseObservations {
    /// No observations yet.
    pub fn new() -> Self {
        LeaseObservations::default()
    }

    /// Records a full scan. `now` is the local monotonic time read AFTER `list_leases`
    /// returned: every change the scan shows happened no later, so expiry is never judged early
    /// (reading it before the scan would let a write landing during the scan look older than it
    /// is). Leases absent from the scan are forgotten. A lease whose counter (or owner) changed gets `now` as its last change; a
    /// lease seen for the first time gets `None` if unowned (free at once) and `now` if owned
    /// (its owner gets a full failover time to show it is alive).
    pub fn observe_scan(&mut self, scan: impl IntoIterator<Item = Lease>, now: Duration) {
        let mut previous = std::mem::take(&mut self.leases);
        for lease in scan {
            let last_counter_change = match previous.remove(&lease.lease_key) {
                Some(seen)
                    if seen.lease.lease_counter == lease.lease_counter
                        && seen.lease.lease_owner == lease.lease_owner =>
                {
                    seen.last_counter_change
                }
                Some(_) => Some(now),
                None if lease.lease_owner.is_none() => None,
                None => Some(now),
            };
            self.leases.insert(
                lease.lease_key.clone(),
                ObservedLease {
                    lease,
                    last_counter_change,
                },
            );
        }
    }

    /// Records a lease this worker just wrote (took, renewed, checkpointed) at `now`, so the
    /// next plan counts it without waiting for a scan.
    pub fn record_write(&mut self, lease: Lease, now: Duration) {
        self.leases.insert(
            lease.lease_key.clone(),
            ObservedLease {
                lease,
                last_counter_change: Some(now),
            },
        );
    }

    /// The observation of one lease.
    pub fn get(&self, lease_key: &ShardId) -> Option<&ObservedLease> {
        self.leases.get(lease_key)
    }

    /// Every observation, sorted by lease key.
    pub fn iter(&self) -> impl Iterator<Item = &ObservedLease> {
        self.leases.values()
    }

    /// How many leases were observed.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Unexpired, unfinished leases per owner as of `now`.
    pub fn lease_counts(&self, now: Duration, config: &LeaseConfig) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for observed in self.assignable() {
            let Some(owner) = &observed.lease.lease_owner else {
                continue;
            };
            if !observed.is_expired(now, config) {
                *counts.entry(owner.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn assignable(&self) -> impl Iterator<Item = &ObservedLease> {
        self.leases
            .values()
            .filter(|observed| !observed.lease.is_finished())
    }
}

/// One conditional take the worker should attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTake {
    /// The lease to take.
    pub lease_key: ShardId,
    /// The counter seen in the scan: pass it to
    /// [`LeaseStore::take_lease`](crate::lease_store::LeaseStore::take_lease).
    pub expected_counter: u64,
    /// The owner as seen in the scan (`None` for a free lease).
    pub previous_owner: Option<String>,
}

/// The outcome of one planning run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TakePlan {
    /// Free, expired or very old leases to take.
    pub take: Vec<PlannedTake>,
    /// Leases to steal from other, over-loaded workers.
    pub steal: Vec<PlannedTake>,
    /// The number of leases this worker aims to hold.
    pub target: usize,
    /// Workers counted (holders of unexpired leases, plus this one).
    pub worker_count: usize,
    /// Unfinished leases counted.
    pub lease_count: usize,
}

impl TakePlan {
    /// Every planned take, free ones first, then steals.
    pub fn all(&self) -> impl Iterator<Item = &PlannedTake> {
        self.take.iter().chain(self.steal.iter())
    }

    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.take.is_empty() && self.steal.is_empty()
    }
}

/// A small deterministic generator (SplitMix64): shuffles must be reproducible from a seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn planned(observed: &ObservedLease) -> PlannedTake {
    PlannedTake {
        lease_key: observed.lease.lease_key.clone(),
        expected_counter: observed.lease.lease_counter,
        previous_owner: observed.lease.lease_owner.clone(),
    }
}

/// Decides which leases `worker_id` should take or steal as of local monotonic time `now`.
///
/// Pure and deterministic for a given `seed` (vary it per run in production, e.g. from the
/// run count, so workers do not all pick the same leases).
pub fn plan_takes(
    observations: &LeaseObservations,
    worker_id: &str,
    now: Duration,
    config: &LeaseConfig,
    seed: u64,
) -> TakePlan {
    let mut rng = SplitMix64(seed);
    let mut counts = observations.lease_counts(now, config);
    counts.entry(worker_id.to_owned()).or_insert(0);
    let mine = counts[worker_id];
    let lease_count = observations.assignable().count();
    let worker_count = counts.len();
    let target = if worker_count >= lease_count {
        1
    } else {
        lease_count.div_ceil(worker_count)
    }
    .min(config.max_leases_for_worker());
    let mut plan = TakePlan {
        target,
        worker_count,
        lease_count,
        ..TakePlan::default()
    };
    // An expired lease of this worker's own is available too: it was not renewed in time.
    let is_candidate = |observed: &&ObservedLease| observed.is_available(now, config);

    // 1. Very old leases first, ignoring the target but never exceeding the per-worker cap.
    let mut very_old: Vec<&ObservedLease> = observations
        .assignable()
        .filter(is_candidate)
        .filter(|observed| observed.is_very_old(now, config))
        .collect();
    if !very_old.is_empty() {
        rng.shuffle(&mut very_old);
        let room = config.max_leases_for_worker().saturating_sub(mine);
        plan.take = very_old.into_iter().take(room).map(planned).collect();
        if !plan.take.is_empty() {
            return plan;
        }
    }

    let needed = target.saturating_sub(mine);
    if needed == 0 {
        return plan;
    }

    // 2. Free or expired leases, at random, up to the target.
    let mut available: Vec<&ObservedLease> =
        observations.assignable().filter(is_candidate).collect();
    if !available.is_empty() {
        rng.shuffle(&mut available);
        plan.take = available.into_iter().take(needed).map(planned).collect();
        return plan;
    }

    // 3. Nothing available: steal from the most loaded worker(s).
    let victims = steal_counts(&counts, worker_id, target, needed, config);
    for (victim, how_many) in victims {
        let mut theirs: Vec<&ObservedLease> = observations
            .assignable()
            .filter(|observed| observed.lease.is_owned_by(&victim))
            .filter(|observed| !observed.is_expired(now, config))
            .collect();
        rng.shuffle(&mut theirs);
        plan.steal
            .extend(theirs.into_iter().take(how_many).map(planned));
    }
    plan
}

/// How many leases to steal from which worker.
fn steal_counts(
    counts: &BTreeMap<String, usize>,
    worker_id: &str,
    target: usize,
    needed: usize,
    config: &LeaseConfig,
) -> Vec<(String, usize)> {
    // Most loaded first; ties broken by worker id so the plan is deterministic.
    let mut others: Vec<(&String, usize)> = counts
        .iter()
        .filter(|(worker, _)| worker.as_str() != worker_id)
        .map(|(worker, count)| (worker, *count))
        .collect();
    others.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let Some(&(most_loaded, most_count)) = others.first() else {
        return Vec::new();
    };
    let per_victim_cap = config.max_leases_to_steal_at_one_time();

    if !config.parallel_stealing() {
        // The Java KCL rule: only the single most loaded worker, and one lease even when it is
        // exactly at target if this worker is short by more than one.
        if most_count < target {
            return Vec::new();
        }
        let mut steal = needed.min(most_count - target);
        if steal == 0 && needed > 1 {
            steal = 1;
        }
        let steal = steal.min(per_victim_cap);
        return if steal == 0 {
            Vec::new()
        } else {
            vec![(most_loaded.clone(), steal)]
        };
    }

    let mut steals: Vec<(String, usize)> = Vec::new();
    let mut remaining = needed;
    for &(victim, count) in &others {
        if remaining == 0 || count <= target {
            break;
        }
        let steal = remaining.min(count - target).min(per_victim_cap);
        remaining -= steal;
        steals.push((victim.clone(), steal));
    }
    if steals.is_empty() && needed > 1 && most_count >= target {
        // Nobody is over target but this worker is short by more than one. The Java KCL takes
        // one lease from the most loaded worker per run; here one lease from each worker at
        // target, at most `needed - 1` in all, so this worker ends at target - 1 and the
        // fleet within one of balance, without overshooting.
        return others
            .iter()
            .take_while(|(_, count)| *count >= target)
            .take(needed - 1)
            .map(|(victim, _)| ((*victim).clone(), 1))
            .collect();
    }
    steals
}
