//! Runs one delivery stream: a kcl-worker [`Scheduler`](kcl_worker::scheduler::Scheduler)
//! over the source stream whose record processors buffer, transform and write objects, and
//! checkpoint only what is durable in the sink.
//!
//! Per shard, records are (optionally) transformed batch by batch, routed to a buffer per
//! partition (dynamic partitioning) or to an error buffer, and a buffer becomes one object
//! when it reaches the size hint or the interval hint. The shard is checkpointed at the last
//! record before the oldest record still buffered, only after the objects holding everything
//! before it were stored: a crash anywhere re-reads and re-delivers (at-least-once), never
//! loses.

use crate::buffer::{Buffer, FlushReason, encode};
use crate::config::{DeliveryStreamConfig, DynamicPartitioning, S3Destination};
use crate::error::FirehoseError;
use crate::layout::{
    MAX_PARTITION_VALUES_BYTES, PrefixContext, PrefixTemplate, object_name, random_string,
    validate_partition_value,
};
use crate::sink::ObjectSink;
use crate::transform::{TransformInput, TransformOutcome, Transformer, error_record_line};
use bytes::Bytes;
use kcl_core::clock::SharedClock;
use kcl_core::kinesis::{EpochMillis, ShardId};
use kcl_core::lease::ExtendedSequenceNumber;
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::InitialPosition;
use kcl_core::stream_client::StreamClient;
use kcl_worker::checkpointer::RecordCheckpointer;
use kcl_worker::config::SchedulerConfig;
use kcl_worker::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
};
use kcl_worker::record::KinesisClientRecord;
use kcl_worker::scheduler::{Scheduler, SchedulerHandle};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::Instrument;

/// Everything a delivery needs.
#[derive(Clone)]
pub struct DeliveryParams {
    /// The delivery stream.
    pub config: DeliveryStreamConfig,
    /// The stream read (in `stream_client`).
    pub source_stream: String,
    /// Reads the source stream.
    pub stream_client: Arc<dyn StreamClient>,
    /// Leases and checkpoints (application `firehose-<name>`).
    pub lease_store: Arc<dyn LeaseStore>,
    /// Where objects go.
    pub sink: Arc<dyn ObjectSink>,
    /// Monotonic time (buffer intervals, transformation timeouts) and wall time (keys).
    pub clock: SharedClock,
    /// This worker's id in the lease table.
    pub worker_id: String,
    /// Where shards never delivered before start: TRIM_HORIZON for a DirectPut buffer stream;
    /// AWS starts a KinesisStreamAsSource delivery at LATEST (Firehose developer guide, "reads
    /// data from the LATEST position").
    pub initial_position: InitialPosition,
    /// The delivery stream's ARN (`arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME`), given
    /// to the transformation; empty: one is made up in `us-east-1`, account `000000000000`.
    pub delivery_stream_arn: String,
}

impl std::fmt::Debug for DeliveryParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryParams")
            .field("config", &self.config)
            .field("source_stream", &self.source_stream)
            .field("worker_id", &self.worker_id)
            .field("initial_position", &self.initial_position)
            .finish_non_exhaustive()
    }
}

/// Counters of one delivery (since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Records read from the source (a record read again after a restart counts again).
    pub records_in: u64,
    /// Records written to delivered objects.
    pub records_delivered: u64,
    /// Records the transformation dropped.
    pub records_dropped: u64,
    /// Records written to the error prefix.
    pub records_failed: u64,
    /// Objects written (data and error objects).
    pub files: u64,
    /// Bytes written (after compression).
    pub bytes: u64,
}

/// The error-output type of records the transformation failed.
pub const PROCESSING_FAILED: &str = "processing-failed";
/// The error-output type of records whose partition keys could not be extracted.
pub const PARTITIONING_FAILED: &str = "partitioning-failed";
/// The error code of records whose partition keys could not be extracted.
pub const PARTITIONING_FAILED_CODE: &str = "DynamicPartitioning.MetadataExtractionFailed";

/// Most records per transformation invocation.
const MAX_RECORDS_PER_INVOCATION: usize = 500;
/// Most payload bytes per transformation invocation (Lambda's request limit is 6 MB, and
/// base64 adds a third).
const MAX_BYTES_PER_INVOCATION: usize = 3 * 1024 * 1024;
/// Attempts at storing an object before the batch is handed back to the worker's retries.
const SINK_ATTEMPTS: usize = 3;

#[derive(Debug, Default)]
struct Counters {
    records_in: AtomicU64,
    records_delivered: AtomicU64,
    records_dropped: AtomicU64,
    records_failed: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
}

/// What the processors of one delivery share.
#[derive(Debug)]
struct Shared {
    config: RwLock<DeliveryStreamConfig>,
    generation: AtomicU64,
    sink: Arc<dyn ObjectSink>,
    clock: SharedClock,
    delivery_stream_arn: String,
    counters: Counters,
}

/// A configuration with its prefixes parsed and its transformer made.
#[derive(Debug)]
struct Compiled {
    config: DeliveryStreamConfig,
    prefix: PrefixTemplate,
    error_prefix: PrefixTemplate,
    transformer: Option<Transformer>,
}

impl Shared {
    fn config(&self) -> DeliveryStreamConfig {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn compile(&self) -> Result<Compiled, FirehoseError> {
        let config = self.config();
        let destination = &config.destination;
        Ok(Compiled {
            prefix: PrefixTemplate::parse("Prefix", destination.prefix.as_deref())?,
            error_prefix: PrefixTemplate::parse(
                "ErrorOutputPrefix",
                destination.error_output_prefix.as_deref(),
            )?,
            transformer: destination.processing.clone().map(|processing| {
                Transformer::new(
                    processing,
                    self.delivery_stream_arn.clone(),
                    self.clock.clone(),
                )
            }),
            config,
        })
    }

    fn add(&self, counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}

/// Which buffer a record goes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum BufferKey {
    /// Delivered data, by partition key values (empty without dynamic partitioning).
    Data(BTreeMap<String, String>),
    /// Error records of one error-output type.
    Error(&'static str),
}

/// The record processor of one shard of one delivery.
struct DeliveryProcessor {
    shared: Arc<Shared>,
    span: tracing::Span,
    delivery_stream: String,
    compiled: Option<(u64, Arc<Compiled>)>,
    buffers: BTreeMap<BufferKey, Buffer>,
    /// The last record routed to a buffer (or dropped); later copies of it are skipped.
    last_processed: Option<ExtendedSequenceNumber>,
    /// The last checkpoint written or found.
    checkpointed: Option<ExtendedSequenceNumber>,
    next_order: u64,
}

impl DeliveryProcessor {
    fn new(shared: Arc<Shared>, shard_id: &ShardId) -> Self {
        let delivery_stream = shared.config().name;
        DeliveryProcessor {
            span: tracing::info_span!("firehose_delivery", delivery_stream = %delivery_stream, shard_id = %shard_id),
            shared,
            delivery_stream,
            compiled: None,
            buffers: BTreeMap::new(),
            last_processed: None,
            checkpointed: None,
            next_order: 0,
        }
    }

    /// The current configuration, recompiled when `update_destination` changed it.
    fn compiled(&mut self) -> Result<Arc<Compiled>, FirehoseError> {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if let Some((compiled_generation, compiled)) = &self.compiled
            && *compiled_generation == generation
        {
            return Ok(compiled.clone());
        }
        let compiled = Arc::new(self.shared.compile()?);
        self.compiled = Some((generation, compiled.clone()));
        Ok(compiled)
    }

    async fn process(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        let compiled = self.compiled()?;
        // A batch retried after a failure starts with records already buffered: skip them.
        let fresh: Vec<&KinesisClientRecord> = input
            .records
            .iter()
            .filter(|record| {
                self.last_processed
                    .is_none_or(|last| record.extended_sequence_number() > last)
            })
            .collect();
        self.shared
            .add(&self.shared.counters.records_in, fresh.len() as u64);
        metrics::counter!("kcl_firehose_records_in_total", "delivery_stream" => self.delivery_stream.clone())
            .increment(fresh.len() as u64);
        for chunk in chunks(&fresh) {
            self.route_chunk(&compiled, chunk).await?;
        }
        self.flush_due(&compiled).await?;
        self.checkpoint(&input.checkpointer).await?;
        Ok(())
    }

    /// Transforms a chunk and routes every record to its buffer, flushing full buffers.
    async fn route_chunk(
        &mut self,
        compiled: &Compiled,
        chunk: &[&KinesisClientRecord],
    ) -> Result<(), FirehoseError> {
        let (outcomes, attempts, attempt_ending) = match &compiled.transformer {
            None => (
                chunk
                    .iter()
                    .map(|record| TransformOutcome::Ok(record.data.clone()))
                    .collect(),
                0,
                EpochMillis(0),
            ),
            Some(transformer) => {
                let inputs: Vec<TransformInput> = chunk
                    .iter()
                    .map(|record| TransformInput {
                        record_id: format!(
                            "{}-{}",
                            record.sequence_number, record.sub_sequence_number
                        ),
                        arrival: record.approximate_arrival_timestamp,
                        data: record.data.clone(),
                    })
                    .collect();
                let output = transformer.transform(&inputs).await;
                (output.outcomes, output.attempts, output.attempt_ending)
            }
        };
        let lambda_arn = compiled.transformer.as_ref().map(Transformer::function_arn);
        for (record, outcome) in chunk.iter().zip(outcomes) {
            let (key, data) = match outcome {
                TransformOutcome::Dropped => {
                    self.shared.add(&self.shared.counters.records_dropped, 1);
                    self.last_processed = Some(record.extended_sequence_number());
                    continue;
                }
                TransformOutcome::Failed {
                    error_code,
                    error_message,
                } => (
                    BufferKey::Error(PROCESSING_FAILED),
                    error_record_line(
                        attempts,
                        record.approximate_arrival_timestamp,
                        &error_code,
                        &error_message,
                        attempt_ending,
                        &record.data,
                        lambda_arn,
                    ),
                ),
                TransformOutcome::Ok(data) => {
                    match partition_of(
                        compiled.config.destination.dynamic_partitioning.as_ref(),
                        &data,
                    ) {
                        Ok(values) => (BufferKey::Data(values), data),
                        Err(message) => (
                            BufferKey::Error(PARTITIONING_FAILED),
                            error_record_line(
                                attempts.max(1),
                                record.approximate_arrival_timestamp,
                                PARTITIONING_FAILED_CODE,
                                &message,
                                self.shared.clock.wall(),
                                &data,
                                lambda_arn,
                            ),
                        ),
                    }
                }
            };
            self.push(key.clone(), data, record);
            let hints = compiled.config.destination.buffering;
            let now = self.shared.clock.monotonic();
            if self
                .buffers
                .get(&key)
                .and_then(|buffer| buffer.due(&hints, now))
                == Some(FlushReason::Size)
            {
                self.flush(compiled, &key, FlushReason::Size).await?;
            }
        }
        Ok(())
    }

    fn push(&mut self, key: BufferKey, data: Bytes, record: &KinesisClientRecord) {
        let resume_point = self.last_processed.or(self.checkpointed);
        let order = self.next_order;
        self.next_order += 1;
        let now = self.shared.clock.monotonic();
        self.buffers.entry(key).or_default().push(
            data,
            record.approximate_arrival_timestamp,
            now,
            resume_point,
            order,
        );
        self.last_processed = Some(record.extended_sequence_number());
    }

    /// Flushes every buffer whose interval has passed (or that is full).
    async fn flush_due(&mut self, compiled: &Compiled) -> Result<(), FirehoseError> {
        let hints = compiled.config.destination.buffering;
        let now = self.shared.clock.monotonic();
        let due: Vec<(BufferKey, FlushReason)> = self
            .buffers
            .iter()
            .filter_map(|(key, buffer)| buffer.due(&hints, now).map(|reason| (key.clone(), reason)))
            .collect();
        for (key, reason) in due {
            self.flush(compiled, &key, reason).await?;
        }
        Ok(())
    }

    async fn flush_all(&mut self, compiled: &Compiled) -> Result<(), FirehoseError> {
        let keys: Vec<BufferKey> = self.buffers.keys().cloned().collect();
        for key in keys {
            self.flush(compiled, &key, FlushReason::ShardEnd).await?;
        }
        Ok(())
    }

    /// Writes one buffer as one object; the buffer is emptied only once the object is stored.
    async fn flush(
        &mut self,
        compiled: &Compiled,
        key: &BufferKey,
        reason: FlushReason,
    ) -> Result<(), FirehoseError> {
        let Some(buffer) = self.buffers.get(key).filter(|buffer| !buffer.is_empty()) else {
            return Ok(());
        };
        let destination = &compiled.config.destination;
        let no_partition = BTreeMap::new();
        let (template, partition_keys, error_output_type) = match key {
            BufferKey::Data(values) => (&compiled.prefix, values, None),
            BufferKey::Error(kind) => (&compiled.error_prefix, &no_partition, Some(*kind)),
        };
        let random = random_string();
        let prefix = template.render(&PrefixContext {
            timestamp: buffer.first_arrival(),
            partition_keys,
            error_output_type,
            random_string: &random,
        });
        let object_key = format!(
            "{prefix}{}",
            object_name(
                &compiled.config.name,
                compiled.config.version_id,
                self.shared.clock.wall(),
                uuid::Uuid::new_v4(),
                destination.compression,
            )
        );
        let records = buffer.records();
        let record_count = records.len() as u64;
        let compression = destination.compression;
        let body = tokio::task::spawn_blocking(move || encode(&records, compression))
            .await
            .map_err(|join| FirehoseError::Worker(format!("encoding an object: {join}")))??;
        let body_len = body.len() as u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .shared
                .sink
                .put(&destination.bucket, &object_key, body.clone())
                .await
            {
                Ok(()) => break,
                Err(error) if attempt < SINK_ATTEMPTS => {
                    tracing::warn!(%error, key = %object_key, attempt, "storing an object failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                }
                Err(error) => {
                    tracing::error!(%error, key = %object_key, "storing an object failed; the records stay buffered and are retried");
                    metrics::counter!("kcl_firehose_sink_failures_total", "delivery_stream" => self.delivery_stream.clone()).increment(1);
                    return Err(error);
                }
            }
        }
        let counters = &self.shared.counters;
        match key {
            BufferKey::Data(_) => self.shared.add(&counters.records_delivered, record_count),
            BufferKey::Error(_) => self.shared.add(&counters.records_failed, record_count),
        }
        self.shared.add(&counters.files, 1);
        self.shared.add(&counters.bytes, body_len);
        let labels = [
            ("delivery_stream", self.delivery_stream.clone()),
            (
                "kind",
                if matches!(key, BufferKey::Data(_)) {
                    "data"
                } else {
                    "error"
                }
                .to_owned(),
            ),
        ];
        metrics::counter!("kcl_firehose_files_total", &labels).increment(1);
        metrics::counter!("kcl_firehose_records_written_total", &labels).increment(record_count);
        metrics::counter!("kcl_firehose_bytes_written_total", &labels).increment(body_len);
        tracing::debug!(key = %object_key, records = record_count, bytes = body_len, reason = reason.as_str(), "object stored");
        self.buffers.remove(key);
        Ok(())
    }

    /// Checkpoints at the last record before the oldest one still buffered (or the last
    /// processed record when nothing is buffered).
    async fn checkpoint(
        &mut self,
        checkpointer: &RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        let oldest_pending = self
            .buffers
            .values()
            .filter(|buffer| !buffer.is_empty())
            .min_by_key(|buffer| buffer.opened_order());
        let target = match oldest_pending {
            Some(buffer) => buffer.resume_point(),
            None => self.last_processed,
        };
        let Some(target) = target else {
            return Ok(());
        };
        let Some(sequence_number) = target.sequence_number() else {
            return Ok(());
        };
        if self.checkpointed.is_some_and(|done| done >= target) {
            return Ok(());
        }
        match checkpointer
            .checkpoint_at(sequence_number, target.sub_sequence_number)
            .await
        {
            Ok(()) => {
                self.checkpointed = Some(target);
                Ok(())
            }
            // Records of a batch whose call failed (and is being retried) are buffered but not
            // yet delivered in the worker's eyes: checkpoint them after the retry succeeds.
            Err(kcl_core::checkpoint::CheckpointError::OutOfRange { .. }) => {
                tracing::debug!(%target, "checkpoint deferred until the batch is delivered");
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Splits records into transformation-sized chunks.
fn chunks<'a>(records: &'a [&'a KinesisClientRecord]) -> Vec<&'a [&'a KinesisClientRecord]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, record) in records.iter().enumerate() {
        let full = index - start >= MAX_RECORDS_PER_INVOCATION
            || (bytes + record.data.len() > MAX_BYTES_PER_INVOCATION && index > start);
        if full {
            chunks.push(&records[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += record.data.len();
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

/// The partition key values of a record (empty without dynamic partitioning), or why they
/// could not be extracted.
fn partition_of(
    partitioning: Option<&DynamicPartitioning>,
    data: &[u8],
) -> Result<BTreeMap<String, String>, String> {
    let Some(partitioning) = partitioning else {
        return Ok(BTreeMap::new());
    };
    let json: serde_json::Value =
        serde_json::from_slice(data).map_err(|error| format!("the record is not JSON: {error}"))?;
    let mut values = BTreeMap::new();
    for key in &partitioning.keys {
        let mut node = &json;
        for segment in &key.path {
            node = node.get(segment).ok_or_else(|| {
                format!(
                    "the record has no .{} for key {:?}",
                    key.path.join("."),
                    key.name
                )
            })?;
        }
        let value = match node {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => {
                return Err(format!(
                    "the value of key {:?} must be a string, number or boolean",
                    key.name
                ));
            }
        };
        validate_partition_value(&value).map_err(|rule| format!("key {:?}: {rule}", key.name))?;
        values.insert(key.name.clone(), value);
    }
    let values_bytes: usize = values.values().map(String::len).sum();
    if values_bytes > MAX_PARTITION_VALUES_BYTES {
        return Err(format!(
            "the partition values take {values_bytes} bytes together, more than {MAX_PARTITION_VALUES_BYTES}"
        ));
    }
    Ok(values)
}

#[async_trait::async_trait]
impl ShardRecordProcessor for DeliveryProcessor {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        self.checkpointed = Some(input.extended_sequence_number);
        Ok(())
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        let span = self.span.clone();
        self.process(input).instrument(span).await
    }

    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        let span = self.span.clone();
        async {
            let compiled = self.compiled()?;
            self.flush_all(&compiled).await?;
            checkpointer.checkpoint().await?;
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        // Nothing new is flushed: what is durable is checkpointed, the rest is read again.
        let span = self.span.clone();
        self.checkpoint(&checkpointer).instrument(span).await
    }
}

/// Starts deliveries.
#[derive(Debug)]
pub struct Delivery;

impl Delivery {
    /// Validates the configuration and starts consuming the source stream with a kcl-worker
    /// scheduler (application `firehose-<name>`).
    pub async fn start(params: DeliveryParams) -> Result<DeliveryHandle, FirehoseError> {
        params.config.validate()?;
        let name = params.config.name.clone();
        let delivery_stream_arn = if params.delivery_stream_arn.is_empty() {
            format!("arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}")
        } else {
            params.delivery_stream_arn.clone()
        };
        let shared = Arc::new(Shared {
            config: RwLock::new(params.config.clone()),
            generation: AtomicU64::new(0),
            sink: params.sink.clone(),
            clock: params.clock.clone(),
            delivery_stream_arn,
            counters: Counters::default(),
        });
        let mut config = SchedulerConfig::new(
            format!("firehose-{name}"),
            params.source_stream.clone(),
            params.worker_id.clone(),
            params.lease_store.clone(),
            params.stream_client.clone(),
        );
        config.initial_position = params.initial_position;
        config.clock = params.clock.clone();
        config.call_process_records_even_for_empty_record_list = true;
        config.empty_record_list_interval = Duration::from_secs(1);
        config.metrics_interval = None;
        let factory_shared = shared.clone();
        let scheduler = Scheduler::new(config, move |shard_id: &ShardId| {
            Box::new(DeliveryProcessor::new(factory_shared.clone(), shard_id))
                as Box<dyn ShardRecordProcessor>
        })?;
        let scheduler_handle = scheduler.handle();
        let span = tracing::info_span!("firehose_delivery", delivery_stream = %name);
        let running = tokio::spawn(
            async move {
                if let Err(error) = scheduler.run().await {
                    tracing::error!(%error, "the delivery's worker stopped");
                }
            }
            .instrument(span),
        );
        Ok(DeliveryHandle {
            shared,
            scheduler: scheduler_handle,
            running,
        })
    }
}

/// A running delivery.
#[derive(Debug)]
pub struct DeliveryHandle {
    shared: Arc<Shared>,
    scheduler: SchedulerHandle,
    running: tokio::task::JoinHandle<()>,
}

impl DeliveryHandle {
    /// Replaces the destination and bumps `version_id` (as `UpdateDestination` does): new
    /// hints, prefixes and processing apply from the next object. Records already buffered
    /// go out with the next object under the new settings.
    pub fn update_destination(&self, destination: S3Destination) {
        let mut config = self
            .shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        config.destination = destination;
        config.version_id += 1;
        self.shared.generation.fetch_add(1, Ordering::Release);
    }

    /// The configuration in use.
    pub fn config(&self) -> DeliveryStreamConfig {
        self.shared.config()
    }

    /// The delivery's counters.
    pub fn stats(&self) -> DeliveryStats {
        let counters = &self.shared.counters;
        DeliveryStats {
            records_in: counters.records_in.load(Ordering::Relaxed),
            records_delivered: counters.records_delivered.load(Ordering::Relaxed),
            records_dropped: counters.records_dropped.load(Ordering::Relaxed),
            records_failed: counters.records_failed.load(Ordering::Relaxed),
            files: counters.files.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
        }
    }

    /// Stops the consumer without flushing: unflushed records were not checkpointed and are
    /// read again by the next start (at-least-once). Leases are released.
    pub async fn shutdown(self) {
        self.scheduler.shutdown().await;
        if let Err(error) = self.running.await {
            tracing::error!(%error, "the delivery's worker task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PartitionKeyQuery;

    #[test]
    fn partition_values_come_from_json_paths() {
        let partitioning = DynamicPartitioning {
            keys: vec![
                PartitionKeyQuery {
                    name: "customer".into(),
                    path: vec!["customer".into(), "id".into()],
                },
                PartitionKeyQuery {
                    name: "day".into(),
                    path: vec!["day".into()],
                },
            ],
        };
        let ok = partition_of(
            Some(&partitioning),
            br#"{"customer":{"id":"acme"},"day":3}"#,
        )
        .unwrap();
        assert_eq!(ok.get("customer").map(String::as_str), Some("acme"));
        assert_eq!(ok.get("day").map(String::as_str), Some("3"));
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not JSON"),
            (br#"{"day":3}"#, "no .customer.id"),
            (
                br#"{"customer":{"id":null},"day":3}"#,
                "string, number or boolean",
            ),
            (br#"{"customer":{"id":"a/b"},"day":3}"#, "contains '/'"),
        ];
        for (data, reason) in cases {
            let error = partition_of(Some(&partitioning), data).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
        // Values that could not be file names, or make the key too long, go to the error
        // prefix instead of failing every flush of the shard.
        let name_too_long = format!(r#"{{"customer":{{"id":"{}"}},"day":3}}"#, "x".repeat(256));
        let error = partition_of(Some(&partitioning), name_too_long.as_bytes()).unwrap_err();
        assert!(error.contains("longer than 255 bytes"), "{error}");
        let three_keys = DynamicPartitioning {
            keys: ["a", "b", "c"]
                .map(|name| PartitionKeyQuery {
                    name: name.into(),
                    path: vec![name.into()],
                })
                .to_vec(),
        };
        let together_too_long = format!(r#"{{"a":"{0}","b":"{0}","c":"{0}"}}"#, "x".repeat(200));
        let error = partition_of(Some(&three_keys), together_too_long.as_bytes()).unwrap_err();
        assert!(error.contains("600 bytes together"), "{error}");
        assert!(partition_of(None, b"anything").unwrap().is_empty());
    }
}
