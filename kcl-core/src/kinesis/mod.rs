//! The Kinesis Data Streams data model shared by the broker and the KCL side.
//!
//! Both the bundled broker and every [`StreamClient`](crate::stream_client::StreamClient)
//! speak in these types, so a worker cannot tell the in-process broker from real Kinesis.

mod error;
mod hash;
mod sequence;
mod shard;
pub mod wire;

pub use error::{KinesisError, KinesisErrorKind};
pub use hash::{HashKey, HashKeyRange, partition_key_hash};
pub use sequence::{ParseSequenceNumberError, SequenceNumber};
pub use shard::{ChildShard, SequenceNumberRange, Shard, ShardId};

use bytes::Bytes;
use std::sync::Arc;

/// Wall-clock time as milliseconds since the Unix epoch (what Kinesis timestamps carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EpochMillis(pub i64);

impl EpochMillis {
    /// The value as seconds with a fraction, as the Kinesis JSON protocol writes timestamps.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// One record of a shard, as stored by the broker and returned by `GetRecords`.
///
/// Records are immutable once acknowledged; `data` and `partition_key` are reference-counted so
/// handing a record to many readers never copies its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's sequence number, unique and increasing within its shard.
    pub sequence_number: SequenceNumber,
    /// When the broker accepted the record.
    pub approximate_arrival_timestamp: EpochMillis,
    /// The record's payload.
    pub data: Bytes,
    /// The partition key the producer gave.
    pub partition_key: Arc<str>,
    /// The explicit hash key the producer gave, if any (it overrides the partition key's hash).
    pub explicit_hash_key: Option<HashKey>,
}

/// Where to start reading a shard: the `ShardIteratorType` of `GetShardIterator` and the
/// `StartingPosition` of `SubscribeToShard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record still retained.
    TrimHorizon,
    /// Just after the most recent record: only records put from now on.
    Latest,
    /// At the record with this sequence number.
    AtSequenceNumber(SequenceNumber),
    /// Just after the record with this sequence number.
    AfterSequenceNumber(SequenceNumber),
    /// At the first record that arrived at or after this time.
    AtTimestamp(EpochMillis),
}

impl StartingPosition {
    /// The Kinesis name of this position's type (`TRIM_HORIZON`, `AT_SEQUENCE_NUMBER`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            StartingPosition::TrimHorizon => "TRIM_HORIZON",
            StartingPosition::Latest => "LATEST",
            StartingPosition::AtSequenceNumber(_) => "AT_SEQUENCE_NUMBER",
            StartingPosition::AfterSequenceNumber(_) => "AFTER_SEQUENCE_NUMBER",
            StartingPosition::AtTimestamp(_) => "AT_TIMESTAMP",
        }
    }
}

/// The `ShardFilter` of `ListShards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardFilter {
    /// Shards whose id sorts after the given one.
    AfterShardId(ShardId),
    /// Shards open at the trim horizon (not yet expired at the oldest retained point).
    AtTrimHorizon,
    /// All shards from the trim horizon on, including closed ones still retained.
    FromTrimHorizon,
    /// Only the currently open shards.
    AtLatest,
    /// Shards open at the given time.
    AtTimestamp(EpochMillis),
    /// Shards open at or after the given time.
    FromTimestamp(EpochMillis),
}

/// The answer to `GetRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordsOutput {
    /// The records read, in sequence-number order.
    pub records: Vec<Record>,
    /// Where to read next; `None` once a closed shard has been read to its end.
    pub next_shard_iterator: Option<String>,
    /// How far the last returned record is behind the tip of the shard.
    pub millis_behind_latest: u64,
    /// At the end of a closed shard: its children (non-empty exactly when the iterator is absent).
    pub child_shards: Vec<ChildShard>,
}

/// One event of an enhanced fan-out subscription (`SubscribeToShardEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeToShardEvent {
    /// Records delivered by this event, possibly none.
    pub records: Vec<Record>,
    /// Where a new subscription should continue from to miss nothing;
    /// `None` once a closed shard has been delivered to its end.
    pub continuation_sequence_number: Option<SequenceNumber>,
    /// How far the last delivered record is behind the tip of the shard.
    pub millis_behind_latest: u64,
    /// At the end of a closed shard: its children.
    pub child_shards: Vec<ChildShard>,
}

/// Summary facts about a stream (`DescribeStreamSummary`), as a worker needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's name.
    pub stream_name: String,
    /// The stream's ARN.
    pub stream_arn: String,
    /// `CREATING`, `ACTIVE`, `UPDATING` or `DELETING`.
    pub stream_status: String,
    /// Retention in hours.
    pub retention_period_hours: u32,
    /// Number of open shards.
    pub open_shard_count: u32,
    /// Number of registered enhanced fan-out consumers.
    pub consumer_count: u32,
    /// When the stream was created.
    pub stream_creation_timestamp: EpochMillis,
}

/// A registered enhanced fan-out consumer (`DescribeStreamConsumer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerDescription {
    /// The consumer's name, unique within the stream.
    pub consumer_name: String,
    /// The consumer's ARN, used to subscribe.
    pub consumer_arn: String,
    /// `CREATING`, `ACTIVE` or `DELETING`.
    pub consumer_status: String,
    /// When the consumer was registered.
    pub consumer_creation_timestamp: EpochMillis,
    /// The ARN of the stream the consumer reads.
    pub stream_arn: String,
}
