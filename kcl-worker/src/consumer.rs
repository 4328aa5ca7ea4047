//! The shard consumer: one task per held lease, running the state machine
//! waiting-on-parents → initializing → processing → shutting down → done.

use crate::backoff::Delays;
use crate::checkpointer::RecordCheckpointer;
use crate::config::FailurePolicy;
use crate::metrics::WorkerMetrics;
use crate::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
use crate::retrieval::{
    self, BatchReceiver, FanOutConsumer, ReadFailure, RecordBatch, RetrievalMode, ShardReadSpec,
};
use futures::FutureExt;
use kcl_core::checkpoint::Checkpointer;
use kcl_core::clock::SharedClock;
use kcl_core::held_lease::HeldLease;
use kcl_core::kinesis::ChildShard;
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::{self, InitialPosition, LineageError};
use kcl_core::stream_client::StreamClient;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a shard consumer needs, shared by all consumers of one worker. The scheduler
/// builds it once; the consumer knows nothing else of the worker.
pub(crate) struct ConsumerEnv {
    /// The stream's name.
    pub(crate) stream_name: String,
    /// The lease table (parents' leases, child leases, release).
    pub(crate) lease_store: Arc<dyn LeaseStore>,
    /// The stream.
    pub(crate) stream_client: Arc<dyn StreamClient>,
    /// Monotonic time for local lease expiry.
    pub(crate) clock: SharedClock,
    /// The failover time of leases.
    pub(crate) failover_time: Duration,
    /// Where a shard never checkpointed starts.
    pub(crate) initial_position: InitialPosition,
    /// Polling or fan-out.
    pub(crate) retrieval: RetrievalMode,
    /// The worker's fan-out consumer (with [`RetrievalMode::FanOut`]).
    pub(crate) fan_out: Option<Arc<FanOutConsumer>>,
    /// What to do with a failing batch.
    pub(crate) failure_policy: FailurePolicy,
    /// First delay of processor and store retries.
    pub(crate) min_retry_backoff: Duration,
    /// Largest delay of processor and store retries.
    pub(crate) max_retry_backoff: Duration,
    /// How often a child re-checks its parents.
    pub(crate) parent_shard_poll_interval: Duration,
    /// Makes record processors.
    pub(crate) factory: Arc<dyn ShardRecordProcessorFactory>,
    /// The worker's counters.
    pub(crate) metrics: Arc<WorkerMetrics>,
    /// Where retriever tasks run (the scheduler waits for them on shutdown).
    pub(crate) retrievers: TaskTracker,
    /// Notified when a shard ended (the scheduler syncs shards at once).
    pub(crate) shard_ended: Arc<Notify>,
    /// Idle time after which `process_records` is called with no records (`None`: never).
    pub(crate) empty_record_list_interval: Option<Duration>,
}

/// Signals the scheduler sends a consumer.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerSignals {
    /// The lease was lost (renewal failed, another owner seen).
    pub(crate) lost: CancellationToken,
    /// Graceful shutdown was requested.
    pub(crate) shutdown: CancellationToken,
}

/// How a consumer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerExit {
    /// The shard was processed to its end and SHARD_END stored.
    ShardEnded,
    /// The lease was lost; `lease_lost` was called if a processor existed.
    LeaseLost,
    /// Graceful shutdown; `shutdown_requested` was called and the lease released.
    ShutdownRequested,
    /// The failure policy stopped the shard, or reading it kept failing; the lease was
    /// released.
    Stopped,
}

/// Why processing stopped.
enum Interrupt {
    LeaseLost,
    Shutdown,
}

/// The outcome of delivering one batch under the failure policy.
enum Delivery {
    Done,
    Skipped,
    StopShard,
    Interrupted(Interrupt),
}

/// Runs a processor future, turning a panic into an error.
async fn guarded<F>(future: F) -> Result<(), ProcessorError>
where
    F: Future<Output = Result<(), ProcessorError>>,
{
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            Err(format!("processor panicked: {message}").into())
        }
    }
}

/// A retryable processor call.
enum Call<'a> {
    Initialize(InitializationInput),
    ProcessRecords {
        batch: &'a RecordBatch,
        checkpointer: &'a RecordCheckpointer,
    },
}

type ProcessorFuture<'p> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), ProcessorError>> + Send + 'p>>;

impl Call<'_> {
    fn name(&self) -> &'static str {
        match self {
            Call::Initialize(_) => "initialize",
            Call::ProcessRecords { .. } => "process_records",
        }
    }

    /// Runs the call once. A `process_records` call opens a delivery on the checkpointer for
    /// its duration: checkpoints may name the batch's records only while the processor has
    /// them, and after it returned success.
    async fn run(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
    ) -> Result<(), ProcessorError> {
        let delivery = match self {
            Call::ProcessRecords {
                batch,
                checkpointer,
            } => batch
                .records
                .last()
                .map(|last| (checkpointer.core(), last.extended_sequence_number())),
            Call::Initialize(_) => None,
        };
        if let Some((checkpointer, last)) = &delivery {
            checkpointer.start_delivery(*last);
        }
        let result = guarded(self.invoke(processor)).await;
        if let Some((checkpointer, _)) = &delivery {
            checkpointer.finish_delivery(result.is_ok());
        }
        result
    }

    fn invoke<'p>(&self, processor: &'p mut Box<dyn ShardRecordProcessor>) -> ProcessorFuture<'p> {
        match self {
            Call::Initialize(input) => processor.initialize(input.clone()),
            Call::ProcessRecords {
                batch,
                checkpointer,
            } => processor.process_records(ProcessRecordsInput {
                records: batch.records.clone(),
                checkpointer: (*checkpointer).clone(),
                millis_behind_latest: batch.millis_behind_latest,
                is_at_shard_end: batch.at_shard_end,
                child_shards: batch.child_shards.clone(),
            }),
        }
    }
}

struct Consumer {
    env: Arc<ConsumerEnv>,
    held: Arc<HeldLease>,
    signals: ConsumerSignals,
}

impl Consumer {
    fn failover(&self) -> Duration {
        self.env.failover_time
    }

    fn now(&self) -> Duration {
        self.env.clock.monotonic()
    }

    /// Time until the lease could have expired locally (zero if it already could have).
    fn until_expiry(&self) -> Duration {
        (self.held.last_renewal() + self.failover()).saturating_sub(self.now())
            + Duration::from_millis(1)
    }

    /// Waits `duration`, unless the lease is lost or shutdown requested first.
    async fn pause(&self, duration: Duration) -> Option<Interrupt> {
        tokio::select! {
            () = tokio::time::sleep(duration) => None,
            () = self.signals.lost.cancelled() => Some(Interrupt::LeaseLost),
            () = self.signals.shutdown.cancelled() => Some(Interrupt::Shutdown),
        }
    }

    fn still_held(&self) -> bool {
        if self.held.is_held(self.now()) {
            return true;
        }
        self.held.mark_lost();
        false
    }

    /// WAITING_ON_PARENT_SHARDS: until every parent lease is finished or absent.
    async fn wait_on_parents(&self) -> Option<Interrupt> {
        let store = &self.env.lease_store;
        loop {
            if !self.still_held() {
                return Some(Interrupt::LeaseLost);
            }
            let lease = self.held.lease().await;
            if lease.parent_shard_ids.is_empty() {
                return None;
            }
            let mut parents = Vec::with_capacity(lease.parent_shard_ids.len());
            let mut readable = true;
            for parent in &lease.parent_shard_ids {
                match store.get_lease(parent).await {
                    Ok(Some(parent_lease)) => parents.push(parent_lease),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, parent_shard_id = %parent, "reading parent lease failed");
                        readable = false;
                    }
                }
            }
            if readable && lineage::is_ready_to_process(&lease, &parents) {
                return None;
            }
            let interval = self.env.parent_shard_poll_interval;
            if let Some(interrupt) = self.pause(interval.min(self.until_expiry())).await {
                return Some(interrupt);
            }
        }
    }

    /// Retries `call` per the failure policy's backoff until it succeeds or is interrupted.
    /// `limit` bounds the retries (`None` = forever). `Ok(false)`: retries exhausted.
    async fn with_retries(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
        call: &Call<'_>,
        limit: Option<u32>,
    ) -> Result<bool, Interrupt> {
        let mut delays = self.delays();
        let mut failures = 0u32;
        loop {
            match call.run(processor).await {
                Ok(()) => return Ok(true),
                Err(error) => {
                    failures += 1;
                    self.env
                        .metrics
                        .shard(self.held.shard_id())
                        .processor_failed();
                    tracing::warn!(error = %error, failures, what = call.name(), "record processor failed");
                    if limit.is_some_and(|limit| failures > limit) {
                        return Ok(false);
                    }
                }
            }
            if let Some(interrupt) = self.pause(delays.next_delay()).await {
                return Err(interrupt);
            }
            if !self.still_held() {
                return Err(Interrupt::LeaseLost);
            }
        }
    }

    /// Delays between retries of processor calls and lease-store writes.
    fn delays(&self) -> Delays {
        Delays::new(self.env.min_retry_backoff, self.env.max_retry_backoff)
    }

    fn start_retrieval(&self, spec: ShardReadSpec, cancel: CancellationToken) -> BatchReceiver {
        let client = self.env.stream_client.clone();
        let tasks = &self.env.retrievers;
        match (&self.env.retrieval, &self.env.fan_out) {
            (RetrievalMode::FanOut(config), Some(consumer)) => retrieval::spawn_fan_out(
                client,
                spec,
                consumer.clone(),
                config.clone(),
                cancel,
                tasks,
            ),
            (RetrievalMode::Polling(config), _) => {
                retrieval::spawn_polling(client, spec, config.clone(), cancel, tasks)
            }
            (RetrievalMode::FanOut(_), None) => {
                retrieval::spawn_polling(client, spec, Default::default(), cancel, tasks)
            }
        }
    }

    async fn deliver(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
        checkpointer: &RecordCheckpointer,
        batch: &RecordBatch,
    ) -> Delivery {
        let limit = match self.env.failure_policy {
            FailurePolicy::RetryForever => None,
            FailurePolicy::RetryThenSkip { max_retries }
            | FailurePolicy::StopShard { max_retries } => Some(max_retries),
        };
        let call = Call::ProcessRecords {
            batch,
            checkpointer,
        };
        let result = self.with_retries(processor, &call, limit).await;
        match result {
            Ok(true) => Delivery::Done,
            Ok(false) => match self.env.failure_policy {
                FailurePolicy::StopShard { .. } => Delivery::StopShard,
                _ => Delivery::Skipped,
            },
            Err(interrupt) => Delivery::Interrupted(interrupt),
        }
    }

    /// Creates the children's leases that do not exist yet (the Java KCL's shard-end rule).
    ///
    /// A merge child whose other parent has no lease yet (it descends from a shard still being
    /// processed) must not get its lease now, or it could be processed before that parent: keep
    /// the lease and retry every `parent_shard_poll_interval` until the other parent's lease
    /// exists. An inconsistent child list is logged and retried the same way.
    async fn create_child_leases(&self, children: &[ChildShard]) -> Result<(), Interrupt> {
        let store = &self.env.lease_store;
        let shard_id = self.held.shard_id();
        let mut delays = self.delays();
        loop {
            if !self.still_held() {
                return Err(Interrupt::LeaseLost);
            }
            let wait = match store.list_leases().await {
                Err(error) => {
                    tracing::warn!(%error, "listing leases at shard end failed");
                    Some(delays.next_delay())
                }
                Ok(existing) => {
                    match lineage::child_leases_to_create(shard_id, children, &existing) {
                        Ok(to_create) => match self.create_leases(&to_create).await {
                            Ok(()) => return Ok(()),
                            Err(error) => {
                                tracing::warn!(%error, "creating child leases failed");
                                Some(delays.next_delay())
                            }
                        },
                        Err(LineageError::ParentLeaseMissing {
                            child,
                            missing_parent,
                        }) => {
                            tracing::debug!(child_shard_id = %child, %missing_parent, "merge child waits for its other parent's lease; keeping the lease");
                            None
                        }
                        Err(error) => {
                            // Storing SHARD_END now would leave the children without leases (the
                            // shard sync never creates leases below a leased parent): keep the
                            // lease, say so loudly, and look again.
                            tracing::error!(%error, "inconsistent child shards at shard end; keeping the lease and retrying");
                            None
                        }
                    }
                }
            };
            let pause = wait.unwrap_or(self.env.parent_shard_poll_interval);
            if let Some(interrupt) = self.pause(pause.min(self.until_expiry())).await {
                return Err(interrupt);
            }
        }
    }

    /// Creates `leases` if absent, stopping at the first store error.
    async fn create_leases(
        &self,
        leases: &[kcl_core::lease::Lease],
    ) -> Result<(), kcl_core::lease_store::LeaseStoreError> {
        for lease in leases {
            let created = self.env.lease_store.create_lease_if_absent(lease).await?;
            if created {
                tracing::info!(child_shard_id = %lease.lease_key, "created child lease at shard end");
            }
        }
        Ok(())
    }

    /// Creates the children's leases, records them on the parent, then calls `shard_ended`
    /// until SHARD_END is stored.
    async fn finish_shard(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
        checkpointer: &RecordCheckpointer,
        children: &[ChildShard],
    ) -> Result<(), Interrupt> {
        let store = &self.env.lease_store;
        let shard_id = self.held.shard_id().clone();
        self.create_child_leases(children).await?;
        let child_ids: Vec<_> = children
            .iter()
            .map(|child| child.shard_id.clone())
            .collect();
        if let Err(error) = store.update_lineage(&shard_id, &child_ids, None).await {
            tracing::warn!(%error, "recording child shards on the parent lease failed");
        }
        // Only now may a checkpoint store SHARD_END: the children's leases exist.
        checkpointer.core().mark_shard_end();
        let mut delays = self.delays();
        loop {
            if let Err(error) = guarded(processor.shard_ended(checkpointer.clone())).await {
                self.env.metrics.shard(&shard_id).processor_failed();
                tracing::warn!(%error, "shard_ended failed");
            }
            if self.held.lease().await.checkpoint.is_shard_end() {
                return Ok(());
            }
            if !self.still_held() {
                return Err(Interrupt::LeaseLost);
            }
            tracing::warn!(
                "the processor did not checkpoint at shard end; calling shard_ended again"
            );
            if let Some(interrupt) = self.pause(delays.next_delay()).await {
                return Err(interrupt);
            }
        }
    }

    async fn release(&self) {
        if let Err(error) = self.held.evict(self.env.lease_store.as_ref()).await {
            tracing::debug!(%error, "releasing the lease failed (it may have been lost already)");
        }
    }

    async fn on_interrupt(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
        checkpointer: &RecordCheckpointer,
        interrupt: Interrupt,
    ) -> ConsumerExit {
        match interrupt {
            Interrupt::LeaseLost => {
                self.held.mark_lost();
                if let Err(error) = guarded(processor.lease_lost()).await {
                    tracing::warn!(%error, "lease_lost failed");
                }
                ConsumerExit::LeaseLost
            }
            Interrupt::Shutdown => {
                if self.still_held() {
                    if let Err(error) =
                        guarded(processor.shutdown_requested(checkpointer.clone())).await
                    {
                        tracing::warn!(%error, "shutdown_requested failed");
                    }
                    self.release().await;
                    ConsumerExit::ShutdownRequested
                } else {
                    if let Err(error) = guarded(processor.lease_lost()).await {
                        tracing::warn!(%error, "lease_lost failed");
                    }
                    ConsumerExit::LeaseLost
                }
            }
        }
    }

    async fn run(self) -> ConsumerExit {
        match self.wait_on_parents().await {
            None => {}
            Some(Interrupt::LeaseLost) => return ConsumerExit::LeaseLost,
            Some(Interrupt::Shutdown) => {
                self.release().await;
                return ConsumerExit::ShutdownRequested;
            }
        }
        let shard_id = self.held.shard_id().clone();
        let metrics = self.env.metrics.shard(&shard_id);
        let env = &self.env;
        let core = Checkpointer::new(
            self.held.clone(),
            env.lease_store.clone(),
            env.clock.clone(),
        );
        let checkpointer = RecordCheckpointer::new(core, metrics.clone());
        let lease = self.held.lease().await;
        let Some(start) = env.initial_position.starting_position(&lease.checkpoint) else {
            // Already at SHARD_END: nothing to read.
            self.release().await;
            return ConsumerExit::ShardEnded;
        };
        let mut processor = env.factory.create_processor(&shard_id);
        let input = InitializationInput {
            shard_id: shard_id.clone(),
            extended_sequence_number: lease.checkpoint,
            pending_checkpoint: lease.pending_checkpoint,
            pending_state: lease.pending_checkpoint_state.clone(),
            lease_counter: lease.lease_counter,
        };
        if let Err(interrupt) = self
            .with_retries(&mut processor, &Call::Initialize(input), None)
            .await
        {
            return self
                .on_interrupt(&mut processor, &checkpointer, interrupt)
                .await;
        }
        let retrieval_cancel = CancellationToken::new();
        let _stop_retrieval = retrieval_cancel.clone().drop_guard();
        let spec = ShardReadSpec {
            stream_name: env.stream_name.clone(),
            shard_id: shard_id.clone(),
            checkpoint: lease.checkpoint,
            start,
            hash_key_range: lease.hash_key_range,
        };
        let mut batches = self.start_retrieval(spec, retrieval_cancel);
        let exit = self
            .process_batches(&mut processor, &checkpointer, &mut batches)
            .await;
        // The retriever (and its subscription reader) has stopped before the consumer reports.
        batches.stop().await;
        exit
    }

    /// Calls `process_records` with no records (the shard is idle). A failure is logged and
    /// not retried: the next idle call or batch comes soon.
    async fn process_empty_record_list(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
        checkpointer: &RecordCheckpointer,
    ) {
        let input = ProcessRecordsInput {
            records: Vec::new(),
            checkpointer: checkpointer.clone(),
            millis_behind_latest: 0,
            is_at_shard_end: false,
            child_shards: Vec::new(),
        };
        if let Err(error) = guarded(processor.process_records(input)).await {
            tracing::warn!(%error, "process_records with an empty record list failed");
        }
    }

    /// PROCESSING → SHUTTING_DOWN: delivers batches until the shard ends, the lease is lost,
    /// shutdown is requested or the failure policy stops the shard.
    async fn process_batches(
        &self,
        processor: &mut Box<dyn ShardRecordProcessor>,
        checkpointer: &RecordCheckpointer,
        batches: &mut BatchReceiver,
    ) -> ConsumerExit {
        let metrics = self.env.metrics.shard(self.held.shard_id());
        loop {
            let batch = tokio::select! {
                biased;
                () = self.signals.lost.cancelled() => {
                    return self.on_interrupt(processor, checkpointer, Interrupt::LeaseLost).await;
                }
                () = self.signals.shutdown.cancelled() => {
                    return self.on_interrupt(processor, checkpointer, Interrupt::Shutdown).await;
                }
                () = tokio::time::sleep(self.until_expiry()) => {
                    if !self.still_held() {
                        return self.on_interrupt(processor, checkpointer, Interrupt::LeaseLost).await;
                    }
                    continue;
                }
                batch = batches.next() => batch,
                () = tokio::time::sleep(self.env.empty_record_list_interval.unwrap_or_default()),
                    if self.env.empty_record_list_interval.is_some() =>
                {
                    self.process_empty_record_list(processor, checkpointer).await;
                    continue;
                }
            };
            let batch = match batch {
                Some(Ok(batch)) => batch,
                Some(Err(ReadFailure::Retrying(_))) => {
                    // The retriever logged it and keeps trying.
                    metrics.read_failed();
                    continue;
                }
                Some(Err(ReadFailure::GaveUp { error, attempts })) => {
                    metrics.read_failed();
                    self.env.metrics.lease_released_on_read_failures();
                    tracing::error!(%error, attempts, "reading the shard keeps failing; releasing its lease so it is read again from the checkpoint");
                    self.release().await;
                    if let Err(error) = guarded(processor.lease_lost()).await {
                        tracing::warn!(%error, "lease_lost failed");
                    }
                    return ConsumerExit::Stopped;
                }
                None => {
                    tracing::error!("retrieval stopped unexpectedly; releasing the lease");
                    self.release().await;
                    return ConsumerExit::Stopped;
                }
            };
            if !self.still_held() {
                return self
                    .on_interrupt(processor, checkpointer, Interrupt::LeaseLost)
                    .await;
            }
            if !batch.records.is_empty() {
                let processing = metrics.processing_started();
                let delivery = self.deliver(processor, checkpointer, &batch).await;
                metrics.processing_finished(processing);
                match delivery {
                    Delivery::Done => metrics.batch_processed(
                        batch.records.len(),
                        batch.bytes,
                        batch.millis_behind_latest,
                    ),
                    Delivery::Skipped => {
                        tracing::error!(
                            records = batch.records.len(),
                            "skipping a batch after repeated processor failures"
                        );
                        // The failure policy gave the batch up: it counts as processed, so a
                        // later checkpoint may pass it. Records come in increasing order.
                        if let Some(last) = batch.records.last() {
                            checkpointer
                                .core()
                                .record_delivered(last.extended_sequence_number());
                        }
                    }
                    Delivery::StopShard => {
                        tracing::error!(
                            "stopping the shard after repeated processor failures; releasing its lease"
                        );
                        self.release().await;
                        if let Err(error) = guarded(processor.lease_lost()).await {
                            tracing::warn!(%error, "lease_lost failed");
                        }
                        return ConsumerExit::Stopped;
                    }
                    Delivery::Interrupted(interrupt) => {
                        return self.on_interrupt(processor, checkpointer, interrupt).await;
                    }
                }
            }
            if batch.at_shard_end {
                return match self
                    .finish_shard(processor, checkpointer, &batch.child_shards)
                    .await
                {
                    Ok(()) => {
                        self.env.shard_ended.notify_one();
                        self.release().await;
                        ConsumerExit::ShardEnded
                    }
                    Err(interrupt) => self.on_interrupt(processor, checkpointer, interrupt).await,
                };
            }
        }
    }
}

/// Runs the consumer of one held lease to completion.
pub(crate) async fn run_consumer(
    env: Arc<ConsumerEnv>,
    held: Arc<HeldLease>,
    signals: ConsumerSignals,
) -> ConsumerExit {
    Consumer { env, held, signals }.run().await
}

#[cfg(test)]
mod tests {
    //! The consumer state machine against the in-memory lease store and a scripted one-shard
    //! stream, in tokio's paused time.

    use super::*;
    use crate::retrieval::PollingConfig;
    use bytes::Bytes;
    use kcl_core::clock::TokioClock;
    use kcl_core::config::LeaseConfig;
    use kcl_core::kinesis::{
        ConsumerDescription, EpochMillis, GetRecordsOutput, HashKeyRange, KinesisError,
        KinesisErrorKind, Record, SequenceNumber, Shard, ShardFilter, ShardId, StartingPosition,
        StreamSummary,
    };
    use kcl_core::lease::{ExtendedSequenceNumber, Lease};
    use kcl_core::memory::InMemoryLeaseStore;
    use kcl_core::stream_client::Subscription;
    use std::sync::Mutex;

    /// One shard with `records` (sequence numbers 1..=n); closed with `children` if any.
    /// Iterators are the index of the next record.
    struct ScriptedShard {
        records: Vec<Record>,
        children: Option<Vec<ChildShard>>,
    }

    fn unsupported() -> KinesisError {
        KinesisError::new(KinesisErrorKind::Other, "not supported by the script")
    }

    #[async_trait::async_trait]
    impl StreamClient for ScriptedShard {
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
            let next = match position {
                StartingPosition::AfterSequenceNumber(sequence) => sequence.to_u128().unwrap_or(0),
                StartingPosition::AtSequenceNumber(sequence) => {
                    sequence.to_u128().unwrap_or(1).saturating_sub(1)
                }
                _ => 0,
            };
            Ok(next.to_string())
        }
        async fn get_records(
            &self,
            iterator: &str,
            _: u32,
        ) -> Result<GetRecordsOutput, KinesisError> {
            let from: usize = iterator.parse().unwrap_or(0);
            let records: Vec<Record> = self.records.iter().skip(from).take(3).cloned().collect();
            let next = from + records.len();
            let ended = next >= self.records.len() && self.children.is_some();
            Ok(GetRecordsOutput {
                records,
                next_shard_iterator: (!ended).then(|| next.to_string()),
                millis_behind_latest: 0,
                child_shards: if ended {
                    self.children.clone().unwrap_or_default()
                } else {
                    Vec::new()
                },
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

    fn record(sequence: u128) -> Record {
        Record {
            sequence_number: SequenceNumber::from_u128(sequence),
            approximate_arrival_timestamp: EpochMillis(0),
            data: Bytes::from(format!("r{sequence}")),
            partition_key: Arc::from("k"),
            explicit_hash_key: None,
        }
    }

    /// Records what happens to it; fails `process_records` while `failing`.
    #[derive(Clone, Default)]
    struct Journal {
        events: Arc<Mutex<Vec<String>>>,
        failing: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Journal {
        fn push(&self, event: impl Into<String>) {
            self.events.lock().expect("lock").push(event.into());
        }
        fn events(&self) -> Vec<String> {
            self.events.lock().expect("lock").clone()
        }
    }

    struct JournalProcessor(Journal);

    #[async_trait::async_trait]
    impl ShardRecordProcessor for JournalProcessor {
        async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
            self.0
                .push(format!("initialize {}", input.extended_sequence_number));
            Ok(())
        }
        async fn process_records(
            &mut self,
            input: ProcessRecordsInput,
        ) -> Result<(), ProcessorError> {
            if self.0.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("injected".into());
            }
            if input.records.is_empty() {
                self.0.push("empty");
                return Ok(());
            }
            for record in &input.records {
                self.0.push(format!("record {}", record.sequence_number));
            }
            input.checkpointer.checkpoint().await?;
            Ok(())
        }
        async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
            self.0.push("lease_lost");
            Ok(())
        }
        async fn shard_ended(
            &mut self,
            checkpointer: RecordCheckpointer,
        ) -> Result<(), ProcessorError> {
            self.0.push("shard_ended");
            Ok(checkpointer.checkpoint().await?)
        }
        async fn shutdown_requested(
            &mut self,
            checkpointer: RecordCheckpointer,
        ) -> Result<(), ProcessorError> {
            self.0.push("shutdown_requested");
            Ok(checkpointer.checkpoint().await?)
        }
    }

    struct Setup {
        env: Arc<ConsumerEnv>,
        store: Arc<InMemoryLeaseStore>,
        journal: Journal,
        config: LeaseConfig,
    }

    fn setup(shard: ScriptedShard, failure_policy: FailurePolicy) -> Setup {
        setup_with(shard, failure_policy, None)
    }

    fn setup_with(
        shard: ScriptedShard,
        failure_policy: FailurePolicy,
        empty_record_list_interval: Option<Duration>,
    ) -> Setup {
        let store = Arc::new(InMemoryLeaseStore::new());
        let journal = Journal::default();
        let factory_journal = journal.clone();
        let config = LeaseConfig::default();
        let env = Arc::new(ConsumerEnv {
            stream_name: "s".to_owned(),
            lease_store: store.clone(),
            stream_client: Arc::new(shard),
            clock: TokioClock::shared(),
            failover_time: config.failover_time(),
            initial_position: InitialPosition::TrimHorizon,
            retrieval: RetrievalMode::Polling(PollingConfig {
                idle_time_between_reads: Duration::from_millis(50),
                ..PollingConfig::default()
            }),
            fan_out: None,
            failure_policy,
            min_retry_backoff: Duration::from_millis(10),
            max_retry_backoff: Duration::from_millis(100),
            parent_shard_poll_interval: Duration::from_millis(100),
            factory: Arc::new(move |_: &ShardId| {
                Box::new(JournalProcessor(factory_journal.clone())) as Box<dyn ShardRecordProcessor>
            }),
            metrics: Arc::new(WorkerMetrics::new("test-worker", TokioClock::shared())),
            retrievers: TaskTracker::new(),
            shard_ended: Arc::new(Notify::new()),
            empty_record_list_interval,
        });
        Setup {
            env,
            store,
            journal,
            config,
        }
    }

    impl Setup {
        /// Creates and takes the lease of `shard` (with `parents`) for "w1".
        async fn hold(&self, shard: u64, parents: &[u64]) -> Arc<HeldLease> {
            let mut lease = Lease::new(
                ShardId::from_index(shard),
                ExtendedSequenceNumber::TRIM_HORIZON,
            );
            lease.parent_shard_ids = parents.iter().map(|p| ShardId::from_index(*p)).collect();
            self.store
                .create_lease_if_absent(&lease)
                .await
                .expect("create");
            let taken = self
                .store
                .take_lease(&lease.lease_key, 0, "w1")
                .await
                .expect("take");
            HeldLease::new(taken, "w1", self.env.clock.monotonic(), &self.config)
        }

        async fn lease(&self, shard: u64) -> Option<Lease> {
            self.store
                .get_lease(&ShardId::from_index(shard))
                .await
                .expect("store")
        }

        fn start(
            &self,
            held: Arc<HeldLease>,
        ) -> (ConsumerSignals, tokio::task::JoinHandle<ConsumerExit>) {
            let signals = ConsumerSignals::default();
            let task = tokio::spawn(run_consumer(self.env.clone(), held, signals.clone()));
            (signals, task)
        }

        async fn until(&self, mut condition: impl FnMut(&[String]) -> bool) {
            for _ in 0..10_000 {
                if condition(&self.journal.events()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("condition never held: {:?}", self.journal.events());
        }
    }

    fn open_shard(records: u128) -> ScriptedShard {
        ScriptedShard {
            records: (1..=records).map(record).collect(),
            children: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn processes_in_order_then_shuts_down_checkpointed_and_released() {
        let setup = setup(open_shard(5), FailurePolicy::RetryForever);
        let (signals, task) = setup.start(setup.hold(0, &[]).await);
        setup
            .until(|events| events.iter().filter(|e| e.starts_with("record")).count() == 5)
            .await;
        signals.shutdown.cancel();
        assert_eq!(task.await.expect("task"), ConsumerExit::ShutdownRequested);
        let events = setup.journal.events();
        assert_eq!(
            events.first().map(String::as_str),
            Some("initialize TRIM_HORIZON")
        );
        let records: Vec<&String> = events.iter().filter(|e| e.starts_with("record")).collect();
        let expected: Vec<String> = (1..=5)
            .map(|n| format!("record {}", SequenceNumber::from_u128(n)))
            .collect();
        assert_eq!(
            records,
            expected.iter().collect::<Vec<_>>(),
            "in order, once"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some("shutdown_requested")
        );
        let lease = setup.lease(0).await.expect("lease");
        assert_eq!(
            lease.checkpoint,
            ExtendedSequenceNumber::new(SequenceNumber::from_u128(5), 0)
        );
        assert_eq!(lease.lease_owner, None, "released");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_shard_gets_empty_process_records_calls_only_when_configured() {
        let record_events =
            |events: &[String]| events.iter().filter(|e| e.starts_with("record")).count();
        let empty_events =
            |events: &[String]| events.iter().filter(|e| e.as_str() == "empty").count();

        // Default: no empty calls, however long the shard stays idle.
        let quiet = setup(open_shard(2), FailurePolicy::RetryForever);
        let (signals, task) = quiet.start(quiet.hold(0, &[]).await);
        quiet.until(|events| record_events(events) == 2).await;
        // (Well within the lease's failover time: nothing renews it in these tests.)
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(empty_events(&quiet.journal.events()), 0);
        signals.shutdown.cancel();
        assert_eq!(task.await.expect("task"), ConsumerExit::ShutdownRequested);

        // Configured: the idle shard is called with empty lists, after the records, in order.
        let calling = setup_with(
            open_shard(2),
            FailurePolicy::RetryForever,
            Some(Duration::from_millis(500)),
        );
        let (signals, task) = calling.start(calling.hold(0, &[]).await);
        calling
            .until(|events| record_events(events) == 2 && empty_events(events) >= 3)
            .await;
        signals.shutdown.cancel();
        assert_eq!(task.await.expect("task"), ConsumerExit::ShutdownRequested);
        let events = calling.journal.events();
        let last_record = events
            .iter()
            .rposition(|e| e.starts_with("record"))
            .expect("records");
        assert!(
            events[last_record + 1..].iter().any(|e| e == "empty"),
            "{events:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_waits_until_its_parent_has_finished() {
        let setup = setup(open_shard(2), FailurePolicy::RetryForever);
        // The parent's lease exists and is not finished.
        setup
            .store
            .create_lease_if_absent(&Lease::new(
                ShardId::from_index(7),
                ExtendedSequenceNumber::TRIM_HORIZON,
            ))
            .await
            .expect("parent");
        let (signals, task) = setup.start(setup.hold(0, &[7]).await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            setup.journal.events().is_empty(),
            "not initialized before the parent ends"
        );
        // The parent finishes.
        let parent = setup
            .store
            .take_lease(&ShardId::from_index(7), 0, "w2")
            .await
            .expect("take");
        setup
            .store
            .update_checkpoint(
                &parent.lease_key,
                "w2",
                parent.lease_counter,
                &kcl_core::lease_store::CheckpointUpdate {
                    checkpoint: Some(ExtendedSequenceNumber::SHARD_END),
                    pending_checkpoint: None,
                    pending_checkpoint_state: None,
                },
            )
            .await
            .expect("parent ends");
        setup
            .until(|events| events.iter().any(|e| e.starts_with("record")))
            .await;
        signals.shutdown.cancel();
        assert_eq!(task.await.expect("task"), ConsumerExit::ShutdownRequested);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_lease_calls_lease_lost_and_stores_nothing_more() {
        let setup = setup(open_shard(3), FailurePolicy::RetryForever);
        let held = setup.hold(0, &[]).await;
        let (signals, task) = setup.start(held.clone());
        setup
            .until(|events| events.iter().filter(|e| e.starts_with("record")).count() == 3)
            .await;
        held.mark_lost();
        signals.lost.cancel();
        assert_eq!(task.await.expect("task"), ConsumerExit::LeaseLost);
        assert_eq!(
            setup.journal.events().last().map(String::as_str),
            Some("lease_lost")
        );
        assert_eq!(
            setup.lease(0).await.expect("lease").lease_owner.as_deref(),
            Some("w1"),
            "a lost lease is not released by the loser"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn at_shard_end_child_leases_exist_before_shard_end_is_stored() {
        let child = ChildShard {
            shard_id: ShardId::from_index(1),
            parent_shards: vec![ShardId::from_index(0)],
            hash_key_range: HashKeyRange::FULL,
        };
        let shard = ScriptedShard {
            records: (1..=4).map(record).collect(),
            children: Some(vec![child]),
        };
        let setup = setup(shard, FailurePolicy::RetryForever);
        let (_signals, task) = setup.start(setup.hold(0, &[]).await);
        assert_eq!(task.await.expect("task"), ConsumerExit::ShardEnded);
        assert_eq!(
            setup.journal.events().last().map(String::as_str),
            Some("shard_ended")
        );
        let parent = setup.lease(0).await.expect("parent lease");
        assert!(parent.checkpoint.is_shard_end());
        assert_eq!(parent.child_shard_ids, vec![ShardId::from_index(1)]);
        let child = setup.lease(1).await.expect("child lease created");
        assert_eq!(child.parent_shard_ids, vec![ShardId::from_index(0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_shard_policy_releases_the_lease_without_checkpointing() {
        let setup = setup(open_shard(3), FailurePolicy::StopShard { max_retries: 2 });
        setup
            .journal
            .failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (_signals, task) = setup.start(setup.hold(0, &[]).await);
        assert_eq!(task.await.expect("task"), ConsumerExit::Stopped);
        let lease = setup.lease(0).await.expect("lease");
        assert_eq!(lease.lease_owner, None, "released for another attempt");
        assert_eq!(lease.checkpoint, ExtendedSequenceNumber::TRIM_HORIZON);
        assert_eq!(
            setup
                .env
                .metrics
                .shard(&ShardId::from_index(0))
                .snapshot()
                .processor_errors,
            3
        );
    }
}
