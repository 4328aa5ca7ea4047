//! The records a processor receives: a Kinesis record, or one user record of a KPL aggregate.

use bytes::Bytes;
use kcl_core::kinesis::{EpochMillis, HashKey, Record, SequenceNumber, partition_key_hash};
use kcl_core::lease::ExtendedSequenceNumber;
use std::sync::Arc;

/// One record delivered to a [`ShardRecordProcessor`](crate::processor::ShardRecordProcessor).
///
/// A plain Kinesis record has sub-sequence number 0 and `aggregated == false`. A user record
/// unpacked from a KPL aggregate shares the aggregate's sequence number and carries its index
/// inside it as the sub-sequence number, so checkpoints can land between user records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisClientRecord {
    /// The sequence number of the Kinesis record (shared by all user records of an aggregate).
    pub sequence_number: SequenceNumber,
    /// The index of the user record inside its aggregate; 0 for plain records.
    pub sub_sequence_number: u64,
    /// When the broker accepted the (outer) record.
    pub approximate_arrival_timestamp: EpochMillis,
    /// The partition key of the user record.
    pub partition_key: Arc<str>,
    /// The explicit hash key of the user record, if it had one.
    pub explicit_hash_key: Option<HashKey>,
    /// The payload.
    pub data: Bytes,
    /// Whether this record was unpacked from a KPL aggregate.
    pub aggregated: bool,
}

impl KinesisClientRecord {
    /// A plain (not aggregated) record.
    pub fn plain(record: Record) -> Self {
        KinesisClientRecord {
            sequence_number: record.sequence_number,
            sub_sequence_number: 0,
            approximate_arrival_timestamp: record.approximate_arrival_timestamp,
            partition_key: record.partition_key,
            explicit_hash_key: record.explicit_hash_key,
            data: record.data,
            aggregated: false,
        }
    }

    /// The checkpoint position of this record.
    pub fn extended_sequence_number(&self) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::new(self.sequence_number, self.sub_sequence_number)
    }

    /// The hash key that routed this record: the explicit hash key, else the MD5 of the
    /// partition key.
    pub fn hash_key(&self) -> HashKey {
        self.explicit_hash_key
            .unwrap_or_else(|| partition_key_hash(&self.partition_key))
    }
}
