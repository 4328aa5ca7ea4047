//! The scheduler: runs a worker's background tasks and one consumer per held lease.
//!
//! Tasks (each cancellable, each in a span with the worker id): shard sync (start-up,
//! periodic, and right away when a shard ends), lease taker, lease renewer, lease cleanup,
//! metrics, and the shard consumers. Aborting the task that runs [`Scheduler::run`] stops
//! everything at once without any callback (a crash); [`SchedulerHandle::shutdown`] stops
//! gracefully.

use crate::config::SchedulerConfig;
use crate::consumer::{ConsumerExit, ConsumerSignals, run_consumer};
use crate::error::WorkerError;
use crate::metrics::{WorkerMetrics, WorkerMetricsSnapshot};
use crate::processor::ShardRecordProcessorFactory;
use crate::retrieval::RetrievalMode;
use kcl_core::assignment::{LeaseObservations, plan_takes};
use kcl_core::held_lease::{HeldLease, renew_leases};
use kcl_core::kinesis::ShardId;
use kcl_core::lineage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OnceCell, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A held lease and its consumer's signals.
struct ConsumerEntry {
    held: Arc<HeldLease>,
    signals: ConsumerSignals,
}

/// State shared by the scheduler's tasks.
pub(crate) struct WorkerContext {
    pub(crate) config: SchedulerConfig,
    pub(crate) factory: Arc<dyn ShardRecordProcessorFactory>,
    pub(crate) metrics: Arc<WorkerMetrics>,
    pub(crate) shard_sync_now: Notify,
    consumers: Mutex<HashMap<ShardId, ConsumerEntry>>,
    consumer_arn: OnceCell<String>,
    /// The consumers' retriever tasks; the scheduler waits for all of them before it reports
    /// itself stopped (also those of consumers aborted after the shutdown timeout).
    pub(crate) retrievers: TaskTracker,
}

impl WorkerContext {
    fn consumers(&self) -> std::sync::MutexGuard<'_, HashMap<ShardId, ConsumerEntry>> {
        self.consumers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn held_leases(&self) -> Vec<Arc<HeldLease>> {
        self.consumers()
            .values()
            .map(|entry| entry.held.clone())
            .collect()
    }

    /// The enhanced fan-out consumer ARN, registering the consumer once (waiting until it is
    /// ACTIVE). `None` if shutdown/lease loss interrupts.
    pub(crate) async fn consumer_arn(&self, signals: &ConsumerSignals) -> Option<String> {
        let RetrievalMode::FanOut(fan_out) = &self.config.retrieval else {
            return None;
        };
        let name = fan_out
            .consumer_name
            .clone()
            .unwrap_or_else(|| self.config.application_name.clone());
        let register = async {
            let mut backoff = Duration::from_millis(100);
            loop {
                match self
                    .config
                    .stream_client
                    .register_stream_consumer(&self.config.stream_name, &name)
                    .await
                {
                    Ok(description) if description.consumer_status == "ACTIVE" => {
                        return Ok::<_, WorkerError>(description.consumer_arn);
                    }
                    Ok(_) => tracing::debug!("waiting for the fan-out consumer to become active"),
                    Err(error) => tracing::warn!(%error, "registering the fan-out consumer failed"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        };
        tokio::select! {
            arn = self.consumer_arn.get_or_try_init(|| register) => arn.ok().cloned(),
            () = signals.lost.cancelled() => None,
            () = signals.shutdown.cancelled() => None,
        }
    }
}

/// A worker: takes leases and processes their shards until shut down.
pub struct Scheduler {
    ctx: Arc<WorkerContext>,
    graceful: CancellationToken,
    stopped: watch::Sender<bool>,
}

/// Controls a running [`Scheduler`] from elsewhere.
#[derive(Clone)]
pub struct SchedulerHandle {
    worker_id: String,
    metrics: Arc<WorkerMetrics>,
    graceful: CancellationToken,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for SchedulerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerHandle")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl SchedulerHandle {
    /// Requests a graceful shutdown and waits until the scheduler has stopped: every processor
    /// got `shutdown_requested` and every lease was released.
    pub async fn shutdown(&self) {
        self.graceful.cancel();
        self.wait_stopped().await;
    }

    /// Waits until the scheduler has stopped (however it stopped).
    pub async fn wait_stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|done| *done).await;
    }

    /// The worker's metrics now.
    pub fn metrics(&self) -> WorkerMetricsSnapshot {
        self.metrics.snapshot(&self.worker_id)
    }

    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}

impl Scheduler {
    /// A scheduler for `config`, making processors with `factory`. Checks the configuration.
    pub fn new(
        config: SchedulerConfig,
        factory: impl ShardRecordProcessorFactory,
    ) -> Result<Self, WorkerError> {
        Self::with_shared_factory(config, Arc::new(factory))
    }

    /// Like [`Scheduler::new`] with an already shared factory.
    pub fn with_shared_factory(
        config: SchedulerConfig,
        factory: Arc<dyn ShardRecordProcessorFactory>,
    ) -> Result<Self, WorkerError> {
        let non_empty = [
            ("application_name", &config.application_name),
            ("stream_name", &config.stream_name),
            ("worker_id", &config.worker_id),
        ];
        for (field, value) in non_empty {
            if value.is_empty() {
                return Err(WorkerError::invalid_config(field, "must not be empty"));
            }
        }
        if config.min_retry_backoff.is_zero() || config.max_retry_backoff < config.min_retry_backoff
        {
            return Err(WorkerError::invalid_config(
                "min_retry_backoff",
                "must be greater than zero and at most max_retry_backoff",
            ));
        }
        if config.parent_shard_poll_interval.is_zero() {
            return Err(WorkerError::invalid_config(
                "parent_shard_poll_interval",
                "must be greater than zero",
            ));
        }
        if let RetrievalMode::Polling(polling) = &config.retrieval
            && !(1..=10_000).contains(&polling.max_records)
        {
            return Err(WorkerError::invalid_config(
                "retrieval.max_records",
                "must be between 1 and 10000",
            ));
        }
        Ok(Scheduler {
            ctx: Arc::new(WorkerContext {
                config,
                factory,
                metrics: Arc::new(WorkerMetrics::default()),
                shard_sync_now: Notify::new(),
                consumers: Mutex::new(HashMap::new()),
                consumer_arn: OnceCell::new(),
                retrievers: TaskTracker::new(),
            }),
            graceful: CancellationToken::new(),
            stopped: watch::Sender::new(false),
        })
    }

    /// A handle to shut the scheduler down and read its metrics.
    pub fn handle(&self) -> SchedulerHandle {
        SchedulerHandle {
            worker_id: self.ctx.config.worker_id.clone(),
            metrics: self.ctx.metrics.clone(),
            graceful: self.graceful.clone(),
            stopped: self.stopped.subscribe(),
        }
    }

    /// Runs until [`SchedulerHandle::shutdown`]. Dropping (aborting) this future stops every
    /// task immediately, like a crash: no callbacks, no lease released.
    pub async fn run(self) -> Result<(), WorkerError> {
        let span = tracing::info_span!("worker", worker_id = %self.ctx.config.worker_id);
        let result = self.run_inner().instrument(span).await;
        self.stopped.send_replace(true);
        result
    }

    async fn run_inner(&self) -> Result<(), WorkerError> {
        let ctx = &self.ctx;
        let background = CancellationToken::new();
        let renewer_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut consumers: JoinSet<(ShardId, ConsumerExit)> = JoinSet::new();
        let mut task_shards: HashMap<tokio::task::Id, ShardId> = HashMap::new();
        let (spawn_sender, mut spawn_requests) =
            tokio::sync::mpsc::unbounded_channel::<Arc<HeldLease>>();

        // Start-up shard sync before the first taker run, so leases exist.
        sync_shards(ctx).await;
        tasks.spawn(shard_sync_loop(ctx.clone(), background.clone()).in_current_span());
        tasks.spawn(cleanup_loop(ctx.clone(), background.clone()).in_current_span());
        tasks.spawn(taker_loop(ctx.clone(), background.clone(), spawn_sender).in_current_span());
        tasks.spawn(renewer_loop(ctx.clone(), renewer_stop.clone()).in_current_span());
        if let Some(interval) = ctx.config.metrics_interval {
            tasks.spawn(metrics_loop(ctx.clone(), background.clone(), interval).in_current_span());
        }

        loop {
            tokio::select! {
                () = self.graceful.cancelled() => break,
                Some(held) = spawn_requests.recv() => {
                    let shard_id = held.shard_id().clone();
                    let signals = ConsumerSignals::default();
                    ctx.consumers().insert(shard_id.clone(), ConsumerEntry { held: held.clone(), signals: signals.clone() });
                    ctx.metrics.set_leases_held(ctx.consumers().len());
                    let span = tracing::info_span!("consumer", worker_id = %ctx.config.worker_id, shard_id = %shard_id);
                    let consumer_ctx = ctx.clone();
                    let task_shard = shard_id.clone();
                    let task = consumers.spawn(async move {
                        let exit = run_consumer(consumer_ctx, held, signals).await;
                        (shard_id, exit)
                    }.instrument(span));
                    task_shards.insert(task.id(), task_shard);
                }
                Some(joined) = consumers.join_next_with_id() => {
                    self.consumer_finished(joined, &mut task_shards, &mut tasks);
                }
            }
        }

        // Graceful shutdown: stop taking and syncing, let consumers finish while still renewing.
        tracing::info!("graceful shutdown requested");
        background.cancel();
        for entry in ctx.consumers().values() {
            entry.signals.shutdown.cancel();
        }
        let drain = async {
            while let Some(joined) = consumers.join_next_with_id().await {
                self.consumer_finished(joined, &mut task_shards, &mut tasks);
            }
        };
        let drained = tokio::time::timeout(ctx.config.shutdown_timeout, drain).await;
        if drained.is_err() {
            // A processor did not finish in time: stop it; its leases expire after the
            // failover time, and the next owner resumes from the last checkpoint.
            tracing::warn!(timeout = ?ctx.config.shutdown_timeout, "graceful shutdown timed out; stopping the remaining consumers");
            consumers.abort_all();
            while consumers.join_next().await.is_some() {}
        }
        // Every consumer has ended, so every retriever was cancelled: wait until they stopped.
        ctx.retrievers.close();
        ctx.retrievers.wait().await;
        renewer_stop.cancel();
        while tasks.join_next().await.is_some() {}
        // A take in flight when shutdown began may still have succeeded: release those leases
        // too, so other workers take them at once instead of after a failover time.
        while let Ok(held) = spawn_requests.try_recv() {
            if let Err(error) = held.evict(ctx.config.lease_store.as_ref()).await {
                tracing::warn!(shard_id = %held.shard_id(), %error, "releasing a lease taken during shutdown failed");
            }
        }
        ctx.metrics.snapshot(&ctx.config.worker_id).emit();
        tracing::info!("worker stopped");
        Ok(())
    }

    fn consumer_finished(
        &self,
        joined: Result<(tokio::task::Id, (ShardId, ConsumerExit)), tokio::task::JoinError>,
        task_shards: &mut HashMap<tokio::task::Id, ShardId>,
        tasks: &mut JoinSet<()>,
    ) {
        let ctx = &self.ctx;
        match joined {
            Ok((task_id, (shard_id, exit))) => {
                task_shards.remove(&task_id);
                tracing::info!(shard_id = %shard_id, ?exit, "shard consumer finished");
                if exit == ConsumerExit::LeaseLost {
                    ctx.metrics.lease_lost();
                }
                ctx.consumers().remove(&shard_id);
            }
            Err(error) => {
                // Processor panics are caught inside the consumer, so this is a bug in the
                // worker itself: release the lease so the shard is retried (here or elsewhere).
                let shard_id = task_shards.remove(&error.id());
                tracing::error!(%error, ?shard_id, "shard consumer task failed; releasing its lease");
                let entry = shard_id.and_then(|shard_id| ctx.consumers().remove(&shard_id));
                if let Some(entry) = entry {
                    let store = ctx.config.lease_store.clone();
                    tasks.spawn(
                        async move {
                            if let Err(error) = entry.held.evict(store.as_ref()).await {
                                tracing::debug!(%error, "releasing the lease of a failed consumer failed");
                            }
                        }
                        .in_current_span(),
                    );
                }
            }
        }
        ctx.metrics.set_leases_held(ctx.consumers().len());
    }
}

/// Creates leases for shards that need them (the hierarchical shard sync).
async fn sync_shards(ctx: &WorkerContext) {
    ctx.config.wait_unpaused().await;
    let shards = match ctx
        .config
        .stream_client
        .list_shards(&ctx.config.stream_name, None)
        .await
    {
        Ok(shards) => shards,
        Err(error) => {
            tracing::warn!(%error, "shard sync: listing shards failed");
            return;
        }
    };
    let existing = match ctx.config.lease_store.list_leases().await {
        Ok(leases) => leases,
        Err(error) => {
            tracing::warn!(%error, "shard sync: listing leases failed");
            return;
        }
    };
    let to_create = lineage::leases_to_create(&shards, &existing, ctx.config.initial_position);
    for lease in to_create {
        match ctx.config.lease_store.create_lease_if_absent(&lease).await {
            Ok(true) => {
                tracing::info!(shard_id = %lease.lease_key, checkpoint = %lease.checkpoint, "created lease")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, shard_id = %lease.lease_key, "shard sync: creating a lease failed");
                return;
            }
        }
    }
}

async fn shard_sync_loop(ctx: Arc<WorkerContext>, cancel: CancellationToken) {
    let interval = ctx.config.lease.shard_sync_interval();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
            () = ctx.shard_sync_now.notified() => {}
        }
        sync_shards(&ctx).await;
    }
}

async fn cleanup_loop(ctx: Arc<WorkerContext>, cancel: CancellationToken) {
    let interval = ctx.config.lease.shard_sync_interval();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        ctx.config.wait_unpaused().await;
        let leases = match ctx.config.lease_store.list_leases().await {
            Ok(leases) => leases,
            Err(error) => {
                tracing::warn!(%error, "lease cleanup: listing leases failed");
                continue;
            }
        };
        for shard_id in lineage::cleanup_candidates(&leases) {
            match ctx.config.lease_store.delete_lease(&shard_id).await {
                Ok(()) => tracing::info!(shard_id = %shard_id, "deleted finished lease"),
                Err(error) => {
                    tracing::warn!(%error, shard_id = %shard_id, "lease cleanup: delete failed")
                }
            }
        }
    }
}

async fn taker_loop(
    ctx: Arc<WorkerContext>,
    cancel: CancellationToken,
    spawn: tokio::sync::mpsc::UnboundedSender<Arc<HeldLease>>,
) {
    let config = &ctx.config;
    let mut observations = LeaseObservations::new();
    let mut run: u64 = 0;
    let seed_base = config
        .worker_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
    loop {
        config.wait_unpaused().await;
        let scan = config.lease_store.list_leases().await;
        // Stamp the scan with the time it RETURNED: a renewal that landed while the scan was
        // in flight must not look older than it is (never judge another's lease expired early).
        let scanned_at = config.clock.monotonic();
        match scan {
            Ok(leases) => {
                // A lease we hold that now shows another owner was lost.
                for entry in ctx.consumers().values() {
                    let lease = leases
                        .iter()
                        .find(|lease| &lease.lease_key == entry.held.shard_id());
                    let owned_elsewhere =
                        lease.is_some_and(|lease| !lease.is_owned_by(&config.worker_id));
                    if owned_elsewhere && !entry.signals.shutdown.is_cancelled() {
                        entry.held.mark_lost();
                        entry.signals.lost.cancel();
                    }
                }
                observations.observe_scan(leases, scanned_at);
                let now = config.clock.monotonic();
                let plan = plan_takes(
                    &observations,
                    &config.worker_id,
                    now,
                    &config.lease,
                    seed_base ^ run,
                );
                let stolen: Vec<bool> = plan
                    .take
                    .iter()
                    .map(|_| false)
                    .chain(plan.steal.iter().map(|_| true))
                    .collect();
                for (planned, is_steal) in plan.all().zip(stolen) {
                    if ctx.consumers().contains_key(&planned.lease_key) {
                        continue;
                    }
                    let sent_at = config.clock.monotonic();
                    match config
                        .lease_store
                        .take_lease(
                            &planned.lease_key,
                            planned.expected_counter,
                            &config.worker_id,
                        )
                        .await
                    {
                        Ok(lease) => {
                            tracing::info!(shard_id = %lease.lease_key, stolen = is_steal, previous_owner = ?planned.previous_owner, "took lease");
                            ctx.metrics.lease_taken(is_steal);
                            observations.record_write(lease.clone(), sent_at);
                            let held = HeldLease::new(
                                lease,
                                config.worker_id.clone(),
                                sent_at,
                                &config.lease,
                            );
                            if spawn.send(held).is_err() {
                                return;
                            }
                        }
                        Err(error) if error.is_condition_failed() => {
                            tracing::debug!(%error, shard_id = %planned.lease_key, "lease taken by someone else first");
                        }
                        Err(error) => {
                            tracing::warn!(%error, shard_id = %planned.lease_key, "taking a lease failed")
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "lease taker: listing leases failed"),
        }
        run += 1;
        // Beyond the Java KCL: when another worker's lease could expire before the next
        // regular run, scan again right after that, so a crashed worker's shards move within
        // failover time + one taker interval of the crash instead of up to two intervals.
        let next_run = if others_hold_leases(&observations, &config.worker_id) {
            config
                .lease
                .take_interval()
                .min(config.lease.failover_time() + config.lease.epsilon() * 2)
        } else {
            config.lease.take_interval()
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(next_run) => {}
        }
    }
}

/// Whether any unfinished lease is owned by another worker.
fn others_hold_leases(observations: &LeaseObservations, worker_id: &str) -> bool {
    observations.iter().any(|observed| {
        !observed.lease.is_finished()
            && observed
                .lease
                .lease_owner
                .as_deref()
                .is_some_and(|owner| owner != worker_id)
    })
}

async fn renewer_loop(ctx: Arc<WorkerContext>, cancel: CancellationToken) {
    let config = &ctx.config;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(config.lease.renew_interval()) => {}
        }
        config.wait_unpaused().await;
        let held = ctx.held_leases();
        if held.is_empty() {
            continue;
        }
        match renew_leases(config.lease_store.as_ref(), &held, config.clock.as_ref()).await {
            Ok(report) => {
                for lost in &report.lost {
                    tracing::warn!(shard_id = %lost.shard_id, reason = %lost.reason, "lease lost");
                    // Only the consumer of the lease that was renewed (and marked lost): the shard
                    // may have been taken again meanwhile, with a new consumer and held lease.
                    if let Some(entry) = ctx.consumers().get(&lost.shard_id)
                        && entry.held.is_lost()
                    {
                        entry.signals.lost.cancel();
                    }
                }
                for (shard_id, error) in &report.failed {
                    tracing::warn!(shard_id = %shard_id, %error, "lease renewal failed; will retry");
                }
            }
            Err(error) => tracing::warn!(%error, "lease renewal batch failed; will retry"),
        }
    }
}

async fn metrics_loop(ctx: Arc<WorkerContext>, cancel: CancellationToken, interval: Duration) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        ctx.metrics.snapshot(&ctx.config.worker_id).emit();
    }
}
