//! Wire shapes of every operation (botocore member names), and their conversion from and to the
//! engine's typed requests and responses. The shapes an HTTP stream client speaks too (stream
//! summary, shards, iterators, records, fan-out) are kcl-core's `kinesis::wire`, re-exported
//! here; the control-plane and producer operations only a server answers are defined here.
//!
//! Requests reach these shapes only after the validation table (`request_check`, driven by
//! `shapes`) has checked every member's type and constraints, so the conversions here only
//! convert: integers arrive as `i64` and enums as strings, already in range.

use super::codec::{Blob, Timestamp};
use super::error::ServerError;
use crate::engine::validate;
use crate::engine::{
    Consumer, ConsumerRef, CreateStreamInput, DescribeLimitsOutput, DescribeStreamInput,
    EncryptionType, EnhancedMonitoringInput, EnhancedMonitoringOutput, GetRecordsInput,
    GetShardIteratorInput, ListShardsInput, ListShardsOutput, ListStreamConsumersInput,
    ListStreamConsumersOutput, ListStreamsInput, ListStreamsOutput, ListTagsForStreamInput,
    ListTagsForStreamOutput, MergeShardsInput, PutRecordInput, PutRecordOutput, PutRecordsInput,
    PutRecordsOutput, PutRecordsRequestEntry, PutResourcePolicyInput, RegisterStreamConsumerInput,
    RemoveTagsFromStreamInput, RetentionPeriodInput, SplitShardInput, StreamDescription,
    StreamDescriptionSummary, StreamEncryptionInput, StreamMode, StreamRef, SubscribeToShardInput,
    Tag, TagResourceInput, UntagResourceInput, UpdateShardCountInput, UpdateShardCountOutput,
    UpdateStreamModeInput,
};
use kcl_core::kinesis::{GetRecordsOutput, SequenceNumber, ShardFilter, ShardId, StartingPosition};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt::Display;

// ---------------------------------------------------------------------------------------------
// Shapes shared with every HTTP client (kcl-core's `kinesis::wire`), under the names this
// module's dispatcher uses, and how the server turns those requests into engine inputs.

pub(crate) use kcl_core::kinesis::wire::{
    ConsumerRefRequest, DescribeStreamConsumerResponse, DescribeStreamSummaryResponse,
    EnhancedMetrics, GetRecordsRequest, GetRecordsResponse, GetShardIteratorRequest,
    GetShardIteratorResponse, ListShardsRequest, ListShardsResponse, RegisterStreamConsumerRequest,
    RegisterStreamConsumerResponse, StreamModeDetails, StreamNameRequest as StreamOnlyRequest,
    SubscribeToShardEventPayload as WireSubscribeToShardEvent, SubscribeToShardRequest,
    WireChildShard, WireConsumer, WireShard, WireShardFilter, WireStreamDescriptionSummary,
};

/// Turns a shared request shape (kcl-core's) into the engine's typed input, validating it; the
/// requests defined in this module have inherent `into_input` methods of the same shape.
pub(crate) trait IntoInput {
    /// The engine input.
    type Input;
    /// The engine input, or the violations as AWS words them.
    fn into_input(self) -> Result<Self::Input, ServerError>;
}

// ---------------------------------------------------------------------------------------------
// Validation helpers (the collector is the engine's [`Violations`])

/// A member the validation table has already required; absent only if the table was skipped,
/// which would be a bug of the server.
pub(crate) fn present<T>(value: Option<T>, field: &str) -> Result<T, ServerError> {
    value.ok_or_else(|| {
        ServerError::InternalFailure(format!("request member {field} missing after validation"))
    })
}

/// An integer member the table has already bounded, as the engine's `u32`. Members the model
/// leaves unbounded above (`ShardCount`, `RetentionPeriodHours`) saturate, so the engine
/// answers with its own limits.
fn count(value: Option<i64>) -> Option<u32> {
    value.map(|value| u32::try_from(value.max(0)).unwrap_or(u32::MAX))
}

fn stream_ref(name: Option<String>, arn: Option<String>) -> Result<StreamRef, ServerError> {
    Ok(StreamRef::from_parts(name, arn)?)
}

fn display<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn display_opt<T: Display, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared response shapes

fn mode_details(mode: StreamMode) -> StreamModeDetails {
    StreamModeDetails {
        stream_mode: Some(mode.as_str().to_owned()),
    }
}

fn parse_mode(details: Option<StreamModeDetails>) -> Option<StreamMode> {
    StreamMode::parse(&details?.stream_mode?)
}

/// `Tag`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTag {
    key: String,
    value: String,
}

impl From<Tag> for WireTag {
    fn from(tag: Tag) -> Self {
        WireTag {
            key: tag.key,
            value: tag.value,
        }
    }
}

/// An empty answer (`{}`).
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

// ---------------------------------------------------------------------------------------------
// Stream control

/// `CreateStream` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateStreamRequest {
    stream_name: Option<String>,
    shard_count: Option<i64>,
    stream_mode_details: Option<StreamModeDetails>,
    tags: Option<BTreeMap<String, String>>,
}

impl CreateStreamRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<CreateStreamInput, ServerError> {
        Ok(CreateStreamInput {
            stream_name: present(self.stream_name, "streamName")?,
            shard_count: count(self.shard_count),
            stream_mode: parse_mode(self.stream_mode_details),
            tags: self.tags.unwrap_or_default(),
        })
    }
}

/// A request naming only a stream (`DescribeStreamSummary`).
pub(crate) trait IntoStreamRef {
    /// The stream named.
    fn into_stream(self) -> Result<StreamRef, ServerError>;
}

impl IntoStreamRef for StreamOnlyRequest {
    fn into_stream(self) -> Result<StreamRef, ServerError> {
        stream_ref(self.stream_name, self.stream_arn)
    }
}

/// `DeleteStream` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteStreamRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    enforce_consumer_deletion: Option<bool>,
}

impl DeleteStreamRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<crate::engine::DeleteStreamInput, ServerError> {
        Ok(crate::engine::DeleteStreamInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            enforce_consumer_deletion: self.enforce_consumer_deletion.unwrap_or(false),
        })
    }
}

/// `DescribeStream` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    limit: Option<i64>,
    exclusive_start_shard_id: Option<String>,
}

impl DescribeStreamRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<DescribeStreamInput, ServerError> {
        Ok(DescribeStreamInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            limit: count(self.limit),
            exclusive_start_shard_id: self.exclusive_start_shard_id.map(ShardId::from),
        })
    }
}

/// `StreamDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireStreamDescription {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeDetails,
    shards: Vec<WireShard>,
    has_more_shards: bool,
    retention_period_hours: u32,
    stream_creation_timestamp: Timestamp,
    enhanced_monitoring: Vec<EnhancedMetrics>,
    encryption_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
}

/// `DescribeStream` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamResponse {
    stream_description: WireStreamDescription,
}

impl From<StreamDescription> for DescribeStreamResponse {
    fn from(description: StreamDescription) -> Self {
        DescribeStreamResponse {
            stream_description: WireStreamDescription {
                stream_name: description.stream_name,
                stream_arn: description.stream_arn,
                stream_status: description.stream_status.as_str(),
                stream_mode_details: mode_details(description.stream_mode),
                shards: description
                    .shards
                    .into_iter()
                    .map(WireShard::from)
                    .collect(),
                has_more_shards: description.has_more_shards,
                retention_period_hours: description.retention_period_hours,
                stream_creation_timestamp: Timestamp(description.stream_creation_timestamp),
                enhanced_monitoring: vec![EnhancedMetrics {
                    shard_level_metrics: description.shard_level_metrics,
                }],
                encryption_type: description.encryption_type,
                key_id: description.key_id,
            },
        }
    }
}

impl From<StreamDescriptionSummary> for DescribeStreamSummaryResponse {
    fn from(summary: StreamDescriptionSummary) -> Self {
        DescribeStreamSummaryResponse {
            stream_description_summary: WireStreamDescriptionSummary {
                stream_name: summary.stream_name,
                stream_arn: summary.stream_arn,
                stream_status: summary.stream_status.as_str().to_owned(),
                stream_mode_details: mode_details(summary.stream_mode),
                retention_period_hours: summary.retention_period_hours,
                stream_creation_timestamp: Timestamp(summary.stream_creation_timestamp),
                enhanced_monitoring: vec![EnhancedMetrics {
                    shard_level_metrics: summary.shard_level_metrics,
                }],
                encryption_type: summary.encryption_type,
                key_id: summary.key_id,
                open_shard_count: summary.open_shard_count,
                consumer_count: summary.consumer_count,
                warm_throughput: summary
                    .warm_throughput
                    .map(super::wire_account::wire_warm_throughput),
                max_record_size_in_kib: Some(summary.max_record_size_kib),
            },
        }
    }
}

/// `ListStreams` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamsRequest {
    limit: Option<i64>,
    exclusive_start_stream_name: Option<String>,
    next_token: Option<String>,
}

impl ListStreamsRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<ListStreamsInput, ServerError> {
        Ok(ListStreamsInput {
            limit: count(self.limit),
            exclusive_start_stream_name: self.exclusive_start_stream_name,
            next_token: self.next_token,
        })
    }
}

/// One of `ListStreams.StreamSummaries`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireStreamSummary {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeDetails,
    stream_creation_timestamp: Timestamp,
}

/// `ListStreams` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamsResponse {
    stream_names: Vec<String>,
    has_more_streams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    stream_summaries: Vec<WireStreamSummary>,
}

impl From<ListStreamsOutput> for ListStreamsResponse {
    fn from(output: ListStreamsOutput) -> Self {
        ListStreamsResponse {
            stream_names: output.stream_names,
            has_more_streams: output.has_more_streams,
            next_token: output.next_token,
            stream_summaries: output
                .stream_summaries
                .into_iter()
                .map(|summary| WireStreamSummary {
                    stream_name: summary.stream_name,
                    stream_arn: summary.stream_arn,
                    stream_status: summary.stream_status.as_str(),
                    stream_mode_details: mode_details(summary.stream_mode),
                    stream_creation_timestamp: Timestamp(summary.stream_creation_timestamp),
                })
                .collect(),
        }
    }
}

/// The filter of a `ListShards` request (its type already checked by the table). A type that
/// needs a companion member without it is a violation at that member.
fn shard_filter(filter: WireShardFilter) -> Result<ShardFilter, ServerError> {
    let kind = present(filter.r#type, "shardFilter.type")?;
    let needs = |member: &str| {
        ServerError::validation(format!(
            "Value null at 'shardFilter.{member}' failed to satisfy constraint: Member must not be null"
        ))
    };
    Ok(match kind.as_str() {
        "AFTER_SHARD_ID" => ShardFilter::AfterShardId(ShardId::from(
            filter.shard_id.ok_or_else(|| needs("shardId"))?,
        )),
        "AT_TRIM_HORIZON" => ShardFilter::AtTrimHorizon,
        "FROM_TRIM_HORIZON" => ShardFilter::FromTrimHorizon,
        "AT_LATEST" => ShardFilter::AtLatest,
        "AT_TIMESTAMP" => {
            ShardFilter::AtTimestamp(filter.timestamp.ok_or_else(|| needs("timestamp"))?.0)
        }
        _ => ShardFilter::FromTimestamp(filter.timestamp.ok_or_else(|| needs("timestamp"))?.0),
    })
}

impl IntoInput for ListShardsRequest {
    type Input = ListShardsInput;

    fn into_input(self) -> Result<ListShardsInput, ServerError> {
        let max_results = count(self.max_results);
        let shard_filter = self.shard_filter.map(shard_filter).transpose()?;
        let stream = match (self.stream_name, self.stream_arn) {
            (None, None) => None,
            (name, arn) => Some(stream_ref(name, arn)?),
        };
        Ok(ListShardsInput {
            stream,
            next_token: self.next_token,
            exclusive_start_shard_id: self.exclusive_start_shard_id.map(ShardId::from),
            max_results,
            stream_creation_timestamp: self.stream_creation_timestamp.map(|t| t.0),
            shard_filter,
        })
    }
}

impl From<ListShardsOutput> for ListShardsResponse {
    fn from(output: ListShardsOutput) -> Self {
        ListShardsResponse {
            shards: output.shards.into_iter().map(WireShard::from).collect(),
            next_token: output.next_token,
        }
    }
}

/// `DescribeLimits` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeLimitsResponse {
    shard_limit: u32,
    open_shard_count: u32,
    on_demand_stream_count: u32,
    on_demand_stream_count_limit: u32,
}

impl From<DescribeLimitsOutput> for DescribeLimitsResponse {
    fn from(output: DescribeLimitsOutput) -> Self {
        DescribeLimitsResponse {
            shard_limit: output.shard_limit,
            open_shard_count: output.open_shard_count,
            on_demand_stream_count: output.on_demand_stream_count,
            on_demand_stream_count_limit: output.on_demand_stream_count_limit,
        }
    }
}

/// `SplitShard` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SplitShardRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_to_split: Option<String>,
    new_starting_hash_key: Option<String>,
}

impl SplitShardRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<SplitShardInput, ServerError> {
        let shard = present(self.shard_to_split, "shardToSplit")?;
        Ok(SplitShardInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            shard_to_split: validate::parse_shard_id(&shard),
            new_starting_hash_key: present(self.new_starting_hash_key, "newStartingHashKey")?,
        })
    }
}

/// `MergeShards` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MergeShardsRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_to_merge: Option<String>,
    adjacent_shard_to_merge: Option<String>,
}

impl MergeShardsRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<MergeShardsInput, ServerError> {
        let shard = present(self.shard_to_merge, "shardToMerge")?;
        let adjacent = present(self.adjacent_shard_to_merge, "adjacentShardToMerge")?;
        Ok(MergeShardsInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            shard_to_merge: validate::parse_shard_id(&shard),
            adjacent_shard_to_merge: validate::parse_shard_id(&adjacent),
        })
    }
}

/// `UpdateShardCount` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateShardCountRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    target_shard_count: Option<i64>,
    scaling_type: Option<String>,
}

impl UpdateShardCountRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<UpdateShardCountInput, ServerError> {
        let target = count(Some(present(self.target_shard_count, "targetShardCount")?));
        Ok(UpdateShardCountInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            target_shard_count: target.unwrap_or_default(),
            scaling_type: present(self.scaling_type, "scalingType")?,
        })
    }
}

/// `UpdateShardCount` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateShardCountResponse {
    stream_name: String,
    current_shard_count: u32,
    target_shard_count: u32,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
}

impl From<UpdateShardCountOutput> for UpdateShardCountResponse {
    fn from(output: UpdateShardCountOutput) -> Self {
        UpdateShardCountResponse {
            stream_name: output.stream_name,
            current_shard_count: output.current_shard_count,
            target_shard_count: output.target_shard_count,
            stream_arn: output.stream_arn,
        }
    }
}

/// `Increase/DecreaseStreamRetentionPeriod` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RetentionPeriodRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    retention_period_hours: Option<i64>,
}

impl RetentionPeriodRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<RetentionPeriodInput, ServerError> {
        // The model sets no bounds; the engine answers 24..=8760 in Kinesis's wording.
        let hours = count(Some(present(
            self.retention_period_hours,
            "retentionPeriodHours",
        )?));
        Ok(RetentionPeriodInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            retention_period_hours: hours.unwrap_or_default(),
        })
    }
}

/// `UpdateStreamMode` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateStreamModeRequest {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    stream_mode_details: Option<StreamModeDetails>,
}

impl UpdateStreamModeRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<UpdateStreamModeInput, ServerError> {
        Ok(UpdateStreamModeInput {
            stream_arn: present(self.stream_arn, "streamARN")?,
            stream_mode: parse_mode(self.stream_mode_details).unwrap_or_default(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Tags

/// `AddTagsToStream` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AddTagsToStreamRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

impl AddTagsToStreamRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<crate::engine::AddTagsToStreamInput, ServerError> {
        Ok(crate::engine::AddTagsToStreamInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            tags: present(self.tags, "tags")?,
        })
    }
}

/// `RemoveTagsFromStream` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RemoveTagsFromStreamRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

impl RemoveTagsFromStreamRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<RemoveTagsFromStreamInput, ServerError> {
        Ok(RemoveTagsFromStreamInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            tag_keys: present(self.tag_keys, "tagKeys")?,
        })
    }
}

/// `ListTagsForStream` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForStreamRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
}

impl ListTagsForStreamRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<ListTagsForStreamInput, ServerError> {
        Ok(ListTagsForStreamInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            exclusive_start_tag_key: self.exclusive_start_tag_key,
            limit: count(self.limit),
        })
    }
}

/// `ListTagsForStream` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForStreamResponse {
    tags: Vec<WireTag>,
    has_more_tags: bool,
}

impl From<ListTagsForStreamOutput> for ListTagsForStreamResponse {
    fn from(output: ListTagsForStreamOutput) -> Self {
        ListTagsForStreamResponse {
            tags: output.tags.into_iter().map(WireTag::from).collect(),
            has_more_tags: output.has_more_tags,
        }
    }
}

/// `TagResource` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagResourceRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

impl TagResourceRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<TagResourceInput, ServerError> {
        Ok(TagResourceInput {
            resource_arn: present(self.resource_arn, "resourceARN")?,
            tags: present(self.tags, "tags")?,
        })
    }
}

/// `UntagResource` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UntagResourceRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

impl UntagResourceRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<UntagResourceInput, ServerError> {
        Ok(UntagResourceInput {
            resource_arn: present(self.resource_arn, "resourceARN")?,
            tag_keys: present(self.tag_keys, "tagKeys")?,
        })
    }
}

/// `ListTagsForResource` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForResourceRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
}

impl ListTagsForResourceRequest {
    /// The resource ARN.
    pub(crate) fn into_arn(self) -> Result<String, ServerError> {
        present(self.resource_arn, "resourceARN")
    }
}

/// `ListTagsForResource` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForResourceResponse {
    tags: Vec<WireTag>,
}

impl From<Vec<Tag>> for ListTagsForResourceResponse {
    fn from(tags: Vec<Tag>) -> Self {
        ListTagsForResourceResponse {
            tags: tags.into_iter().map(WireTag::from).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stream settings: encryption, enhanced monitoring, resource policies

/// `StartStreamEncryption` / `StopStreamEncryption` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamEncryptionRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    encryption_type: Option<String>,
    key_id: Option<String>,
}

impl StreamEncryptionRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<StreamEncryptionInput, ServerError> {
        let encryption_type = present(self.encryption_type, "encryptionType")?;
        Ok(StreamEncryptionInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            encryption_type: EncryptionType::parse(&encryption_type).unwrap_or_default(),
            key_id: present(self.key_id, "keyId")?,
        })
    }
}

/// `EnableEnhancedMonitoring` / `DisableEnhancedMonitoring` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EnhancedMonitoringRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_level_metrics: Option<Vec<String>>,
}

impl EnhancedMonitoringRequest {
    /// The engine request (the metric names are checked by the engine).
    pub(crate) fn into_input(self) -> Result<EnhancedMonitoringInput, ServerError> {
        Ok(EnhancedMonitoringInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            shard_level_metrics: present(self.shard_level_metrics, "shardLevelMetrics")?,
        })
    }
}

/// `EnhancedMonitoringOutput`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EnhancedMonitoringResponse {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    current_shard_level_metrics: Vec<String>,
    desired_shard_level_metrics: Vec<String>,
}

impl From<EnhancedMonitoringOutput> for EnhancedMonitoringResponse {
    fn from(output: EnhancedMonitoringOutput) -> Self {
        EnhancedMonitoringResponse {
            stream_name: output.stream_name,
            stream_arn: output.stream_arn,
            current_shard_level_metrics: output.current_shard_level_metrics,
            desired_shard_level_metrics: output.desired_shard_level_metrics,
        }
    }
}

/// `PutResourcePolicy` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutResourcePolicyRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    policy: Option<String>,
}

impl PutResourcePolicyRequest {
    /// The engine request; the policy must be a JSON object (it is stored verbatim).
    pub(crate) fn into_input(self) -> Result<PutResourcePolicyInput, ServerError> {
        let resource_arn = present(self.resource_arn, "resourceARN")?;
        let policy = present(self.policy, "policy")?;
        let is_object = serde_json::from_str::<serde_json::Value>(&policy)
            .is_ok_and(|document| document.is_object());
        if !is_object {
            return Err(crate::engine::validate::invalid_argument(
                "Policy is not a valid JSON policy document.",
            )
            .into());
        }
        Ok(PutResourcePolicyInput {
            resource_arn,
            policy,
        })
    }
}

/// `GetResourcePolicy` / `DeleteResourcePolicy` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ResourceArnRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
}

impl ResourceArnRequest {
    /// The resource ARN.
    pub(crate) fn into_arn(self) -> Result<String, ServerError> {
        present(self.resource_arn, "resourceARN")
    }
}

/// `GetResourcePolicy` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetResourcePolicyResponse {
    policy: String,
}

impl From<String> for GetResourcePolicyResponse {
    fn from(policy: String) -> Self {
        GetResourcePolicyResponse { policy }
    }
}

// ---------------------------------------------------------------------------------------------
// Data plane

/// `PutRecord` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    data: Option<Blob>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    sequence_number_for_ordering: Option<String>,
}

impl PutRecordRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<PutRecordInput, ServerError> {
        Ok(PutRecordInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            data: present(self.data, "data")?.0,
            partition_key: present(self.partition_key, "partitionKey")?,
            explicit_hash_key: self.explicit_hash_key,
            sequence_number_for_ordering: self.sequence_number_for_ordering,
        })
    }
}

/// `PutRecord` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordResponse {
    shard_id: ShardId,
    #[serde(serialize_with = "display")]
    sequence_number: SequenceNumber,
    encryption_type: String,
}

impl From<PutRecordOutput> for PutRecordResponse {
    fn from(output: PutRecordOutput) -> Self {
        PutRecordResponse {
            shard_id: output.shard_id,
            sequence_number: output.sequence_number,
            encryption_type: output.encryption_type,
        }
    }
}

/// One of `PutRecords.Records`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsEntry {
    data: Option<Blob>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

/// `PutRecords` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsRequest {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    records: Option<Vec<PutRecordsEntry>>,
}

impl PutRecordsRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<PutRecordsInput, ServerError> {
        let entries = present(self.records, "records")?;
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            records.push(PutRecordsRequestEntry {
                data: present(entry.data, "records.member.data")?.0,
                partition_key: present(entry.partition_key, "records.member.partitionKey")?,
                explicit_hash_key: entry.explicit_hash_key,
            });
        }
        Ok(PutRecordsInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            records,
        })
    }
}

/// One of `PutRecords` response `Records`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsResultWire {
    #[serde(
        serialize_with = "display_opt",
        skip_serializing_if = "Option::is_none"
    )]
    sequence_number: Option<SequenceNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<ShardId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// `PutRecords` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsResponse {
    failed_record_count: u32,
    records: Vec<PutRecordsResultWire>,
    encryption_type: String,
}

impl From<PutRecordsOutput> for PutRecordsResponse {
    fn from(output: PutRecordsOutput) -> Self {
        PutRecordsResponse {
            failed_record_count: output.failed_record_count,
            records: output
                .records
                .into_iter()
                .map(|entry| PutRecordsResultWire {
                    sequence_number: entry.sequence_number,
                    shard_id: entry.shard_id,
                    error_code: entry.error_code,
                    error_message: entry.error_message,
                })
                .collect(),
            encryption_type: output.encryption_type,
        }
    }
}

/// Builds a starting position from a type and its companions (the table has checked the type
/// and the sequence number's shape); `type_field` names the type member.
fn starting_position(
    kind: Option<String>,
    sequence_number: Option<String>,
    timestamp: Option<Timestamp>,
    type_field: &str,
) -> Result<StartingPosition, ServerError> {
    let kind = present(kind, type_field)?;
    let kind = kind.as_str();
    let needs_sequence = || {
        ServerError::Kinesis(kcl_core::kinesis::KinesisError::new(
            kcl_core::kinesis::KinesisErrorKind::InvalidArgument,
            format!(
                "Must specify StartingSequenceNumber for {kind} iterator type, and the \
                 sequence number must be valid."
            ),
        ))
    };
    // GetShardIterator words a missing or superfluous sequence number as Kinesis does.
    let either_or = |detail: String| {
        ServerError::Kinesis(validate::invalid_argument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and \
             StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. \
             Request specified {detail}."
        )))
    };
    if type_field == "shardIteratorType" {
        let has_sequence = sequence_number.is_some();
        match kind {
            "TRIM_HORIZON" | "LATEST" if has_sequence => {
                return Err(either_or(format!(
                    "{kind} and also a StartingSequenceNumber"
                )));
            }
            "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" if !has_sequence => {
                return Err(either_or(format!("{kind} and no StartingSequenceNumber")));
            }
            _ => {}
        }
    }
    Ok(match kind {
        "TRIM_HORIZON" => StartingPosition::TrimHorizon,
        "LATEST" => StartingPosition::Latest,
        "AT_TIMESTAMP" => match timestamp {
            Some(timestamp) => StartingPosition::AtTimestamp(timestamp.0),
            None => {
                return Err(ServerError::Kinesis(kcl_core::kinesis::KinesisError::new(
                    kcl_core::kinesis::KinesisErrorKind::InvalidArgument,
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. \
                     Current request has no timestamp parameter.",
                )));
            }
        },
        _ => {
            let text = sequence_number.ok_or_else(needs_sequence)?;
            let number: SequenceNumber = text.parse().map_err(|_| {
                ServerError::InternalFailure(format!(
                    "sequence number {text} passed validation but does not parse"
                ))
            })?;
            if kind == "AT_SEQUENCE_NUMBER" {
                StartingPosition::AtSequenceNumber(number)
            } else {
                StartingPosition::AfterSequenceNumber(number)
            }
        }
    })
}

impl IntoInput for GetShardIteratorRequest {
    type Input = GetShardIteratorInput;

    fn into_input(self) -> Result<GetShardIteratorInput, ServerError> {
        let shard_id = present(self.shard_id, "shardId")?;
        let position = starting_position(
            self.shard_iterator_type,
            self.starting_sequence_number,
            self.timestamp,
            "shardIteratorType",
        )?;
        Ok(GetShardIteratorInput {
            stream: stream_ref(self.stream_name, self.stream_arn)?,
            shard_id: validate::parse_shard_id(&shard_id),
            position,
        })
    }
}

impl IntoInput for GetRecordsRequest {
    type Input = GetRecordsInput;

    fn into_input(self) -> Result<GetRecordsInput, ServerError> {
        Ok(GetRecordsInput {
            shard_iterator: present(self.shard_iterator, "shardIterator")?,
            limit: count(self.limit),
            stream_arn: self.stream_arn,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Enhanced fan-out

impl IntoInput for RegisterStreamConsumerRequest {
    type Input = RegisterStreamConsumerInput;

    fn into_input(self) -> Result<RegisterStreamConsumerInput, ServerError> {
        Ok(RegisterStreamConsumerInput {
            stream_arn: present(self.stream_arn, "streamARN")?,
            consumer_name: present(self.consumer_name, "consumerName")?,
        })
    }
}

/// A `Consumer` of `RegisterStreamConsumer` and `ListStreamConsumers` (no stream ARN).
fn wire_consumer(consumer: Consumer) -> WireConsumer {
    WireConsumer {
        consumer_name: consumer.consumer_name,
        consumer_arn: consumer.consumer_arn,
        consumer_status: consumer.consumer_status,
        consumer_creation_timestamp: Timestamp(consumer.consumer_creation_timestamp),
        stream_arn: None,
    }
}

impl From<Consumer> for RegisterStreamConsumerResponse {
    fn from(consumer: Consumer) -> Self {
        RegisterStreamConsumerResponse {
            consumer: wire_consumer(consumer),
        }
    }
}

/// A consumer named by a request (`DescribeStreamConsumer`, `DeregisterStreamConsumer`).
pub(crate) trait IntoConsumerRef {
    /// The engine reference.
    fn into_ref(self) -> ConsumerRef;
}

impl IntoConsumerRef for ConsumerRefRequest {
    fn into_ref(self) -> ConsumerRef {
        ConsumerRef {
            stream_arn: self.stream_arn,
            consumer_name: self.consumer_name,
            consumer_arn: self.consumer_arn,
        }
    }
}

/// `ListStreamConsumers` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamConsumersRequest {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    stream_creation_timestamp: Option<Timestamp>,
}

impl ListStreamConsumersRequest {
    /// The engine request.
    pub(crate) fn into_input(self) -> Result<ListStreamConsumersInput, ServerError> {
        Ok(ListStreamConsumersInput {
            stream_arn: present(self.stream_arn, "streamARN")?,
            next_token: self.next_token,
            max_results: count(self.max_results),
            stream_creation_timestamp: self.stream_creation_timestamp.map(|t| t.0),
        })
    }
}

/// `ListStreamConsumers` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamConsumersResponse {
    consumers: Vec<WireConsumer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

impl From<ListStreamConsumersOutput> for ListStreamConsumersResponse {
    fn from(output: ListStreamConsumersOutput) -> Self {
        ListStreamConsumersResponse {
            consumers: output.consumers.into_iter().map(wire_consumer).collect(),
            next_token: output.next_token,
        }
    }
}

impl IntoInput for SubscribeToShardRequest {
    type Input = SubscribeToShardInput;

    fn into_input(self) -> Result<SubscribeToShardInput, ServerError> {
        let consumer_arn = present(self.consumer_arn, "consumerARN")?;
        let shard_id = present(self.shard_id, "shardId")?;
        let start = present(self.starting_position, "startingPosition")?;
        let position = starting_position(
            start.r#type,
            start.sequence_number,
            start.timestamp,
            "startingPosition.type",
        )?;
        Ok(SubscribeToShardInput {
            consumer_arn,
            shard_id: validate::parse_shard_id(&shard_id),
            starting_position: position,
        })
    }
}

/// Appends epoch seconds with a millisecond fraction (`1506440188.749`) without going
/// through floating point.
fn write_epoch_seconds(out: &mut Vec<u8>, millis: i64) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = if millis >= 0 {
        write!(out, "{}.{:03}", millis / 1000, millis % 1000)
    } else {
        // Pre-epoch times (never produced by the broker) go through floating point; `{:?}`
        // keeps the ".0" of whole seconds, as serde_json writes it.
        write!(out, "{:?}", millis as f64 / 1000.0)
    };
}

/// The JSON `GetRecords` answer, written directly: the hot read path. Base64 data and decimal
/// sequence numbers need no escaping, so they are copied in place instead of passing through
/// serde's string escaper; partition keys and iterators still are escaped. Equivalent to
/// encoding [`GetRecordsResponse`] with serde_json.
pub(crate) fn get_records_json(output: &GetRecordsOutput) -> Result<Vec<u8>, ServerError> {
    use base64::Engine as _;
    use std::fmt::Write as _;
    use std::io::Write as _;
    let internal = |error: serde_json::Error| ServerError::InternalFailure(error.to_string());
    let estimate: usize = output
        .records
        .iter()
        .map(|record| 160 + record.data.len() * 4 / 3 + record.partition_key.len())
        .sum();
    let mut out = Vec::with_capacity(128 + estimate);
    let mut sequence = String::with_capacity(80);
    out.extend_from_slice(b"{\"Records\":[");
    for (index, record) in output.records.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        sequence.clear();
        let _ = write!(sequence, "{}", record.sequence_number);
        out.extend_from_slice(b"{\"SequenceNumber\":\"");
        out.extend_from_slice(sequence.as_bytes());
        out.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
        write_epoch_seconds(&mut out, record.approximate_arrival_timestamp.0);
        out.extend_from_slice(b",\"Data\":\"");
        let start = out.len();
        let encoded_len = base64::encoded_len(record.data.len(), true)
            .ok_or_else(|| ServerError::InternalFailure("record too large to encode".into()))?;
        out.resize(start + encoded_len, 0);
        base64::engine::general_purpose::STANDARD
            .encode_slice(&record.data, &mut out[start..])
            .map_err(|error| ServerError::InternalFailure(error.to_string()))?;
        out.extend_from_slice(b"\",\"PartitionKey\":");
        serde_json::to_writer(&mut out, &*record.partition_key).map_err(internal)?;
        out.push(b'}');
    }
    out.push(b']');
    if let Some(iterator) = &output.next_shard_iterator {
        out.extend_from_slice(b",\"NextShardIterator\":");
        serde_json::to_writer(&mut out, iterator).map_err(internal)?;
    }
    let _ = write!(
        out,
        ",\"MillisBehindLatest\":{}",
        output.millis_behind_latest
    );
    if !output.child_shards.is_empty() {
        let children: Vec<WireChildShard> = output
            .child_shards
            .iter()
            .cloned()
            .map(WireChildShard::from)
            .collect();
        out.extend_from_slice(b",\"ChildShards\":");
        serde_json::to_writer(&mut out, &children).map_err(internal)?;
    }
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kcl_core::kinesis::{ChildShard, EpochMillis, HashKeyRange, Record};
    use proptest::prelude::*;

    fn output(
        records: Vec<(u128, i64, Vec<u8>, String)>,
        iterator: Option<String>,
        children: bool,
    ) -> GetRecordsOutput {
        GetRecordsOutput {
            records: records
                .into_iter()
                .map(|(seq, millis, data, key)| Record {
                    sequence_number: SequenceNumber::from_parts(seq >> 7, seq),
                    approximate_arrival_timestamp: EpochMillis(millis),
                    data: Bytes::from(data),
                    partition_key: key.into(),
                    explicit_hash_key: None,
                })
                .collect(),
            next_shard_iterator: iterator,
            millis_behind_latest: 42,
            child_shards: if children {
                vec![ChildShard {
                    shard_id: ShardId::from_index(3),
                    parent_shards: vec![ShardId::from_index(1), ShardId::from_index(2)],
                    hash_key_range: HashKeyRange::new(5, 99),
                }]
            } else {
                Vec::new()
            },
        }
    }

    proptest! {
        /// The hand-written encoder says exactly what serde says.
        #[test]
        fn direct_get_records_json_equals_serde(
            records in proptest::collection::vec(
                (any::<u128>(), -10_000_000_000_000i64..10_000_000_000_000,
                 proptest::collection::vec(any::<u8>(), 0..50), "\\PC{1,12}|[\"\\\\\\n]{1,4}"),
                0..8),
            iterator in proptest::option::of("[A-Za-z0-9+/=\"]{0,30}"),
            children in any::<bool>(),
        ) {
            let output = output(records, iterator, children);
            let direct: serde_json::Value =
                serde_json::from_slice(&get_records_json(&output).unwrap()).unwrap();
            let via_serde: serde_json::Value =
                serde_json::to_value(GetRecordsResponse::from(output)).unwrap();
            prop_assert_eq!(direct, via_serde);
        }
    }
}
