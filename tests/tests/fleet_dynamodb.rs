//! The multi-process suite on a DynamoDB lease table: a real `kinesis-broker`, a real
//! DynamoDB-compatible server (moto, started by the test) and several `kcl worker --leases
//! dynamodb:` processes, under SIGKILL, a restart of the killed worker and a split while
//! records flow; verified from the jsonl sinks and the lease table (see `tests::verify`):
//! nothing lost, children after parents. Then `kcl leases` / `kcl status` read the same table.
//!
//! Skips with a loud message when neither moto nor dynalite is installed (CI installs moto and
//! sets KCL_REQUIRE_DYNAMODB=1, which turns the skip into a failure).
//!
//! Needs the `kinesis-broker` and `kcl` binaries of the same profile next to the test
//! executable: `cargo test --workspace` builds them.

#[path = "../../kcl-core/tests/support/dynamodb_local.rs"]
mod dynamodb_local;

use dynamodb_local::LocalDynamoDb;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::fleet::{FleetLeaseStore, FleetOptions, ProcessFleet};
use tests::{binary, local_aws_env};

/// Deadline of anything a correct fleet does in seconds (generous for a loaded machine and a
/// Python DynamoDB server).
const LONG: Duration = Duration::from_secs(120);

fn start_server() -> Option<LocalDynamoDb> {
    LocalDynamoDb::start().expect("starting the local DynamoDB server")
}

/// Waits until `worker` owns at least one lease again (after a restart).
async fn wait_owns_some(fleet: &ProcessFleet, worker: &str) {
    let started = Instant::now();
    loop {
        if !fleet.shards_of(worker).await.expect("leases").is_empty() {
            return;
        }
        assert!(
            started.elapsed() < LONG,
            "{worker} owns no lease {LONG:?} after its restart:\n{}",
            fleet.worker_log(worker)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until none of `shards` is owned by the dead `worker` any more: each was taken over
/// by another worker (or finished, for a shard split meanwhile).
async fn wait_taken_over(fleet: &ProcessFleet, worker: &str, shards: &[String]) {
    let started = Instant::now();
    loop {
        let leases = fleet.leases().await.expect("leases");
        let still_dead: Vec<&String> = shards
            .iter()
            .filter(|shard| {
                leases.iter().any(|lease| {
                    lease.lease_key.as_str() == shard.as_str()
                        && lease.is_owned_by(worker)
                        && !lease.is_finished()
                })
            })
            .collect();
        if still_dead.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < LONG,
            "{still_dead:?} of the killed {worker} not taken over within {LONG:?}: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `kcl <args>` against the fleet's broker and DynamoDB server; returns (success, stdout,
/// stderr).
fn run_kcl(fleet: &ProcessFleet, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary("kcl").expect("kcl binary"))
        .args(args)
        .args(["--endpoint", fleet.endpoint()])
        .envs(local_aws_env())
        .output()
        .expect("running kcl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_restart_and_split_on_dynamodb_leases_lose_nothing() {
    let Some(server) = start_server() else {
        return;
    };
    let endpoint_url = server.endpoint_url();
    // `dynamodb:` alone: the workers name the table after the application, as the Java KCL.
    let mut fleet = ProcessFleet::start(
        "ddbfleet",
        FleetOptions {
            shards: 4,
            failover_ms: 3000,
            lease_store: FleetLeaseStore::DynamoDb {
                endpoint_url: endpoint_url.clone(),
                table: None,
            },
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");
    let workers = ["w1", "w2", "w3"];
    for worker in workers {
        fleet.start_worker(worker).expect("worker");
    }
    fleet
        .wait_balanced(&workers, LONG)
        .await
        .expect("leases spread over the three workers");
    fleet.produce(400).await.expect("produce");
    fleet.wait_all_processed(LONG).await.expect("first batch");

    // SIGKILL the busiest worker while records flow and split a shard meanwhile; restart the
    // killed worker with the same id (it finds its leases held by nobody alive, or taken).
    let counts = fleet.lease_counts().await.expect("lease table");
    let killed = workers
        .iter()
        .copied()
        .max_by_key(|worker| counts.get(*worker).copied().unwrap_or(0))
        .expect("three workers");
    let killed_shards = fleet.shards_of(killed).await.expect("leases");
    let producing = fleet.spawn_producer(1500, Some(500));
    tokio::time::sleep(Duration::from_millis(600)).await;
    fleet.kill(killed).expect("SIGKILL");
    let open = fleet.open_shards().await.expect("shards");
    let parent = open[0].clone();
    fleet.split(&parent).await.expect("split");
    // The survivors take the dead worker's leases once they expired (no renewal seen for the
    // failover time), then the killed worker comes back under the same id.
    wait_taken_over(&fleet, killed, &killed_shards).await;
    fleet.restart_worker(killed).expect("restart");
    let stored = producing.await.expect("producer task").expect("produced");
    fleet.add_produced(stored);
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("everything processed after the kill, the split and the restart");
    wait_owns_some(&fleet, killed).await;
    fleet.produce(300).await.expect("produce after the restart");
    fleet
        .wait_all_processed(LONG)
        .await
        .expect("everything processed at the end");

    let shards = fleet.shards().await.expect("shards");
    let children: BTreeSet<String> = shards
        .iter()
        .filter(|shard| shard.parent_shard_id.as_ref() == Some(&parent.shard_id))
        .map(|shard| shard.shard_id.to_string())
        .collect();
    assert_eq!(children.len(), 2, "a split makes two children");
    let leases = fleet.leases().await.expect("leases");
    let parent_lease = leases
        .iter()
        .find(|lease| lease.lease_key == parent.shard_id);
    assert!(
        parent_lease.is_none_or(|lease| lease.is_finished()),
        "the split parent is finished or cleaned up: {parent_lease:?}"
    );
    for child in &children {
        assert!(
            leases.iter().any(|lease| lease.lease_key.as_str() == child),
            "the child {child} has a lease: {leases:?}"
        );
    }
    let report = fleet.verify(true).await.expect("verify");
    eprintln!("fleet verdict: {}", report.summary());
    assert!(report.is_ok(), "{}\n{:#?}", report.summary(), report.errors);
    assert!(report.produced >= 2200, "{}", report.summary());

    // `kcl leases` and `kcl status` read the same table through `--leases dynamodb:`.
    let application = fleet.application.clone();
    let stream = fleet.stream.clone();
    let store_args = [
        "--leases",
        "dynamodb:",
        "--dynamodb-endpoint",
        &endpoint_url,
        "--application",
        &application,
    ];
    let (ok, stdout, stderr) = run_kcl(
        &fleet,
        &[&["leases"], &store_args[..], &["--json"]].concat(),
    );
    assert!(ok, "kcl leases failed: {stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("kcl leases --json");
    let listed: BTreeSet<String> = rows
        .as_array()
        .expect("an array of leases")
        .iter()
        .filter_map(|row| row["shard_id"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = leases
        .iter()
        .map(|lease| lease.lease_key.to_string())
        .collect();
    assert_eq!(listed, expected, "kcl leases lists the fleet's table");
    let (ok, stdout, stderr) = run_kcl(
        &fleet,
        &[&["status"], &store_args[..], &["--stream", &stream]].concat(),
    );
    assert!(ok, "kcl status failed: {stderr}");
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|header| header.contains("LAG(ms)"))
    );
    for child in &children {
        assert!(stdout.contains(child.as_str()), "{child} in:\n{stdout}");
    }

    // Inspecting a table that does not exist is an error, not a new empty table.
    let (ok, _, stderr) = run_kcl(
        &fleet,
        &[
            "leases",
            "--leases",
            "dynamodb:no-such-table",
            "--dynamodb-endpoint",
            &endpoint_url,
            "--application",
            &application,
        ],
    );
    assert!(!ok, "kcl leases on a missing table must fail");
    assert!(stderr.contains("no-such-table"), "{stderr}");
    drop(fleet);
    drop(server);
}
