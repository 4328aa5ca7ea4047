//! Leases: who processes a shard, and how far it got.
//!
//! The fields mirror the Java KCL's DynamoDB lease table (`leaseKey`, `leaseOwner`,
//! `leaseCounter`, `checkpoint`, ...), so a table could be shared with it.

use crate::kinesis::{HashKeyRange, SequenceNumber, ShardId};
use std::fmt;

/// The value of a checkpoint: a sentinel or a sequence number.
///
/// The variant order is the Java KCL's sort order:
/// `AT_TIMESTAMP < TRIM_HORIZON < LATEST < any sequence number < SHARD_END`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckpointValue {
    /// Start at the initial timestamp of the application.
    AtTimestamp,
    /// Start at the oldest retained record.
    TrimHorizon,
    /// Start at the tip of the shard.
    Latest,
    /// Processed up to and including this sequence number.
    Sequence(SequenceNumber),
    /// The shard was processed to its end.
    ShardEnd,
}

impl CheckpointValue {
    /// The string stored in the lease table's `checkpoint` attribute.
    pub fn as_table_string(&self) -> String {
        match self {
            CheckpointValue::AtTimestamp => "AT_TIMESTAMP".to_owned(),
            CheckpointValue::TrimHorizon => "TRIM_HORIZON".to_owned(),
            CheckpointValue::Latest => "LATEST".to_owned(),
            CheckpointValue::Sequence(sequence) => sequence.to_string(),
            CheckpointValue::ShardEnd => "SHARD_END".to_owned(),
        }
    }

    /// Parses the lease table's `checkpoint` attribute.
    pub fn from_table_string(text: &str) -> Option<Self> {
        Some(match text {
            "AT_TIMESTAMP" => CheckpointValue::AtTimestamp,
            "TRIM_HORIZON" => CheckpointValue::TrimHorizon,
            "LATEST" => CheckpointValue::Latest,
            "SHARD_END" => CheckpointValue::ShardEnd,
            other => CheckpointValue::Sequence(other.parse().ok()?),
        })
    }
}

/// A checkpoint position: a value plus the sub-sequence number inside a KPL-aggregated record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtendedSequenceNumber {
    /// The sequence number or sentinel.
    pub value: CheckpointValue,
    /// The index of the user record inside an aggregated record; 0 for plain records.
    pub sub_sequence_number: u64,
}

impl ExtendedSequenceNumber {
    /// `TRIM_HORIZON`.
    pub const TRIM_HORIZON: Self = Self::sentinel(CheckpointValue::TrimHorizon);
    /// `LATEST`.
    pub const LATEST: Self = Self::sentinel(CheckpointValue::Latest);
    /// `AT_TIMESTAMP`.
    pub const AT_TIMESTAMP: Self = Self::sentinel(CheckpointValue::AtTimestamp);
    /// `SHARD_END`.
    pub const SHARD_END: Self = Self::sentinel(CheckpointValue::ShardEnd);

    const fn sentinel(value: CheckpointValue) -> Self {
        ExtendedSequenceNumber {
            value,
            sub_sequence_number: 0,
        }
    }

    /// A position at a record's sequence number and sub-sequence number.
    pub const fn new(sequence_number: SequenceNumber, sub_sequence_number: u64) -> Self {
        ExtendedSequenceNumber {
            value: CheckpointValue::Sequence(sequence_number),
            sub_sequence_number,
        }
    }

    /// The sequence number, if this is not a sentinel.
    pub fn sequence_number(&self) -> Option<SequenceNumber> {
        match self.value {
            CheckpointValue::Sequence(sequence) => Some(sequence),
            _ => None,
        }
    }

    /// Whether this is the `SHARD_END` sentinel.
    pub fn is_shard_end(&self) -> bool {
        self.value == CheckpointValue::ShardEnd
    }
}

impl fmt::Display for ExtendedSequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            CheckpointValue::Sequence(_) if self.sub_sequence_number != 0 => write!(
                f,
                "{}/{}",
                self.value.as_table_string(),
                self.sub_sequence_number
            ),
            _ => f.write_str(&self.value.as_table_string()),
        }
    }
}

/// One row of the lease table: the lease on one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `leaseKey`: the shard id.
    pub lease_key: ShardId,
    /// `leaseOwner`: the worker holding the lease; `None` when free.
    pub lease_owner: Option<String>,
    /// `leaseCounter`: bumped by every renew, take, evict and checkpoint; the fencing token.
    pub lease_counter: u64,
    /// `checkpoint` + `checkpointSubSequenceNumber`.
    pub checkpoint: ExtendedSequenceNumber,
    /// `pendingCheckpoint` + `pendingCheckpointSubSequenceNumber` of a two-phase checkpoint.
    pub pending_checkpoint: Option<ExtendedSequenceNumber>,
    /// `pendingCheckpointState`: opaque application state saved with the pending checkpoint.
    pub pending_checkpoint_state: Option<Vec<u8>>,
    /// `ownerSwitchesSinceCheckpoint`.
    pub owner_switches_since_checkpoint: u64,
    /// `parentShardId` (a set despite the name): the shard's parents.
    pub parent_shard_ids: Vec<ShardId>,
    /// `childShardIds`: filled in when the shard has ended.
    pub child_shard_ids: Vec<ShardId>,
    /// `startingHashKey` / `endingHashKey`.
    pub hash_key_range: Option<HashKeyRange>,
}

impl Lease {
    /// A new, unowned lease on `shard_id` starting at `checkpoint`.
    pub fn new(shard_id: ShardId, checkpoint: ExtendedSequenceNumber) -> Self {
        Lease {
            lease_key: shard_id,
            lease_owner: None,
            lease_counter: 0,
            checkpoint,
            pending_checkpoint: None,
            pending_checkpoint_state: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: Vec::new(),
            child_shard_ids: Vec::new(),
            hash_key_range: None,
        }
    }

    /// Whether the shard has been processed to its end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint.is_shard_end()
    }

    /// Whether `worker_id` is the owner.
    pub fn is_owned_by(&self, worker_id: &str) -> bool {
        self.lease_owner.as_deref() == Some(worker_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_sort_as_in_the_java_kcl() {
        let sequence = ExtendedSequenceNumber::new(SequenceNumber::from_u128(5), 0);
        let order = [
            ExtendedSequenceNumber::AT_TIMESTAMP,
            ExtendedSequenceNumber::TRIM_HORIZON,
            ExtendedSequenceNumber::LATEST,
            sequence,
            ExtendedSequenceNumber::new(SequenceNumber::from_u128(5), 1),
            ExtendedSequenceNumber::new(SequenceNumber::from_u128(6), 0),
            ExtendedSequenceNumber::SHARD_END,
        ];
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn checkpoint_strings_round_trip() {
        for value in [
            CheckpointValue::AtTimestamp,
            CheckpointValue::TrimHorizon,
            CheckpointValue::Latest,
            CheckpointValue::ShardEnd,
            CheckpointValue::Sequence(SequenceNumber::from_u128(42)),
        ] {
            assert_eq!(
                CheckpointValue::from_table_string(&value.as_table_string()),
                Some(value)
            );
        }
        assert_eq!(CheckpointValue::from_table_string("garbage"), None);
    }
}
