//! The scheduler: runs a worker's background tasks and one consumer per held lease.
//!
//! Tasks (each cancellable, each in a span with the worker id): shard sync (start-up,
//! periodic, and right away when a shard ends), lease taker, lease renewer, lease cleanup,
//! metrics, and the shard consumers. Aborting the task that runs [`Scheduler::run`] stops
//! everything at once without any callback (a crash); [`SchedulerHandle::shutdown`] stops
//! gracefully.

use crate::backoff::Delays;
use crate::config::SchedulerConfig;
use crate::consumer::{ConsumerEnv, ConsumerExit, ConsumerSignals, run_consumer};
use crate::error::WorkerError;
use crate::health::{StoreHealth, WorkerHealth};
use crate::metrics::{WorkerMetrics, WorkerMetricsSnapshot};
use crate::processor::ShardRecordProcessorFactory;
use crate::retrieval::{FanOutConsumer, RetrievalMode};
use kcl_core::assignment::{LeaseObservations, plan_takes};
use kcl_core::clock::SharedClock;
use kcl_core::held_lease::{HeldLease, renew_leases};
use kcl_core::kinesis::{KinesisErrorKind, ShardId};
use kcl_core::lease_store::LeaseStoreError;
use kcl_core::lineage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
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
    config: SchedulerConfig,
    /// What every shard consumer is built from.
    env: Arc<ConsumerEnv>,
    metrics: Arc<WorkerMetrics>,
    shard_sync_now: Arc<Notify>,
    consumers: Mutex<HashMap<ShardId, ConsumerEntry>>,
    health: Arc<StoreHealth>,
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

    /// Records the outcome of a lease-store write in the worker's health and metrics.
    fn store_outcome<T>(&self, result: &Result<T, LeaseStoreError>) {
        match result {
            Ok(_) => self.health.succeeded(),
            // A failed condition is an answer: the store works.
            Err(error) if error.is_condition_failed() => self.health.succeeded(),
            Err(error) => self.store_failed(error),
        }
    }

    /// Records the outcome of a lease-store read: a failure counts, a success does not prove
    /// the store healthy (a full disk still answers reads), so only writes end a failure run.
    fn store_read_outcome<T>(&self, result: &Result<T, LeaseStoreError>) {
        if let Err(error) = result {
            self.store_failed(error);
        }
    }

    fn store_failed(&self, error: &LeaseStoreError) {
        self.metrics.lease_store_failed();
        self.health.failed(error, self.config.clock.monotonic());
    }
}

/// A worker: takes leases and processes their shards until shut down.
pub struct Scheduler {
    ctx: Arc<WorkerContext>,
    graceful: CancellationToken,
    stopped: watch::Sender<bool>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("graceful", &self.graceful)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// Controls a running [`Scheduler`] from elsewhere.
#[derive(Clone)]
pub struct SchedulerHandle {
    worker_id: String,
    metrics: Arc<WorkerMetrics>,
    health: Arc<StoreHealth>,
    clock: SharedClock,
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

    /// Whether the worker is doing its job: unhealthy once its lease store has been failing
    /// for half the failover time (see [`crate::health`]).
    pub fn health(&self) -> WorkerHealth {
        self.health.health(self.clock.monotonic())
    }

    /// The health an orchestrator's probe should see: [`SchedulerHandle::health`], plus
    /// unhealthy when held leases went unrenewed for half the failover time or a shard's
    /// processor call has been running for `stuck_after` or longer.
    pub fn probe(&self, stuck_after: Duration) -> WorkerHealth {
        crate::health::probe(crate::health::ProbeInputs {
            store: self.health(),
            leases_held: self.metrics.snapshot_leases_held(),
            since_last_lease_write: self.metrics.since_last_lease_write(),
            unhealthy_after: self.health.unhealthy_after(),
            stuck: self.metrics.stuck_shards(stuck_after),
            stuck_after,
        })
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
        let metrics = Arc::new(WorkerMetrics::new(&config.worker_id, config.clock.clone()));
        let shard_sync_now = Arc::new(Notify::new());
        let fan_out = match &config.retrieval {
            RetrievalMode::FanOut(fan_out) => Some(Arc::new(FanOutConsumer::new(
                config.stream_client.clone(),
                config.stream_name.clone(),
                fan_out
                    .consumer_name
                    .clone()
                    .unwrap_or_else(|| config.application_name.clone()),
            ))),
            RetrievalMode::Polling(_) => None,
        };
        let env = Arc::new(ConsumerEnv {
            stream_name: config.stream_name.clone(),
            lease_store: config.lease_store.clone(),
            stream_client: config.stream_client.clone(),
            clock: config.clock.clone(),
            failover_time: config.lease.failover_time(),
            initial_position: config.initial_position,
            retrieval: config.retrieval.clone(),
            fan_out,
            failure_policy: config.failure_policy,
            min_retry_backoff: config.min_retry_backoff,
            max_retry_backoff: config.max_retry_backoff,
            parent_shard_poll_interval: config.parent_shard_poll_interval,
            factory,
            metrics: metrics.clone(),
            retrievers: TaskTracker::new(),
            shard_ended: shard_sync_now.clone(),
            empty_record_list_interval: config
                .call_process_records_even_for_empty_record_list
                .then_some(config.empty_record_list_interval),
        });
        let health = Arc::new(StoreHealth::new(
            config.lease.failover_time() / 2,
            config.lease_store_failure_timeout,
        ));
        Ok(Scheduler {
            ctx: Arc::new(WorkerContext {
                config,
                env,
                metrics,
                shard_sync_now,
                consumers: Mutex::new(HashMap::new()),
                health,
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
            health: self.ctx.health.clone(),
            clock: self.ctx.config.clock.clone(),
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

        // Leases are created only for a stream that is ACTIVE: a CREATING stream has no
        // readable shards yet, and nothing it answers is a shard's end.
        if !wait_for_active_stream(ctx, &self.graceful).await {
            tracing::info!("worker stopped before the stream became active");
            return Ok(());
        }
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
                () = ctx.health.gave_up().cancelled() => break,
                Some(held) = spawn_requests.recv() => {
                    let shard_id = held.shard_id().clone();
                    let signals = ConsumerSignals::default();
                    ctx.consumers().insert(shard_id.clone(), ConsumerEntry { held: held.clone(), signals: signals.clone() });
                    ctx.metrics.set_leases_held(ctx.consumers().len());
                    let span = tracing::info_span!("consumer", worker_id = %ctx.config.worker_id, shard_id = %shard_id);
                    let env = ctx.env.clone();
                    let task_shard = shard_id.clone();
                    let task = consumers.spawn(async move {
                        let exit = run_consumer(env, held, signals).await;
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
        let gave_up = ctx.health.gave_up().is_cancelled();
        if gave_up {
            tracing::error!("stopping the worker: the lease store keeps failing");
        } else {
            tracing::info!("graceful shutdown requested");
        }
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
        ctx.env.retrievers.close();
        ctx.env.retrievers.wait().await;
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
        if gave_up {
            let now = ctx.config.clock.monotonic();
            let (last_error, failing_for) = ctx
                .health
                .failure(now)
                .unwrap_or_else(|| ("unknown".to_owned(), Duration::ZERO));
            return Err(WorkerError::LeaseStoreUnavailable {
                failing_for,
                last_error,
            });
        }
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
    let shards = match ctx
        .config
        .stream_client
        .list_shards(&ctx.config.stream_name, None)
        .await
    {
        Ok(shards) => shards,
        Err(error) if error.kind == KinesisErrorKind::ResourceInUse => {
            tracing::info!(%error, "shard sync: the stream is not active; no leases created");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "shard sync: listing shards failed");
            return;
        }
    };
    let existing = ctx.config.lease_store.list_leases().await;
    ctx.store_read_outcome(&existing);
    let existing = match existing {
        Ok(leases) => leases,
        Err(error) => {
            tracing::warn!(%error, "shard sync: listing leases failed");
            return;
        }
    };
    let to_create = lineage::leases_to_create(&shards, &existing, ctx.config.initial_position);
    for lease in to_create {
        let created = ctx.config.lease_store.create_lease_if_absent(&lease).await;
        ctx.store_outcome(&created);
        match created {
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
        let leases = ctx.config.lease_store.list_leases().await;
        ctx.store_read_outcome(&leases);
        let leases = match leases {
            Ok(leases) => leases,
            Err(error) => {
                tracing::warn!(%error, "lease cleanup: listing leases failed");
                continue;
            }
        };
        for shard_id in lineage::cleanup_candidates(&leases) {
            let deleted = ctx.config.lease_store.delete_lease(&shard_id).await;
            ctx.store_outcome(&deleted);
            match deleted {
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
        let mut took_any = false;
        let scan = config.lease_store.list_leases().await;
        ctx.store_read_outcome(&scan);
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
                    let taken = config
                        .lease_store
                        .take_lease(
                            &planned.lease_key,
                            planned.expected_counter,
                            &config.worker_id,
                        )
                        .await;
                    ctx.store_outcome(&taken);
                    match taken {
                        Ok(lease) => {
                            tracing::info!(shard_id = %lease.lease_key, stolen = is_steal, previous_owner = ?planned.previous_owner, "took lease");
                            ctx.metrics.lease_taken(is_steal);
                            took_any = true;
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
        // A run that took or stole something is followed soon by another (a renew interval
        // later): a newcomer steals in two steps, and its second step should not wait a whole
        // taker interval.
        let next_run = if took_any {
            config.lease.renew_interval()
        } else if others_hold_leases(&observations, &config.worker_id) {
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

/// The first pause before retrying a failed renewal; it doubles per failure in a row, up to a
/// quarter of the renew interval.
const RENEWAL_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Renews held leases at a fixed rate anchored to the last successful renewal (the time it was
/// sent, which is also what local expiry counts from), and retries at once after a failed
/// attempt. So a slow attempt (a store call waiting on another process's lock, bounded by the
/// store's own timeout) costs no lease as long as the store answers again within the failover
/// time: the next attempt is not pushed a whole interval later.
async fn renewer_loop(ctx: Arc<WorkerContext>, cancel: CancellationToken) {
    let config = &ctx.config;
    let clock = &config.clock;
    let interval = config.lease.renew_interval();
    let mut next_attempt = clock.monotonic() + interval;
    let mut retry_pauses =
        Delays::exact(RENEWAL_RETRY_PAUSE, (interval / 4).max(RENEWAL_RETRY_PAUSE));
    loop {
        let wait = next_attempt.saturating_sub(clock.monotonic());
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let started = clock.monotonic();
        let held = ctx.held_leases();
        let timing = ctx.metrics.renewal_started();
        let renewed = held.is_empty() || renew_held(&ctx, &held).await;
        ctx.metrics.renewal_finished(timing, renewed);
        if renewed {
            next_attempt = started + interval;
            retry_pauses.reset();
        } else {
            next_attempt = clock.monotonic() + retry_pauses.next_delay();
        }
    }
}

/// One renewal run over `held`; whether every lease still held was renewed.
async fn renew_held(ctx: &WorkerContext, held: &[Arc<HeldLease>]) -> bool {
    let config = &ctx.config;
    let result = renew_leases(config.lease_store.as_ref(), held, config.clock.as_ref()).await;
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            tracing::warn!(%error, "lease renewal batch failed; retrying");
            ctx.store_failed(&error);
            return false;
        }
    };
    for lost in &report.lost {
        tracing::warn!(shard_id = %lost.shard_id, reason = %lost.reason, "lease lost");
        // Only the consumer of the lease that was renewed (and marked lost): the shard may have
        // been taken again meanwhile, with a new consumer and held lease.
        if let Some(entry) = ctx.consumers().get(&lost.shard_id)
            && entry.held.is_lost()
        {
            entry.signals.lost.cancel();
        }
    }
    let Some((_, first_error)) = report.failed.first() else {
        ctx.health.succeeded();
        return true;
    };
    for (shard_id, error) in &report.failed {
        tracing::warn!(shard_id = %shard_id, %error, "lease renewal failed; retrying");
    }
    ctx.store_failed(first_error);
    false
}

/// Waits until the stream is `ACTIVE` (or `UPDATING`, which is readable), saying so once if it
/// is not; `false` if shutdown was requested first.
async fn wait_for_active_stream(ctx: &WorkerContext, graceful: &CancellationToken) -> bool {
    let config = &ctx.config;
    let mut delays = Delays::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut said = false;
    loop {
        let waiting_for = match config
            .stream_client
            .describe_stream_summary(&config.stream_name)
            .await
        {
            Ok(summary) if matches!(summary.stream_status.as_str(), "ACTIVE" | "UPDATING") => {
                if said {
                    tracing::info!(stream = %config.stream_name, "the stream is active");
                }
                return true;
            }
            Ok(summary) => format!("the stream is {}", summary.stream_status),
            Err(error) => error.to_string(),
        };
        if !said {
            tracing::info!(stream = %config.stream_name, reason = %waiting_for, "waiting for the stream to become ACTIVE before creating leases");
            said = true;
        } else {
            tracing::debug!(stream = %config.stream_name, reason = %waiting_for, "still waiting for the stream to become ACTIVE");
        }
        tokio::select! {
            () = graceful.cancelled() => return false,
            () = tokio::time::sleep(delays.next_delay()) => {}
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
