//! Fleet scenarios over the in-process broker, each checked by the validator.
//!
//! Time is tokio's paused time (`start_paused`) with the in-memory lease store, so failover
//! timings of 1 s cost nothing; the SQLite scenario runs in real time with generous deadlines.

use kcl_core::clock::TokioClock;
use kcl_core::lease_store::LeaseStore;
use kcl_core::memory::InMemoryLeaseStore;
use kcl_worker::config::FailurePolicy;
use kcl_worker::retrieval::{FanOutConfig, RetrievalMode};
use kcl_worker::testing::{FaultPlan, Fleet, FleetConfig, ObservationKind, ValidationRules};
use std::sync::Arc;
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
async fn paused_worker_loses_its_leases_and_cannot_checkpoint() {
    let mut config = FleetConfig::fast(TokioClock::shared(), 1);
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
    let mut config = FleetConfig::fast(TokioClock::shared(), 2);
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
