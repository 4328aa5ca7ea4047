//! Retrieval: a background task per shard that reads records (polling `GetRecords` or an
//! enhanced fan-out subscription), de-aggregates them and hands batches to the shard consumer
//! through a bounded prefetch queue.
//!
//! Memory stays bounded whatever the backlog: the queue holds at most
//! `max_prefetch_batches` batches, and a batch is only queued once its bytes fit the
//! `max_prefetch_bytes` budget (the budget is returned when the consumer drops the batch).

use crate::backoff::Delays;
use crate::kpl;
use crate::record::KinesisClientRecord;
use kcl_core::kinesis::{
    ChildShard, HashKeyRange, KinesisError, KinesisErrorKind, Record, SequenceNumber, ShardId,
    StartingPosition,
};
use kcl_core::lease::ExtendedSequenceNumber;
use kcl_core::stream_client::{StreamClient, Subscription};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How records are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrievalMode {
    /// `GetShardIterator` + `GetRecords` in a loop.
    Polling(PollingConfig),
    /// Enhanced fan-out: `RegisterStreamConsumer` + `SubscribeToShard`.
    FanOut(FanOutConfig),
}

impl Default for RetrievalMode {
    fn default() -> Self {
        RetrievalMode::Polling(PollingConfig::default())
    }
}

/// Settings of polling retrieval (Java defaults where they exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingConfig {
    /// `Limit` of each `GetRecords` (1–10000, default 10000).
    pub max_records: u32,
    /// Pause after an empty read (default 1500 ms, Java's `idleTimeBetweenReadsInMillis`).
    pub idle_time_between_reads: Duration,
    /// Batches fetched ahead of processing (default 4, `maxPendingProcessRecordsInput`).
    pub max_prefetch_batches: usize,
    /// Bytes fetched ahead of processing (default 32 MiB).
    pub max_prefetch_bytes: usize,
}

impl Default for PollingConfig {
    fn default() -> Self {
        PollingConfig {
            max_records: 10_000,
            idle_time_between_reads: Duration::from_millis(1_500),
            max_prefetch_batches: 4,
            max_prefetch_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Settings of enhanced fan-out retrieval.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FanOutConfig {
    /// The consumer name to register; `None` uses the application name.
    pub consumer_name: Option<String>,
    /// Batches buffered ahead of processing (0 = default 4).
    pub max_prefetch_batches: usize,
    /// Bytes buffered ahead of processing (0 = default 32 MiB).
    pub max_prefetch_bytes: usize,
}

/// One batch handed to the shard consumer.
#[derive(Debug)]
pub struct RecordBatch {
    /// De-aggregated records above the starting checkpoint, in order.
    pub records: Vec<KinesisClientRecord>,
    /// Bytes of payload and partition keys in the batch (as fetched).
    pub bytes: usize,
    /// How far the batch is behind the tip of the shard.
    pub millis_behind_latest: u64,
    /// Whether the shard is closed and this is its last batch.
    pub at_shard_end: bool,
    /// The children of a closed shard (with `at_shard_end`).
    pub child_shards: Vec<ChildShard>,
    /// The largest raw sequence number fetched in this batch, if any.
    pub last_sequence_number: Option<SequenceNumber>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// What a retriever needs to read one shard.
#[derive(Debug, Clone)]
pub struct ShardReadSpec {
    /// The stream's name.
    pub stream_name: String,
    /// The shard.
    pub shard_id: ShardId,
    /// The checkpoint to resume after (records at or below it are never delivered).
    pub checkpoint: ExtendedSequenceNumber,
    /// Where to start reading (`InitialPosition::starting_position` of the checkpoint).
    pub start: StartingPosition,
    /// The shard's hash-key range, used to drop de-aggregated records that belong elsewhere.
    pub hash_key_range: Option<HashKeyRange>,
}

/// The receiving side of a running retriever. It owns the retriever's task: [`BatchReceiver::stop`]
/// cancels it and waits until it has stopped; dropping the receiver cancels it without waiting
/// (the task still ends promptly, and its [`TaskTracker`] sees it finish).
#[derive(Debug)]
pub struct BatchReceiver {
    batches: mpsc::Receiver<Result<RecordBatch, ReadFailure>>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl BatchReceiver {
    /// The next batch or read failure; `None` when the retriever stopped (cancelled, after
    /// shard end, or after [`ReadFailure::GaveUp`]).
    pub async fn next(&mut self) -> Option<Result<RecordBatch, ReadFailure>> {
        self.batches.recv().await
    }

    /// Cancels the retriever and waits until its task (and any subscription reader it owns)
    /// has stopped.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        self.batches.close();
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "retriever task failed");
        }
    }
}

impl Drop for BatchReceiver {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Bounded hand-off of batches with a byte budget.
struct BatchSender {
    batches: mpsc::Sender<Result<RecordBatch, ReadFailure>>,
    budget: Arc<Semaphore>,
    max_bytes: usize,
    cancel: CancellationToken,
}

impl BatchSender {
    /// Queues a batch once its bytes fit the budget. Returns false when the consumer is gone or
    /// the retriever was cancelled.
    async fn send(&self, mut batch: RecordBatch) -> bool {
        let wanted = batch.bytes.clamp(1, self.max_bytes) as u32;
        let permit = tokio::select! {
            permit = self.budget.clone().acquire_many_owned(wanted) => permit.ok(),
            () = self.cancel.cancelled() => None,
        };
        let Some(permit) = permit else { return false };
        batch._budget = Some(permit);
        tokio::select! {
            sent = self.batches.send(Ok(batch)) => sent.is_ok(),
            () = self.cancel.cancelled() => false,
        }
    }

    async fn send_failure(&self, failure: ReadFailure) -> bool {
        tokio::select! {
            sent = self.batches.send(Err(failure)) => sent.is_ok(),
            () = self.cancel.cancelled() => false,
        }
    }
}

fn channel(
    max_batches: usize,
    max_bytes: usize,
    cancel: CancellationToken,
) -> (BatchSender, BatchReceiver) {
    let cancel = cancel.child_token();
    let max_bytes = max_bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let (sender, receiver) = mpsc::channel(max_batches.max(1));
    (
        BatchSender {
            batches: sender,
            budget: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
            cancel: cancel.clone(),
        },
        BatchReceiver {
            batches: receiver,
            cancel,
            task: None,
        },
    )
}

/// Filters and de-aggregates fetched records.
struct BatchBuilder {
    checkpoint: ExtendedSequenceNumber,
    hash_key_range: Option<HashKeyRange>,
    /// Raw sequence numbers at or below this were already delivered by this retriever.
    last_fetched: Option<SequenceNumber>,
}

impl BatchBuilder {
    /// A builder for a reader that has fetched nothing yet.
    fn for_spec(spec: &ShardReadSpec) -> Self {
        BatchBuilder {
            checkpoint: spec.checkpoint,
            hash_key_range: spec.hash_key_range,
            last_fetched: None,
        }
    }

    fn build(
        &mut self,
        raw: Vec<Record>,
        millis_behind_latest: u64,
        child_shards: Vec<ChildShard>,
        at_shard_end: bool,
    ) -> RecordBatch {
        let mut bytes = 0usize;
        let mut records = Vec::with_capacity(raw.len());
        let mut last_sequence_number = None;
        for record in raw {
            let sequence = record.sequence_number;
            if self.last_fetched.is_some_and(|last| sequence <= last) {
                continue;
            }
            bytes += record.data.len() + record.partition_key.len();
            last_sequence_number = Some(sequence);
            let checkpoint = self.checkpoint;
            let above_checkpoint =
                |user: &KinesisClientRecord| user.extended_sequence_number() > checkpoint;
            let is_aggregated = record.data.starts_with(&kpl::KPL_MAGIC);
            if is_aggregated {
                records.extend(
                    kpl::deaggregate(record, self.hash_key_range)
                        .into_iter()
                        .filter(above_checkpoint),
                );
            } else {
                let user = KinesisClientRecord::plain(record);
                if above_checkpoint(&user) {
                    records.push(user);
                }
            }
        }
        if last_sequence_number.is_some() {
            self.last_fetched = last_sequence_number;
        }
        RecordBatch {
            records,
            bytes,
            millis_behind_latest,
            at_shard_end,
            child_shards,
            last_sequence_number,
            _budget: None,
        }
    }

    /// Where to re-read from after an interruption: after the last fetched record, else the
    /// original start.
    fn resume_position(&self, original: StartingPosition) -> StartingPosition {
        match self.last_fetched {
            Some(sequence) => StartingPosition::AfterSequenceNumber(sequence),
            None => original,
        }
    }
}

/// Starts a polling retriever for `spec` on `tasks`; batches arrive on the returned receiver.
/// The retriever stops when `cancel` is cancelled, the receiver is stopped or dropped, after the
/// shard's end, or after giving up ([`ReadFailure::GaveUp`]).
pub fn spawn_polling(
    client: Arc<dyn StreamClient>,
    spec: ShardReadSpec,
    config: PollingConfig,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) -> BatchReceiver {
    let (sender, mut receiver) = channel(
        config.max_prefetch_batches,
        config.max_prefetch_bytes,
        cancel,
    );
    let span = tracing::info_span!("polling", shard_id = %spec.shard_id);
    let reader = ShardReader::new(client, spec, sender, receiver.cancel.clone());
    receiver.task = Some(tasks.spawn(tracing::Instrument::instrument(
        poll_shard(reader, config),
        span,
    )));
    receiver
}

const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Non-retryable read failures in a row (an iterator Kinesis keeps refusing, access denied, a
/// consumer that cannot be subscribed) after which a retriever gives up on its shard
/// ([`ReadFailure::GaveUp`]); any successful read resets the count.
pub const MAX_CONSECUTIVE_READ_FAILURES: u32 = 10;

/// A failure reading a shard, as the shard consumer sees it.
#[derive(Debug)]
pub enum ReadFailure {
    /// The retriever keeps trying (throttling, a transport error, a stream not `ACTIVE` yet);
    /// reported for logs and metrics only.
    Retrying(KinesisError),
    /// The retriever stopped after `attempts` non-retryable failures in a row: the consumer
    /// releases the lease, so the shard is read again from its checkpoint (here or elsewhere).
    GaveUp {
        /// The last failure.
        error: KinesisError,
        /// How many non-retryable failures in a row there were.
        attempts: u32,
    },
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Retrying(error) => write!(f, "{error} (retrying)"),
            ReadFailure::GaveUp { error, attempts } => {
                write!(f, "{error} (gave up after {attempts} failures in a row)")
            }
        }
    }
}

/// Whether an error is worth retrying as it is: throttling, server faults, transport errors, a
/// resource in a transitional state. Everything else (an invalid argument, access denied, a
/// validation error) is counted towards [`MAX_CONSECUTIVE_READ_FAILURES`].
fn is_retryable(kind: KinesisErrorKind) -> bool {
    matches!(
        kind,
        KinesisErrorKind::ProvisionedThroughputExceeded
            | KinesisErrorKind::LimitExceeded
            | KinesisErrorKind::InternalFailure
            | KinesisErrorKind::ResourceInUse
            | KinesisErrorKind::ExpiredIterator
            | KinesisErrorKind::ExpiredNextToken
            | KinesisErrorKind::Other
    )
}

/// What the stream says about a shard a read could not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardPresence {
    /// The stream is gone or `DELETING`, or the shard is no longer listed: it has ended.
    Gone,
    /// The stream is not `ACTIVE` yet (or is `UPDATING`): wait.
    NotReady,
    /// The stream is `ACTIVE` and lists the shard: what was not found is something else (a
    /// stale iterator, a deregistered fan-out consumer).
    Present,
    /// The stream could not be asked (throttled, unreachable): try again later.
    Unknown,
}

/// Asks the stream whether `shard_id` still exists, before anything is treated as its end:
/// a `ResourceNotFoundException` from a read is not proof (a stream still `CREATING`, a
/// deregistered consumer and a stale iterator say the same).
async fn shard_presence(
    client: &dyn StreamClient,
    stream_name: &str,
    shard_id: &ShardId,
) -> ShardPresence {
    let summary = match client.describe_stream_summary(stream_name).await {
        Ok(summary) => summary,
        Err(error) if error.kind == KinesisErrorKind::ResourceNotFound => {
            return ShardPresence::Gone;
        }
        Err(error) => {
            tracing::debug!(%error, "describing the stream to confirm a missing shard failed");
            return ShardPresence::Unknown;
        }
    };
    match summary.stream_status.as_str() {
        "DELETING" => return ShardPresence::Gone,
        "ACTIVE" => {}
        _ => return ShardPresence::NotReady,
    }
    match client.list_shards(stream_name, None).await {
        Ok(shards) if shards.iter().any(|shard| &shard.shard_id == shard_id) => {
            ShardPresence::Present
        }
        Ok(_) => ShardPresence::Gone,
        Err(error) if error.kind == KinesisErrorKind::ResourceNotFound => ShardPresence::Gone,
        Err(error) if error.kind == KinesisErrorKind::ResourceInUse => ShardPresence::NotReady,
        Err(error) => {
            tracing::debug!(%error, "listing shards to confirm a missing shard failed");
            ShardPresence::Unknown
        }
    }
}

async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = cancel.cancelled() => false,
    }
}

/// The state of one shard's retriever shared by polling and fan-out: what was fetched, where
/// to resume, and how reads have been failing.
struct ShardReader {
    client: Arc<dyn StreamClient>,
    spec: ShardReadSpec,
    builder: BatchBuilder,
    sender: BatchSender,
    cancel: CancellationToken,
    delays: Delays,
    /// Non-retryable failures since the last successful read.
    failures: u32,
}

/// What the retriever does after a failed call.
#[derive(Debug, PartialEq, Eq)]
enum AfterFailure {
    /// Try again (after the backoff already waited).
    Retry,
    /// Stop: cancelled, the consumer is gone, the shard ended, or the retriever gave up.
    Stop,
}

impl ShardReader {
    fn new(
        client: Arc<dyn StreamClient>,
        spec: ShardReadSpec,
        sender: BatchSender,
        cancel: CancellationToken,
    ) -> Self {
        ShardReader {
            builder: BatchBuilder::for_spec(&spec),
            client,
            spec,
            sender,
            cancel,
            delays: Delays::new(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX),
            failures: 0,
        }
    }

    /// A call succeeded: failures and backoff start over.
    fn succeeded(&mut self) {
        self.failures = 0;
        self.delays.reset();
    }

    /// Asks the stream whether the shard is gone; if it is, delivers the shard's end.
    async fn end_if_gone(&mut self, error: &KinesisError) -> Option<ShardPresence> {
        let presence = tokio::select! {
            presence = shard_presence(self.client.as_ref(), &self.spec.stream_name, &self.spec.shard_id) => presence,
            () = self.cancel.cancelled() => return None,
        };
        if presence == ShardPresence::Gone {
            self.end_vanished_shard(error).await;
            return None;
        }
        Some(presence)
    }

    /// Ends a shard the stream confirms it no longer has (a closed shard whose records all
    /// expired, or a deleted stream): delivers an empty shard-end batch so the lease reaches
    /// SHARD_END and its children are not blocked forever, as the Java KCL treats a shard that
    /// no longer exists.
    async fn end_vanished_shard(&mut self, error: &KinesisError) {
        tracing::warn!(%error, "the stream confirms the shard no longer exists; treating it as ended");
        let batch = self.builder.build(Vec::new(), 0, Vec::new(), true);
        // A closed channel means the consumer is already stopping: nothing more to do.
        let _delivered = self.sender.send(batch).await;
    }

    /// Reports a failure, counts it if it is not retryable, and backs off; gives up (telling
    /// the consumer) after [`MAX_CONSECUTIVE_READ_FAILURES`] non-retryable ones in a row.
    async fn failed(&mut self, error: KinesisError, retryable: bool) -> AfterFailure {
        if retryable {
            tracing::warn!(%error, "reading the shard failed; retrying");
        } else {
            self.failures += 1;
            tracing::warn!(%error, failures = self.failures, "reading the shard failed with a non-retryable error");
            if self.failures >= MAX_CONSECUTIVE_READ_FAILURES {
                let attempts = self.failures;
                // The consumer releases the lease on this; a closed channel means it is gone.
                let _told = self
                    .sender
                    .send_failure(ReadFailure::GaveUp { error, attempts })
                    .await;
                return AfterFailure::Stop;
            }
        }
        if !self.sender.send_failure(ReadFailure::Retrying(error)).await {
            return AfterFailure::Stop;
        }
        let waited = sleep_or_cancel(self.delays.next_delay(), &self.cancel).await;
        if waited {
            AfterFailure::Retry
        } else {
            AfterFailure::Stop
        }
    }

    /// Where to (re)start reading: after the last fetched record, else the original start.
    fn position(&self) -> StartingPosition {
        self.builder.resume_position(self.spec.start)
    }
}

async fn poll_shard(mut reader: ShardReader, config: PollingConfig) {
    let mut iterator: Option<String> = None;
    while !reader.cancel.is_cancelled() {
        let current = match iterator.take() {
            Some(current) => current,
            None => {
                let position = reader.position();
                let created = tokio::select! {
                    created = reader.client.get_shard_iterator(&reader.spec.stream_name, &reader.spec.shard_id, position) => created,
                    () = reader.cancel.cancelled() => return,
                };
                match created {
                    Ok(created) => created,
                    Err(error) => {
                        let retryable = match error.kind {
                            KinesisErrorKind::ResourceNotFound => {
                                let Some(presence) = reader.end_if_gone(&error).await else {
                                    return;
                                };
                                presence != ShardPresence::Present
                            }
                            kind => is_retryable(kind),
                        };
                        if reader.failed(error, retryable).await == AfterFailure::Stop {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let output = tokio::select! {
            output = reader.client.get_records(&current, config.max_records) => output,
            () = reader.cancel.cancelled() => return,
        };
        let output = match output {
            Ok(output) => output,
            Err(error) if error.kind == KinesisErrorKind::ExpiredIterator => {
                tracing::debug!(
                    "shard iterator expired; re-creating it from the last fetched record"
                );
                continue;
            }
            Err(error) => {
                // A refused or unknown iterator (e.g. "Invalid ShardIterator." after a broker
                // restart) is re-created from the last fetched record rather than retried as it
                // is; other failures retry the same iterator.
                let retryable = match error.kind {
                    KinesisErrorKind::ResourceNotFound => {
                        let Some(presence) = reader.end_if_gone(&error).await else {
                            return;
                        };
                        presence != ShardPresence::Present
                    }
                    KinesisErrorKind::InvalidArgument => false,
                    kind => {
                        iterator = Some(current);
                        is_retryable(kind)
                    }
                };
                if reader.failed(error, retryable).await == AfterFailure::Stop {
                    return;
                }
                continue;
            }
        };
        reader.succeeded();
        let at_shard_end = output.next_shard_iterator.is_none();
        let fetched_nothing = output.records.is_empty();
        let batch = reader.builder.build(
            output.records,
            output.millis_behind_latest,
            output.child_shards,
            at_shard_end,
        );
        if (!fetched_nothing || at_shard_end) && !reader.sender.send(batch).await {
            return;
        }
        if at_shard_end {
            return;
        }
        iterator = output.next_shard_iterator;
        if fetched_nothing && !sleep_or_cancel(config.idle_time_between_reads, &reader.cancel).await
        {
            return;
        }
    }
}

/// A worker's enhanced fan-out consumer: registered on first use (waiting until it is
/// `ACTIVE`), and registered again when Kinesis no longer knows the cached ARN (an operator
/// deregistered it, or a redeploy re-registered it), so every shard's retriever heals.
pub struct FanOutConsumer {
    client: Arc<dyn StreamClient>,
    stream_name: String,
    consumer_name: String,
    arn: tokio::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for FanOutConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOutConsumer")
            .field("stream_name", &self.stream_name)
            .field("consumer_name", &self.consumer_name)
            .finish_non_exhaustive()
    }
}

impl FanOutConsumer {
    /// The consumer `consumer_name` of `stream_name`, not registered yet.
    pub fn new(
        client: Arc<dyn StreamClient>,
        stream_name: impl Into<String>,
        consumer_name: impl Into<String>,
    ) -> Self {
        FanOutConsumer {
            client,
            stream_name: stream_name.into(),
            consumer_name: consumer_name.into(),
            arn: tokio::sync::Mutex::new(None),
        }
    }

    /// The consumer's ARN, registering it (or describing it, if it exists) and waiting until it
    /// is `ACTIVE` when none is cached. Retries with backoff; `None` once `cancel` fires.
    pub async fn arn(&self, cancel: &CancellationToken) -> Option<String> {
        let register = async {
            // One registration at a time: every shard's retriever waits for the same one.
            let mut cached = self.arn.lock().await;
            if let Some(arn) = cached.as_ref() {
                return arn.clone();
            }
            let mut delays = Delays::new(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
            loop {
                match self
                    .client
                    .register_stream_consumer(&self.stream_name, &self.consumer_name)
                    .await
                {
                    Ok(description) if description.consumer_status == "ACTIVE" => {
                        tracing::info!(consumer_arn = %description.consumer_arn, "fan-out consumer is active");
                        *cached = Some(description.consumer_arn.clone());
                        return description.consumer_arn;
                    }
                    Ok(_) => tracing::debug!("waiting for the fan-out consumer to become active"),
                    Err(error) => tracing::warn!(%error, "registering the fan-out consumer failed"),
                }
                tokio::time::sleep(delays.next_delay()).await;
            }
        };
        tokio::select! {
            arn = register => Some(arn),
            () = cancel.cancelled() => None,
        }
    }

    /// Forgets `stale` if it is the cached ARN, so the next [`FanOutConsumer::arn`] registers
    /// the consumer again.
    pub async fn forget(&self, stale: &str) {
        let mut cached = self.arn.lock().await;
        if cached.as_deref() == Some(stale) {
            tracing::warn!(consumer_arn = %stale, "the fan-out consumer is no longer registered; registering it again");
            *cached = None;
        }
    }
}

/// Starts an enhanced fan-out retriever for `spec` through `consumer` (registered on first
/// use, re-registered when deregistered), on `tasks` (stopping as described for
/// [`spawn_polling`]).
pub fn spawn_fan_out(
    client: Arc<dyn StreamClient>,
    spec: ShardReadSpec,
    consumer: Arc<FanOutConsumer>,
    config: FanOutConfig,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) -> BatchReceiver {
    let max_batches = if config.max_prefetch_batches == 0 {
        4
    } else {
        config.max_prefetch_batches
    };
    let max_bytes = if config.max_prefetch_bytes == 0 {
        32 * 1024 * 1024
    } else {
        config.max_prefetch_bytes
    };
    let (sender, mut receiver) = channel(max_batches, max_bytes, cancel);
    let span = tracing::info_span!("fan_out", shard_id = %spec.shard_id);
    let reader = ShardReader::new(client, spec, sender, receiver.cancel.clone());
    receiver.task = Some(tasks.spawn(tracing::Instrument::instrument(
        subscribe_shard(reader, consumer),
        span,
    )));
    receiver
}

async fn subscribe_shard(mut reader: ShardReader, consumer: Arc<FanOutConsumer>) {
    // Where to resubscribe when nothing was delivered yet: the last continuation point.
    let mut continuation: Option<SequenceNumber> = None;
    while !reader.cancel.is_cancelled() {
        let Some(consumer_arn) = consumer.arn(&reader.cancel).await else {
            return;
        };
        let position = match (reader.builder.last_fetched, continuation) {
            (Some(last), _) => StartingPosition::AfterSequenceNumber(last),
            (None, Some(next)) => StartingPosition::AfterSequenceNumber(next),
            (None, None) => reader.spec.start,
        };
        let subscribed = tokio::select! {
            subscribed = reader.client.subscribe_to_shard(&consumer_arn, &reader.spec.shard_id, position) => subscribed,
            () = reader.cancel.cancelled() => return,
        };
        let mut subscription = match subscribed {
            Ok(subscription) => subscription,
            // Resubscribing too early is ResourceInUse: wait and retry quietly.
            Err(error) if error.kind == KinesisErrorKind::ResourceInUse => {
                if !sleep_or_cancel(reader.delays.next_delay(), &reader.cancel).await {
                    return;
                }
                continue;
            }
            Err(error) => {
                let retryable = match error.kind {
                    KinesisErrorKind::ResourceNotFound => {
                        let Some(presence) = reader.end_if_gone(&error).await else {
                            return;
                        };
                        if presence == ShardPresence::Present {
                            // The shard exists, so the consumer is what Kinesis does not know.
                            consumer.forget(&consumer_arn).await;
                        }
                        presence != ShardPresence::Present
                    }
                    kind => is_retryable(kind),
                };
                if reader.failed(error, retryable).await == AfterFailure::Stop {
                    return;
                }
                continue;
            }
        };
        reader.succeeded();
        let flow = read_subscription(&mut subscription, &mut reader, &mut continuation).await;
        // Wait for the subscription's reader (e.g. the HTTP event-stream task) to stop too.
        subscription.close().await;
        if flow == SubscriptionFlow::Stop {
            return;
        }
    }
}

/// What to do after a subscription ended.
#[derive(Debug, PartialEq, Eq)]
enum SubscriptionFlow {
    /// The subscription ended or failed: subscribe again.
    Resubscribe,
    /// Cancelled, the consumer is gone, or the shard ended.
    Stop,
}

/// Forwards one subscription's events as batches until it ends.
async fn read_subscription(
    subscription: &mut Subscription,
    reader: &mut ShardReader,
    continuation: &mut Option<SequenceNumber>,
) -> SubscriptionFlow {
    loop {
        let event = tokio::select! {
            event = subscription.next_event() => event,
            () = reader.cancel.cancelled() => return SubscriptionFlow::Stop,
        };
        let event = match event {
            None => return SubscriptionFlow::Resubscribe,
            Some(Err(error)) => {
                tracing::debug!(%error, "subscription failed; resubscribing");
                return SubscriptionFlow::Resubscribe;
            }
            Some(Ok(event)) => event,
        };
        let at_shard_end = event.continuation_sequence_number.is_none();
        if let Some(next) = event.continuation_sequence_number {
            *continuation = Some(next);
        }
        let fetched_nothing = event.records.is_empty();
        let batch = reader.builder.build(
            event.records,
            event.millis_behind_latest,
            event.child_shards,
            at_shard_end,
        );
        if (!fetched_nothing || at_shard_end) && !reader.sender.send(batch).await {
            return SubscriptionFlow::Stop;
        }
        if at_shard_end {
            return SubscriptionFlow::Stop;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kcl_core::kinesis::{
        ConsumerDescription, EpochMillis, GetRecordsOutput, Shard, ShardFilter, StreamSummary,
    };
    use kcl_core::stream_client::Subscription;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An endless shard: every GetRecords returns `batch` records of `size` bytes; iterators
    /// encode the next sequence number; the first GetRecords of iterator "expire" fails.
    struct FakeShard {
        batch: usize,
        size: usize,
        get_records_calls: AtomicUsize,
        iterator_requests: Mutex<Vec<StartingPosition>>,
        expire_once: AtomicUsize,
    }

    impl FakeShard {
        fn new(batch: usize, size: usize) -> Self {
            FakeShard {
                batch,
                size,
                get_records_calls: AtomicUsize::new(0),
                iterator_requests: Mutex::new(Vec::new()),
                expire_once: AtomicUsize::new(0),
            }
        }
    }

    fn unsupported() -> KinesisError {
        KinesisError::new(KinesisErrorKind::Other, "not supported by the fake")
    }

    #[async_trait::async_trait]
    impl StreamClient for FakeShard {
        async fn describe_stream_summary(&self, _: &str) -> Result<StreamSummary, KinesisError> {
            Err(unsupported())
        }
        async fn list_shards(
            &self,
            _: &str,
            _: Option<ShardFilter>,
        ) -> Result<Vec<Shard>, KinesisError> {
            Err(unsupported())
        }
        async fn get_shard_iterator(
            &self,
            _: &str,
            _: &ShardId,
            position: StartingPosition,
        ) -> Result<String, KinesisError> {
            self.iterator_requests.lock().expect("lock").push(position);
            let next = match position {
                StartingPosition::AfterSequenceNumber(sequence) => {
                    sequence.to_u128().unwrap_or(0) + 1
                }
                StartingPosition::AtSequenceNumber(sequence) => sequence.to_u128().unwrap_or(0),
                _ => 1,
            };
            Ok(next.to_string())
        }
        async fn get_records(
            &self,
            iterator: &str,
            _: u32,
        ) -> Result<GetRecordsOutput, KinesisError> {
            let call = self.get_records_calls.fetch_add(1, Ordering::SeqCst);
            if call == 1 && self.expire_once.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(KinesisError::new(
                    KinesisErrorKind::ExpiredIterator,
                    "Iterator expired.",
                ));
            }
            let first: u128 = iterator.parse().unwrap_or(1);
            let records = (0..self.batch as u128)
                .map(|offset| Record {
                    sequence_number: SequenceNumber::from_u128(first + offset),
                    approximate_arrival_timestamp: EpochMillis(0),
                    data: Bytes::from(vec![0u8; self.size]),
                    partition_key: Arc::from("k"),
                    explicit_hash_key: None,
                })
                .collect();
            Ok(GetRecordsOutput {
                records,
                next_shard_iterator: Some((first + self.batch as u128).to_string()),
                millis_behind_latest: 0,
                child_shards: Vec::new(),
            })
        }
        async fn register_stream_consumer(
            &self,
            _: &str,
            _: &str,
        ) -> Result<ConsumerDescription, KinesisError> {
            Err(unsupported())
        }
        async fn subscribe_to_shard(
            &self,
            _: &str,
            _: &ShardId,
            _: StartingPosition,
        ) -> Result<Subscription, KinesisError> {
            Err(unsupported())
        }
    }

    fn spec(checkpoint: ExtendedSequenceNumber, start: StartingPosition) -> ShardReadSpec {
        ShardReadSpec {
            stream_name: "s".to_owned(),
            shard_id: ShardId::from_index(0),
            checkpoint,
            start,
            hash_key_range: None,
        }
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn prefetch_is_bounded_by_batches_and_by_bytes() {
        // (max batches, max bytes, batch bytes) → most GetRecords calls while nobody reads:
        // the queued batches plus one fetched batch waiting for room.
        let cases = [
            (2usize, 1 << 30, 10 * 10usize, 3usize),
            (8, 250, 100, 3),
            (8, 50, 100, 2),
        ];
        for (max_batches, max_bytes, batch_bytes, most_calls) in cases {
            let fake = Arc::new(FakeShard::new(10, batch_bytes / 10 - 1));
            fake.expire_once.store(1, Ordering::SeqCst);
            let config = PollingConfig {
                max_records: 10,
                idle_time_between_reads: Duration::from_millis(10),
                max_prefetch_batches: max_batches,
                max_prefetch_bytes: max_bytes,
            };
            let cancel = CancellationToken::new();
            let tasks = TaskTracker::new();
            let mut receiver = spawn_polling(
                fake.clone(),
                spec(
                    ExtendedSequenceNumber::TRIM_HORIZON,
                    StartingPosition::TrimHorizon,
                ),
                config,
                cancel.clone(),
                &tasks,
            );
            settle().await;
            let calls = fake.get_records_calls.load(Ordering::SeqCst);
            assert!(
                calls <= most_calls,
                "case {max_batches}/{max_bytes}: {calls} calls"
            );
            // Draining lets it go on, in order.
            let mut last = SequenceNumber::ZERO;
            for _ in 0..5 {
                let batch = receiver.next().await.expect("batch").expect("ok");
                for record in &batch.records {
                    assert!(record.sequence_number > last);
                    last = record.sequence_number;
                }
            }
            cancel.cancel();
            // Cancelling the caller's token ends the task; stopping waits for it.
            receiver.stop().await;
            tasks.close();
            assert!(tasks.is_empty(), "the retriever task has finished");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn expired_iterator_is_recreated_after_the_last_fetched_record() {
        let fake = Arc::new(FakeShard::new(5, 10));
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut receiver = spawn_polling(
            fake.clone(),
            spec(
                ExtendedSequenceNumber::TRIM_HORIZON,
                StartingPosition::TrimHorizon,
            ),
            PollingConfig::default(),
            cancel.clone(),
            &tasks,
        );
        let mut delivered = Vec::new();
        while delivered.len() < 15 {
            let batch = receiver.next().await.expect("batch").expect("ok");
            delivered.extend(
                batch
                    .records
                    .iter()
                    .map(|record| record.sequence_number.to_u128().unwrap_or(0)),
            );
        }
        // Stopping the receiver alone (the caller's token untouched) ends the task.
        receiver.stop().await;
        tasks.close();
        assert!(tasks.is_empty(), "the retriever task has finished");
        assert!(
            !cancel.is_cancelled(),
            "the caller's token is not cancelled by stop"
        );
        assert_eq!(
            delivered[..15],
            (1..=15).collect::<Vec<u128>>()[..],
            "no gap, no duplicate"
        );
        let requests = fake.iterator_requests.lock().expect("lock").clone();
        assert_eq!(
            requests[..2],
            [
                StartingPosition::TrimHorizon,
                StartingPosition::AfterSequenceNumber(SequenceNumber::from_u128(5))
            ]
        );
    }

    /// A stream whose reads all answer `ResourceNotFoundException` and whose control plane
    /// answers as configured: what the retriever concludes about the shard.
    struct MissingShard {
        status: Result<&'static str, KinesisErrorKind>,
        listed: Result<bool, KinesisErrorKind>,
    }

    #[async_trait::async_trait]
    impl StreamClient for MissingShard {
        async fn describe_stream_summary(&self, name: &str) -> Result<StreamSummary, KinesisError> {
            let status = self
                .status
                .map_err(|kind| KinesisError::new(kind, "describe failed"))?;
            Ok(StreamSummary {
                stream_name: name.to_owned(),
                stream_arn: format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}"),
                stream_status: status.to_owned(),
                retention_period_hours: 24,
                open_shard_count: 1,
                consumer_count: 0,
                stream_creation_timestamp: EpochMillis(0),
            })
        }
        async fn list_shards(
            &self,
            _: &str,
            _: Option<ShardFilter>,
        ) -> Result<Vec<Shard>, KinesisError> {
            let listed = self
                .listed
                .map_err(|kind| KinesisError::new(kind, "list failed"))?;
            let shard = |index| Shard {
                shard_id: ShardId::from_index(index),
                parent_shard_id: None,
                adjacent_parent_shard_id: None,
                hash_key_range: HashKeyRange::FULL,
                sequence_number_range: kcl_core::kinesis::SequenceNumberRange {
                    starting_sequence_number: SequenceNumber::ZERO,
                    ending_sequence_number: None,
                },
            };
            Ok(if listed {
                vec![shard(0), shard(1)]
            } else {
                vec![shard(1)]
            })
        }
        async fn get_shard_iterator(
            &self,
            _: &str,
            _: &ShardId,
            _: StartingPosition,
        ) -> Result<String, KinesisError> {
            Err(KinesisError::new(
                KinesisErrorKind::ResourceNotFound,
                "Shard shardId-000000000000 in stream s under account 000000000000 does not exist",
            ))
        }
        async fn get_records(&self, _: &str, _: u32) -> Result<GetRecordsOutput, KinesisError> {
            Err(unsupported())
        }
        async fn register_stream_consumer(
            &self,
            _: &str,
            _: &str,
        ) -> Result<ConsumerDescription, KinesisError> {
            Err(unsupported())
        }
        async fn subscribe_to_shard(
            &self,
            _: &str,
            _: &ShardId,
            _: StartingPosition,
        ) -> Result<Subscription, KinesisError> {
            Err(unsupported())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shard_is_ended_only_when_the_stream_confirms_it_is_gone() {
        use KinesisErrorKind::{InternalFailure, ResourceInUse, ResourceNotFound};
        // (stream status, shard listed, what the retriever concludes)
        let cases = [
            (Err(ResourceNotFound), Ok(false), "ended"),
            (Ok("DELETING"), Ok(false), "ended"),
            (Ok("ACTIVE"), Ok(false), "ended"),
            (Ok("ACTIVE"), Err(ResourceNotFound), "ended"),
            // Not proof: wait and read again.
            (Ok("CREATING"), Ok(true), "retrying"),
            (Ok("ACTIVE"), Err(ResourceInUse), "retrying"),
            (Err(InternalFailure), Ok(true), "retrying"),
            // The shard exists: what was not found is something else; give up in the end.
            (Ok("ACTIVE"), Ok(true), "gave up"),
        ];
        for (status, listed, expected) in cases {
            let client = Arc::new(MissingShard { status, listed });
            let tasks = TaskTracker::new();
            let mut receiver = spawn_polling(
                client,
                spec(
                    ExtendedSequenceNumber::TRIM_HORIZON,
                    StartingPosition::TrimHorizon,
                ),
                PollingConfig::default(),
                CancellationToken::new(),
                &tasks,
            );
            let mut outcome = "retrying";
            for _ in 0..MAX_CONSECUTIVE_READ_FAILURES + 2 {
                match receiver.next().await {
                    Some(Ok(batch)) if batch.at_shard_end => {
                        outcome = "ended";
                        break;
                    }
                    Some(Err(ReadFailure::GaveUp { .. })) => {
                        outcome = "gave up";
                        break;
                    }
                    Some(Ok(_) | Err(ReadFailure::Retrying(_))) => {}
                    None => {
                        outcome = "stopped";
                        break;
                    }
                }
            }
            assert_eq!(outcome, expected, "status {status:?}, listed {listed:?}");
            receiver.stop().await;
        }
    }

    /// What a reader re-reading from sequence 7 (an aggregate of 4 user records) and 8 (a plain
    /// record) delivers to a lease whose checkpoint is `checkpoint`.
    fn delivered_after(checkpoint: ExtendedSequenceNumber) -> Vec<(u128, u64)> {
        use crate::kpl::{UserRecord, aggregate};
        let users: Vec<UserRecord> = (0..4)
            .map(|index| UserRecord {
                partition_key: format!("k{index}"),
                explicit_hash_key: None,
                data: Bytes::from(format!("u{index}")),
            })
            .collect();
        let mut builder = BatchBuilder {
            checkpoint,
            hash_key_range: None,
            last_fetched: None,
        };
        let record = |sequence: u128, data: Bytes| Record {
            sequence_number: SequenceNumber::from_u128(sequence),
            approximate_arrival_timestamp: EpochMillis(0),
            data,
            partition_key: Arc::from("k0"),
            explicit_hash_key: None,
        };
        let batch = builder.build(
            vec![
                record(7, aggregate(&users)),
                record(8, Bytes::from_static(b"plain")),
            ],
            0,
            Vec::new(),
            false,
        );
        batch
            .records
            .iter()
            .map(|r| {
                (
                    r.sequence_number.to_u128().unwrap_or(0),
                    r.sub_sequence_number,
                )
            })
            .collect()
    }

    #[test]
    fn records_at_or_below_the_checkpoint_are_not_delivered() {
        let at = |sequence: u128, sub: u64| {
            ExtendedSequenceNumber::new(SequenceNumber::from_u128(sequence), sub)
        };
        let cases = [
            // The first user record of an aggregate: the rest of the aggregate is still due
            // (a lease resumes AT the checkpointed sequence number for exactly this reason).
            (at(7, 0), vec![(7, 1), (7, 2), (7, 3), (8, 0)]),
            (at(7, 1), vec![(7, 2), (7, 3), (8, 0)]),
            (at(7, 3), vec![(8, 0)]),
            // A plain record re-read at its own sequence number is not delivered again.
            (at(8, 0), vec![]),
            (
                ExtendedSequenceNumber::TRIM_HORIZON,
                vec![(7, 0), (7, 1), (7, 2), (7, 3), (8, 0)],
            ),
        ];
        for (checkpoint, expected) in cases {
            assert_eq!(
                delivered_after(checkpoint),
                expected,
                "checkpoint {checkpoint}"
            );
        }
    }
}
