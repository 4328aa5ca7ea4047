//! Fleet scenarios over the in-process broker, each checked by the validator.
//!
//! Time is tokio's paused time (`start_paused`) with the in-memory lease store, so failover
//! timings of 1 s cost nothing; the SQLite scenario runs in real time with generous deadlines.

use broker::engine::{Broker, BrokerConfig, ThroughputLimits};
use kcl_core::clock::TokioClock;
use kcl_core::kinesis::{KinesisError, KinesisErrorKind, ShardId, StartingPosition};
use kcl_core::lease_store::LeaseStore;
use kcl_core::memory::InMemoryLeaseStore;
use kcl_core::stream_client::{StreamClient, Subscription};
use kcl_worker::client::EmbeddedStreamClient;
use kcl_worker::config::FailurePolicy;
use kcl_worker::retrieval::{FanOutConfig, RetrievalMode};
use kcl_worker::testing::hooks::{HookedStreamClient, StreamAnswer, StreamCall, StreamHook};
use kcl_worker::testing::pausable::{PausableStreamClient, PauseGate};
use kcl_worker::testing::{FaultPlan, Fleet, FleetConfig, ObservationKind, ValidationRules};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

fn memory_store() -> Arc<dyn LeaseStore> {
    Arc::new(InMemoryLeaseStore::new())
}

fn fan_out() -> RetrievalMode {
    RetrievalMode::FanOut(FanOutConfig::default())
}

async fn balanced(fleet: &Fleet, workers: usize, shards: usize) -> bool {
    fleet
        .wait_until(DEADLINE, || async {
            let counts = fleet.lease_counts().await;
            let total: usize = counts.values().sum();
            let low = shards / workers;
            let high = shards.div_ceil(workers);
            counts.len() == workers
                && total == shards
                && counts.values().all(|&count| (low..=high).contains(&count))
        })
        .await
}

async fn one_worker_then_three_balance(retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 4);
    config.retrieval = retrieval;
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    fleet.produce(400, 16).await.expect("produce");
    assert!(
        balanced(&fleet, 1, 4).await,
        "one worker takes all 4 shards"
    );
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.add_worker("w2");
    fleet.add_worker("w3");
    assert!(
        balanced(&fleet, 3, 4).await,
        "3 workers hold 1 or 2 each: {:?}",
        fleet.lease_counts().await
    );
    fleet.produce(400, 16).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.unique_processed, 800);
}

#[tokio::test(start_paused = true)]
async fn balance_polling() {
    one_worker_then_three_balance(RetrievalMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn balance_fan_out() {
    one_worker_then_three_balance(fan_out()).await;
}

async fn crash_resumes_elsewhere(retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 4);
    config.retrieval = retrieval;
    let failover = config.lease.failover_time();
    let take_interval = config.lease.take_interval();
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    assert!(balanced(&fleet, 2, 4).await);
    fleet.produce(500, 8).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    let crashed_at = tokio::time::Instant::now();
    fleet.crash("w1").await;
    fleet.produce(500, 8).await.expect("produce");
    let moved = fleet
        .wait_until(DEADLINE, || async {
            fleet.lease_counts().await.get("w2") == Some(&4)
        })
        .await;
    assert!(moved, "w2 takes over all shards");
    // Taken within failover + one taker interval (plus one renew tick of slack for scheduling).
    let elapsed = crashed_at.elapsed();
    assert!(
        elapsed <= failover + take_interval + Duration::from_millis(500),
        "took {elapsed:?}"
    );
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
}

#[tokio::test(start_paused = true)]
async fn crash_polling() {
    crash_resumes_elsewhere(RetrievalMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn crash_fan_out() {
    crash_resumes_elsewhere(fan_out()).await;
}

async fn graceful_handoff_without_duplicates(retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 4);
    config.retrieval = retrieval;
    let take_interval = config.lease.take_interval();
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    assert!(balanced(&fleet, 2, 4).await);
    fleet.produce(500, 8).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    let stopped_at = tokio::time::Instant::now();
    fleet.shutdown("w1").await;
    let moved = fleet
        .wait_until(DEADLINE, || async {
            fleet.lease_counts().await.get("w2") == Some(&4)
        })
        .await;
    assert!(moved);
    let elapsed = stopped_at.elapsed();
    assert!(
        elapsed <= take_interval + Duration::from_millis(500),
        "took {elapsed:?}"
    );
    fleet.produce(500, 8).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    fleet.shutdown_all().await;
    let report = fleet
        .validate(ValidationRules {
            allow_duplicates: false,
        })
        .await;
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.duplicates, 0);
}

#[tokio::test(start_paused = true)]
async fn graceful_polling() {
    graceful_handoff_without_duplicates(RetrievalMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn graceful_fan_out() {
    graceful_handoff_without_duplicates(fan_out()).await;
}

#[tokio::test(start_paused = true)]
async fn paused_worker_polling() {
    paused_worker_loses_its_leases_and_cannot_checkpoint(RetrievalMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn paused_worker_fan_out() {
    paused_worker_loses_its_leases_and_cannot_checkpoint(fan_out()).await;
}

async fn paused_worker_loses_its_leases_and_cannot_checkpoint(retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 1);
    config.retrieval = retrieval;
    config.checkpoint_every = 1;
    let failover = config.lease.failover_time();
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    assert!(balanced(&fleet, 1, 1).await);
    fleet.produce(100, 4).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    // Freeze w1 in the middle of a batch: processed, not yet checkpointed.
    let hold = fleet.hold("w1").expect("w1");
    hold.arm();
    let entered = hold.wait_entered();
    fleet.produce(100, 4).await.expect("produce");
    entered.await;
    fleet.pause("w1");
    fleet.add_worker("w2");
    tokio::time::sleep(failover * 2).await;
    let moved = fleet
        .wait_until(DEADLINE, || async {
            fleet.lease_counts().await.get("w2") == Some(&1)
        })
        .await;
    assert!(moved, "w2 takes the paused worker's lease");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    let checkpoint_before = fleet.lease_store().list_leases().await.expect("leases")[0].checkpoint;
    // w1 wakes up and finishes its batch: its checkpoint must be refused.
    fleet.resume("w1");
    hold.release();
    let w1_saw = |kind: fn(&ObservationKind) -> bool| {
        fleet
            .log()
            .snapshot()
            .iter()
            .any(|o| o.worker_id == "w1" && kind(&o.kind))
    };
    let refused = fleet
        .wait_until(DEADLINE, || async {
            w1_saw(|kind| {
                matches!(
                    kind,
                    ObservationKind::Checkpointed {
                        accepted: false,
                        ..
                    }
                )
            }) && w1_saw(|kind| *kind == ObservationKind::LeaseLost)
        })
        .await;
    assert!(
        refused,
        "the resumed worker's checkpoint is refused and it gets lease_lost"
    );
    let lease = fleet
        .lease_store()
        .list_leases()
        .await
        .expect("leases")
        .remove(0);
    assert_eq!(
        lease.lease_owner.as_deref(),
        Some("w2"),
        "w2 keeps the lease"
    );
    assert!(
        lease.checkpoint >= checkpoint_before,
        "no stale checkpoint landed"
    );
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
}

async fn reshard_while_producing_and_killing(retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 2);
    config.retrieval = retrieval;
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    fleet.add_worker("w3");
    fleet.produce(300, 12).await.expect("produce");
    // Split, merge, split again, producing in between and crashing a worker.
    let shards = fleet.open_shards().await.expect("shards");
    fleet.split(&shards[0]).await.expect("split");
    fleet.produce(300, 12).await.expect("produce");
    fleet.crash("w1").await;
    fleet.add_worker("w4");
    let shards = fleet.open_shards().await.expect("shards");
    fleet.merge(&shards[0], &shards[1]).await.expect("merge");
    fleet.produce(300, 12).await.expect("produce");
    let shards = fleet.open_shards().await.expect("shards");
    fleet.split(&shards[0]).await.expect("split");
    fleet.crash("w2").await;
    fleet.produce(300, 12).await.expect("produce");
    assert!(
        fleet.wait_all_processed(DEADLINE).await,
        "processed {} of {}",
        fleet.log().unique_processed(),
        fleet.produced_count()
    );
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
}

#[tokio::test(start_paused = true)]
async fn reshard_polling() {
    reshard_while_producing_and_killing(RetrievalMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn reshard_fan_out() {
    reshard_while_producing_and_killing(fan_out()).await;
}

async fn failing_processor(policy: FailurePolicy, panic: bool) {
    for retrieval in [RetrievalMode::default(), fan_out()] {
        failing_processor_with(policy, panic, retrieval).await;
    }
}

async fn failing_processor_with(policy: FailurePolicy, panic: bool, retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 2);
    config.retrieval = retrieval;
    config.failure_policy = policy;
    let failing = kcl_core::kinesis::ShardId::from_index(0);
    let fault = FaultPlan::new(failing.clone(), 3, panic);
    config.faults = vec![fault.clone()];
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.add_worker("w1");
    fleet.produce(200, 8).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    assert_eq!(fault.failed_calls(), 3);
    let handle = fleet.handles().remove(0);
    assert!(handle.metrics().processor_errors >= 3);
    let sessions_of_failing_shard = fleet
        .log()
        .snapshot()
        .iter()
        .filter(|o| o.shard_id == failing && matches!(o.kind, ObservationKind::Initialized { .. }))
        .count();
    if matches!(policy, FailurePolicy::StopShard { .. }) {
        assert!(
            sessions_of_failing_shard >= 2,
            "the stopped shard was released and taken again"
        );
    } else {
        assert_eq!(sessions_of_failing_shard, 1, "retried in place");
    }
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
}

#[tokio::test(start_paused = true)]
async fn failing_processor_is_retried() {
    failing_processor(FailurePolicy::RetryForever, false).await;
}

#[tokio::test(start_paused = true)]
async fn panicking_processor_is_retried() {
    failing_processor(FailurePolicy::RetryForever, true).await;
}

#[tokio::test(start_paused = true)]
async fn stop_shard_policy_releases_and_resumes() {
    failing_processor(FailurePolicy::StopShard { max_retries: 1 }, true).await;
}

#[tokio::test(start_paused = true)]
async fn retry_then_skip_policy_skips_the_failing_batch_only() {
    let mut config = FleetConfig::fast(TokioClock::shared(), 1);
    config.failure_policy = FailurePolicy::RetryThenSkip { max_retries: 1 };
    let shard = kcl_core::kinesis::ShardId::from_index(0);
    config.faults = vec![FaultPlan::new(shard, 2, false)];
    let fleet = Fleet::new(config, memory_store()).await.expect("fleet");
    fleet.produce(50, 4).await.expect("produce");
    fleet.add_worker("w1");
    // The first batch fails twice (attempt + 1 retry) and is skipped; later batches go through.
    let skipped = fleet
        .wait_until(DEADLINE, || async {
            fleet.handles()[0].metrics().processor_errors == 2
        })
        .await;
    assert!(skipped);
    fleet.produce(50, 4).await.expect("produce");
    let later_processed = fleet
        .wait_until(DEADLINE, || async { fleet.log().unique_processed() == 50 })
        .await;
    assert!(
        later_processed,
        "records after the skipped batch are processed"
    );
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert_eq!(
        report.errors.len(),
        50,
        "exactly the skipped batch is missing"
    );
    assert!(
        report
            .errors
            .iter()
            .all(|error| error.contains("never processed"))
    );
}

/// The Java KCL merge rule at shard end: S1 splits into S2/S3, then S0 merges with S2 into S4.
/// While S1 is not finished, S2 has no lease, so S0 (finished) must keep its lease without
/// storing SHARD_END and S4 must get no lease — otherwise S4 could be processed before S2.
/// Once S1 ends (creating S2's lease), S0 proceeds and everything is processed in lineage order.
async fn merge_waits_for_the_other_parent_lease(retrieval: RetrievalMode) {
    let mut config = FleetConfig::fast(TokioClock::shared(), 2);
    config.retrieval = retrieval;
    let poll_interval = config.parent_shard_poll_interval;
    // A new stream's shards are numbered from 0, in hash-key order.
    let (s0, s1) = (ShardId::from_index(0), ShardId::from_index(1));
    let s1_fails = FaultPlan::new(s1.clone(), u32::MAX, false);
    config.faults = vec![s1_fails.clone()];
    let store = memory_store();
    let fleet = Fleet::new(config, store.clone()).await.expect("fleet");
    assert_eq!(
        fleet.open_shards().await.expect("shards"),
        [s0.clone(), s1.clone()]
    );
    fleet.produce(200, 16).await.expect("produce");
    fleet.split(&s1).await.expect("split");
    fleet.produce(200, 16).await.expect("produce");
    let shards = fleet.open_shards().await.expect("shards");
    let s2 = shards[1].clone();
    fleet.merge(&s0, &s2).await.expect("merge");
    fleet.produce(200, 16).await.expect("produce");
    let s4 = fleet
        .open_shards()
        .await
        .expect("shards")
        .into_iter()
        .find(|shard| shard != &shards[2])
        .expect("merged shard");
    fleet.add_worker("w1");

    // S1's processor keeps failing, so S1 never ends; S0 gets processed meanwhile.
    let s0_processed = fleet
        .wait_until(DEADLINE, || async {
            let lease = store.get_lease(&s0).await.ok().flatten();
            s1_fails.failed_calls() >= 3
                && lease.is_some_and(|lease| lease.checkpoint.sequence_number().is_some())
        })
        .await;
    assert!(s0_processed, "S0 processed while S1 keeps failing");
    // Give the blocked shard end many retry rounds.
    tokio::time::sleep(poll_interval * 30).await;
    let s0_lease = store
        .get_lease(&s0)
        .await
        .expect("store")
        .expect("S0 lease");
    assert!(
        !s0_lease.checkpoint.is_shard_end(),
        "S0 must not reach SHARD_END before S2 has a lease"
    );
    assert_eq!(s0_lease.lease_owner.as_deref(), Some("w1"), "S0 lease kept");
    assert!(store.get_lease(&s2).await.expect("store").is_none());
    assert!(
        store.get_lease(&s4).await.expect("store").is_none(),
        "no lease for the merge child while its other parent has none"
    );

    // S1 recovers: it ends, S2/S3 get leases, then S0 ends and S4 gets its lease.
    s1_fails.heal();
    let s0_ended = fleet
        .wait_until(DEADLINE, || async {
            let s0_done = store
                .get_lease(&s0)
                .await
                .ok()
                .flatten()
                .is_some_and(|lease| lease.checkpoint.is_shard_end());
            s0_done && store.get_lease(&s4).await.ok().flatten().is_some()
        })
        .await;
    assert!(s0_ended, "S0 reaches SHARD_END once S2's lease exists");
    assert!(
        fleet.wait_all_processed(DEADLINE).await,
        "processed {} of {}",
        fleet.log().unique_processed(),
        fleet.produced_count()
    );
    fleet.shutdown_all().await;
    let report = fleet.validate(ValidationRules::default()).await;
    assert!(report.is_ok(), "{:?}", report.errors);
}

#[tokio::test(start_paused = true)]
async fn merge_waits_for_other_parent_polling() {
    merge_waits_for_the_other_parent_lease(RetrievalMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn merge_waits_for_other_parent_fan_out() {
    merge_waits_for_the_other_parent_lease(fan_out()).await;
}

/// A hook whose subscriptions are fed by a reader task that, like an HTTP event-stream reader
/// closing its connection, needs a little time to stop once the subscription is closed. `live`
/// counts the readers still running.
struct SlowReaders {
    live: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AtomicOrdering::SeqCst);
    }
}

impl StreamHook for SlowReaders {
    fn after(&self, _call: StreamCall<'_>, answer: StreamAnswer<'_>) {
        let StreamAnswer::SubscribeToShard(answer) = answer else {
            return;
        };
        let Ok(upstream) = std::mem::replace(
            answer,
            Err(KinesisError::new(KinesisErrorKind::Other, "moved")),
        ) else {
            return;
        };
        let mut upstream = upstream;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        self.live.fetch_add(1, AtomicOrdering::SeqCst);
        self.started.fetch_add(1, AtomicOrdering::SeqCst);
        let guard = LiveGuard(self.live.clone());
        let reader = tokio::spawn(async move {
            let _guard = guard;
            loop {
                let event = tokio::select! {
                    event = upstream.next_event() => event,
                    () = sender.closed() => break,
                };
                let Some(event) = event else { break };
                if sender.send(event).await.is_err() {
                    break;
                }
            }
            // Closing the connection takes a moment.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        *answer = Ok(Subscription::with_reader(receiver, reader));
    }
}

/// `SchedulerHandle::shutdown` resolves only once every background task stopped, including
/// the fan-out retrievers and the subscription readers they own.
#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_retrievers_and_subscription_readers() {
    let clock = TokioClock::shared();
    let mut broker_config = BrokerConfig::default().with_clock(clock.clone());
    broker_config.throughput = ThroughputLimits::off();
    let broker = Broker::new(broker_config);
    let live = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let client: Arc<dyn StreamClient> = Arc::new(HookedStreamClient::new(
        Arc::new(EmbeddedStreamClient::new(broker.clone())),
        SlowReaders {
            live: live.clone(),
            started: started.clone(),
        },
    ));
    let mut config = FleetConfig::fast(clock, 4);
    config.retrieval = fan_out();
    let fleet = Fleet::with_client(config, memory_store(), broker, client)
        .await
        .expect("fleet");
    fleet.add_worker("w1");
    fleet.produce(200, 16).await.expect("produce");
    assert!(fleet.wait_all_processed(DEADLINE).await);
    let subscribed = fleet
        .wait_until(DEADLINE, || async {
            live.load(AtomicOrdering::SeqCst) == 4
        })
        .await;
    assert!(subscribed, "one live subscription per shard");
    fleet.shutdown("w1").await;
    assert_eq!(
        live.load(AtomicOrdering::SeqCst),
        0,
        "every subscription reader stopped before shutdown resolved"
    );
    assert!(started.load(AtomicOrdering::SeqCst) >= 4);
}

/// A paused worker's fan-out subscription delivers nothing until it is resumed.
#[tokio::test(start_paused = true)]
async fn pause_holds_back_fan_out_events() {
    let clock = TokioClock::shared();
    let mut config = FleetConfig::fast(clock, 1);
    config.retrieval = fan_out();
    let fleet = Fleet::new(config.clone(), memory_store())
        .await
        .expect("fleet");
    let gate = PauseGate::new();
    let client = PausableStreamClient::new(
        Arc::new(EmbeddedStreamClient::new(fleet.broker().clone())),
        gate.clone(),
    );
    let mut consumer = client
        .register_stream_consumer(&config.stream_name, "pause-test")
        .await
        .expect("register");
    while consumer.consumer_status != "ACTIVE" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        consumer = client
            .register_stream_consumer(&config.stream_name, "pause-test")
            .await
            .expect("register");
    }
    let mut subscription = client
        .subscribe_to_shard(
            &consumer.consumer_arn,
            &ShardId::from_index(0),
            StartingPosition::TrimHorizon,
        )
        .await
        .expect("subscribe");
    gate.pause();
    fleet.produce(10, 2).await.expect("produce");
    let while_paused =
        tokio::time::timeout(Duration::from_secs(10), subscription.next_event()).await;
    assert!(
        while_paused.is_err(),
        "no event while paused: {while_paused:?}"
    );
    gate.resume();
    let mut records = 0;
    while records < 10 {
        let event = tokio::time::timeout(DEADLINE, subscription.next_event())
            .await
            .expect("events after resume")
            .expect("subscription open")
            .expect("event");
        records += event.records.len();
    }
    assert_eq!(records, 10);
    subscription.close().await;
}
