//! Worker faults, in-process and exact: tokio's paused time, the embedded broker, the in-memory
//! lease store. Each scenario lost records, ended a shard by mistake or lost leases before the
//! worker was hardened; the multi-process suite (`tests/tests/fault_processes.rs`) runs the same
//! faults with real processes.
//!
//! Faults the broker and the store cannot produce on demand (a refused iterator, a store call
//! stuck behind another process's lock, a disk that stays full) come from hooks
//! (`kcl_worker::testing::hooks`) on the real components that change one answer and pass
//! everything else through.

use broker::engine::{Broker, BrokerConfig, ConsumerRef, CreateStreamInput, ThroughputLimits};
use bytes::Bytes;
use kcl_core::clock::{Clock, TokioClock};
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::{KinesisError, KinesisErrorKind, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{LeaseStore, LeaseStoreError};
use kcl_core::memory::InMemoryLeaseStore;
use kcl_core::stream_client::StreamClient;
use kcl_worker::checkpointer::RecordCheckpointer;
use kcl_worker::client::EmbeddedStreamClient;
use kcl_worker::config::SchedulerConfig;
use kcl_worker::error::WorkerError;
use kcl_worker::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
use kcl_worker::retrieval::{FanOutConfig, RetrievalMode};
use kcl_worker::scheduler::Scheduler;
use kcl_worker::testing::hooks::{
    HookedLeaseStore, HookedStreamClient, LeaseStoreHook, StoreCall, StoreCallKind, StreamAnswer,
    StreamCall, StreamHook,
};
use kcl_worker::testing::{Fleet, FleetConfig, ValidationRules};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);
const STREAM: &str = "fleet-stream";

fn memory_store() -> Arc<dyn LeaseStore> {
    Arc::new(InMemoryLeaseStore::new())
}

fn broker_with(create_delay: Duration) -> (Broker, Arc<dyn StreamClient>) {
    let mut config = BrokerConfig::default().with_clock(TokioClock::shared());
    config.throughput = ThroughputLimits::off();
    config.create_delay = create_delay;
    let broker = Broker::new(config);
    let client: Arc<dyn StreamClient> = Arc::new(EmbeddedStreamClient::new(broker.clone()));
    (broker, client)
}

/// Waits (polling every 20 ms of tokio time) until `condition` holds; whether it did in time.
async fn eventually<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < give_up {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition().await
}

async fn shard_end_leases(store: &dyn LeaseStore) -> Vec<Lease> {
    store
        .list_leases()
        .await
        .expect("leases")
        .into_iter()
        .filter(|lease| lease.checkpoint.is_shard_end())
        .collect()
}

async fn processes_everything_without_a_shard_end(fleet: &Fleet, what: &str) {
    assert!(
        fleet.wait_all_processed(DEADLINE).await,
        "{what}: every produced record is processed"
    );
    let ended = shard_end_leases(fleet.lease_store().as_ref()).await;
    assert!(ended.is_empty(), "{what}: no shard was ended: {ended:?}");
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{what}: {:?}", report.errors);
}

// --- 1. A stream still CREATING -----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_stream_still_creating_is_waited_for_and_no_shard_ends() {
    let (broker, client) = broker_with(Duration::from_secs(3));
    let config = FleetConfig::fast(TokioClock::shared(), 3);
    let fleet = Fleet::with_client(config, memory_store(), broker, client.clone())
        .await
        .expect("fleet");
    // The worker starts while the stream is CREATING.
    let status = client
        .describe_stream_summary(STREAM)
        .await
        .expect("stream");
    assert_eq!(status.stream_status, "CREATING");
    fleet.add_worker("w1");
    let active = eventually(DEADLINE, || async {
        client
            .describe_stream_summary(STREAM)
            .await
            .is_ok_and(|summary| summary.stream_status == "ACTIVE")
    })
    .await;
    assert!(active, "the stream becomes active");
    fleet.produce(300, 8).await.expect("produce");
    processes_everything_without_a_shard_end(&fleet, "creating stream").await;
}

// --- 2. A deregistered fan-out consumer -----------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_deregistered_fan_out_consumer_is_registered_again() {
    let mut config = FleetConfig::fast(TokioClock::shared(), 2);
    config.retrieval = RetrievalMode::FanOut(FanOutConfig::default());
    let application = config.application_name.clone();
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    fleet.produce(200, 8).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await, "first records");
    let stream_arn = fleet
        .broker()
        .describe_stream_summary(broker::engine::StreamRef::name(STREAM))
        .await
        .expect("stream")
        .stream_arn;
    fleet
        .broker()
        .deregister_stream_consumer(ConsumerRef::by_name(stream_arn, application))
        .await
        .expect("deregister");
    fleet.produce(200, 8).await.expect("produce");
    processes_everything_without_a_shard_end(&fleet, "deregistered consumer").await;
}

// --- 3. A failing sink, then a graceful shutdown --------------------------------------------

/// A processor whose sink always fails (a full disk) and that checkpoints when asked to shut
/// down, as a processor that checkpoints "what it was given" would.
struct BrokenSinkProcessor {
    attempts: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl ShardRecordProcessor for BrokenSinkProcessor {
    async fn initialize(&mut self, _: InitializationInput) -> Result<(), ProcessorError> {
        Ok(())
    }

    async fn process_records(&mut self, _: ProcessRecordsInput) -> Result<(), ProcessorError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err("writing the sink failed: no space left on device".into())
    }

    async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
        Ok(())
    }

    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

struct BrokenSinkFactory {
    attempts: Arc<AtomicUsize>,
}

impl ShardRecordProcessorFactory for BrokenSinkFactory {
    fn create_processor(&self, _: &ShardId) -> Box<dyn ShardRecordProcessor> {
        Box::new(BrokenSinkProcessor {
            attempts: self.attempts.clone(),
        })
    }
}

async fn one_shard_stream(broker: &Broker, records: usize) {
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.to_owned(),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("stream");
    for index in 0..records {
        broker
            .put_record(broker::engine::PutRecordInput {
                stream: broker::engine::StreamRef::name(STREAM),
                data: Bytes::from(format!("record-{index}")),
                partition_key: format!("key-{index}"),
                explicit_hash_key: None,
                sequence_number_for_ordering: None,
            })
            .await
            .expect("put");
    }
}

fn worker_config(
    worker_id: &str,
    store: Arc<dyn LeaseStore>,
    client: Arc<dyn StreamClient>,
    failover: Duration,
) -> SchedulerConfig {
    let mut config = SchedulerConfig::new("fault-app", STREAM, worker_id, store, client);
    config.lease = LeaseConfig::builder()
        .failover_time(failover)
        .build()
        .expect("lease config");
    config.min_retry_backoff = Duration::from_millis(20);
    config.max_retry_backoff = Duration::from_millis(200);
    config.metrics_interval = None;
    config.clock = TokioClock::shared();
    config
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_reached_no_sink_is_not_checkpointed_at_shutdown() {
    let (broker, client) = broker_with(Duration::ZERO);
    one_shard_stream(&broker, 10).await;
    let store = memory_store();
    let attempts = Arc::new(AtomicUsize::new(0));
    let config = worker_config("w1", store.clone(), client, Duration::from_secs(2));
    let scheduler = Scheduler::new(
        config,
        BrokenSinkFactory {
            attempts: attempts.clone(),
        },
    )
    .expect("scheduler");
    let handle = scheduler.handle();
    let run = tokio::spawn(scheduler.run());
    assert!(
        eventually(DEADLINE, || async { attempts.load(Ordering::SeqCst) >= 3 }).await,
        "the processor is retried"
    );
    handle.shutdown().await;
    run.await.expect("task").expect("worker");
    let lease = store
        .get_lease(&ShardId::from_index(0))
        .await
        .expect("store")
        .expect("lease");
    assert_eq!(
        lease.checkpoint,
        ExtendedSequenceNumber::TRIM_HORIZON,
        "nothing reached a sink, so nothing is checkpointed"
    );
}

// --- Stale iterators and a shard the stream still has -------------------------------------

/// A hook on a real client: the first iterator it hands out is refused by `GetRecords` forever
/// ("Invalid ShardIterator.", as after a broker restart), and the first `GetRecords` of another
/// iterator answers `ResourceNotFoundException` (once).
#[derive(Debug, Default)]
struct StaleIterators {
    poisoned: Mutex<Option<String>>,
    answered_not_found: AtomicBool,
    refused: AtomicUsize,
}

#[async_trait::async_trait]
impl StreamHook for StaleIterators {
    async fn before(&self, call: StreamCall<'_>) -> Result<(), KinesisError> {
        let StreamCall::GetRecords { shard_iterator, .. } = call else {
            return Ok(());
        };
        if self.poisoned.lock().expect("lock").as_deref() == Some(shard_iterator) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(KinesisError::new(
                KinesisErrorKind::InvalidArgument,
                "Invalid ShardIterator.",
            ));
        }
        if !self.answered_not_found.swap(true, Ordering::SeqCst) {
            return Err(KinesisError::new(
                KinesisErrorKind::ResourceNotFound,
                "Shard not found.",
            ));
        }
        Ok(())
    }

    fn after(&self, _call: StreamCall<'_>, answer: StreamAnswer<'_>) {
        if let StreamAnswer::GetShardIterator(Ok(iterator)) = answer {
            self.poisoned
                .lock()
                .expect("lock")
                .get_or_insert_with(|| iterator.clone());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_iterator_is_recreated_and_not_found_is_not_a_shard_end() {
    let (broker, client) = broker_with(Duration::ZERO);
    let stale = Arc::new(HookedStreamClient::new(client, StaleIterators::default()));
    let config = FleetConfig::fast(TokioClock::shared(), 1);
    let fleet = Fleet::with_client(config, memory_store(), broker, stale.clone())
        .await
        .expect("fleet");
    fleet.produce(100, 4).await.expect("produce");
    fleet.add_worker("w1");
    processes_everything_without_a_shard_end(&fleet, "stale iterators").await;
    assert_eq!(
        stale.hook().refused.load(Ordering::SeqCst),
        1,
        "the refused iterator is asked for once, then re-created"
    );
}

// --- Reads that keep failing release the lease ---------------------------------------------

/// A hook on a real client: `GetShardIterator` answers `AccessDeniedException` while `denied`
/// is set.
#[derive(Debug)]
struct DeniedReads {
    denied: AtomicBool,
}

#[async_trait::async_trait]
impl StreamHook for DeniedReads {
    async fn before(&self, call: StreamCall<'_>) -> Result<(), KinesisError> {
        if matches!(call, StreamCall::GetShardIterator { .. }) && self.denied.load(Ordering::SeqCst)
        {
            return Err(KinesisError::new(
                KinesisErrorKind::AccessDenied,
                "User is not authorized to perform: kinesis:GetShardIterator",
            ));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn reads_failing_past_the_limit_release_the_lease_and_recover() {
    let (broker, client) = broker_with(Duration::ZERO);
    let denied = Arc::new(HookedStreamClient::new(
        client,
        DeniedReads {
            denied: AtomicBool::new(true),
        },
    ));
    let config = FleetConfig::fast(TokioClock::shared(), 1);
    let fleet = Fleet::with_client(config, memory_store(), broker, denied.clone())
        .await
        .expect("fleet");
    fleet.produce(50, 4).await.expect("produce");
    let handle = fleet.add_worker("w1");
    let released = eventually(DEADLINE, || async {
        handle.metrics().leases_released_on_read_failures >= 1
    })
    .await;
    assert!(released, "the lease is released after repeated failures");
    assert!(
        shard_end_leases(fleet.lease_store().as_ref())
            .await
            .is_empty()
    );
    denied.hook().denied.store(false, Ordering::SeqCst);
    processes_everything_without_a_shard_end(&fleet, "denied reads").await;
}

// --- A real store behind a fault gate ------------------------------------------------------

/// The real in-memory store, every call first passed through `hook`.
fn gated_store<H: LeaseStoreHook>(hook: H) -> Arc<HookedLeaseStore<H>> {
    Arc::new(HookedLeaseStore::new(memory_store(), hook))
}

// --- 4. A store call stuck behind another process's write lock ----------------------------

/// A simulated write lock: while locked, a write waits for the lock up to `busy_timeout` (as
/// SQLite's busy handler does) and then fails as throttled; reads pass (WAL readers are not
/// blocked). `arm` takes the lock the moment the next renewal arrives, so the renewal that
/// lands on the lock is the worst case for the renewer.
struct WriteLock {
    busy_timeout: Duration,
    clock: TokioClock,
    arm: Mutex<Option<Duration>>,
    locked_until: Mutex<Option<Duration>>,
}

#[async_trait::async_trait]
impl LeaseStoreHook for WriteLock {
    async fn before(&self, call: StoreCall<'_>) -> Result<(), LeaseStoreError> {
        let call = call.kind();
        if call == StoreCallKind::Read {
            return Ok(());
        }
        if call == StoreCallKind::Renew
            && let Some(hold) = self.arm.lock().expect("lock").take()
        {
            *self.locked_until.lock().expect("lock") = Some(self.clock.monotonic() + hold);
        }
        let now = self.clock.monotonic();
        let Some(until) = *self.locked_until.lock().expect("lock") else {
            return Ok(());
        };
        if until <= now {
            return Ok(());
        }
        tokio::time::sleep((until - now).min(self.busy_timeout)).await;
        if until > self.clock.monotonic() {
            return Err(LeaseStoreError::Throttled(
                "sqlite is busy: database is locked".to_owned(),
            ));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_lock_held_for_less_than_the_failover_time_costs_no_lease() {
    // The old fixed SQLite busy timeout (5 s) against a 10 s failover time: one attempt that
    // lands on a 6 s lock fails after 5 s; the renewer must try again at once, not a whole
    // renew interval later.
    let failover = Duration::from_secs(10);
    let store = gated_store(WriteLock {
        busy_timeout: Duration::from_secs(5),
        clock: TokioClock::new(),
        arm: Mutex::new(None),
        locked_until: Mutex::new(None),
    });
    let mut config = FleetConfig::fast(TokioClock::shared(), 4);
    config.lease = LeaseConfig::builder()
        .failover_time(failover)
        .build()
        .expect("lease config");
    let fleet = Fleet::new(config, store.clone()).await.expect("fleet");
    let w1 = fleet.add_worker("w1");
    let w2 = fleet.add_worker("w2");
    let balanced = eventually(DEADLINE, || async {
        let counts = fleet.lease_counts().await;
        counts.get("w1") == Some(&2) && counts.get("w2") == Some(&2)
    })
    .await;
    assert!(
        balanced,
        "two leases each: {:?}",
        fleet.lease_counts().await
    );
    fleet.produce(200, 8).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    let owners_before = fleet.lease_counts().await;
    // Balancing moved leases from one worker to the other: once every steal was noticed by its
    // victim, count only losses from then on.
    let lost = || w1.metrics().leases_lost + w2.metrics().leases_lost;
    let stolen = || w1.metrics().leases_stolen + w2.metrics().leases_stolen;
    assert!(eventually(DEADLINE, || async { lost() == stolen() }).await);
    let lost_before = lost();
    let taken_before = w1.metrics().leases_taken + w2.metrics().leases_taken;
    for _ in 0..3 {
        *store.hook().arm.lock().expect("lock") = Some(Duration::from_secs(6));
        // Let the lock come and go, then a few more renewals.
        tokio::time::sleep(failover * 2).await;
        fleet.produce(50, 8).await.expect("produce");
    }
    assert!(fleet.wait_all_processed(DEADLINE).await);
    assert_eq!(fleet.lease_counts().await, owners_before, "no lease moved");
    assert_eq!(lost(), lost_before, "no lease lost");
    assert_eq!(
        w1.metrics().leases_taken + w2.metrics().leases_taken,
        taken_before,
        "no lease taken again"
    );
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
}

// --- A lease store that stays broken ------------------------------------------------------

/// A full disk: once `broken`, every write fails as unavailable, and every read too unless
/// `reads_work` (a full disk still answers reads).
struct Breakage {
    broken: AtomicBool,
    reads_work: bool,
}

#[async_trait::async_trait]
impl LeaseStoreHook for Breakage {
    async fn before(&self, call: StoreCall<'_>) -> Result<(), LeaseStoreError> {
        let answered = call.kind() == StoreCallKind::Read && self.reads_work;
        if self.broken.load(Ordering::SeqCst) && !answered {
            return Err(LeaseStoreError::Unavailable(
                "disk full: database or disk is full".to_owned(),
            ));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_stays_broken_makes_the_worker_unhealthy_then_stop_with_an_error() {
    for reads_work in [false, true] {
        a_store_that_stays_broken(reads_work).await;
    }
}

async fn a_store_that_stays_broken(reads_work: bool) {
    let (broker, client) = broker_with(Duration::ZERO);
    one_shard_stream(&broker, 5).await;
    let store = gated_store(Breakage {
        broken: AtomicBool::new(false),
        reads_work,
    });
    let mut config = worker_config("w1", store.clone(), client, Duration::from_secs(2));
    config.lease_store_failure_timeout = Some(Duration::from_secs(30));
    let attempts = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(config, BrokenSinkFactory { attempts }).expect("scheduler");
    let handle = scheduler.handle();
    let run = tokio::spawn(scheduler.run());
    let holds = eventually(DEADLINE, || async { handle.metrics().leases_held == 1 }).await;
    assert!(holds, "the worker takes the lease");
    assert!(handle.health().is_healthy());
    store.hook().broken.store(true, Ordering::SeqCst);
    let unhealthy = eventually(DEADLINE, || async { !handle.health().is_healthy() }).await;
    assert!(unhealthy, "a failing store makes the worker unhealthy");
    let result = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the worker stops by itself")
        .expect("task");
    match result {
        Err(WorkerError::LeaseStoreUnavailable {
            failing_for,
            last_error,
        }) => {
            assert!(failing_for >= Duration::from_secs(30), "{failing_for:?}");
            assert!(last_error.contains("disk full"), "{last_error}");
        }
        other => panic!("reads work: {reads_work}: expected LeaseStoreUnavailable, got {other:?}"),
    }
}
