//! The Kinesis wire shapes (botocore member names) that both sides of the HTTP protocol use:
//! every HTTP stream client serializes the requests and deserializes the responses, the bundled
//! server does the opposite, so the two cannot drift apart.
//!
//! Requests are leniently typed (every member optional, integers as `i64`, enums as strings):
//! a client fills in what it sends, a server validates what it received and words range and enum
//! violations as AWS does. Responses carry what a server writes; members a server may leave out
//! default on decoding. Conversions from and to the data model ([`Shard`], [`Record`], ...) live
//! here too.

mod values;

pub use values::{Blob, Timestamp};

use crate::kinesis::{
    ChildShard, ConsumerDescription, EpochMillis, GetRecordsOutput, HashKeyRange, Record,
    SequenceNumber, SequenceNumberRange, Shard, ShardFilter, ShardId, StartingPosition,
    StreamSummary, SubscribeToShardEvent,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Shared members

/// `StreamModeDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    /// `PROVISIONED` or `ON_DEMAND`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode: Option<String>,
}

/// `EnhancedMetrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    /// The shard-level metrics enabled.
    #[serde(default)]
    pub shard_level_metrics: Vec<String>,
}

/// `HashKeyRange`: decimal strings on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireHashKeyRange {
    /// The first hash key of the range.
    #[serde(with = "values::decimal_u128")]
    pub starting_hash_key: u128,
    /// The last hash key of the range.
    #[serde(with = "values::decimal_u128")]
    pub ending_hash_key: u128,
}

impl From<HashKeyRange> for WireHashKeyRange {
    fn from(range: HashKeyRange) -> Self {
        WireHashKeyRange {
            starting_hash_key: range.starting_hash_key,
            ending_hash_key: range.ending_hash_key,
        }
    }
}

impl From<WireHashKeyRange> for HashKeyRange {
    fn from(range: WireHashKeyRange) -> Self {
        HashKeyRange::new(range.starting_hash_key, range.ending_hash_key)
    }
}

/// `SequenceNumberRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireSequenceNumberRange {
    /// The shard's first sequence number.
    pub starting_sequence_number: SequenceNumber,
    /// The last sequence number of a closed shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<SequenceNumber>,
}

/// `Shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireShard {
    /// The shard's id.
    pub shard_id: ShardId,
    /// The parent (after a split or a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<ShardId>,
    /// The other parent (after a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// The hash keys the shard owns.
    pub hash_key_range: WireHashKeyRange,
    /// The sequence numbers it has used.
    pub sequence_number_range: WireSequenceNumberRange,
}

impl From<Shard> for WireShard {
    fn from(shard: Shard) -> Self {
        WireShard {
            shard_id: shard.shard_id,
            parent_shard_id: shard.parent_shard_id,
            adjacent_parent_shard_id: shard.adjacent_parent_shard_id,
            hash_key_range: shard.hash_key_range.into(),
            sequence_number_range: WireSequenceNumberRange {
                starting_sequence_number: shard.sequence_number_range.starting_sequence_number,
                ending_sequence_number: shard.sequence_number_range.ending_sequence_number,
            },
        }
    }
}

impl From<WireShard> for Shard {
    fn from(shard: WireShard) -> Self {
        Shard {
            shard_id: shard.shard_id,
            parent_shard_id: shard.parent_shard_id,
            adjacent_parent_shard_id: shard.adjacent_parent_shard_id,
            hash_key_range: shard.hash_key_range.into(),
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: shard.sequence_number_range.starting_sequence_number,
                ending_sequence_number: shard.sequence_number_range.ending_sequence_number,
            },
        }
    }
}

/// `ChildShard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireChildShard {
    /// The child's id.
    pub shard_id: ShardId,
    /// Its parents.
    #[serde(default)]
    pub parent_shards: Vec<ShardId>,
    /// The hash keys it owns.
    pub hash_key_range: WireHashKeyRange,
}

impl From<ChildShard> for WireChildShard {
    fn from(child: ChildShard) -> Self {
        WireChildShard {
            shard_id: child.shard_id,
            parent_shards: child.parent_shards,
            hash_key_range: child.hash_key_range.into(),
        }
    }
}

impl From<WireChildShard> for ChildShard {
    fn from(child: WireChildShard) -> Self {
        ChildShard {
            shard_id: child.shard_id,
            parent_shards: child.parent_shards,
            hash_key_range: child.hash_key_range.into(),
        }
    }
}

/// A `Record` of `GetRecords` and `SubscribeToShardEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireRecord {
    /// The record's sequence number.
    pub sequence_number: SequenceNumber,
    /// When the service accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_arrival_timestamp: Option<Timestamp>,
    /// The payload.
    pub data: Blob,
    /// The producer's partition key.
    pub partition_key: Arc<str>,
}

impl From<Record> for WireRecord {
    fn from(record: Record) -> Self {
        WireRecord {
            sequence_number: record.sequence_number,
            approximate_arrival_timestamp: Some(Timestamp(record.approximate_arrival_timestamp)),
            data: Blob(record.data),
            partition_key: record.partition_key,
        }
    }
}

impl From<WireRecord> for Record {
    fn from(record: WireRecord) -> Self {
        Record {
            sequence_number: record.sequence_number,
            approximate_arrival_timestamp: record
                .approximate_arrival_timestamp
                .map(|timestamp| timestamp.0)
                .unwrap_or_default(),
            data: record.data.0,
            partition_key: record.partition_key,
            explicit_hash_key: None,
        }
    }
}

/// `StartingPosition` of `SubscribeToShard` (and, spread over three members, the position of
/// `GetShardIterator`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireStartingPosition {
    /// `TRIM_HORIZON`, `LATEST`, `AT_SEQUENCE_NUMBER`, `AFTER_SEQUENCE_NUMBER`, `AT_TIMESTAMP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The sequence number of the `*_SEQUENCE_NUMBER` types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// The time of `AT_TIMESTAMP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

impl From<StartingPosition> for WireStartingPosition {
    fn from(position: StartingPosition) -> Self {
        let (sequence_number, timestamp) = match position {
            StartingPosition::AtSequenceNumber(sequence)
            | StartingPosition::AfterSequenceNumber(sequence) => (Some(sequence.to_string()), None),
            StartingPosition::AtTimestamp(time) => (None, Some(Timestamp(time))),
            StartingPosition::TrimHorizon | StartingPosition::Latest => (None, None),
        };
        WireStartingPosition {
            r#type: Some(position.type_name().to_owned()),
            sequence_number,
            timestamp,
        }
    }
}

/// `ShardFilter` of `ListShards`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireShardFilter {
    /// `AFTER_SHARD_ID`, `AT_TRIM_HORIZON`, `FROM_TRIM_HORIZON`, `AT_LATEST`, `AT_TIMESTAMP`,
    /// `FROM_TIMESTAMP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The shard id of `AFTER_SHARD_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// The time of the timestamp types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

impl From<&ShardFilter> for WireShardFilter {
    fn from(filter: &ShardFilter) -> Self {
        let (kind, shard_id, timestamp) = match filter {
            ShardFilter::AfterShardId(shard_id) => {
                ("AFTER_SHARD_ID", Some(shard_id.as_str().to_owned()), None)
            }
            ShardFilter::AtTrimHorizon => ("AT_TRIM_HORIZON", None, None),
            ShardFilter::FromTrimHorizon => ("FROM_TRIM_HORIZON", None, None),
            ShardFilter::AtLatest => ("AT_LATEST", None, None),
            ShardFilter::AtTimestamp(time) => ("AT_TIMESTAMP", None, Some(Timestamp(*time))),
            ShardFilter::FromTimestamp(time) => ("FROM_TIMESTAMP", None, Some(Timestamp(*time))),
        };
        WireShardFilter {
            r#type: Some(kind.to_owned()),
            shard_id,
            timestamp,
        }
    }
}

/// A `Consumer` (`RegisterStreamConsumer`, `ListStreamConsumers`) or a `ConsumerDescription`
/// (`DescribeStreamConsumer`, which adds the stream's ARN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireConsumer {
    /// The consumer's name.
    pub consumer_name: String,
    /// The consumer's ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// `CREATING`, `ACTIVE` or `DELETING`.
    pub consumer_status: String,
    /// When it was registered.
    #[serde(default)]
    pub consumer_creation_timestamp: Timestamp,
    /// The stream's ARN (in a `ConsumerDescription` only).
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl WireConsumer {
    /// The consumer's description; `stream_arn` stands in when the answer does not name it.
    pub fn into_description(self, stream_arn: &str) -> ConsumerDescription {
        ConsumerDescription {
            consumer_name: self.consumer_name,
            consumer_arn: self.consumer_arn,
            consumer_status: self.consumer_status,
            consumer_creation_timestamp: self.consumer_creation_timestamp.0,
            stream_arn: self.stream_arn.unwrap_or_else(|| stream_arn.to_owned()),
        }
    }
}

impl From<ConsumerDescription> for WireConsumer {
    fn from(description: ConsumerDescription) -> Self {
        WireConsumer {
            consumer_name: description.consumer_name,
            consumer_arn: description.consumer_arn,
            consumer_status: description.consumer_status,
            consumer_creation_timestamp: Timestamp(description.consumer_creation_timestamp),
            stream_arn: Some(description.stream_arn),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// A request naming only a stream (`DescribeStreamSummary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamNameRequest {
    /// The stream's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Or its ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl StreamNameRequest {
    /// A request for the stream named `stream_name`.
    pub fn named(stream_name: &str) -> Self {
        StreamNameRequest {
            stream_name: Some(stream_name.to_owned()),
            stream_arn: None,
        }
    }
}

/// `StreamDescriptionSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireStreamDescriptionSummary {
    /// The stream's name.
    pub stream_name: String,
    /// The stream's ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// `CREATING`, `ACTIVE`, `UPDATING` or `DELETING`.
    pub stream_status: String,
    /// Provisioned or on-demand.
    #[serde(default)]
    pub stream_mode_details: StreamModeDetails,
    /// Retention in hours.
    #[serde(default)]
    pub retention_period_hours: u32,
    /// When the stream was created.
    #[serde(default)]
    pub stream_creation_timestamp: Timestamp,
    /// Enabled enhanced metrics.
    #[serde(default)]
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    /// `NONE` or `KMS`.
    #[serde(default)]
    pub encryption_type: String,
    /// The KMS key, when `EncryptionType` is `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Open shards.
    #[serde(default)]
    pub open_shard_count: u32,
    /// Registered enhanced fan-out consumers.
    #[serde(default)]
    pub consumer_count: u32,
    /// The warm throughput of an on-demand stream (accounts with a billing commitment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_throughput: Option<WireWarmThroughput>,
    /// The largest record the stream accepts, KiB.
    #[serde(
        default,
        rename = "MaxRecordSizeInKiB",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_record_size_in_kib: Option<u32>,
}

/// `WarmThroughput` of a stream (`DescribeStreamSummary`, `UpdateStreamWarmThroughput`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireWarmThroughput {
    /// The throughput the stream scales towards, MiB/s.
    #[serde(
        default,
        rename = "TargetMiBps",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_mibps: Option<u32>,
    /// The throughput the stream handles now, MiB/s.
    #[serde(
        default,
        rename = "CurrentMiBps",
        skip_serializing_if = "Option::is_none"
    )]
    pub current_mibps: Option<u32>,
}

/// `DescribeStreamSummary` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryResponse {
    /// The summary.
    pub stream_description_summary: WireStreamDescriptionSummary,
}

impl From<DescribeStreamSummaryResponse> for StreamSummary {
    fn from(response: DescribeStreamSummaryResponse) -> Self {
        let summary = response.stream_description_summary;
        StreamSummary {
            stream_name: summary.stream_name,
            stream_arn: summary.stream_arn,
            stream_status: summary.stream_status,
            retention_period_hours: summary.retention_period_hours,
            open_shard_count: summary.open_shard_count,
            consumer_count: summary.consumer_count,
            stream_creation_timestamp: summary.stream_creation_timestamp.0,
        }
    }
}

/// `ListShards` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsRequest {
    /// The stream's name (not with `next_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Or its ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// The previous page's token (alone: it names the stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// List shards after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_shard_id: Option<String>,
    /// The page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
    /// The stream's creation time, to tell same-named streams apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
    /// Which shards to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_filter: Option<WireShardFilter>,
}

impl ListShardsRequest {
    /// The first page of `stream_name`'s shards, filtered by `filter`.
    pub fn first_page(stream_name: &str, filter: Option<&ShardFilter>) -> Self {
        ListShardsRequest {
            stream_name: Some(stream_name.to_owned()),
            shard_filter: filter.map(WireShardFilter::from),
            ..ListShardsRequest::default()
        }
    }

    /// The page after the one that ended with `next_token`.
    pub fn next_page(next_token: String) -> Self {
        ListShardsRequest {
            next_token: Some(next_token),
            ..ListShardsRequest::default()
        }
    }
}

/// `ListShards` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsResponse {
    /// This page's shards.
    #[serde(default)]
    pub shards: Vec<WireShard>,
    /// The token of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `GetShardIterator` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorRequest {
    /// The stream's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Or its ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// The shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// Where to start (`TRIM_HORIZON`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_iterator_type: Option<String>,
    /// The sequence number of the `*_SEQUENCE_NUMBER` types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_sequence_number: Option<String>,
    /// The time of `AT_TIMESTAMP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

impl GetShardIteratorRequest {
    /// An iterator request for `shard_id` of `stream_name` at `position`.
    pub fn new(stream_name: &str, shard_id: &ShardId, position: StartingPosition) -> Self {
        let position = WireStartingPosition::from(position);
        GetShardIteratorRequest {
            stream_name: Some(stream_name.to_owned()),
            stream_arn: None,
            shard_id: Some(shard_id.as_str().to_owned()),
            shard_iterator_type: position.r#type,
            starting_sequence_number: position.sequence_number,
            timestamp: position.timestamp,
        }
    }
}

/// `GetShardIterator` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorResponse {
    /// The iterator.
    pub shard_iterator: String,
}

/// `GetRecords` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsRequest {
    /// Where to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_iterator: Option<String>,
    /// At most this many records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The stream's ARN (optional, checked against the iterator's stream).
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `GetRecords` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsResponse {
    /// The records.
    #[serde(default)]
    pub records: Vec<WireRecord>,
    /// Where to read next; absent at the end of a closed shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_shard_iterator: Option<String>,
    /// How far behind the tip the read is.
    #[serde(default)]
    pub millis_behind_latest: u64,
    /// At the end of a closed shard: its children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_shards: Vec<WireChildShard>,
}

impl From<GetRecordsOutput> for GetRecordsResponse {
    fn from(output: GetRecordsOutput) -> Self {
        GetRecordsResponse {
            records: output.records.into_iter().map(WireRecord::from).collect(),
            next_shard_iterator: output.next_shard_iterator,
            millis_behind_latest: output.millis_behind_latest,
            child_shards: output
                .child_shards
                .into_iter()
                .map(WireChildShard::from)
                .collect(),
        }
    }
}

impl From<GetRecordsResponse> for GetRecordsOutput {
    fn from(response: GetRecordsResponse) -> Self {
        GetRecordsOutput {
            records: response.records.into_iter().map(Record::from).collect(),
            next_shard_iterator: response.next_shard_iterator,
            millis_behind_latest: response.millis_behind_latest,
            child_shards: response
                .child_shards
                .into_iter()
                .map(ChildShard::from)
                .collect(),
        }
    }
}

/// `RegisterStreamConsumer` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerRequest {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// The consumer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
}

/// `RegisterStreamConsumer` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerResponse {
    /// The consumer.
    pub consumer: WireConsumer,
}

/// `DescribeStreamConsumer` / `DeregisterStreamConsumer` request: a consumer by ARN, or by
/// stream ARN and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerRefRequest {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// The consumer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    /// Or the consumer's ARN.
    #[serde(
        rename = "ConsumerARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_arn: Option<String>,
}

/// `DescribeStreamConsumer` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerResponse {
    /// The consumer, with its stream's ARN.
    pub consumer_description: WireConsumer,
}

impl From<ConsumerDescription> for DescribeStreamConsumerResponse {
    fn from(description: ConsumerDescription) -> Self {
        DescribeStreamConsumerResponse {
            consumer_description: description.into(),
        }
    }
}

/// `SubscribeToShard` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardRequest {
    /// The registered consumer.
    #[serde(
        rename = "ConsumerARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_arn: Option<String>,
    /// The shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// Where to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position: Option<WireStartingPosition>,
}

/// The payload of a `SubscribeToShardEvent` message of the event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEventPayload {
    /// The records.
    #[serde(default)]
    pub records: Vec<WireRecord>,
    /// Where a new subscription continues; absent at the end of a closed shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<SequenceNumber>,
    /// How far behind the tip the delivery is.
    #[serde(default)]
    pub millis_behind_latest: u64,
    /// At the end of a closed shard: its children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_shards: Vec<WireChildShard>,
}

impl From<SubscribeToShardEvent> for SubscribeToShardEventPayload {
    fn from(event: SubscribeToShardEvent) -> Self {
        SubscribeToShardEventPayload {
            records: event.records.into_iter().map(WireRecord::from).collect(),
            continuation_sequence_number: event.continuation_sequence_number,
            millis_behind_latest: event.millis_behind_latest,
            child_shards: event
                .child_shards
                .into_iter()
                .map(WireChildShard::from)
                .collect(),
        }
    }
}

impl From<SubscribeToShardEventPayload> for SubscribeToShardEvent {
    fn from(payload: SubscribeToShardEventPayload) -> Self {
        SubscribeToShardEvent {
            records: payload.records.into_iter().map(Record::from).collect(),
            continuation_sequence_number: payload.continuation_sequence_number,
            millis_behind_latest: payload.millis_behind_latest,
            child_shards: payload
                .child_shards
                .into_iter()
                .map(ChildShard::from)
                .collect(),
        }
    }
}

/// The time a timestamp member carries.
impl From<Timestamp> for EpochMillis {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(sequence: u128, millis: i64, data: &'static [u8], key: &str) -> Record {
        Record {
            sequence_number: SequenceNumber::from_u128(sequence),
            approximate_arrival_timestamp: EpochMillis(millis),
            data: Bytes::from_static(data),
            partition_key: Arc::from(key),
            explicit_hash_key: None,
        }
    }

    #[test]
    fn get_records_round_trips_through_json_with_aws_member_names() {
        let output = GetRecordsOutput {
            records: vec![
                record(7, 1_506_440_188_749, b"hello\x00", "k-1"),
                record(8, 1_506_440_188_750, b"", "k-\"2\""),
            ],
            next_shard_iterator: None,
            millis_behind_latest: 12,
            child_shards: vec![ChildShard {
                shard_id: ShardId::from_index(3),
                parent_shards: vec![ShardId::from_index(1)],
                hash_key_range: HashKeyRange::new(0, u128::MAX),
            }],
        };
        let json = serde_json::to_value(GetRecordsResponse::from(output.clone())).expect("json");
        assert_eq!(json["Records"][0]["Data"], "aGVsbG8A");
        assert_eq!(json["Records"][0]["SequenceNumber"], "7");
        assert_eq!(
            json["Records"][0]["ApproximateArrivalTimestamp"],
            1_506_440_188.749
        );
        assert_eq!(
            json["ChildShards"][0]["HashKeyRange"]["EndingHashKey"],
            u128::MAX.to_string()
        );
        assert!(json.get("NextShardIterator").is_none());
        let decoded: GetRecordsResponse = serde_json::from_value(json).expect("decodes");
        assert_eq!(GetRecordsOutput::from(decoded), output);
    }

    #[test]
    fn requests_leave_out_what_they_do_not_set() {
        let first = ListShardsRequest::first_page("s", Some(&ShardFilter::AtLatest));
        assert_eq!(
            serde_json::to_string(&first).expect("json"),
            r#"{"StreamName":"s","ShardFilter":{"Type":"AT_LATEST"}}"#
        );
        let next = ListShardsRequest::next_page("token".to_owned());
        assert_eq!(
            serde_json::to_string(&next).expect("json"),
            r#"{"NextToken":"token"}"#
        );
        let cases = [
            (
                StartingPosition::TrimHorizon,
                r#"{"StreamName":"s","ShardId":"shardId-000000000001","ShardIteratorType":"TRIM_HORIZON"}"#,
            ),
            (
                StartingPosition::AfterSequenceNumber(SequenceNumber::from_u128(42)),
                r#"{"StreamName":"s","ShardId":"shardId-000000000001","ShardIteratorType":"AFTER_SEQUENCE_NUMBER","StartingSequenceNumber":"42"}"#,
            ),
            (
                StartingPosition::AtTimestamp(EpochMillis(1_500)),
                r#"{"StreamName":"s","ShardId":"shardId-000000000001","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5}"#,
            ),
        ];
        for (position, expected) in cases {
            let request = GetShardIteratorRequest::new("s", &ShardId::from_index(1), position);
            assert_eq!(serde_json::to_string(&request).expect("json"), expected);
        }
    }

    #[test]
    fn responses_default_what_a_server_leaves_out() {
        let summary: DescribeStreamSummaryResponse = serde_json::from_str(
            r#"{"StreamDescriptionSummary":{"StreamName":"s","StreamARN":"arn","StreamStatus":"ACTIVE"}}"#,
        )
        .expect("decodes");
        let summary = StreamSummary::from(summary);
        assert_eq!(summary.open_shard_count, 0);
        assert_eq!(summary.stream_creation_timestamp, EpochMillis(0));
        let bad_key =
            r#"{"ShardId":"a","HashKeyRange":{"StartingHashKey":"x","EndingHashKey":"1"}}"#;
        let error = serde_json::from_str::<WireChildShard>(bad_key).expect_err("not decimal");
        assert!(error.to_string().contains("invalid hash key"), "{error}");
    }
}
