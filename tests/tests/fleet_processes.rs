//! The multi-process suite: a real `kinesis-broker` server and several `kcl worker` processes
//! sharing one SQLite lease file, under faults (SIGKILL, SIGSTOP past the failover time,
//! SIGTERM, split and merge while producing, a broker restart with `--data-dir`), verified from
//! the workers' jsonl sinks and the lease table (see `tests::verify`).
//!
//! Needs the `kinesis-broker` and `kcl` binaries of the same profile next to the test
//! executable: `cargo test --workspace` builds them.

use std::time::Duration;
use tests::fleet::{FleetOptions, ProcessFleet};

const LONG: Duration = Duration::from_secs(90);

fn assert_verified(report: &tests::verify::FleetReport) {
    eprintln!("fleet verdict: {}", report.summary());
    assert!(report.is_ok(), "{}\n{:#?}", report.summary(), report.errors);
    assert!(report.produced > 0);
}

/// Waits until `worker` owns every one of `shards` (a takeover: it can only happen after the
/// failover time, however long the loaded machine makes that).
async fn wait_owns_all(fleet: &ProcessFleet, worker: &str, shards: &[String]) {
    let started = std::time::Instant::now();
    loop {
        let owned = fleet.shards_of(worker).await.expect("leases");
        if shards.iter().all(|shard| owned.contains(shard)) {
            return;
        }
        assert!(
            started.elapsed() < LONG,
            "{worker} did not take over {shards:?} within {LONG:?}: holds {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn owner_with_most_leases(fleet: &ProcessFleet, among: &[&str]) -> String {
    let counts = fleet.lease_counts().await.expect("lease table");
    among
        .iter()
        .max_by_key(|worker| counts.get(**worker).copied().unwrap_or(0))
        .map(|worker| (*worker).to_owned())
        .expect("at least one worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_sigstop_past_the_failover_time_lose_nothing() {
    let mut fleet = ProcessFleet::start("kill", FleetOptions::default())
        .await
        .expect("fleet");
    for worker in ["w1", "w2", "w3"] {
        fleet.start_worker(worker).expect("worker");
    }
    fleet
        .wait_balanced(&["w1", "w2", "w3"], LONG)
        .await
        .expect("leases spread over the three workers");
    fleet.produce(600).await.expect("produce");
    fleet.wait_all_processed(LONG).await.expect("first batch");

    // SIGKILL the busiest worker while records flow: its shards move to the others after the
    // failover time, and its uncheckpointed tail may be delivered again.
    let killed = owner_with_most_leases(&fleet, &["w1", "w2", "w3"]).await;
    let producing = fleet.spawn_producer(1200, Some(800));
    tokio::time::sleep(Duration::from_millis(700)).await;
    fleet.kill(&killed).expect("kill");
    let survivors: Vec<&str> = ["w1", "w2", "w3"]
        .into_iter()
        .filter(|worker| *worker != killed)
        .collect();
    let stored = producing.await.expect("producer task").expect("produced");
    fleet.add_produced(stored);
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("the survivors process the killed worker's shards");
    fleet
        .wait_balanced(&survivors, LONG)
        .await
        .expect("the killed worker's leases were taken over");

    // SIGSTOP a survivor past the failover time: the last worker takes its shards.
    let stopped = owner_with_most_leases(&fleet, &survivors).await;
    let last = survivors
        .iter()
        .copied()
        .find(|worker| *worker != stopped)
        .expect("two survivors");
    let stopped_shards = fleet.shards_of(&stopped).await.expect("leases");
    let producing = fleet.spawn_producer(800, Some(800));
    // Shapes the scenario only (stop while records flow); nothing below depends on it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    fleet.stop(&stopped).expect("SIGSTOP");
    // A condition, not a look after the fact: whether the producer was still running after
    // the stop (so that only a takeover could process the rest) is timing luck on a loaded
    // machine; the takeover itself is what this phase is about.
    wait_owns_all(&fleet, last, &stopped_shards).await;
    let stored = producing.await.expect("producer task").expect("produced");
    fleet.add_produced(stored);
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("the last worker processes everything while the other is stopped");

    // SIGCONT: the resumed worker finds its leases gone (its stale checkpoints are refused),
    // keeps running, and may win some shards back.
    fleet.cont(&stopped).expect("SIGCONT");
    fleet.produce(400).await.expect("produce");
    fleet.wait_all_processed(LONG).await.expect("after resume");
    assert!(fleet.is_running(&stopped), "{}", fleet.worker_log(&stopped));

    let report = fleet.verify(true).await.expect("verify");
    assert_verified(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_shards_over_without_duplicates() {
    // No duplicates at all is only promised while no lease is lost involuntarily: with the
    // default 1 s failover, a loaded 2-core machine can delay a renewal past it (the worker
    // then re-delivers its uncheckpointed batch, legitimately, or still owns a lease it could
    // not release). A 3 s failover needs a stall of about 2.7 s for that.
    let mut fleet = ProcessFleet::start(
        "term",
        FleetOptions {
            failover_ms: 3000,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    fleet.start_worker("w1").expect("worker");
    fleet.start_worker("w2").expect("worker");
    fleet
        .wait_balanced(&["w1", "w2"], LONG)
        .await
        .expect("balanced");
    fleet.produce(800).await.expect("produce");
    fleet.wait_all_processed(LONG).await.expect("processed");

    fleet
        .terminate("w1")
        .await
        .expect("graceful exit on SIGTERM");
    let released = fleet.lease_counts().await.expect("leases");
    assert!(
        !released.contains_key("w1"),
        "w1 released its leases on shutdown: {released:?}"
    );
    fleet.produce(800).await.expect("produce");
    fleet.wait_all_processed(LONG).await.expect("w2 takes over");
    fleet
        .wait_balanced(&["w2"], LONG)
        .await
        .expect("w2 holds every shard");
    let report = fleet.verify(false).await.expect("verify");
    assert_verified(&report);
    assert_eq!(report.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_and_a_merge_during_production_keep_order_and_lineage() {
    let mut fleet = ProcessFleet::start(
        "reshard",
        FleetOptions {
            shards: 2,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    fleet.start_worker("w1").expect("worker");
    fleet.start_worker("w2").expect("worker");
    fleet
        .wait_balanced(&["w1", "w2"], LONG)
        .await
        .expect("balanced");

    let producing = fleet.spawn_producer(3000, Some(1000));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let open = fleet.open_shards().await.expect("shards");
    fleet.split(&open[0]).await.expect("split");
    let children: Vec<_> = fleet
        .shards()
        .await
        .expect("shards")
        .into_iter()
        .filter(|shard| shard.parent_shard_id.as_ref() == Some(&open[0].shard_id))
        .collect();
    assert_eq!(children.len(), 2, "a split makes two children");
    tokio::time::sleep(Duration::from_millis(700)).await;
    fleet
        .merge(&children[0].shard_id, &children[1].shard_id)
        .await
        .expect("merge the split's children back");
    let stored = producing.await.expect("producer task").expect("produced");
    fleet.add_produced(stored);
    fleet.produce(200).await.expect("produce after the merge");
    fleet.wait_all_processed(LONG).await.expect("processed");

    let shards = fleet.shards().await.expect("shards");
    let merged = shards
        .iter()
        .find(|shard| shard.adjacent_parent_shard_id.is_some())
        .expect("a merged shard exists");
    let leases = fleet.leases().await.expect("leases");
    for parent in merged.parent_shard_ids() {
        let lease = leases.iter().find(|lease| &lease.lease_key == parent);
        assert!(
            lease.is_none_or(|lease| lease.is_finished()),
            "parent {parent} of the merged shard is finished or cleaned up: {lease:?}"
        );
    }
    let report = fleet.verify(true).await.expect("verify");
    assert_verified(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_with_its_data_dir_loses_nothing() {
    let mut fleet = ProcessFleet::start(
        "restart",
        FleetOptions {
            shards: 2,
            durable: true,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    fleet.start_worker("w1").expect("worker");
    fleet.start_worker("w2").expect("worker");
    fleet
        .wait_balanced(&["w1", "w2"], LONG)
        .await
        .expect("balanced");
    fleet.produce(500).await.expect("produce");
    fleet.wait_all_processed(LONG).await.expect("processed");

    fleet.restart_broker().await.expect("broker restarts");
    fleet.produce(500).await.expect("produce after the restart");
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("workers resume against the restarted broker");
    assert!(fleet.is_running("w1") && fleet.is_running("w2"));
    let report = fleet.verify(true).await.expect("verify");
    assert_verified(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_workers_run_a_multilang_python_processor_through_a_crash() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let processor = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/multilang_processor.py"
    );
    let mut fleet = ProcessFleet::start(
        "exec",
        FleetOptions {
            shards: 2,
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    let command = format!("python3 {processor}");
    fleet.start_exec_worker("p1", &command).expect("worker");
    fleet.start_exec_worker("p2", &command).expect("worker");
    fleet
        .wait_balanced(&["p1", "p2"], LONG)
        .await
        .expect("balanced");
    fleet.produce(300).await.expect("produce");
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("processed by python");
    fleet.kill("p1").expect("kill");
    fleet.produce(300).await.expect("produce");
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("p2's python processor takes over p1's shard");
    let report = fleet.verify(true).await.expect("verify");
    assert_verified(&report);
}
