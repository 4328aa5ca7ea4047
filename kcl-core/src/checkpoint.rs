//! The checkpointer handed to record processors, with the Java KCL's rules.
//!
//! - [`Checkpointer::checkpoint`] stores the largest *permitted* position (or `SHARD_END` once
//!   the shard has ended and everything was processed). While a batch is being delivered
//!   ([`Checkpointer::start_delivery`] … [`Checkpointer::finish_delivery`], i.e. inside
//!   `process_records`) that is the batch's last record; at any other time (a failed attempt
//!   being retried, `shutdown_requested`, a background task) it is the largest record whose batch
//!   was *processed*. So a checkpoint never names a record that reached no processor's success:
//!   a processor whose sink failed and that is then asked to shut down cannot skip the failed
//!   batch by checkpointing.
//! - [`Checkpointer::checkpoint_to`] / [`Checkpointer::checkpoint_at`] store a given position,
//!   which must lie between the last checkpoint and the largest permitted record, else
//!   [`CheckpointError::OutOfRange`]; a sentinel (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`) is
//!   never a checkpoint target ([`CheckpointError::NotARecord`]). Repeating the last checkpoint
//!   writes nothing. At shard end, checkpointing the shard's last record stores `SHARD_END`.
//! - Every write runs to completion in its own task: cancelling (dropping) a checkpoint future
//!   while its write is in flight never leaves the held lease's counter stale, so the next
//!   renewal cannot fail because a caller gave up waiting (e.g. a protocol timeout).
//! - [`Checkpointer::prepare_checkpoint`] writes a pending checkpoint (with optional application
//!   state); [`PreparedCheckpoint::commit`] makes it the checkpoint.
//! - When the lease is no longer held (lost, evicted, locally expired, or the store's condition
//!   fails) the write is refused with [`CheckpointError::LeaseLost`] and nothing is stored.
//!
//! ```
//! use kcl_core::checkpoint::{CheckpointError, Checkpointer};
//! use kcl_core::clock::{ManualClock, SharedClock};
//! use kcl_core::config::LeaseConfig;
//! use kcl_core::held_lease::HeldLease;
//! use kcl_core::kinesis::{EpochMillis, SequenceNumber, ShardId};
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use kcl_core::lease_store::LeaseStore;
//! use kcl_core::memory::InMemoryLeaseStore;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock: SharedClock = Arc::new(ManualClock::new(EpochMillis(0)));
//! let store = Arc::new(InMemoryLeaseStore::new());
//! let shard = ShardId::from_index(0);
//! store.create_lease_if_absent(&Lease::new(shard.clone(), ExtendedSequenceNumber::TRIM_HORIZON)).await?;
//! let taken = store.take_lease(&shard, 0, "worker-a").await?;
//! let held = HeldLease::new(taken, "worker-a", Duration::ZERO, &LeaseConfig::default());
//! let checkpointer = Checkpointer::new(held, store.clone(), clock);
//!
//! let seq = |n| ExtendedSequenceNumber::new(SequenceNumber::from_u128(n), 0);
//! checkpointer.record_delivered(seq(10));
//! checkpointer.record_delivered(seq(20));
//! checkpointer.checkpoint_to(seq(10)).await?;
//! assert!(matches!(checkpointer.checkpoint_to(seq(30)).await, Err(CheckpointError::OutOfRange { .. })));
//! checkpointer.checkpoint().await?;
//! assert_eq!(store.get_lease(&shard).await?.unwrap().checkpoint, seq(20));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use crate::clock::SharedClock;
use crate::held_lease::{HeldLease, HeldState};
use crate::kinesis::{SequenceNumber, ShardId};
use crate::lease::ExtendedSequenceNumber;
use crate::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a checkpoint was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// This worker no longer holds the lease; nothing was written. Stop processing the shard.
    #[error("lease lost on shard {shard_id}: {reason}")]
    LeaseLost {
        /// The shard.
        shard_id: ShardId,
        /// Why the lease is considered lost.
        reason: String,
    },
    /// The position is not between the last checkpoint and the largest delivered record.
    #[error(
        "checkpoint {requested} did not fall into acceptable range [{last_checkpoint}, {largest_permitted}] on shard {shard_id}"
    )]
    OutOfRange {
        /// The shard.
        shard_id: ShardId,
        /// The position asked for.
        requested: ExtendedSequenceNumber,
        /// The lower bound: the last stored checkpoint.
        last_checkpoint: ExtendedSequenceNumber,
        /// The upper bound: the largest delivered record (or SHARD_END at shard end).
        largest_permitted: ExtendedSequenceNumber,
    },
    /// The position is a sentinel (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`), not a record.
    #[error(
        "checkpoint {requested} on shard {shard_id} is not a record: a checkpoint must name a sequence number"
    )]
    NotARecord {
        /// The shard.
        shard_id: ShardId,
        /// The position asked for.
        requested: ExtendedSequenceNumber,
    },
    /// The lease store failed (transient; the lease may still be held, retry later).
    #[error("lease store error while checkpointing: {0}")]
    Store(#[from] LeaseStoreError),
}

impl CheckpointError {
    /// Whether this is the "lease lost" outcome.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, CheckpointError::LeaseLost { .. })
    }
}

#[derive(Debug, Default)]
struct Progress {
    /// The largest record whose batch was processed (or skipped by the failure policy).
    largest_processed: Option<ExtendedSequenceNumber>,
    /// The last record of the batch being delivered right now, if any.
    in_delivery: Option<ExtendedSequenceNumber>,
    /// The last record of the shard, once the shard has ended (`Some(None)`: ended empty).
    shard_end: Option<Option<ExtendedSequenceNumber>>,
}

impl Progress {
    /// The largest record a checkpoint may name now (before comparing with the last one).
    fn largest_permitted(&self) -> Option<ExtendedSequenceNumber> {
        self.largest_processed.max(self.in_delivery)
    }
}

struct Inner {
    held: Arc<HeldLease>,
    store: Arc<dyn LeaseStore>,
    clock: SharedClock,
    progress: Mutex<Progress>,
}

/// Checkpoints one held lease. Cheap to clone; all clones share the delivery progress.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("held", &self.held)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

/// A pending checkpoint written by [`Checkpointer::prepare_checkpoint`].
#[derive(Debug, Clone)]
pub struct PreparedCheckpoint {
    checkpointer: Checkpointer,
    position: ExtendedSequenceNumber,
}

#[allow(clippy::result_large_err)] // see the note on `impl Checkpointer`
impl PreparedCheckpoint {
    /// The prepared position.
    pub fn position(&self) -> ExtendedSequenceNumber {
        self.position
    }

    /// Makes the prepared position the checkpoint (and clears the pending fields).
    pub async fn commit(&self) -> Result<(), CheckpointError> {
        self.checkpointer.checkpoint_to(self.position).await
    }
}

// `CheckpointError::OutOfRange` carries three positions (~200 bytes) so processors can report the
// acceptable range; checkpoints are rare next to the store round trip, so the size is harmless.
#[allow(clippy::result_large_err)]
impl Checkpointer {
    /// A checkpointer for `held`, writing through `store`, judging local expiry with `clock`.
    pub fn new(held: Arc<HeldLease>, store: Arc<dyn LeaseStore>, clock: SharedClock) -> Self {
        Checkpointer {
            inner: Arc::new(Inner {
                held,
                store,
                clock,
                progress: Mutex::new(Progress::default()),
            }),
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.inner
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The held lease this checkpointer writes to.
    pub fn held_lease(&self) -> &Arc<HeldLease> {
        &self.inner.held
    }

    /// The shard.
    pub fn shard_id(&self) -> &ShardId {
        self.inner.held.shard_id()
    }

    /// Tells the checkpointer the record (or user record) at `position` was delivered to the
    /// processor AND processed: checkpoints may name it from now on, at any time. Positions only
    /// move forward; a smaller one is ignored. (The shard consumer uses
    /// [`Checkpointer::start_delivery`] / [`Checkpointer::finish_delivery`] instead.)
    pub fn record_delivered(&self, position: ExtendedSequenceNumber) {
        let mut progress = self.progress();
        progress.largest_processed = progress.largest_processed.max(Some(position));
    }

    /// A batch ending at `last` is being handed to the processor: until
    /// [`Checkpointer::finish_delivery`], checkpoints may name records up to `last`.
    pub fn start_delivery(&self, last: ExtendedSequenceNumber) {
        self.progress().in_delivery = Some(last);
    }

    /// The delivery opened by [`Checkpointer::start_delivery`] is over. With `processed` (the
    /// processor returned success, or the failure policy skipped the batch) its records stay
    /// checkpointable; otherwise (a failed attempt) checkpoints are bounded by the last
    /// processed batch again.
    pub fn finish_delivery(&self, processed: bool) {
        let mut progress = self.progress();
        if let Some(last) = progress.in_delivery.take()
            && processed
        {
            progress.largest_processed = progress.largest_processed.max(Some(last));
        }
    }

    /// Tells the checkpointer the shard has ended and every record was delivered: from now on
    /// `checkpoint()` stores SHARD_END, and so does checkpointing the last delivered record.
    pub fn mark_shard_end(&self) {
        let mut progress = self.progress();
        progress.shard_end = Some(progress.largest_processed);
    }

    /// Whether [`Checkpointer::mark_shard_end`] was called.
    pub fn is_at_shard_end(&self) -> bool {
        self.progress().shard_end.is_some()
    }

    /// The largest position a checkpoint may name now (see the module docs), if any.
    pub fn largest_delivered(&self) -> Option<ExtendedSequenceNumber> {
        self.progress().largest_permitted()
    }

    /// The checkpoint stored by this worker (or found when the lease was taken).
    pub async fn last_checkpoint(&self) -> ExtendedSequenceNumber {
        self.inner.held.lease().await.checkpoint
    }

    /// The pending (prepared) checkpoint and its application state, as stored.
    pub async fn pending_checkpoint(&self) -> Option<(ExtendedSequenceNumber, Option<Vec<u8>>)> {
        let lease = self.inner.held.lease().await;
        lease
            .pending_checkpoint
            .map(|pending| (pending, lease.pending_checkpoint_state))
    }

    /// The largest position a checkpoint may name, given the last checkpoint.
    fn largest_permitted(&self, last_checkpoint: ExtendedSequenceNumber) -> ExtendedSequenceNumber {
        let progress = self.progress();
        if progress.shard_end.is_some() {
            return ExtendedSequenceNumber::SHARD_END;
        }
        progress
            .largest_permitted()
            .map_or(last_checkpoint, |largest| largest.max(last_checkpoint))
    }

    /// What to store for `requested`: SHARD_END for the shard's last record at shard end.
    fn stored_value(&self, requested: ExtendedSequenceNumber) -> ExtendedSequenceNumber {
        match self.progress().shard_end {
            Some(Some(last_record)) if requested == last_record => {
                ExtendedSequenceNumber::SHARD_END
            }
            _ => requested,
        }
    }

    /// Checkpoints at the largest permitted record (SHARD_END once the shard has ended).
    /// Does nothing if nothing new was processed.
    pub async fn checkpoint(&self) -> Result<(), CheckpointError> {
        self.to_completion(|this| async move {
            let state = this.lock_held().await?;
            let target = this.largest_permitted(state.lease.checkpoint);
            this.write_checkpoint(state, target).await
        })
        .await
    }

    /// Runs `operation` in its own task and waits for it: dropping the returned future does not
    /// cancel a write already sent, whose new lease counter must be recorded.
    async fn to_completion<T, F, Fut>(&self, operation: F) -> Result<T, CheckpointError>
    where
        T: Send + 'static,
        F: FnOnce(Checkpointer) -> Fut,
        Fut: Future<Output = Result<T, CheckpointError>> + Send + 'static,
    {
        let task = tokio::spawn(operation(self.clone()));
        match task.await {
            Ok(result) => result,
            Err(error) => Err(CheckpointError::Store(LeaseStoreError::Storage(format!(
                "checkpoint task failed: {error}"
            )))),
        }
    }

    /// Checkpoints at a record's sequence number and sub-sequence number.
    pub async fn checkpoint_at(
        &self,
        sequence_number: SequenceNumber,
        sub_sequence_number: u64,
    ) -> Result<(), CheckpointError> {
        self.checkpoint_to(ExtendedSequenceNumber::new(
            sequence_number,
            sub_sequence_number,
        ))
        .await
    }

    /// Checkpoints at `position`, which must lie in [last checkpoint, largest delivered].
    pub async fn checkpoint_to(
        &self,
        position: ExtendedSequenceNumber,
    ) -> Result<(), CheckpointError> {
        self.to_completion(move |this| async move {
            let state = this.lock_held().await?;
            this.check_range(&state, position)?;
            this.write_checkpoint(state, position).await
        })
        .await
    }

    /// Writes `position` (range-checked like [`Checkpointer::checkpoint_to`]) as the pending
    /// checkpoint with optional application state. If it equals the last checkpoint nothing is
    /// written and committing does nothing.
    pub async fn prepare_checkpoint(
        &self,
        position: ExtendedSequenceNumber,
        application_state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint, CheckpointError> {
        self.to_completion(move |this| async move {
            let mut state = this.lock_held().await?;
            this.check_range(&state, position)?;
            let prepared = PreparedCheckpoint {
                checkpointer: this.clone(),
                position,
            };
            if position == state.lease.checkpoint {
                return Ok(prepared);
            }
            let update = CheckpointUpdate {
                checkpoint: None,
                pending_checkpoint: Some(this.stored_value(position)),
                pending_checkpoint_state: application_state,
            };
            this.write(&mut state, &update).await?;
            Ok(prepared)
        })
        .await
    }

    /// Prepares the largest delivered position (see [`Checkpointer::prepare_checkpoint`]).
    pub async fn prepare_checkpoint_latest(
        &self,
        application_state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint, CheckpointError> {
        let last = self.last_checkpoint().await;
        self.prepare_checkpoint(self.largest_permitted(last), application_state)
            .await
    }

    fn check_range(
        &self,
        state: &HeldState,
        requested: ExtendedSequenceNumber,
    ) -> Result<(), CheckpointError> {
        let is_record = requested.sequence_number().is_some();
        if !is_record && !requested.is_shard_end() {
            return Err(CheckpointError::NotARecord {
                shard_id: self.shard_id().clone(),
                requested,
            });
        }
        let last_checkpoint = state.lease.checkpoint;
        let largest_permitted = self.largest_permitted(last_checkpoint);
        if requested < last_checkpoint || requested > largest_permitted {
            return Err(CheckpointError::OutOfRange {
                shard_id: self.shard_id().clone(),
                requested,
                last_checkpoint,
                largest_permitted,
            });
        }
        Ok(())
    }

    fn lease_lost(&self, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::LeaseLost {
            shard_id: self.shard_id().clone(),
            reason: reason.into(),
        }
    }

    /// Locks the held lease, refusing if it is no longer held.
    async fn lock_held(&self) -> Result<tokio::sync::MutexGuard<'_, HeldState>, CheckpointError> {
        let held = &self.inner.held;
        let state = held.lock().await;
        if held.is_lost() {
            return Err(self.lease_lost("the lease was lost or released"));
        }
        if held.is_locally_expired(self.inner.clock.monotonic()) {
            held.mark_lost();
            return Err(self.lease_lost("the lease was not renewed within the failover time"));
        }
        Ok(state)
    }

    async fn write_checkpoint(
        &self,
        mut state: tokio::sync::MutexGuard<'_, HeldState>,
        requested: ExtendedSequenceNumber,
    ) -> Result<(), CheckpointError> {
        let value = self.stored_value(requested);
        // Repeating the last checkpoint writes nothing (as the Java KCL).
        if value == state.lease.checkpoint {
            return Ok(());
        }
        let update = CheckpointUpdate {
            checkpoint: Some(value),
            pending_checkpoint: None,
            pending_checkpoint_state: None,
        };
        self.write(&mut state, &update).await
    }

    /// Sends one conditional write with the lock held.
    async fn write(
        &self,
        state: &mut HeldState,
        update: &CheckpointUpdate,
    ) -> Result<(), CheckpointError> {
        let held = &self.inner.held;
        let sent_at = self.inner.clock.monotonic();
        if held.is_locally_expired(sent_at) {
            held.mark_lost();
            return Err(self.lease_lost("the lease was not renewed within the failover time"));
        }
        let result = self
            .inner
            .store
            .update_checkpoint(
                held.shard_id(),
                held.worker_id(),
                state.lease.lease_counter,
                update,
            )
            .await;
        match result {
            Ok(written) => {
                held.record_write(state, written, sent_at);
                Ok(())
            }
            Err(error) if error.is_condition_failed() => {
                tracing::info!(
                    worker_id = %held.worker_id(),
                    shard_id = %held.shard_id(),
                    %error,
                    "checkpoint refused: the lease was lost"
                );
                held.mark_lost();
                Err(self.lease_lost(error.to_string()))
            }
            Err(error) => Err(CheckpointError::Store(error)),
        }
    }
}
