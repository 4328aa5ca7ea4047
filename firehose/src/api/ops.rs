//! The operations of the Firehose API: decode the request, act on the catalog, deliveries and
//! buffer engine, encode the answer.

use super::FirehoseApi;
use super::catalog::{Entry, Source};
use super::error::ApiError;
use super::wire::{self, Tag, WireDestination};
use crate::config::DeliveryStreamConfig;
use base64::Engine as _;
use broker::engine::{PutRecordsInput, PutRecordsRequestEntry, StreamRef};
use broker::server::ExtensionRequest;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Largest `Data` of one record (botocore's `Data` shape: 1,024,000 bytes).
pub(crate) const MAX_RECORD_BYTES: usize = 1_024_000;
/// Largest total `Data` of one `PutRecordBatch` (4 MiB).
pub(crate) const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most records in one `PutRecordBatch`.
pub(crate) const MAX_BATCH_RECORDS: usize = 500;
/// Most delivery streams (AWS's default quota in the large regions).
const MAX_DELIVERY_STREAMS: usize = 5000;
/// Most tags on one delivery stream.
const MAX_TAGS: usize = 50;
/// Bodies above this size are decoded on a blocking thread.
const LARGE_BODY_BYTES: usize = 256 * 1024;
/// The partition key of buffer-stream records (one shard: the key does not matter).
const BUFFER_PARTITION_KEY: &str = "firehose";
/// The one destination's id, as AWS numbers it.
const DESTINATION_ID: &str = "destinationId-000000000001";

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        ApiError::Serialization(format!(
            "the request body is not valid for this operation: {error}"
        ))
    })
}

async fn decode_off_thread<T: DeserializeOwned + Send + 'static>(
    body: Bytes,
) -> Result<T, ApiError> {
    if body.len() < LARGE_BODY_BYTES {
        return decode(&body);
    }
    tokio::task::spawn_blocking(move || decode(&body))
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 64"
        )));
    }
    Ok(())
}

fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 || tag.key.starts_with("aws:") {
            return Err(ApiError::InvalidArgument(format!(
                "tag key {:?} must be 1 to 128 characters and must not start with aws:",
                tag.key
            )));
        }
        if tag
            .value
            .as_deref()
            .is_some_and(|value| value.chars().count() > 256)
        {
            return Err(ApiError::InvalidArgument(format!(
                "the value of tag {:?} must be at most 256 characters",
                tag.key
            )));
        }
    }
    Ok(())
}

/// `tags` with `added` applied (same key: value replaced), refused beyond 50 tags.
fn with_tags(tags: &[Tag], added: &[Tag]) -> Result<Vec<Tag>, ApiError> {
    let mut result = tags.to_vec();
    for tag in added {
        match result.iter_mut().find(|existing| existing.key == tag.key) {
            Some(existing) => existing.value = tag.value.clone(),
            None => result.push(tag.clone()),
        }
    }
    if result.len() > MAX_TAGS {
        return Err(ApiError::LimitExceeded(format!(
            "a delivery stream has at most {MAX_TAGS} tags; this request would make {}",
            result.len()
        )));
    }
    Ok(result)
}

impl FirehoseApi {
    /// Runs one operation.
    pub(crate) async fn dispatch(&self, request: ExtensionRequest) -> Result<Value, ApiError> {
        let body = request.body;
        match request.operation.as_str() {
            "CreateDeliveryStream" => self.create(decode(&body)?).await,
            "DescribeDeliveryStream" => self.describe(decode(&body)?).await,
            "ListDeliveryStreams" => self.list(decode(&body)?).await,
            "DeleteDeliveryStream" => self.delete(decode(&body)?).await,
            "PutRecord" => {
                let input: wire::PutRecordInput = decode_off_thread(body).await?;
                let data = decode_data(&input.record.data, 0)?;
                let mut answers = self.put(&input.delivery_stream_name, vec![data]).await?;
                match answers.pop() {
                    Some(Ok(record_id)) => Ok(json!({"RecordId": record_id, "Encrypted": false})),
                    Some(Err((_code, message))) => Err(ApiError::Unavailable(message)),
                    None => Err(ApiError::Unavailable("the record was not stored".into())),
                }
            }
            "PutRecordBatch" => self.put_batch(decode_off_thread(body).await?).await,
            "UpdateDestination" => self.update_destination(decode(&body)?).await,
            "TagDeliveryStream" => self.tag(decode(&body)?).await,
            "UntagDeliveryStream" => self.untag(decode(&body)?).await,
            "ListTagsForDeliveryStream" => self.list_tags(decode(&body)?).await,
            other => Err(ApiError::UnknownOperation(format!(
                "{}{other} is not an operation this broker's Firehose API serves",
                super::TARGET_PREFIX
            ))),
        }
    }

    fn account_id(&self) -> String {
        self.inner.options.source.config().account_id.clone()
    }

    fn region(&self) -> String {
        self.inner.options.source.config().region.clone()
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::stream_not_found(name, &self.account_id())
    }

    async fn create(&self, input: wire::CreateDeliveryStreamInput) -> Result<Value, ApiError> {
        let name = input.delivery_stream_name.clone();
        validate_name(&name)?;
        if let Some(member) = input.unsupported.keys().next() {
            return Err(ApiError::InvalidArgument(format!(
                "{member} is not supported by this broker's Firehose API (S3DestinationConfiguration and ExtendedS3DestinationConfiguration are)"
            )));
        }
        let tags = input.tags.clone().unwrap_or_default();
        validate_tags(&tags)?;
        let tags = with_tags(&[], &tags)?;
        let source = match input.delivery_stream_type.as_deref().unwrap_or("DirectPut") {
            "DirectPut" => {
                if input.kinesis_stream_source_configuration.is_some() {
                    return Err(ApiError::InvalidArgument(
                        "KinesisStreamSourceConfiguration is only allowed with DeliveryStreamType KinesisStreamAsSource".into(),
                    ));
                }
                Source::DirectPut
            }
            "KinesisStreamAsSource" => self.kinesis_source(&input).await?,
            other => {
                return Err(ApiError::InvalidArgument(format!(
                    "DeliveryStreamType {other} is not supported by this broker (DirectPut or KinesisStreamAsSource)"
                )));
            }
        };
        let (destination, extended) = match (
            input.extended_s3_destination_configuration,
            input.s3_destination_configuration,
        ) {
            (Some(extended), None) => (extended, true),
            (None, Some(plain)) => (plain, false),
            (Some(_), Some(_)) => {
                return Err(ApiError::InvalidArgument(
                    "give only one of ExtendedS3DestinationConfiguration and S3DestinationConfiguration".into(),
                ));
            }
            (None, None) => {
                return Err(ApiError::InvalidArgument(
                    "a destination is required: ExtendedS3DestinationConfiguration or S3DestinationConfiguration".into(),
                ));
            }
        };
        let resolved = destination.to_destination(extended, &|arn| self.lambda_command(arn))?;
        let config = DeliveryStreamConfig {
            name: name.clone(),
            version_id: 1,
            destination: resolved,
        };
        config.validate()?;
        let entry = Entry {
            arn: format!(
                "arn:aws:firehose:{}:{}:deliverystream/{name}",
                self.region(),
                self.account_id()
            ),
            source,
            destination,
            extended,
            config,
            tags,
            created_ms: now_ms(),
            updated_ms: None,
        };

        let mut state = self.inner.state.lock().await;
        if state.catalog.get(&name).is_some() {
            return Err(ApiError::InUse(format!(
                "Firehose {name} under accountId {} already exists",
                self.account_id()
            )));
        }
        if state.catalog.len() >= MAX_DELIVERY_STREAMS {
            return Err(ApiError::LimitExceeded(format!(
                "this account has {MAX_DELIVERY_STREAMS} delivery streams, the most allowed"
            )));
        }
        self.clear_leases(&name).await?;
        if entry.source == Source::DirectPut {
            self.delete_buffer_stream(&name).await;
            self.create_buffer_stream(&name).await?;
        }
        let handle = match self.start_delivery(&entry).await {
            Ok(handle) => handle,
            Err(error) => {
                if entry.source == Source::DirectPut {
                    self.delete_buffer_stream(&name).await;
                }
                return Err(error);
            }
        };
        if let Err(error) = state.catalog.put(entry.clone()).await {
            handle.shutdown().await;
            return Err(error);
        }
        state.deliveries.insert(name.clone(), handle);
        tracing::info!(delivery_stream = %name, source = entry.source.type_name(), "delivery stream created");
        Ok(json!({"DeliveryStreamARN": entry.arn}))
    }

    async fn kinesis_source(
        &self,
        input: &wire::CreateDeliveryStreamInput,
    ) -> Result<Source, ApiError> {
        let configuration = input.kinesis_stream_source_configuration.as_ref().ok_or_else(|| {
            ApiError::InvalidArgument(
                "KinesisStreamSourceConfiguration is required with DeliveryStreamType KinesisStreamAsSource".into(),
            )
        })?;
        let arn = &configuration.kinesis_stream_arn;
        let (region, account, stream_name) = wire::kinesis_stream_of(arn)?;
        if region != self.region() || account != self.account_id() {
            return Err(ApiError::InvalidArgument(format!(
                "KinesisStreamARN {arn} is not a stream of this broker (region {}, account {})",
                self.region(),
                self.account_id()
            )));
        }
        self.inner
            .options
            .source
            .describe_stream_summary(StreamRef::name(stream_name))
            .await
            .map_err(|error| {
                ApiError::InvalidArgument(format!("KinesisStreamARN {arn}: {}", error.message))
            })?;
        Ok(Source::KinesisStream {
            stream_arn: arn.clone(),
            stream_name: stream_name.to_owned(),
            role_arn: configuration.role_arn.clone(),
        })
    }

    async fn create_buffer_stream(&self, name: &str) -> Result<(), ApiError> {
        let input = broker::engine::CreateStreamInput {
            stream_name: name.to_owned(),
            shard_count: Some(1),
            ..Default::default()
        };
        self.inner
            .buffer
            .create_stream(input)
            .await
            .map_err(|error| {
                ApiError::Unavailable(format!("cannot create the buffer of {name}: {error}"))
            })
    }

    fn status(&self, entry: &Entry) -> &'static str {
        let delay = self.inner.options.source.config().create_delay;
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        if now_ms() < entry.created_ms.saturating_add(delay_ms) {
            "CREATING"
        } else {
            "ACTIVE"
        }
    }

    fn description(&self, entry: &Entry) -> Value {
        let source = match &entry.source {
            Source::DirectPut => json!({"DirectPutSourceDescription": {}}),
            Source::KinesisStream {
                stream_arn,
                role_arn,
                ..
            } => json!({"KinesisStreamSourceDescription": {
                "KinesisStreamARN": stream_arn,
                "RoleARN": role_arn,
                "DeliveryStartTimestamp": seconds(entry.created_ms),
            }}),
        };
        let mut destination = json!({
            "DestinationId": DESTINATION_ID,
            "S3DestinationDescription": entry.destination.description(false),
        });
        if entry.extended {
            destination["ExtendedS3DestinationDescription"] = entry.destination.description(true);
        }
        let mut description = json!({
            "DeliveryStreamName": entry.name(),
            "DeliveryStreamARN": entry.arn,
            "DeliveryStreamStatus": self.status(entry),
            "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
            "DeliveryStreamType": entry.source.type_name(),
            "VersionId": entry.config.version_id.to_string(),
            "CreateTimestamp": seconds(entry.created_ms),
            "Source": source,
            "Destinations": [destination],
            "HasMoreDestinations": false,
        });
        if let Some(updated) = entry.updated_ms {
            description["LastUpdateTimestamp"] = json!(seconds(updated));
        }
        description
    }

    async fn describe(&self, input: wire::StreamNameInput) -> Result<Value, ApiError> {
        let state = self.inner.state.lock().await;
        let entry = state
            .catalog
            .get(&input.delivery_stream_name)
            .ok_or_else(|| self.not_found(&input.delivery_stream_name))?;
        Ok(json!({"DeliveryStreamDescription": self.description(entry)}))
    }

    async fn list(&self, input: wire::ListDeliveryStreamsInput) -> Result<Value, ApiError> {
        let limit = match input.limit {
            None => 10,
            Some(limit @ 1..=10_000) => usize::try_from(limit).unwrap_or(10_000),
            Some(limit) => {
                return Err(ApiError::Validation(format!(
                    "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000"
                )));
            }
        };
        let state = self.inner.state.lock().await;
        let matching: Vec<String> = state
            .catalog
            .entries()
            .filter(|entry| {
                input
                    .delivery_stream_type
                    .as_deref()
                    .is_none_or(|kind| kind == entry.source.type_name())
            })
            .filter(|entry| {
                input
                    .exclusive_start_delivery_stream_name
                    .as_deref()
                    .is_none_or(|start| entry.name() > start)
            })
            .map(|entry| entry.name().to_owned())
            .collect();
        let has_more = matching.len() > limit;
        let names: Vec<String> = matching.into_iter().take(limit).collect();
        Ok(json!({"DeliveryStreamNames": names, "HasMoreDeliveryStreams": has_more}))
    }

    async fn delete(&self, input: wire::StreamNameInput) -> Result<Value, ApiError> {
        let name = input.delivery_stream_name;
        let mut state = self.inner.state.lock().await;
        let entry = state
            .catalog
            .get(&name)
            .cloned()
            .ok_or_else(|| self.not_found(&name))?;
        let handle = state.deliveries.remove(&name);
        state.catalog.remove(&name).await?;
        drop(state);
        // Stopping waits for the batch in hand (a transformation may take minutes): other
        // requests must not wait behind it.
        if let Some(handle) = handle {
            handle.shutdown().await;
        }
        if entry.source == Source::DirectPut {
            self.delete_buffer_stream(&name).await;
        }
        if let Err(error) = self.clear_leases(&name).await {
            tracing::warn!(delivery_stream = %name, error = %error, "cannot clear the leases of a deleted delivery stream");
        }
        tracing::info!(delivery_stream = %name, "delivery stream deleted");
        Ok(json!({}))
    }

    /// Stores `records` in the buffer stream of DirectPut stream `name`: per record, the
    /// `RecordId` or (error code, message).
    async fn put(
        &self,
        name: &str,
        records: Vec<Bytes>,
    ) -> Result<Vec<Result<String, (String, String)>>, ApiError> {
        {
            let state = self.inner.state.lock().await;
            let entry = state
                .catalog
                .get(name)
                .ok_or_else(|| self.not_found(name))?;
            if entry.source != Source::DirectPut {
                return Err(ApiError::InvalidArgument(format!(
                    "This operation is not permitted on KinesisStreamAsSource delivery stream type. Delivery stream {name}"
                )));
            }
        }
        let input = PutRecordsInput {
            stream: StreamRef::name(name),
            records: records
                .into_iter()
                .map(|data| PutRecordsRequestEntry {
                    data,
                    partition_key: BUFFER_PARTITION_KEY.to_owned(),
                    explicit_hash_key: None,
                })
                .collect(),
        };
        let output = self
            .inner
            .buffer
            .put_records(input)
            .await
            .map_err(|error| ApiError::Unavailable(format!("cannot store the records: {error}")))?;
        Ok(output
            .records
            .into_iter()
            .map(|entry| match entry.sequence_number {
                Some(sequence) if entry.error_code.is_none() => Ok(sequence.to_string()),
                _ => Err((
                    "ServiceUnavailableException".to_owned(),
                    entry
                        .error_message
                        .unwrap_or_else(|| "Slow down.".to_owned()),
                )),
            })
            .collect())
    }

    async fn put_batch(&self, input: wire::PutRecordBatchInput) -> Result<Value, ApiError> {
        if input.records.is_empty() || input.records.len() > MAX_BATCH_RECORDS {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_RECORDS} and greater than or equal to 1 (got {})",
                input.records.len()
            )));
        }
        let mut records = Vec::with_capacity(input.records.len());
        let mut total = 0usize;
        for (index, record) in input.records.iter().enumerate() {
            let data = decode_data(&record.data, index + 1)?;
            total += data.len();
            records.push(data);
        }
        if total > MAX_BATCH_BYTES {
            return Err(ApiError::InvalidArgument(format!(
                "Records size exceeds 4 MiB limit: the records of this request total {total} bytes"
            )));
        }
        let answers = self.put(&input.delivery_stream_name, records).await?;
        let failed = answers.iter().filter(|answer| answer.is_err()).count();
        let responses: Vec<Value> = answers
            .into_iter()
            .map(|answer| match answer {
                Ok(record_id) => json!({"RecordId": record_id}),
                Err((code, message)) => json!({"ErrorCode": code, "ErrorMessage": message}),
            })
            .collect();
        Ok(json!({
            "FailedPutCount": failed,
            "Encrypted": false,
            "RequestResponses": responses,
        }))
    }

    async fn update_destination(
        &self,
        input: wire::UpdateDestinationInput,
    ) -> Result<Value, ApiError> {
        let name = input.delivery_stream_name.clone();
        if let Some(member) = input.unsupported.keys().next() {
            return Err(ApiError::InvalidArgument(format!(
                "{member} is not supported by this broker's Firehose API (S3DestinationUpdate and ExtendedS3DestinationUpdate are)"
            )));
        }
        let mut state = self.inner.state.lock().await;
        let entry = state
            .catalog
            .get(&name)
            .cloned()
            .ok_or_else(|| self.not_found(&name))?;
        if input.destination_id != DESTINATION_ID {
            return Err(ApiError::InvalidArgument(format!(
                "DestinationId {} does not exist for delivery stream {name} (its destination is {DESTINATION_ID})",
                input.destination_id
            )));
        }
        let current = entry.config.version_id.to_string();
        if input.current_delivery_stream_version_id != current {
            return Err(ApiError::ConcurrentModification(format!(
                "Cannot update firehose: {name} since the current version id: {current} and specified version id: {} do not match",
                input.current_delivery_stream_version_id
            )));
        }
        let (update, extended) = match (
            input.extended_s3_destination_update,
            input.s3_destination_update,
        ) {
            (Some(update), None) => (update, true),
            (None, Some(update)) => (update, entry.extended),
            _ => {
                return Err(ApiError::InvalidArgument(
                    "give exactly one of ExtendedS3DestinationUpdate and S3DestinationUpdate"
                        .into(),
                ));
            }
        };
        let merged: WireDestination = entry.destination.merged_with(&update);
        let resolved = merged.to_destination(extended, &|arn| self.lambda_command(arn))?;
        let config = DeliveryStreamConfig {
            name: name.clone(),
            version_id: entry.config.version_id + 1,
            destination: resolved,
        };
        config.validate()?;
        let updated = Entry {
            destination: merged,
            extended,
            config: config.clone(),
            updated_ms: Some(now_ms()),
            ..entry
        };
        state.catalog.put(updated).await?;
        if let Some(handle) = state.deliveries.get(&name) {
            handle.update_destination(config.destination);
        }
        tracing::info!(delivery_stream = %name, version_id = config.version_id, "destination updated");
        Ok(json!({}))
    }

    async fn tag(&self, input: wire::TagDeliveryStreamInput) -> Result<Value, ApiError> {
        validate_tags(&input.tags)?;
        let mut state = self.inner.state.lock().await;
        let mut entry = state
            .catalog
            .get(&input.delivery_stream_name)
            .cloned()
            .ok_or_else(|| self.not_found(&input.delivery_stream_name))?;
        entry.tags = with_tags(&entry.tags, &input.tags)?;
        state.catalog.put(entry).await?;
        Ok(json!({}))
    }

    async fn untag(&self, input: wire::UntagDeliveryStreamInput) -> Result<Value, ApiError> {
        let mut state = self.inner.state.lock().await;
        let mut entry = state
            .catalog
            .get(&input.delivery_stream_name)
            .cloned()
            .ok_or_else(|| self.not_found(&input.delivery_stream_name))?;
        entry.tags.retain(|tag| !input.tag_keys.contains(&tag.key));
        state.catalog.put(entry).await?;
        Ok(json!({}))
    }

    async fn list_tags(
        &self,
        input: wire::ListTagsForDeliveryStreamInput,
    ) -> Result<Value, ApiError> {
        let limit = match input.limit {
            None => MAX_TAGS,
            Some(limit @ 1..=50) => usize::try_from(limit).unwrap_or(MAX_TAGS),
            Some(limit) => {
                return Err(ApiError::Validation(format!(
                    "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 50"
                )));
            }
        };
        let state = self.inner.state.lock().await;
        let entry = state
            .catalog
            .get(&input.delivery_stream_name)
            .ok_or_else(|| self.not_found(&input.delivery_stream_name))?;
        let start = match &input.exclusive_start_tag_key {
            Some(key) => entry
                .tags
                .iter()
                .position(|tag| &tag.key == key)
                .map_or(entry.tags.len(), |index| index + 1),
            None => 0,
        };
        let rest = &entry.tags[start..];
        let page: Vec<Value> = rest
            .iter()
            .take(limit)
            .map(|tag| json!({"Key": tag.key, "Value": tag.value.clone().unwrap_or_default()}))
            .collect();
        Ok(json!({"Tags": page, "HasMoreTags": rest.len() > limit}))
    }
}

/// The bytes of a record's base64 `Data`, refused above 1,000 KiB (`index` numbers the
/// record in a batch from 1; 0 is `PutRecord`'s one record).
fn decode_data(text: &str, index: usize) -> Result<Bytes, ApiError> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| {
            ApiError::Serialization(format!(
                "Data of record {index} is not valid base64: {error}"
            ))
        })?;
    if data.len() > MAX_RECORD_BYTES {
        let at = if index == 0 {
            "record.member.data".to_owned()
        } else {
            format!("records.{index}.member.data")
        };
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value at '{at}' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}"
        )));
    }
    Ok(Bytes::from(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model_pattern() {
        for good in ["a", "my-stream_1.x", &"n".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "slash/", &"n".repeat(65)] {
            let error = validate_name(bad).unwrap_err();
            assert_eq!(error.aws_type(), "ValidationException", "{bad}");
        }
    }

    #[test]
    fn tags_replace_by_key_and_stop_at_fifty() {
        let tag = |key: &str, value: &str| Tag {
            key: key.into(),
            value: Some(value.into()),
        };
        let tags = with_tags(&[tag("a", "1")], &[tag("a", "2"), tag("b", "3")]).unwrap();
        assert_eq!(tags, vec![tag("a", "2"), tag("b", "3")]);
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(
            with_tags(&[], &many).unwrap_err().aws_type(),
            "LimitExceededException"
        );
        assert!(validate_tags(&[tag("aws:x", "1")]).is_err());
    }

    #[test]
    fn record_data_is_base64_of_at_most_1000_kib() {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(
            decode_data(&encode(b"hi"), 1).unwrap(),
            Bytes::from_static(b"hi")
        );
        assert_eq!(
            decode_data(&encode(&vec![0; MAX_RECORD_BYTES]), 1)
                .unwrap()
                .len(),
            MAX_RECORD_BYTES
        );
        let error = decode_data(&encode(&vec![0; MAX_RECORD_BYTES + 1]), 3).unwrap_err();
        assert_eq!(error.aws_type(), "ValidationException");
        assert!(
            error.to_string().contains("records.3.member.data"),
            "{error}"
        );
        assert_eq!(
            decode_data("not base64!", 1).unwrap_err().aws_type(),
            "SerializationException"
        );
    }
}
