//! The lease table behind a trait: SQLite here, DynamoDB (or any database with conditional
//! writes) elsewhere.
//!
//! Every write is conditional. A failed condition is [`LeaseStoreError::ConditionFailed`], a
//! distinct outcome the caller acts on (the lease was lost or changed), never a generic failure.

use crate::kinesis::{HashKeyRange, ShardId};
use crate::lease::{ExtendedSequenceNumber, Lease};

/// Why a lease-store operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseStoreError {
    /// The write's condition did not hold (counter or owner changed, lease absent or present).
    #[error("condition failed for lease {lease_key}: {reason}")]
    ConditionFailed {
        /// The lease the write was for.
        lease_key: ShardId,
        /// Which condition failed, e.g. "lease counter is 8, expected 7".
        reason: String,
    },
    /// The store is busy or throttled; the operation may be retried.
    #[error("lease store is throttled: {0}")]
    Throttled(String),
    /// The store, or one lease in it, is not valid: not a lease table, a foreign file, a wrong
    /// schema version, or a lease row that cannot be decoded (the message names the lease and
    /// the field).
    #[error("lease store is invalid: {0}")]
    InvalidStore(String),
    /// The store cannot be used until an operator acts: the disk is full, the file is corrupt,
    /// read-only, cannot be opened, or was replaced by something that is not a database.
    /// Retrying does not help.
    #[error("lease store is unavailable: {0}")]
    Unavailable(String),
    /// Any other failure of the underlying database or its connection, presumably transient.
    #[error("lease store failed: {0}")]
    Storage(String),
}

impl LeaseStoreError {
    /// Whether this is a failed condition (the lease is not as the caller believed).
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, LeaseStoreError::ConditionFailed { .. })
    }

    /// Whether the same operation may succeed if simply tried again later: `true` for
    /// [`Throttled`](LeaseStoreError::Throttled) (another writer held the lock) and
    /// [`Storage`](LeaseStoreError::Storage) (a transient failure); `false` for
    /// [`ConditionFailed`](LeaseStoreError::ConditionFailed) (the lease changed: re-read it
    /// instead), [`InvalidStore`](LeaseStoreError::InvalidStore) and
    /// [`Unavailable`](LeaseStoreError::Unavailable) (an operator must act first).
    pub fn is_retryable(&self) -> bool {
        match self {
            LeaseStoreError::Throttled(_) | LeaseStoreError::Storage(_) => true,
            LeaseStoreError::ConditionFailed { .. }
            | LeaseStoreError::InvalidStore(_)
            | LeaseStoreError::Unavailable(_) => false,
        }
    }
}

/// A checkpoint write: the new checkpoint and/or the pending (prepared) checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointUpdate {
    /// The new `checkpoint`; `None` leaves it as it is (used by `prepare_checkpoint`).
    pub checkpoint: Option<ExtendedSequenceNumber>,
    /// The new `pendingCheckpoint`; `None` clears it.
    pub pending_checkpoint: Option<ExtendedSequenceNumber>,
    /// The new `pendingCheckpointState`; `None` clears it.
    pub pending_checkpoint_state: Option<Vec<u8>>,
}

/// One renewal in a batch: the lease and the counter the renewer last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// The lease to renew.
    pub lease_key: ShardId,
    /// The counter the renewer holds; the renewal applies only if the stored one equals it.
    pub expected_counter: u64,
    /// The renewing worker (the lease must still be owned by it).
    pub owner: String,
}

/// The lease table of one application.
///
/// Implementations must make every write conditional as documented, atomically, so that a
/// paused or partitioned worker can never overwrite a newer owner's state.
#[async_trait::async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Creates `lease` if no lease with its key exists. Returns whether it was created.
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError>;

    /// Every lease of the table.
    ///
    /// A store whose rows can be damaged from outside (SQLite) skips a row it cannot decode,
    /// logging it with `tracing::error!`, and returns the rest, so one bad row never stops the
    /// fleet from taking, renewing and cleaning up the other leases; [`get_lease`] and every
    /// write on that key then fail with [`LeaseStoreError::InvalidStore`] and leave the row as
    /// it is.
    ///
    /// [`get_lease`]: LeaseStore::get_lease
    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError>;

    /// The lease on `lease_key`, if it exists.
    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError>;

    /// Renews a batch of leases (one transaction where the store has them): each renewal bumps
    /// the counter if it still equals `expected_counter` and the owner is unchanged.
    /// Returns, in order, the renewed lease or the reason that renewal failed.
    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError>;

    /// Takes the lease for `new_owner` if its counter still equals `expected_counter`: bumps the
    /// counter, sets the owner and counts an owner switch if the owner changed.
    async fn take_lease(
        &self,
        lease_key: &ShardId,
        expected_counter: u64,
        new_owner: &str,
    ) -> Result<Lease, LeaseStoreError>;

    /// Releases the lease if `expected_owner` owns it: removes the owner, bumps the counter.
    async fn evict_lease(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
    ) -> Result<Lease, LeaseStoreError>;

    /// Writes a checkpoint if `expected_owner` owns the lease and its counter equals
    /// `expected_counter`; bumps the counter and resets the owner-switch count when
    /// `update.checkpoint` is set.
    async fn update_checkpoint(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
        expected_counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError>;

    /// Records lineage facts learned at shard end (children, hash range) if the lease exists.
    async fn update_lineage(
        &self,
        lease_key: &ShardId,
        child_shard_ids: &[ShardId],
        hash_key_range: Option<HashKeyRange>,
    ) -> Result<Lease, LeaseStoreError>;

    /// Deletes the lease (used by cleanup once a finished shard's children have started).
    async fn delete_lease(&self, lease_key: &ShardId) -> Result<(), LeaseStoreError>;
}
