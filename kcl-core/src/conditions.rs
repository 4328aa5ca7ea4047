//! The conditional writes of the lease table as pure functions on one lease.
//!
//! Every [`LeaseStore`](crate::lease_store::LeaseStore) implementation that can read-modify-write
//! a row inside a transaction (the in-memory and SQLite stores) applies exactly these rules, so
//! their semantics cannot drift apart. A store with native conditional writes (DynamoDB)
//! expresses the same conditions in its own language.

use crate::kinesis::{HashKeyRange, ShardId};
use crate::lease::Lease;
use crate::lease_store::{CheckpointUpdate, LeaseStoreError, Renewal};

fn condition_failed(lease_key: &ShardId, reason: String) -> LeaseStoreError {
    LeaseStoreError::ConditionFailed {
        lease_key: lease_key.clone(),
        reason,
    }
}

/// The error for a write to a lease that does not exist.
pub(crate) fn missing(lease_key: &ShardId) -> LeaseStoreError {
    condition_failed(lease_key, "lease does not exist".to_owned())
}

fn expect_counter(lease: &Lease, expected_counter: u64) -> Result<(), LeaseStoreError> {
    if lease.lease_counter == expected_counter {
        return Ok(());
    }
    Err(condition_failed(
        &lease.lease_key,
        format!(
            "lease counter is {}, expected {expected_counter}",
            lease.lease_counter
        ),
    ))
}

fn expect_owner(lease: &Lease, expected_owner: &str) -> Result<(), LeaseStoreError> {
    if lease.is_owned_by(expected_owner) {
        return Ok(());
    }
    let actual = lease.lease_owner.as_deref().unwrap_or("nobody");
    Err(condition_failed(
        &lease.lease_key,
        format!("lease owner is {actual}, expected {expected_owner}"),
    ))
}

fn bump(lease: &mut Lease) {
    lease.lease_counter = lease.lease_counter.wrapping_add(1);
}

/// Renew: the counter and the owner must match; bumps the counter.
pub(crate) fn renew(lease: &mut Lease, renewal: &Renewal) -> Result<(), LeaseStoreError> {
    expect_counter(lease, renewal.expected_counter)?;
    expect_owner(lease, &renewal.owner)?;
    bump(lease);
    Ok(())
}

/// Take: the counter must match (no owner check); sets the owner, counts a switch.
pub(crate) fn take(
    lease: &mut Lease,
    expected_counter: u64,
    new_owner: &str,
) -> Result<(), LeaseStoreError> {
    expect_counter(lease, expected_counter)?;
    if !lease.is_owned_by(new_owner) {
        lease.owner_switches_since_checkpoint += 1;
        lease.lease_owner = Some(new_owner.to_owned());
    }
    bump(lease);
    Ok(())
}

/// Evict: the owner must match; removes the owner, bumps the counter.
pub(crate) fn evict(lease: &mut Lease, expected_owner: &str) -> Result<(), LeaseStoreError> {
    expect_owner(lease, expected_owner)?;
    lease.lease_owner = None;
    bump(lease);
    Ok(())
}

/// Checkpoint / prepare: owner and counter must match; bumps the counter.
pub(crate) fn checkpoint(
    lease: &mut Lease,
    expected_owner: &str,
    expected_counter: u64,
    update: &CheckpointUpdate,
) -> Result<(), LeaseStoreError> {
    expect_owner(lease, expected_owner)?;
    expect_counter(lease, expected_counter)?;
    if let Some(checkpoint) = update.checkpoint {
        lease.checkpoint = checkpoint;
        lease.owner_switches_since_checkpoint = 0;
    }
    lease.pending_checkpoint = update.pending_checkpoint;
    lease.pending_checkpoint_state = update.pending_checkpoint_state.clone();
    bump(lease);
    Ok(())
}

/// Lineage: the lease must exist (checked by the caller); replaces the children, sets the hash
/// range when given. The counter is not bumped (it is not an ownership change).
pub(crate) fn lineage(
    lease: &mut Lease,
    child_shard_ids: &[ShardId],
    hash_key_range: Option<HashKeyRange>,
) {
    lease.child_shard_ids = child_shard_ids.to_vec();
    if hash_key_range.is_some() {
        lease.hash_key_range = hash_key_range;
    }
}
