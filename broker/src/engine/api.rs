//! Typed requests and responses of every operation, shaped like the botocore model.
//!
//! Field names are the botocore member names in snake case, so a wire layer maps JSON/CBOR
//! members 1:1 (`StreamName` → `stream_name`). Where Kinesis accepts `StreamName` or
//! `StreamARN`, the request carries a [`StreamRef`]; [`StreamRef::from_parts`] builds it from
//! the two optional wire members with Kinesis's checks.

use bytes::Bytes;
use kcl_core::kinesis::{
    EpochMillis, KinesisError, KinesisErrorKind, Shard, ShardFilter, ShardId, StartingPosition,
};
use std::collections::BTreeMap;

/// How a request names its stream: by name or by ARN
/// (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamRef {
    /// `StreamName`.
    Name(String),
    /// `StreamARN`.
    Arn(String),
}

impl StreamRef {
    /// A reference by name.
    pub fn name(name: impl Into<String>) -> Self {
        StreamRef::Name(name.into())
    }

    /// A reference by ARN.
    pub fn arn(arn: impl Into<String>) -> Self {
        StreamRef::Arn(arn.into())
    }

    /// Builds the reference from the optional `StreamName` and `StreamARN` members of a
    /// request. Exactly one is needed; if both are given the ARN must name the same stream.
    pub fn from_parts(
        stream_name: Option<String>,
        stream_arn: Option<String>,
    ) -> Result<StreamRef, KinesisError> {
        match (stream_name, stream_arn) {
            (Some(name), None) => Ok(StreamRef::Name(name)),
            (None, Some(arn)) => Ok(StreamRef::Arn(arn)),
            (Some(name), Some(arn)) => {
                let arn_names_stream = arn
                    .rsplit_once(":stream/")
                    .is_some_and(|(_, arn_name)| arn_name == name);
                if arn_names_stream {
                    Ok(StreamRef::Arn(arn))
                } else {
                    Err(KinesisError::new(
                        KinesisErrorKind::InvalidArgument,
                        format!(
                            "StreamARN {arn} and StreamName {name} do not refer to the same stream."
                        ),
                    ))
                }
            }
            (None, None) => Err(KinesisError::new(
                KinesisErrorKind::InvalidArgument,
                "Either StreamName or StreamARN should be provided.",
            )),
        }
    }
}

impl From<&str> for StreamRef {
    /// A string starting with `arn:` is an ARN, anything else a name.
    fn from(text: &str) -> Self {
        if text.starts_with("arn:") {
            StreamRef::Arn(text.to_owned())
        } else {
            StreamRef::Name(text.to_owned())
        }
    }
}

/// `StreamStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// Being created (only with a configured create delay).
    Creating,
    /// Being deleted (only with a configured delete delay).
    Deleting,
    /// Ready for reads and writes.
    Active,
    /// Being resharded (never observed: resharding is instant here).
    Updating,
}

impl StreamStatus {
    /// The wire name (`ACTIVE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Deleting => "DELETING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
        }
    }
}

/// `StreamModeDetails.StreamMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StreamMode {
    /// Shards are managed by the user (the default).
    #[default]
    Provisioned,
    /// Capacity is managed by the service: split, merge and `UpdateShardCount` are rejected.
    OnDemand,
}

impl StreamMode {
    /// The wire name (`PROVISIONED` / `ON_DEMAND`).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<StreamMode> {
        match text {
            "PROVISIONED" => Some(StreamMode::Provisioned),
            "ON_DEMAND" => Some(StreamMode::OnDemand),
            _ => None,
        }
    }
}

/// `CreateStream` input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateStreamInput {
    /// `StreamName`.
    pub stream_name: String,
    /// `ShardCount` (required for `PROVISIONED`; defaults to the on-demand start for `ON_DEMAND`).
    pub shard_count: Option<u32>,
    /// `StreamModeDetails.StreamMode`.
    pub stream_mode: Option<StreamMode>,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
}

/// `DeleteStream` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteStreamInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `EnforceConsumerDeletion`: delete even with registered consumers.
    pub enforce_consumer_deletion: bool,
}

/// `DescribeStream` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeStreamInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `Limit` (1–10000, default 100; at most 100 shards are returned).
    pub limit: Option<u32>,
    /// `ExclusiveStartShardId`.
    pub exclusive_start_shard_id: Option<ShardId>,
}

/// `StreamDescription`, the answer of `DescribeStream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDescription {
    /// `StreamName`.
    pub stream_name: String,
    /// `StreamARN`.
    pub stream_arn: String,
    /// `StreamStatus`.
    pub stream_status: StreamStatus,
    /// `StreamModeDetails.StreamMode`.
    pub stream_mode: StreamMode,
    /// `Shards` (one page).
    pub shards: Vec<Shard>,
    /// `HasMoreShards`.
    pub has_more_shards: bool,
    /// `RetentionPeriodHours`.
    pub retention_period_hours: u32,
    /// `StreamCreationTimestamp`.
    pub stream_creation_timestamp: EpochMillis,
    /// `EnhancedMonitoring[0].ShardLevelMetrics` (see `EnableEnhancedMonitoring`).
    pub shard_level_metrics: Vec<String>,
    /// `EncryptionType` (`NONE`, or `KMS` after `StartStreamEncryption`).
    pub encryption_type: String,
    /// `KeyId` (present with `KMS`).
    pub key_id: Option<String>,
}

/// `StreamDescriptionSummary`, the answer of `DescribeStreamSummary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDescriptionSummary {
    /// `StreamName`.
    pub stream_name: String,
    /// `StreamARN`.
    pub stream_arn: String,
    /// `StreamStatus`.
    pub stream_status: StreamStatus,
    /// `StreamModeDetails.StreamMode`.
    pub stream_mode: StreamMode,
    /// `RetentionPeriodHours`.
    pub retention_period_hours: u32,
    /// `StreamCreationTimestamp`.
    pub stream_creation_timestamp: EpochMillis,
    /// `EnhancedMonitoring[0].ShardLevelMetrics` (see `EnableEnhancedMonitoring`).
    pub shard_level_metrics: Vec<String>,
    /// `EncryptionType` (`NONE`, or `KMS` after `StartStreamEncryption`).
    pub encryption_type: String,
    /// `KeyId` (present with `KMS`).
    pub key_id: Option<String>,
    /// `OpenShardCount`.
    pub open_shard_count: u32,
    /// `ConsumerCount`.
    pub consumer_count: u32,
    /// `WarmThroughput` (on-demand streams of an account with a billing commitment, after
    /// `UpdateStreamWarmThroughput`).
    pub warm_throughput: Option<super::account::WarmThroughput>,
    /// `MaxRecordSizeInKiB` (1024 unless changed by `UpdateMaxRecordSize`).
    pub max_record_size_kib: u32,
}

impl From<StreamDescriptionSummary> for kcl_core::kinesis::StreamSummary {
    fn from(summary: StreamDescriptionSummary) -> Self {
        kcl_core::kinesis::StreamSummary {
            stream_name: summary.stream_name,
            stream_arn: summary.stream_arn,
            stream_status: summary.stream_status.as_str().to_owned(),
            retention_period_hours: summary.retention_period_hours,
            open_shard_count: summary.open_shard_count,
            consumer_count: summary.consumer_count,
            stream_creation_timestamp: summary.stream_creation_timestamp,
        }
    }
}

/// `ListStreams` input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListStreamsInput {
    /// `Limit` (1–10000, default 100; at most 100 names are returned).
    pub limit: Option<u32>,
    /// `ExclusiveStartStreamName`.
    pub exclusive_start_stream_name: Option<String>,
    /// `NextToken` from a previous page.
    pub next_token: Option<String>,
}

/// One entry of `ListStreams.StreamSummaries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummaryEntry {
    /// `StreamName`.
    pub stream_name: String,
    /// `StreamARN`.
    pub stream_arn: String,
    /// `StreamStatus`.
    pub stream_status: StreamStatus,
    /// `StreamModeDetails.StreamMode`.
    pub stream_mode: StreamMode,
    /// `StreamCreationTimestamp`.
    pub stream_creation_timestamp: EpochMillis,
}

/// `ListStreams` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamsOutput {
    /// `StreamNames`.
    pub stream_names: Vec<String>,
    /// `HasMoreStreams`.
    pub has_more_streams: bool,
    /// `NextToken`, present when there are more streams.
    pub next_token: Option<String>,
    /// `StreamSummaries`.
    pub stream_summaries: Vec<StreamSummaryEntry>,
}

/// `ListShards` input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListShardsInput {
    /// `StreamName` / `StreamARN` (absent when `next_token` is given).
    pub stream: Option<StreamRef>,
    /// `NextToken` from a previous page.
    pub next_token: Option<String>,
    /// `ExclusiveStartShardId`.
    pub exclusive_start_shard_id: Option<ShardId>,
    /// `MaxResults` (1–10000, default and cap 1000).
    pub max_results: Option<u32>,
    /// `StreamCreationTimestamp` (accepted; it distinguishes streams of the same name).
    pub stream_creation_timestamp: Option<EpochMillis>,
    /// `ShardFilter`.
    pub shard_filter: Option<ShardFilter>,
}

/// `ListShards` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListShardsOutput {
    /// `Shards`.
    pub shards: Vec<Shard>,
    /// `NextToken`, present when there are more shards.
    pub next_token: Option<String>,
}

/// `PutRecord` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `Data`.
    pub data: Bytes,
    /// `PartitionKey`.
    pub partition_key: String,
    /// `ExplicitHashKey` as given (decimal).
    pub explicit_hash_key: Option<String>,
    /// `SequenceNumberForOrdering` as given (decimal).
    pub sequence_number_for_ordering: Option<String>,
}

/// `PutRecord` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordOutput {
    /// `ShardId`.
    pub shard_id: ShardId,
    /// `SequenceNumber`.
    pub sequence_number: kcl_core::kinesis::SequenceNumber,
    /// `EncryptionType`: `KMS` while `StartStreamEncryption` is in effect (nothing is really
    /// encrypted), else `NONE`.
    pub encryption_type: String,
}

/// One entry of `PutRecords.Records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsRequestEntry {
    /// `Data`.
    pub data: Bytes,
    /// `PartitionKey`.
    pub partition_key: String,
    /// `ExplicitHashKey` as given (decimal).
    pub explicit_hash_key: Option<String>,
}

/// `PutRecords` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `Records` (1–500).
    pub records: Vec<PutRecordsRequestEntry>,
}

/// One entry of `PutRecords` output, in the order of the request's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsResultEntry {
    /// `SequenceNumber` of an accepted record.
    pub sequence_number: Option<kcl_core::kinesis::SequenceNumber>,
    /// `ShardId` of an accepted record.
    pub shard_id: Option<ShardId>,
    /// `ErrorCode` of a failed record (`ProvisionedThroughputExceededException` or
    /// `InternalFailure`).
    pub error_code: Option<String>,
    /// `ErrorMessage` of a failed record.
    pub error_message: Option<String>,
}

impl PutRecordsResultEntry {
    /// Whether the record was accepted.
    pub fn is_success(&self) -> bool {
        self.error_code.is_none()
    }
}

/// `PutRecords` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsOutput {
    /// `FailedRecordCount`.
    pub failed_record_count: u32,
    /// `Records`, one per request record, in order.
    pub records: Vec<PutRecordsResultEntry>,
    /// `EncryptionType`: `KMS` while `StartStreamEncryption` is in effect (nothing is really
    /// encrypted), else `NONE`.
    pub encryption_type: String,
}

/// `GetShardIterator` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetShardIteratorInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `ShardId`.
    pub shard_id: ShardId,
    /// `ShardIteratorType` with its `StartingSequenceNumber` / `Timestamp`.
    pub position: StartingPosition,
}

/// `GetShardIterator` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetShardIteratorOutput {
    /// `ShardIterator`.
    pub shard_iterator: String,
}

/// `GetRecords` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordsInput {
    /// `ShardIterator`.
    pub shard_iterator: String,
    /// `Limit` (1–10000, default 10000).
    pub limit: Option<u32>,
    /// `StreamARN` (optional; if given it must name the iterator's stream).
    pub stream_arn: Option<String>,
}

/// `SplitShard` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitShardInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `ShardToSplit`.
    pub shard_to_split: ShardId,
    /// `NewStartingHashKey` as given (decimal): the first key of the second child.
    pub new_starting_hash_key: String,
}

/// `MergeShards` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeShardsInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `ShardToMerge`.
    pub shard_to_merge: ShardId,
    /// `AdjacentShardToMerge`.
    pub adjacent_shard_to_merge: ShardId,
}

/// `UpdateShardCount` input (`ScalingType` must be `UNIFORM_SCALING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateShardCountInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `TargetShardCount`.
    pub target_shard_count: u32,
    /// `ScalingType` as given.
    pub scaling_type: String,
}

/// `UpdateShardCount` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateShardCountOutput {
    /// `StreamName`.
    pub stream_name: String,
    /// `CurrentShardCount` (open shards before the call).
    pub current_shard_count: u32,
    /// `TargetShardCount`.
    pub target_shard_count: u32,
    /// `StreamARN`.
    pub stream_arn: String,
}

/// `IncreaseStreamRetentionPeriod` / `DecreaseStreamRetentionPeriod` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPeriodInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `RetentionPeriodHours`.
    pub retention_period_hours: u32,
}

/// `UpdateStreamMode` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStreamModeInput {
    /// `StreamARN`.
    pub stream_arn: String,
    /// `StreamModeDetails.StreamMode`.
    pub stream_mode: StreamMode,
}

/// `DescribeLimits` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLimitsOutput {
    /// `ShardLimit`.
    pub shard_limit: u32,
    /// `OpenShardCount`.
    pub open_shard_count: u32,
    /// `OnDemandStreamCount`.
    pub on_demand_stream_count: u32,
    /// `OnDemandStreamCountLimit`.
    pub on_demand_stream_count_limit: u32,
}

/// `AddTagsToStream` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTagsToStreamInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `Tags` (1–10 per call).
    pub tags: BTreeMap<String, String>,
}

/// `RemoveTagsFromStream` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveTagsFromStreamInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `TagKeys` (1–50).
    pub tag_keys: Vec<String>,
}

/// `ListTagsForStream` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTagsForStreamInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `ExclusiveStartTagKey`.
    pub exclusive_start_tag_key: Option<String>,
    /// `Limit` (1–50, default 50).
    pub limit: Option<u32>,
}

/// A `Tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `Key`.
    pub key: String,
    /// `Value`.
    pub value: String,
}

/// `ListTagsForStream` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTagsForStreamOutput {
    /// `Tags`, sorted by key.
    pub tags: Vec<Tag>,
    /// `HasMoreTags`.
    pub has_more_tags: bool,
}

/// `TagResource` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagResourceInput {
    /// `ResourceARN` (a stream ARN).
    pub resource_arn: String,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
}

/// `UntagResource` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntagResourceInput {
    /// `ResourceARN` (a stream ARN).
    pub resource_arn: String,
    /// `TagKeys`.
    pub tag_keys: Vec<String>,
}

/// `RegisterStreamConsumer` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterStreamConsumerInput {
    /// `StreamARN`.
    pub stream_arn: String,
    /// `ConsumerName`.
    pub consumer_name: String,
}

/// A `Consumer` as `RegisterStreamConsumer` and `ListStreamConsumers` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// `ConsumerName`.
    pub consumer_name: String,
    /// `ConsumerARN`.
    pub consumer_arn: String,
    /// `ConsumerStatus` (`ACTIVE` here).
    pub consumer_status: String,
    /// `ConsumerCreationTimestamp`.
    pub consumer_creation_timestamp: EpochMillis,
}

/// Names one consumer, as `DescribeStreamConsumer` and `DeregisterStreamConsumer` accept:
/// the consumer's ARN, or the stream's ARN and the consumer's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRef {
    /// `StreamARN`.
    pub stream_arn: Option<String>,
    /// `ConsumerName`.
    pub consumer_name: Option<String>,
    /// `ConsumerARN`.
    pub consumer_arn: Option<String>,
}

impl ConsumerRef {
    /// A reference by consumer ARN.
    pub fn by_arn(consumer_arn: impl Into<String>) -> Self {
        ConsumerRef {
            stream_arn: None,
            consumer_name: None,
            consumer_arn: Some(consumer_arn.into()),
        }
    }

    /// A reference by stream ARN and consumer name.
    pub fn by_name(stream_arn: impl Into<String>, consumer_name: impl Into<String>) -> Self {
        ConsumerRef {
            stream_arn: Some(stream_arn.into()),
            consumer_name: Some(consumer_name.into()),
            consumer_arn: None,
        }
    }
}

/// `ListStreamConsumers` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamConsumersInput {
    /// `StreamARN`.
    pub stream_arn: String,
    /// `NextToken` from a previous page.
    pub next_token: Option<String>,
    /// `MaxResults` (1–10000, default 100).
    pub max_results: Option<u32>,
    /// `StreamCreationTimestamp` (accepted, not needed here).
    pub stream_creation_timestamp: Option<EpochMillis>,
}

/// `ListStreamConsumers` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamConsumersOutput {
    /// `Consumers`.
    pub consumers: Vec<Consumer>,
    /// `NextToken`, present when there are more consumers.
    pub next_token: Option<String>,
}

/// `SubscribeToShard` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeToShardInput {
    /// `ConsumerARN`.
    pub consumer_arn: String,
    /// `ShardId`.
    pub shard_id: ShardId,
    /// `StartingPosition`.
    pub starting_position: StartingPosition,
}

/// `EncryptionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncryptionType {
    /// Records are not encrypted.
    #[default]
    None,
    /// Server-side encryption with a KMS key (recorded only: this broker does not encrypt).
    Kms,
}

impl EncryptionType {
    /// The wire name (`NONE` / `KMS`).
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionType::None => "NONE",
            EncryptionType::Kms => "KMS",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<EncryptionType> {
        match text {
            "NONE" => Some(EncryptionType::None),
            "KMS" => Some(EncryptionType::Kms),
            _ => None,
        }
    }
}

/// `StartStreamEncryption` / `StopStreamEncryption` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEncryptionInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `EncryptionType` (only `KMS` is accepted, as by Kinesis).
    pub encryption_type: EncryptionType,
    /// `KeyId`: a key id, key ARN, alias name or alias ARN (1–2048 characters; not checked
    /// against any KMS).
    pub key_id: String,
}

/// `EnableEnhancedMonitoring` / `DisableEnhancedMonitoring` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedMonitoringInput {
    /// `StreamName` / `StreamARN`.
    pub stream: StreamRef,
    /// `ShardLevelMetrics`: 1–7 metric names; `ALL` stands for every metric.
    pub shard_level_metrics: Vec<String>,
}

/// `EnhancedMonitoringOutput`, the answer of both enhanced-monitoring operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedMonitoringOutput {
    /// `StreamName`.
    pub stream_name: String,
    /// `StreamARN`.
    pub stream_arn: String,
    /// `CurrentShardLevelMetrics`: the metrics enabled before the call.
    pub current_shard_level_metrics: Vec<String>,
    /// `DesiredShardLevelMetrics`: the metrics enabled after the call.
    pub desired_shard_level_metrics: Vec<String>,
}

/// `PutResourcePolicy` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResourcePolicyInput {
    /// `ResourceARN`: a stream or consumer ARN.
    pub resource_arn: String,
    /// `Policy`: the JSON policy document, stored verbatim (never enforced here).
    pub policy: String,
}
