//! [`InMemoryLeaseStore`]: a lease table in memory with the same conditional semantics as the
//! SQLite store, for tests, simulations and single-process fleets.
//!
//! ```
//! use kcl_core::kinesis::ShardId;
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use kcl_core::lease_store::LeaseStore;
//! use kcl_core::memory::InMemoryLeaseStore;
//!
//! # tokio_test_block_on(async {
//! let store = InMemoryLeaseStore::new();
//! let shard = ShardId::from_index(0);
//! store.create_lease_if_absent(&Lease::new(shard.clone(), ExtendedSequenceNumber::TRIM_HORIZON)).await?;
//! let taken = store.take_lease(&shard, 0, "worker-a").await?;
//! assert_eq!(taken.lease_counter, 1);
//! // A second taker that saw counter 0 loses the race.
//! assert!(store.take_lease(&shard, 0, "worker-b").await.unwrap_err().is_condition_failed());
//! # Ok::<(), kcl_core::lease_store::LeaseStoreError>(())
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(future: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
//! # }
//! ```

use crate::conditions;
use crate::kinesis::{HashKeyRange, ShardId};
use crate::lease::Lease;
use crate::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// A lease table held in memory. Cheap operations under one short mutex; never awaits while
/// holding it. Its leases are values, never encoded rows, so no lease is ever undecodable and
/// [`list_leases`](LeaseStore::list_leases) never skips one.
#[derive(Debug, Default)]
pub struct InMemoryLeaseStore {
    leases: Mutex<BTreeMap<ShardId, Lease>>,
}

impl InMemoryLeaseStore {
    /// An empty table.
    pub fn new() -> Self {
        InMemoryLeaseStore::default()
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<ShardId, Lease>> {
        // A panic while holding the lock cannot leave a lease half-written (each write replaces
        // a whole lease), so a poisoned lock is still consistent.
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every lease, sorted by key, without going through the async trait (for tests and
    /// invariant checks).
    pub fn snapshot(&self) -> Vec<Lease> {
        self.table().values().cloned().collect()
    }

    /// Writes `lease` unconditionally, replacing any lease with its key. For test setup only:
    /// a real worker never writes without a condition.
    pub fn put_unconditionally(&self, lease: Lease) {
        self.table().insert(lease.lease_key.clone(), lease);
    }

    fn modify(
        &self,
        lease_key: &ShardId,
        change: impl FnOnce(&mut Lease) -> Result<(), LeaseStoreError>,
    ) -> Result<Lease, LeaseStoreError> {
        let mut table = self.table();
        let stored = table
            .get_mut(lease_key)
            .ok_or_else(|| conditions::missing(lease_key))?;
        // Apply to a copy so a failed condition leaves the stored lease untouched.
        let mut candidate = stored.clone();
        change(&mut candidate)?;
        *stored = candidate.clone();
        Ok(candidate)
    }
}

#[async_trait::async_trait]
impl LeaseStore for InMemoryLeaseStore {
    async fn create_lease_if_absent(&self, lease: &Lease) -> Result<bool, LeaseStoreError> {
        let mut table = self.table();
        if table.contains_key(&lease.lease_key) {
            return Ok(false);
        }
        table.insert(lease.lease_key.clone(), lease.clone());
        Ok(true)
    }

    async fn list_leases(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        Ok(self.snapshot())
    }

    async fn get_lease(&self, lease_key: &ShardId) -> Result<Option<Lease>, LeaseStoreError> {
        Ok(self.table().get(lease_key).cloned())
    }

    async fn renew_leases(
        &self,
        renewals: &[Renewal],
    ) -> Result<Vec<Result<Lease, LeaseStoreError>>, LeaseStoreError> {
        Ok(renewals
            .iter()
            .map(|renewal| {
                self.modify(&renewal.lease_key, |lease| {
                    conditions::renew(lease, renewal)
                })
            })
            .collect())
    }

    async fn take_lease(
        &self,
        lease_key: &ShardId,
        expected_counter: u64,
        new_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.modify(lease_key, |lease| {
            conditions::take(lease, expected_counter, new_owner)
        })
    }

    async fn evict_lease(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
    ) -> Result<Lease, LeaseStoreError> {
        self.modify(lease_key, |lease| conditions::evict(lease, expected_owner))
    }

    async fn update_checkpoint(
        &self,
        lease_key: &ShardId,
        expected_owner: &str,
        expected_counter: u64,
        update: &CheckpointUpdate,
    ) -> Result<Lease, LeaseStoreError> {
        self.modify(lease_key, |lease| {
            conditions::checkpoint(lease, expected_owner, expected_counter, update)
        })
    }

    async fn update_lineage(
        &self,
        lease_key: &ShardId,
        child_shard_ids: &[ShardId],
        hash_key_range: Option<HashKeyRange>,
    ) -> Result<Lease, LeaseStoreError> {
        self.modify(lease_key, |lease| {
            conditions::lineage(lease, child_shard_ids, hash_key_range);
            Ok(())
        })
    }

    async fn delete_lease(&self, lease_key: &ShardId) -> Result<(), LeaseStoreError> {
        self.table().remove(lease_key);
        Ok(())
    }
}
