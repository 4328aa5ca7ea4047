//! Control-plane operations: streams, shards, resharding, retention, modes, tags, limits.

use super::state::{self, ShardEnd, ShardState, StreamMeta, StreamState, Topology};
use super::token::{PayloadReader, PayloadWriter, TokenKind};
use super::validate::{self, Violations};
use super::{Broker, BrokerInner, await_durable, seq};
use crate::engine::api::*;
use kcl_core::kinesis::{
    EpochMillis, HashKeyRange, KinesisError, KinesisErrorKind, Shard, ShardFilter, ShardId,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Default and maximum retention, in hours.
const MIN_RETENTION_HOURS: u32 = 24;
const MAX_RETENTION_HOURS: u32 = 8760;
/// Most tags a stream can have.
const MAX_TAGS_PER_STREAM: usize = 50;
/// `UpdateShardCount` calls allowed per rolling 24 hours.
const MAX_SCALINGS_PER_DAY: usize = 10;

/// What one [`Broker::enforce_retention`] pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Records dropped because they left the retention window.
    pub records_trimmed: u64,
    /// Closed shards dropped because all their records expired.
    pub shards_dropped: u64,
    /// Deleted streams whose deletion delay ended.
    pub streams_dropped: u64,
}

impl Broker {
    /// `CreateStream`.
    pub async fn create_stream(&self, input: CreateStreamInput) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let mode = input.stream_mode.unwrap_or_default();
        let mut violations = Violations::default();
        violations.name(&input.stream_name, "streamName");
        if let Some(count) = input.shard_count {
            violations.range(u64::from(count), "shardCount", 1, 100_000);
        }
        violations.into_result()?;
        check_tags(&input.tags, "tags", MAX_TAGS_PER_STREAM)?;
        let shard_count = match (input.shard_count, mode) {
            (Some(count), _) => count,
            (None, StreamMode::OnDemand) => inner.config.on_demand_initial_shards.max(1),
            (None, StreamMode::Provisioned) => {
                return Err(validate::invalid_argument(
                    "ShardCount must be provided for a stream in PROVISIONED mode.",
                ));
            }
        };
        let ticket = {
            let _control = inner.control_lock();
            inner.purge_deleted_streams();
            if state::read(&inner.streams).contains_key(&input.stream_name) {
                return Err(validate::in_use(format!(
                    "Stream {} under account {} already exists.",
                    input.stream_name,
                    inner.account()
                )));
            }
            inner.check_shard_limit(shard_count)?;
            if mode == StreamMode::OnDemand {
                inner.check_on_demand_limit()?;
            }
            let stream = inner.new_stream(&input.stream_name, shard_count, mode, input.tags);
            state::write(&inner.streams).insert(input.stream_name.clone(), Arc::new(stream));
            inner.journal_metadata()
        };
        tracing::info!(stream = %input.stream_name, shard_count, mode = mode.as_str(), "stream created");
        await_durable(ticket).await
    }

    /// `DeleteStream`. Without a delete delay the stream is gone at once.
    pub async fn delete_stream(&self, input: DeleteStreamInput) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_any(&input.stream)?;
            let mut meta = state::lock(&stream.meta);
            if meta.deleting_since.is_some() {
                return Err(inner.stream_not_found(&stream.name));
            }
            if !meta.consumers.is_empty() && !input.enforce_consumer_deletion {
                return Err(validate::in_use(format!(
                    "Stream {} under account {} has registered consumers. Use EnforceConsumerDeletion to delete the stream and its consumers.",
                    stream.name,
                    inner.account()
                )));
            }
            for consumer in std::mem::take(&mut meta.consumers).into_values() {
                consumer.cancel.cancel();
            }
            meta.deleting_since = Some((inner.now_wall(), inner.now_mono()));
            stream.deleting.store(true, Ordering::Release);
            drop(meta);
            wake_all_shards(&stream);
            tracing::info!(stream = %stream.name, "stream deleted");
            if inner.config.delete_delay.is_zero() {
                state::write(&inner.streams).remove(&stream.name);
            }
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `DescribeStream` (one page of shards).
    pub async fn describe_stream(
        &self,
        input: DescribeStreamInput,
    ) -> Result<StreamDescription, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        if let Some(limit) = input.limit {
            violations.range(u64::from(limit), "limit", 1, 10_000);
        }
        violations.into_result()?;
        let stream = inner.stream_any(&input.stream)?;
        let status = stream.status(inner.now_mono());
        let page_size = input.limit.unwrap_or(100).min(100) as usize;
        let mut shards: Vec<Shard> = if status == StreamStatus::Creating {
            Vec::new()
        } else {
            stream
                .retained_shards(inner.now_wall())
                .into_iter()
                .filter(|shard| {
                    input
                        .exclusive_start_shard_id
                        .as_ref()
                        .is_none_or(|start| &shard.id > start)
                })
                .map(|shard| shard.describe())
                .collect()
        };
        let has_more_shards = shards.len() > page_size;
        shards.truncate(page_size);
        let (mode, settings) = {
            let meta = state::lock(&stream.meta);
            (meta.mode, super::settings::StreamSettings::of(&meta))
        };
        Ok(StreamDescription {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn.clone(),
            stream_status: status,
            stream_mode: mode,
            shards,
            has_more_shards,
            retention_period_hours: stream.retention_hours.load(Ordering::SeqCst),
            stream_creation_timestamp: stream.created_at,
            shard_level_metrics: settings.shard_level_metrics,
            encryption_type: settings.encryption_type.as_str().to_owned(),
            key_id: settings.key_id,
        })
    }

    /// `DescribeStreamSummary`.
    pub async fn describe_stream_summary(
        &self,
        stream: StreamRef,
    ) -> Result<StreamDescriptionSummary, KinesisError> {
        let inner = &self.inner;
        let stream = inner.stream_any(&stream)?;
        let (mode, consumer_count, settings, warm_throughput_mibps) = {
            let meta = state::lock(&stream.meta);
            (
                meta.mode,
                meta.consumers.len(),
                super::settings::StreamSettings::of(&meta),
                meta.warm_throughput_mibps,
            )
        };
        // Reported, as by Kinesis, only for on-demand streams of an account with a commitment.
        let committed = state::lock(&inner.account)
            .at(inner.now_wall())
            .status
            .is_enabled();
        let warm_throughput = warm_throughput_mibps
            .filter(|_| committed && mode == StreamMode::OnDemand)
            .map(|mibps| super::account::WarmThroughput {
                target_mibps: mibps,
                current_mibps: mibps,
            });
        Ok(StreamDescriptionSummary {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn.clone(),
            stream_status: stream.status(inner.now_mono()),
            stream_mode: mode,
            retention_period_hours: stream.retention_hours.load(Ordering::SeqCst),
            stream_creation_timestamp: stream.created_at,
            shard_level_metrics: settings.shard_level_metrics,
            encryption_type: settings.encryption_type.as_str().to_owned(),
            key_id: settings.key_id,
            open_shard_count: stream.open_shard_count(),
            consumer_count: u32::try_from(consumer_count).unwrap_or(u32::MAX),
            warm_throughput,
            max_record_size_kib: super::account::bytes_to_kib(
                stream.max_record_bytes.load(Ordering::Acquire),
            ),
        })
    }

    /// `ListStreams` (paginated by `ExclusiveStartStreamName` or `NextToken`).
    pub async fn list_streams(
        &self,
        input: ListStreamsInput,
    ) -> Result<ListStreamsOutput, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        if let Some(limit) = input.limit {
            violations.range(u64::from(limit), "limit", 1, 10_000);
        }
        if let Some(start) = &input.exclusive_start_stream_name {
            violations.name(start, "exclusiveStartStreamName");
        }
        violations.into_result()?;
        let after = match &input.next_token {
            Some(token) => {
                let payload = inner.open_token(TokenKind::ListStreams, token)?;
                let mut reader = PayloadReader::new(&payload);
                Some(reader.str().map(str::to_owned).ok_or_else(invalid_token)?)
            }
            None => input.exclusive_start_stream_name.clone(),
        };
        inner.purge_deleted_streams();
        let page_size = input.limit.unwrap_or(100).min(100) as usize;
        let streams: Vec<Arc<StreamState>> = {
            let map = state::read(&inner.streams);
            match &after {
                Some(after) => map
                    .range::<str, _>((
                        std::ops::Bound::Excluded(after.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .map(|(_, stream)| Arc::clone(stream))
                    .take(page_size + 1)
                    .collect(),
                None => map
                    .values()
                    .take(page_size + 1)
                    .cloned()
                    .collect::<Vec<_>>(),
            }
        };
        let has_more_streams = streams.len() > page_size;
        let page: Vec<Arc<StreamState>> = streams.into_iter().take(page_size).collect();
        let next_token = match (has_more_streams, page.last()) {
            (true, Some(last)) => Some(inner.seal_token(
                TokenKind::ListStreams,
                PayloadWriter::default().str(&last.name).finish(),
            )),
            _ => None,
        };
        let now = inner.now_mono();
        let stream_summaries = page
            .iter()
            .map(|stream| StreamSummaryEntry {
                stream_name: stream.name.clone(),
                stream_arn: stream.arn.clone(),
                stream_status: stream.status(now),
                stream_mode: state::lock(&stream.meta).mode,
                stream_creation_timestamp: stream.created_at,
            })
            .collect();
        Ok(ListStreamsOutput {
            stream_names: page.iter().map(|stream| stream.name.clone()).collect(),
            has_more_streams,
            next_token,
            stream_summaries,
        })
    }

    /// `ListShards` (paginated, with `ShardFilter`). A stream being created or deleted is
    /// `ResourceInUseException` (see `BrokerInner::require_listable`).
    pub async fn list_shards(
        &self,
        input: ListShardsInput,
    ) -> Result<ListShardsOutput, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        if let Some(max) = input.max_results {
            violations.range(u64::from(max), "maxResults", 1, 10_000);
        }
        violations.into_result()?;
        let page_size = input.max_results.unwrap_or(1000).min(1000) as usize;
        let (stream, filter, after) = match (&input.next_token, &input.stream) {
            (Some(_), Some(StreamRef::Name(_))) => {
                return Err(validate::invalid_argument(
                    "NextToken and StreamName cannot be provided together.",
                ));
            }
            (Some(_), Some(StreamRef::Arn(_))) => {
                return Err(validate::invalid_argument(
                    "NextToken and StreamARN cannot be provided together.",
                ));
            }
            (Some(token), None) => {
                if input.exclusive_start_shard_id.is_some() {
                    return Err(validate::invalid_argument(
                        "NextToken and ExclusiveStartShardId cannot be provided together.",
                    ));
                }
                inner.open_list_shards_token(token)?
            }
            (None, Some(stream_ref)) => {
                let stream = inner.stream_any(stream_ref)?;
                let mut after = input.exclusive_start_shard_id.clone();
                if let Some(ShardFilter::AfterShardId(id)) = &input.shard_filter {
                    after = Some(after.map_or(id.clone(), |given| given.max(id.clone())));
                }
                (stream, input.shard_filter.clone(), after)
            }
            (None, None) => {
                return Err(validate::invalid_argument(
                    "Either NextToken or StreamName should be provided.",
                ));
            }
        };
        inner.require_listable(&stream)?;
        let now = inner.now_wall();
        let selected: Vec<Arc<ShardState>> = stream
            .retained_shards(now)
            .into_iter()
            .filter(|shard| after.as_ref().is_none_or(|after| &shard.id > after))
            .filter(|shard| shard_matches(&stream, shard, filter.as_ref(), now))
            .take(page_size + 1)
            .collect();
        let has_more = selected.len() > page_size;
        let shards: Vec<Shard> = selected
            .iter()
            .take(page_size)
            .map(|shard| shard.describe())
            .collect();
        let next_token = match (has_more, shards.last()) {
            (true, Some(last)) => {
                Some(inner.seal_list_shards_token(&stream, filter.as_ref(), &last.shard_id))
            }
            _ => None,
        };
        Ok(ListShardsOutput { shards, next_token })
    }

    /// `DescribeLimits`.
    pub async fn describe_limits(&self) -> Result<DescribeLimitsOutput, KinesisError> {
        let inner = &self.inner;
        inner.purge_deleted_streams();
        Ok(DescribeLimitsOutput {
            shard_limit: inner.config.shard_limit,
            open_shard_count: inner.open_shards_in_account(),
            on_demand_stream_count: inner.on_demand_streams(),
            on_demand_stream_count_limit: inner.config.on_demand_stream_limit,
        })
    }

    /// `SplitShard`: closes the shard and opens two children; the second starts at
    /// `NewStartingHashKey`.
    pub async fn split_shard(&self, input: SplitShardInput) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        violations.hash_key_shape(&input.new_starting_hash_key, "newStartingHashKey");
        violations.into_result()?;
        let new_start: u128 = input.new_starting_hash_key.parse().map_err(|_| {
            validate::invalid_argument(format!(
                "NewStartingHashKey {} must be in the range: [0, 2^128-1].",
                input.new_starting_hash_key
            ))
        })?;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            inner.check_provisioned(&stream)?;
            inner.check_shard_limit(1)?;
            let mut topology = state::write(&stream.topology);
            let parent =
                inner.open_shard(&stream, &topology, &input.shard_to_split, "splitting")?;
            let valid = parent.range.starting_hash_key < new_start
                && new_start <= parent.range.ending_hash_key;
            if !valid {
                return Err(validate::invalid_argument(format!(
                    "NewStartingHashKey {new_start} used in SplitShard() on shard {} in stream {} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                    parent.id,
                    stream.name,
                    inner.account(),
                    parent.range.starting_hash_key,
                    parent.range.ending_hash_key
                )));
            }
            inner.split_locked(&stream, &mut topology, &parent, new_start);
            tracing::info!(stream = %stream.name, shard_id = %parent.id, new_starting_hash_key = %new_start, "shard split");
            drop(topology);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `MergeShards`: closes two adjacent shards and opens one child covering both.
    pub async fn merge_shards(&self, input: MergeShardsInput) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            inner.check_provisioned(&stream)?;
            let mut topology = state::write(&stream.topology);
            let first = inner.open_shard(&stream, &topology, &input.shard_to_merge, "merging")?;
            let second = inner.open_shard(
                &stream,
                &topology,
                &input.adjacent_shard_to_merge,
                "merging",
            )?;
            let adjacent = first.range.ending_hash_key.checked_add(1)
                == Some(second.range.starting_hash_key)
                || second.range.ending_hash_key.checked_add(1)
                    == Some(first.range.starting_hash_key);
            if !adjacent {
                return Err(validate::invalid_argument(format!(
                    "Shards {} and {} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
                    first.id,
                    second.id,
                    stream.name,
                    inner.account()
                )));
            }
            let child = inner.merge_locked(&stream, &mut topology, &first, &second);
            tracing::info!(stream = %stream.name, shard_id = %first.id, adjacent_shard_id = %second.id, child = %child.id, "shards merged");
            drop(topology);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `UpdateShardCount` with `UNIFORM_SCALING`: reshapes the open shards into
    /// `TargetShardCount` even ranges through splits and merges (so lineage stays exact).
    pub async fn update_shard_count(
        &self,
        input: UpdateShardCountInput,
    ) -> Result<UpdateShardCountOutput, KinesisError> {
        let inner = &self.inner;
        let mut violations = Violations::default();
        violations.range(
            u64::from(input.target_shard_count),
            "targetShardCount",
            1,
            100_000,
        );
        if input.scaling_type != "UNIFORM_SCALING" {
            violations.value(
                &input.scaling_type,
                "scalingType",
                "Member must satisfy enum value set: [UNIFORM_SCALING]",
            );
        }
        violations.into_result()?;
        let target = input.target_shard_count;
        let (output, ticket) = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            inner.check_provisioned(&stream)?;
            let current = stream.open_shard_count();
            if target > current.saturating_mul(2) {
                return Err(validate::limit_exceeded(format!(
                    "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: {current} Target shard count: {target}"
                )));
            }
            if u64::from(target) * 2 < u64::from(current) {
                return Err(validate::limit_exceeded(format!(
                    "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: {current} Target shard count: {target}"
                )));
            }
            if target > current {
                inner.check_shard_limit(target - current)?;
            }
            let now = inner.now_wall();
            {
                let mut meta = state::lock(&stream.meta);
                let day_ago = EpochMillis(now.0.saturating_sub(86_400_000));
                meta.scaling_history.retain(|at| *at > day_ago);
                if meta.scaling_history.len() >= MAX_SCALINGS_PER_DAY {
                    return Err(validate::limit_exceeded(format!(
                        "Rate exceeded for stream {} under account {}. UpdateShardCount can be called at most {MAX_SCALINGS_PER_DAY} times per rolling 24-hour period.",
                        stream.name,
                        inner.account()
                    )));
                }
                meta.scaling_history.push(now);
            }
            let mut topology = state::write(&stream.topology);
            inner.reshape_uniformly(&stream, &mut topology, target);
            tracing::info!(stream = %stream.name, current, target, "shard count updated");
            drop(topology);
            let output = UpdateShardCountOutput {
                stream_name: stream.name.clone(),
                current_shard_count: current,
                target_shard_count: target,
                stream_arn: stream.arn.clone(),
            };
            (output, inner.journal_metadata())
        };
        await_durable(ticket).await?;
        Ok(output)
    }

    /// `IncreaseStreamRetentionPeriod`.
    pub async fn increase_stream_retention_period(
        &self,
        input: RetentionPeriodInput,
    ) -> Result<(), KinesisError> {
        self.change_retention(input, true).await
    }

    /// `DecreaseStreamRetentionPeriod`. Records older than the new period expire at once.
    pub async fn decrease_stream_retention_period(
        &self,
        input: RetentionPeriodInput,
    ) -> Result<(), KinesisError> {
        self.change_retention(input, false).await
    }

    async fn change_retention(
        &self,
        input: RetentionPeriodInput,
        increase: bool,
    ) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let hours = input.retention_period_hours;
        if hours < MIN_RETENTION_HOURS {
            return Err(validate::invalid_argument(format!(
                "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > MAX_RETENTION_HOURS {
            return Err(validate::invalid_argument(format!(
                "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&input.stream)?;
            let existing = stream.retention_hours.load(Ordering::SeqCst);
            if increase && hours < existing {
                return Err(validate::invalid_argument(format!(
                    "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({existing} hours). Use DecreaseRetentionPeriod API.",
                    stream.name
                )));
            }
            if !increase && hours > existing {
                return Err(validate::invalid_argument(format!(
                    "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({existing} hours). Use IncreaseRetentionPeriod API.",
                    stream.name
                )));
            }
            stream.retention_hours.store(hours, Ordering::SeqCst);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `UpdateStreamMode`.
    pub async fn update_stream_mode(
        &self,
        input: UpdateStreamModeInput,
    ) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_active(&StreamRef::Arn(input.stream_arn.clone()))?;
            let current = state::lock(&stream.meta).mode;
            if current == input.stream_mode {
                return Err(validate::invalid_argument(format!(
                    "Stream {} under account {} is already in {} mode.",
                    stream.name,
                    inner.account(),
                    current.as_str()
                )));
            }
            if input.stream_mode == StreamMode::OnDemand {
                inner.check_on_demand_limit()?;
            }
            let mut meta = state::lock(&stream.meta);
            meta.mode = input.stream_mode;
            if input.stream_mode == StreamMode::Provisioned {
                // Warm throughput exists only for on-demand streams.
                meta.warm_throughput_mibps = None;
            }
            drop(meta);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `AddTagsToStream`.
    pub async fn add_tags_to_stream(
        &self,
        input: AddTagsToStreamInput,
    ) -> Result<(), KinesisError> {
        check_tags(&input.tags, "tags", 10)?;
        if input.tags.is_empty() {
            let mut violations = Violations::default();
            violations.field("tags", "Member must have length greater than or equal to 1");
            violations.into_result()?;
        }
        self.tag_stream(&input.stream, input.tags).await
    }

    async fn tag_stream(
        &self,
        stream: &StreamRef,
        tags: BTreeMap<String, String>,
    ) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_any(stream)?;
            let texts = tags
                .iter()
                .flat_map(|(key, value)| [key.as_str(), value.as_str()]);
            validate::tag_characters(texts, "add tags to", &stream.name, inner.account())?;
            let mut meta = state::lock(&stream.meta);
            let new_keys = tags
                .keys()
                .filter(|key| !meta.tags.contains_key(*key))
                .count();
            if meta.tags.len() + new_keys > MAX_TAGS_PER_STREAM {
                return Err(validate::invalid_argument(format!(
                    "Failed to add tags to stream {} under account {} because a given stream cannot have more than {MAX_TAGS_PER_STREAM} tags associated with it.",
                    stream.name,
                    inner.account()
                )));
            }
            meta.tags.extend(tags);
            drop(meta);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `RemoveTagsFromStream`.
    pub async fn remove_tags_from_stream(
        &self,
        input: RemoveTagsFromStreamInput,
    ) -> Result<(), KinesisError> {
        check_tag_keys(&input.tag_keys)?;
        self.untag_stream(&input.stream, &input.tag_keys).await
    }

    async fn untag_stream(&self, stream: &StreamRef, keys: &[String]) -> Result<(), KinesisError> {
        let inner = &self.inner;
        let ticket = {
            let _control = inner.control_lock();
            let stream = inner.stream_any(stream)?;
            let texts = keys.iter().map(String::as_str);
            validate::tag_characters(texts, "remove tags from", &stream.name, inner.account())?;
            let mut meta = state::lock(&stream.meta);
            for key in keys {
                meta.tags.remove(key);
            }
            drop(meta);
            inner.journal_metadata()
        };
        await_durable(ticket).await
    }

    /// `ListTagsForStream` (sorted by key, paginated by `ExclusiveStartTagKey`).
    pub async fn list_tags_for_stream(
        &self,
        input: ListTagsForStreamInput,
    ) -> Result<ListTagsForStreamOutput, KinesisError> {
        let mut violations = Violations::default();
        if let Some(limit) = input.limit {
            violations.range(u64::from(limit), "limit", 1, 50);
        }
        violations.into_result()?;
        let stream = self.inner.stream_any(&input.stream)?;
        let limit = input.limit.unwrap_or(50) as usize;
        let meta = state::lock(&stream.meta);
        let mut tags: Vec<Tag> = meta
            .tags
            .iter()
            .filter(|(key, _)| {
                input
                    .exclusive_start_tag_key
                    .as_ref()
                    .is_none_or(|start| *key > start)
            })
            .take(limit + 1)
            .map(|(key, value)| Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        let has_more_tags = tags.len() > limit;
        tags.truncate(limit);
        Ok(ListTagsForStreamOutput {
            tags,
            has_more_tags,
        })
    }

    /// `TagResource` (stream ARNs).
    pub async fn tag_resource(&self, input: TagResourceInput) -> Result<(), KinesisError> {
        check_tags(&input.tags, "tags", MAX_TAGS_PER_STREAM)?;
        let stream = self.inner.tag_target(&input.resource_arn)?;
        self.tag_stream(&stream, input.tags).await
    }

    /// `UntagResource` (stream ARNs).
    pub async fn untag_resource(&self, input: UntagResourceInput) -> Result<(), KinesisError> {
        check_tag_keys(&input.tag_keys)?;
        let stream = self.inner.tag_target(&input.resource_arn)?;
        self.untag_stream(&stream, &input.tag_keys).await
    }

    /// `ListTagsForResource` (stream ARNs): every tag, sorted by key.
    pub async fn list_tags_for_resource(
        &self,
        resource_arn: &str,
    ) -> Result<Vec<Tag>, KinesisError> {
        let stream = self.inner.tag_target(resource_arn)?;
        let stream = self.inner.stream_any(&stream)?;
        let meta = state::lock(&stream.meta);
        Ok(meta
            .tags
            .iter()
            .map(|(key, value)| Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect())
    }

    /// Drops expired records, closed shards whose records all expired, and streams whose
    /// deletion finished. Reads never return expired records even without this call; it
    /// frees memory and lets the journal delete old segments. Call it periodically.
    pub async fn enforce_retention(&self) -> RetentionReport {
        let inner = &self.inner;
        let (report, ticket) = {
            let _control = inner.control_lock();
            let mut report = RetentionReport::default();
            if inner.purge_deleted_streams() {
                report.streams_dropped += 1;
            }
            let now = inner.now_wall();
            let streams: Vec<Arc<StreamState>> =
                state::read(&inner.streams).values().cloned().collect();
            for stream in &streams {
                let horizon = stream.horizon(now);
                let mut topology = state::write(&stream.topology);
                for shard in topology.shards.values() {
                    let mut log = state::write(&shard.log);
                    let before = log.records.len();
                    if let Some(retained_from) = log.trim_before(horizon) {
                        inner.journal.trimmed(stream.uid, &shard.id, retained_from);
                    }
                    report.records_trimmed += (before - log.records.len()) as u64;
                }
                let expired: Vec<ShardId> = topology
                    .shards
                    .values()
                    .filter(|shard| stream.shard_expired(shard, now))
                    .map(|shard| shard.id.clone())
                    .collect();
                for id in expired {
                    topology.shards.remove(&id);
                    report.shards_dropped += 1;
                }
            }
            let changed = report.shards_dropped > 0 || report.streams_dropped > 0;
            let ticket = if changed {
                inner.journal_metadata()
            } else {
                super::DurabilityTicket::ready()
            };
            (report, ticket)
        };
        if let Err(error) = await_durable(ticket).await {
            tracing::warn!(error = %error, "retention metadata could not be persisted");
        }
        report
    }
}

fn invalid_token() -> KinesisError {
    validate::invalid_argument("Invalid NextToken.")
}

fn wake_all_shards(stream: &StreamState) {
    for shard in state::read(&stream.topology).shards.values() {
        shard.changed.notify_waiters();
    }
}

fn check_tags(
    tags: &BTreeMap<String, String>,
    field: &str,
    max: usize,
) -> Result<(), KinesisError> {
    let mut violations = Violations::default();
    if tags.len() > max {
        violations.field(
            field,
            &format!("Member must have length less than or equal to {max}"),
        );
    }
    for (key, value) in tags {
        let key_length = key.chars().count();
        if key_length == 0 || key_length > 128 {
            violations.value(key, "tags.key", "Member must have length between 1 and 128");
        }
        if value.chars().count() > 256 {
            violations.value(
                value,
                "tags.value",
                "Member must have length less than or equal to 256",
            );
        }
    }
    violations.into_result()
}

fn check_tag_keys(keys: &[String]) -> Result<(), KinesisError> {
    let mut violations = Violations::default();
    if keys.is_empty() {
        violations.field(
            "tagKeys",
            "Member must have length greater than or equal to 1",
        );
    }
    if keys.len() > 50 {
        violations.field(
            "tagKeys",
            "Member must have length less than or equal to 50",
        );
    }
    violations.into_result()
}

/// Whether a retained shard passes a `ListShards` filter at wall time `now`.
fn shard_matches(
    stream: &StreamState,
    shard: &ShardState,
    filter: Option<&ShardFilter>,
    now: EpochMillis,
) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    match filter {
        ShardFilter::AfterShardId(id) => &shard.id > id,
        ShardFilter::AtLatest => shard.closed_at().is_none(),
        ShardFilter::FromTrimHorizon => true,
        ShardFilter::AtTrimHorizon => {
            let horizon = stream.horizon(now).max(stream.created_at);
            shard.open_during(horizon, horizon)
        }
        ShardFilter::AtTimestamp(at) => {
            let at = (*at).max(stream.created_at);
            shard.open_during(at, at)
        }
        ShardFilter::FromTimestamp(at) => shard.open_during(*at, EpochMillis(i64::MAX)),
    }
}

fn encode_filter(writer: PayloadWriter, filter: Option<&ShardFilter>) -> PayloadWriter {
    match filter {
        None => writer.u8(0),
        Some(ShardFilter::AfterShardId(id)) => writer.u8(1).str(id.as_str()),
        Some(ShardFilter::AtTrimHorizon) => writer.u8(2),
        Some(ShardFilter::FromTrimHorizon) => writer.u8(3),
        Some(ShardFilter::AtLatest) => writer.u8(4),
        Some(ShardFilter::AtTimestamp(at)) => writer.u8(5).i64(at.0),
        Some(ShardFilter::FromTimestamp(at)) => writer.u8(6).i64(at.0),
    }
}

fn decode_filter(reader: &mut PayloadReader<'_>) -> Option<Option<ShardFilter>> {
    Some(match reader.u8()? {
        0 => None,
        1 => Some(ShardFilter::AfterShardId(ShardId::from(reader.str()?))),
        2 => Some(ShardFilter::AtTrimHorizon),
        3 => Some(ShardFilter::FromTrimHorizon),
        4 => Some(ShardFilter::AtLatest),
        5 => Some(ShardFilter::AtTimestamp(EpochMillis(reader.i64()?))),
        6 => Some(ShardFilter::FromTimestamp(EpochMillis(reader.i64()?))),
        _ => return None,
    })
}

impl BrokerInner {
    pub(crate) fn seal_token(&self, kind: TokenKind, payload: Vec<u8>) -> String {
        self.sealer.seal(kind, &payload, self.now_wall())
    }

    /// Opens a pagination token, checking its age.
    pub(crate) fn open_token(&self, kind: TokenKind, token: &str) -> Result<Vec<u8>, KinesisError> {
        let (payload, created_at) = self.sealer.open(kind, token).ok_or_else(invalid_token)?;
        let age = self.now_wall().0.saturating_sub(created_at.0);
        let ttl = i64::try_from(self.config.next_token_ttl.as_millis()).unwrap_or(i64::MAX);
        if age > ttl {
            return Err(KinesisError::new(
                KinesisErrorKind::ExpiredNextToken,
                format!(
                    "The requested NextToken has expired. It was created at {} and is older than the tolerated {} seconds.",
                    super::token::format_java_date(created_at),
                    self.config.next_token_ttl.as_secs()
                ),
            ));
        }
        Ok(payload)
    }

    fn seal_list_shards_token(
        &self,
        stream: &StreamState,
        filter: Option<&ShardFilter>,
        last: &ShardId,
    ) -> String {
        let writer = PayloadWriter::default()
            .str(&stream.name)
            .u64(stream.uid)
            .str(last.as_str());
        self.seal_token(
            TokenKind::ListShards,
            encode_filter(writer, filter).finish(),
        )
    }

    #[allow(clippy::type_complexity)]
    fn open_list_shards_token(
        &self,
        token: &str,
    ) -> Result<(Arc<StreamState>, Option<ShardFilter>, Option<ShardId>), KinesisError> {
        let payload = self.open_token(TokenKind::ListShards, token)?;
        let mut reader = PayloadReader::new(&payload);
        let name = reader.str().ok_or_else(invalid_token)?;
        let uid = reader.u64().ok_or_else(invalid_token)?;
        let last = ShardId::from(reader.str().ok_or_else(invalid_token)?);
        let filter = decode_filter(&mut reader).ok_or_else(invalid_token)?;
        let stream = self.stream_by_name(name)?;
        if stream.uid != uid {
            return Err(self.stream_not_found(name));
        }
        Ok((stream, filter, Some(last)))
    }

    fn open_shards_in_account(&self) -> u32 {
        state::read(&self.streams)
            .values()
            .filter(|stream| state::lock(&stream.meta).deleting_since.is_none())
            .map(|stream| stream.open_shard_count())
            .sum()
    }

    fn on_demand_streams(&self) -> u32 {
        let count = state::read(&self.streams)
            .values()
            .filter(|stream| {
                let meta = state::lock(&stream.meta);
                meta.deleting_since.is_none() && meta.mode == StreamMode::OnDemand
            })
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn check_shard_limit(&self, additional: u32) -> Result<(), KinesisError> {
        let current = self.open_shards_in_account();
        if u64::from(current) + u64::from(additional) <= u64::from(self.config.shard_limit) {
            return Ok(());
        }
        Err(validate::limit_exceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {current}. Limit: {}. Number of additional shards that would have resulted from this request: {additional}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
            self.account(),
            self.config.region,
            self.config.shard_limit
        )))
    }

    fn check_on_demand_limit(&self) -> Result<(), KinesisError> {
        if self.on_demand_streams() < self.config.on_demand_stream_limit {
            return Ok(());
        }
        Err(validate::limit_exceeded(format!(
            "This request would exceed the limit of {} on-demand streams for the account {} in {}.",
            self.config.on_demand_stream_limit,
            self.account(),
            self.config.region
        )))
    }

    fn check_provisioned(&self, stream: &StreamState) -> Result<(), KinesisError> {
        if state::lock(&stream.meta).mode == StreamMode::OnDemand {
            return Err(validate::invalid_argument(format!(
                "Request is invalid. Stream {} under account {} is in On-Demand mode.",
                stream.name,
                self.account()
            )));
        }
        Ok(())
    }

    /// An open shard of the stream, for splitting or merging.
    fn open_shard(
        &self,
        stream: &StreamState,
        topology: &Topology,
        id: &ShardId,
        operation: &str,
    ) -> Result<Arc<ShardState>, KinesisError> {
        let Some(shard) = topology.shards.get(id) else {
            return Err(self.shard_not_found(id.as_str(), &stream.name));
        };
        if shard.closed_at().is_some() {
            return Err(validate::invalid_argument(format!(
                "Shard {id} in stream {} under account {} has already been merged or split, and thus is not eligible for {operation}.",
                stream.name,
                self.account()
            )));
        }
        Ok(Arc::clone(shard))
    }

    fn new_stream(
        &self,
        name: &str,
        shard_count: u32,
        mode: StreamMode,
        tags: BTreeMap<String, String>,
    ) -> StreamState {
        let now = self.now_wall();
        let counter = AtomicU64::new(0);
        let mut topology = Topology::default();
        for range in HashKeyRange::split_evenly(shard_count) {
            let id = topology.take_shard_id();
            let start = seq::from_counter(counter.load(Ordering::SeqCst));
            topology.add_open(Arc::new(ShardState::new(
                id,
                (None, None),
                range,
                start,
                now,
            )));
        }
        StreamState {
            name: name.to_owned(),
            arn: self.stream_arn(name),
            uid: self.next_stream_uid.fetch_add(1, Ordering::SeqCst),
            created_at: now,
            active_from: self.now_mono().saturating_add(self.config.create_delay),
            counter,
            retention_hours: AtomicU32::new(MIN_RETENTION_HOURS),
            deleting: AtomicBool::new(false),
            encrypted: AtomicBool::new(false),
            max_record_bytes: AtomicUsize::new(self.config.max_record_bytes),
            meta: Mutex::new(StreamMeta {
                mode,
                tags,
                ..StreamMeta::default()
            }),
            topology: RwLock::new(topology),
        }
    }

    /// Closes `parents` (holding the topology write lock) and opens `children`, each child
    /// described by its range and parents. Returns the children.
    fn reshard_locked(
        &self,
        stream: &StreamState,
        topology: &mut Topology,
        parents: &[&Arc<ShardState>],
        children: &[(HashKeyRange, Option<ShardId>, Option<ShardId>)],
    ) -> Vec<Arc<ShardState>> {
        let now = self.now_wall();
        let mut closing: Vec<_> = parents
            .iter()
            .map(|parent| state::write(&parent.log))
            .collect();
        // Taken after the parents' logs are locked: no parent record can get a larger value.
        let ending_sequence_number =
            seq::from_counter(stream.counter.fetch_add(1, Ordering::SeqCst));
        let starting_sequence_number = seq::from_counter(stream.counter.load(Ordering::SeqCst));
        let created: Vec<Arc<ShardState>> = children
            .iter()
            .map(|(range, parent, adjacent)| {
                let id = topology.take_shard_id();
                Arc::new(ShardState::new(
                    id,
                    (parent.clone(), adjacent.clone()),
                    *range,
                    starting_sequence_number,
                    now,
                ))
            })
            .collect();
        for (parent, log) in parents.iter().zip(closing.iter_mut()) {
            let children_of_parent = created
                .iter()
                .filter(|child| {
                    child.parent_shard_id.as_ref() == Some(&parent.id)
                        || child.adjacent_parent_shard_id.as_ref() == Some(&parent.id)
                })
                .map(|child| child.as_child())
                .collect();
            log.end = Some(ShardEnd {
                ending_sequence_number,
                closed_at: now.max(parent.created_at),
                children: children_of_parent,
            });
        }
        drop(closing);
        for parent in parents {
            topology.remove_open(&parent.id);
            parent.changed.notify_waiters();
        }
        for child in &created {
            topology.add_open(Arc::clone(child));
        }
        created
    }

    pub(crate) fn split_locked(
        &self,
        stream: &StreamState,
        topology: &mut Topology,
        parent: &Arc<ShardState>,
        new_start: u128,
    ) -> Vec<Arc<ShardState>> {
        let lower = HashKeyRange::new(parent.range.starting_hash_key, new_start - 1);
        let upper = HashKeyRange::new(new_start, parent.range.ending_hash_key);
        let parent_id = Some(parent.id.clone());
        self.reshard_locked(
            stream,
            topology,
            &[parent],
            &[(lower, parent_id.clone(), None), (upper, parent_id, None)],
        )
    }

    pub(crate) fn merge_locked(
        &self,
        stream: &StreamState,
        topology: &mut Topology,
        first: &Arc<ShardState>,
        second: &Arc<ShardState>,
    ) -> Arc<ShardState> {
        let range = HashKeyRange::new(
            first
                .range
                .starting_hash_key
                .min(second.range.starting_hash_key),
            first
                .range
                .ending_hash_key
                .max(second.range.ending_hash_key),
        );
        let child = (range, Some(first.id.clone()), Some(second.id.clone()));
        let mut created = self.reshard_locked(stream, topology, &[first, second], &[child]);
        created.remove(0)
    }

    /// Splits at every target boundary, then merges inside each target range, ending with
    /// `target` even open shards.
    fn reshape_uniformly(&self, stream: &StreamState, topology: &mut Topology, target: u32) {
        let targets = HashKeyRange::split_evenly(target);
        for boundary in targets.iter().skip(1).map(|range| range.starting_hash_key) {
            let Some(index) = topology.route(boundary) else {
                continue;
            };
            let shard = Arc::clone(&topology.open[index]);
            if shard.range.starting_hash_key != boundary {
                self.split_locked(stream, topology, &shard, boundary);
            }
        }
        for range in &targets {
            loop {
                let inside: Vec<Arc<ShardState>> = topology
                    .open
                    .iter()
                    .filter(|shard| {
                        range.contains(shard.range.starting_hash_key)
                            && range.contains(shard.range.ending_hash_key)
                    })
                    .take(2)
                    .cloned()
                    .collect();
                let [first, second] = inside.as_slice() else {
                    break;
                };
                self.merge_locked(stream, topology, first, second);
            }
        }
    }

    /// The stream named by a taggable resource ARN.
    fn tag_target(&self, resource_arn: &str) -> Result<StreamRef, KinesisError> {
        let is_consumer =
            validate::parse_arn(resource_arn).is_some_and(|arn| arn.consumer.is_some());
        if is_consumer {
            return Err(validate::invalid_argument(
                "Tagging consumers is not supported by this broker; tag the stream instead.",
            ));
        }
        self.stream_name_of_arn(resource_arn, "resourceARN")?;
        Ok(StreamRef::Arn(resource_arn.to_owned()))
    }
}
