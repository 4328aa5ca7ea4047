//! Every conditional operation's success and failure paths, run against both lease stores
//! (in memory and SQLite), plus SQLite-specific behaviour: persistence, several connections and
//! several processes sharing one file, and clear errors for foreign or corrupted files. With
//! feature `dynamodb`, the conformance suite and the process race also run against the DynamoDB
//! store on a local DynamoDB-compatible server.

use kcl_core::kinesis::{HashKeyRange, SequenceNumber, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, LeaseStoreError, Renewal};
use kcl_core::memory::InMemoryLeaseStore;
use kcl_core::sqlite::SqliteLeaseStore;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn id(index: u64) -> ShardId {
    ShardId::from_index(index)
}

fn full_lease(index: u64) -> Lease {
    let mut lease = Lease::new(id(index), ExtendedSequenceNumber::TRIM_HORIZON);
    lease.parent_shard_ids = vec![id(100), id(101)];
    lease.child_shard_ids = vec![id(200)];
    lease.hash_key_range = Some(HashKeyRange::new(0, u128::MAX));
    lease.checkpoint = ExtendedSequenceNumber::new(
        "49590338271490256608559692538361571095921575989136588898"
            .parse()
            .expect("aws-sized sequence number"),
        7,
    );
    lease.pending_checkpoint = Some(ExtendedSequenceNumber::SHARD_END);
    lease.pending_checkpoint_state = Some(vec![0, 1, 2, 255]);
    lease.owner_switches_since_checkpoint = 3;
    lease
}

fn assert_condition_failed<T: std::fmt::Debug>(result: Result<T, LeaseStoreError>, what: &str) {
    match result {
        Err(LeaseStoreError::ConditionFailed { .. }) => {}
        other => panic!("{what}: expected ConditionFailed, got {other:?}"),
    }
}

async fn get(store: &dyn LeaseStore, index: u64) -> Lease {
    store
        .get_lease(&id(index))
        .await
        .expect("get")
        .expect("lease exists")
}

async fn conformance(store: &dyn LeaseStore) {
    // create-if-absent
    assert!(
        store
            .create_lease_if_absent(&full_lease(1))
            .await
            .expect("create")
    );
    let mut other = Lease::new(id(1), ExtendedSequenceNumber::LATEST);
    other.lease_owner = Some("intruder".to_owned());
    assert!(
        !store
            .create_lease_if_absent(&other)
            .await
            .expect("create again")
    );
    assert_eq!(
        get(store, 1).await,
        full_lease(1),
        "round trip, not overwritten"
    );
    assert!(
        store
            .get_lease(&id(9))
            .await
            .expect("get missing")
            .is_none()
    );
    for index in [3, 2] {
        let lease = Lease::new(id(index), ExtendedSequenceNumber::LATEST);
        assert!(store.create_lease_if_absent(&lease).await.expect("create"));
    }
    let keys: Vec<ShardId> = store
        .list_leases()
        .await
        .expect("list")
        .into_iter()
        .map(|lease| lease.lease_key)
        .collect();
    assert_eq!(keys, vec![id(1), id(2), id(3)]);

    // take
    let taken = store.take_lease(&id(2), 0, "a").await.expect("take");
    assert_eq!(taken.lease_owner.as_deref(), Some("a"));
    assert_eq!(taken.lease_counter, 1);
    assert_eq!(taken.owner_switches_since_checkpoint, 1);
    assert_eq!(get(store, 2).await, taken);
    assert_condition_failed(
        store.take_lease(&id(2), 0, "b").await,
        "take, stale counter",
    );
    assert_eq!(get(store, 2).await, taken, "unchanged after a failed take");
    let retaken = store.take_lease(&id(2), 1, "a").await.expect("take own");
    assert_eq!(
        retaken.owner_switches_since_checkpoint, 1,
        "same owner: no switch"
    );
    let stolen = store.take_lease(&id(2), 2, "b").await.expect("steal");
    assert_eq!(stolen.owner_switches_since_checkpoint, 2);
    assert_eq!(stolen.lease_counter, 3);
    assert_condition_failed(store.take_lease(&id(9), 0, "a").await, "take missing");

    // renew (batch): success, stale counter, wrong owner, missing
    store.take_lease(&id(3), 0, "b").await.expect("take 3");
    let renewals = [
        Renewal {
            lease_key: id(2),
            expected_counter: 3,
            owner: "b".to_owned(),
        },
        Renewal {
            lease_key: id(3),
            expected_counter: 0,
            owner: "b".to_owned(),
        },
        Renewal {
            lease_key: id(1),
            expected_counter: 0,
            owner: "b".to_owned(),
        },
        Renewal {
            lease_key: id(9),
            expected_counter: 0,
            owner: "b".to_owned(),
        },
    ];
    let results = store.renew_leases(&renewals).await.expect("renew batch");
    assert_eq!(results.len(), 4);
    let renewed = results[0].as_ref().expect("renewed");
    assert_eq!(renewed.lease_counter, 4);
    assert_eq!(get(store, 2).await.lease_counter, 4);
    for (index, result) in results.into_iter().enumerate().skip(1) {
        assert_condition_failed(result, &format!("renewal {index}"));
    }
    assert_eq!(
        get(store, 3).await.lease_counter,
        1,
        "failed renewal changes nothing"
    );
    assert_eq!(get(store, 1).await, full_lease(1));
    assert!(
        store
            .renew_leases(&[])
            .await
            .expect("empty batch")
            .is_empty()
    );

    // update checkpoint: commit, prepare, failures
    let update = CheckpointUpdate {
        checkpoint: Some(ExtendedSequenceNumber::new(
            SequenceNumber::from_u128(42),
            0,
        )),
        pending_checkpoint: None,
        pending_checkpoint_state: None,
    };
    let checkpointed = store
        .update_checkpoint(&id(2), "b", 4, &update)
        .await
        .expect("checkpoint");
    assert_eq!(checkpointed.checkpoint, update.checkpoint.expect("set"));
    assert_eq!(checkpointed.owner_switches_since_checkpoint, 0);
    assert_eq!(checkpointed.lease_counter, 5);
    let prepare = CheckpointUpdate {
        checkpoint: None,
        pending_checkpoint: Some(ExtendedSequenceNumber::new(
            SequenceNumber::from_u128(50),
            2,
        )),
        pending_checkpoint_state: Some(b"app".to_vec()),
    };
    let prepared = store
        .update_checkpoint(&id(2), "b", 5, &prepare)
        .await
        .expect("prepare");
    assert_eq!(
        prepared.checkpoint, checkpointed.checkpoint,
        "prepare keeps the checkpoint"
    );
    assert_eq!(prepared.pending_checkpoint, prepare.pending_checkpoint);
    assert_eq!(
        prepared.pending_checkpoint_state.as_deref(),
        Some(&b"app"[..])
    );
    assert_eq!(get(store, 2).await, prepared);
    assert_condition_failed(
        store.update_checkpoint(&id(2), "a", 6, &update).await,
        "checkpoint, wrong owner",
    );
    assert_condition_failed(
        store.update_checkpoint(&id(2), "b", 5, &update).await,
        "checkpoint, stale counter",
    );
    assert_condition_failed(
        store.update_checkpoint(&id(9), "b", 0, &update).await,
        "checkpoint, missing",
    );
    assert_eq!(
        get(store, 2).await,
        prepared,
        "failed checkpoints change nothing"
    );

    // evict
    assert_condition_failed(store.evict_lease(&id(2), "a").await, "evict, wrong owner");
    let evicted = store.evict_lease(&id(2), "b").await.expect("evict");
    assert_eq!(evicted.lease_owner, None);
    assert_eq!(evicted.lease_counter, 7);
    assert_condition_failed(store.evict_lease(&id(2), "b").await, "evict a free lease");
    assert_condition_failed(store.evict_lease(&id(9), "b").await, "evict missing");
    assert_eq!(get(store, 2).await, evicted);

    // lineage
    let range = HashKeyRange::new(5, 10);
    let with_children = store
        .update_lineage(&id(3), &[id(7), id(8)], Some(range))
        .await
        .expect("lineage");
    assert_eq!(with_children.child_shard_ids, vec![id(7), id(8)]);
    assert_eq!(with_children.hash_key_range, Some(range));
    assert_eq!(
        with_children.lease_counter, 1,
        "lineage is not an ownership change"
    );
    let kept_range = store
        .update_lineage(&id(3), &[id(7)], None)
        .await
        .expect("lineage without range");
    assert_eq!(kept_range.hash_key_range, Some(range));
    assert_eq!(get(store, 3).await, kept_range);
    assert_condition_failed(
        store.update_lineage(&id(9), &[], None).await,
        "lineage, missing",
    );

    // delete
    store.delete_lease(&id(3)).await.expect("delete");
    assert!(store.get_lease(&id(3)).await.expect("get").is_none());
    store
        .delete_lease(&id(3))
        .await
        .expect("delete missing is fine");
    assert_eq!(store.list_leases().await.expect("list").len(), 2);
}

#[tokio::test]
async fn in_memory_store_conditions() {
    conformance(&InMemoryLeaseStore::new()).await;
}

#[tokio::test]
async fn sqlite_store_conditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteLeaseStore::open(dir.path().join("leases.db"), "conformance")
        .await
        .expect("open");
    conformance(&store).await;
}

#[tokio::test]
async fn sqlite_leases_persist_and_applications_are_separate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    {
        let store = SqliteLeaseStore::open(&path, "app one")
            .await
            .expect("open");
        store
            .create_lease_if_absent(&full_lease(1))
            .await
            .expect("create");
    }
    let reopened = SqliteLeaseStore::open(&path, "app one")
        .await
        .expect("reopen");
    assert_eq!(
        reopened.list_leases().await.expect("list"),
        vec![full_lease(1)]
    );
    let other_app = SqliteLeaseStore::open(&path, "app-one")
        .await
        .expect("other app");
    assert_ne!(reopened.table(), other_app.table());
    assert!(other_app.list_leases().await.expect("list").is_empty());
    let empty_name = SqliteLeaseStore::open(&path, "").await;
    assert!(matches!(empty_name, Err(LeaseStoreError::InvalidStore(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_sharing_a_file_never_both_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    let first = SqliteLeaseStore::open(&path, "app").await.expect("open");
    let second = SqliteLeaseStore::open(&path, "app").await.expect("open");
    let leases = 50;
    for index in 0..leases {
        first
            .create_lease_if_absent(&Lease::new(id(index), ExtendedSequenceNumber::LATEST))
            .await
            .expect("create");
    }
    let race = |store: SqliteLeaseStore, worker: &'static str| {
        tokio::spawn(async move {
            let mut won = Vec::new();
            for index in 0..leases {
                match store.take_lease(&id(index), 0, worker).await {
                    Ok(_) => won.push(index),
                    Err(error) if error.is_condition_failed() => {}
                    Err(error) => panic!("unexpected error: {error}"),
                }
            }
            (store, won)
        })
    };
    let a = race(first, "a");
    let b = race(second, "b");
    let (first, won_a) = a.await.expect("a");
    let (_second, won_b) = b.await.expect("b");
    assert_eq!(won_a.len() + won_b.len(), leases as usize);
    for lease in first.list_leases().await.expect("list") {
        let index = lease.lease_key.index().expect("index");
        let winner = if won_a.contains(&index) { "a" } else { "b" };
        assert!(lease.is_owned_by(winner));
        assert_eq!(lease.lease_counter, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_keeps_each_write_condition_separate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(
        SqliteLeaseStore::open(dir.path().join("leases.db"), "app")
            .await
            .expect("open"),
    );
    let tasks = 64u64;
    for index in 0..=tasks {
        store
            .create_lease_if_absent(&Lease::new(id(index), ExtendedSequenceNumber::LATEST))
            .await
            .expect("create");
    }
    // Every task takes its own lease and races for the shared lease `tasks`; the writes are
    // queued together and committed in shared transactions.
    let mut set = tokio::task::JoinSet::new();
    for index in 0..tasks {
        let store = store.clone();
        set.spawn(async move {
            let worker = format!("w{index}");
            let own = store.take_lease(&id(index), 0, &worker).await;
            let shared = store.take_lease(&id(tasks), 0, &worker).await;
            (
                worker,
                own.is_ok(),
                shared.map_err(|error| error.is_condition_failed()),
            )
        });
    }
    let mut shared_winners = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (worker, own_ok, shared) = joined.expect("task");
        assert!(own_ok, "{worker} must take its own lease");
        match shared {
            Ok(_) => shared_winners.push(worker),
            Err(true) => {}
            Err(false) => panic!("{worker}: unexpected error on the shared lease"),
        }
    }
    assert_eq!(shared_winners.len(), 1);
    let shared = store
        .get_lease(&id(tasks))
        .await
        .expect("get")
        .expect("exists");
    assert!(shared.is_owned_by(&shared_winners[0]));
    assert_eq!(shared.lease_counter, 1);
    for index in 0..tasks {
        let lease = store
            .get_lease(&id(index))
            .await
            .expect("get")
            .expect("exists");
        assert!(lease.is_owned_by(&format!("w{index}")));
    }
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).expect("write");
    let error = SqliteLeaseStore::open(&path, "app")
        .await
        .expect_err("refused");
    assert!(matches!(error, LeaseStoreError::InvalidStore(_)), "{error}");
    assert!(
        error.to_string().contains("not a SQLite database"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        garbage,
        "file untouched"
    );
}

fn raw_connection(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw open")
}

#[tokio::test]
async fn a_foreign_sqlite_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("foreign.db");
    raw_connection(&path)
        .execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
        .expect("foreign schema");
    let error = SqliteLeaseStore::open(&path, "app")
        .await
        .expect_err("refused");
    assert!(matches!(error, LeaseStoreError::InvalidStore(_)), "{error}");
    assert!(error.to_string().contains("another program"), "{error}");
    let tables: Vec<String> = raw_connection(&path)
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(tables, vec!["users".to_owned()]);
}

#[tokio::test]
async fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    SqliteLeaseStore::open(&path, "app")
        .await
        .expect("create")
        .close()
        .await;
    raw_connection(&path)
        .execute_batch("PRAGMA user_version = 99")
        .expect("bump version");
    let error = SqliteLeaseStore::open(&path, "app")
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("version 99"), "{error}");
    assert!(error.to_string().contains("newer"), "{error}");
}

#[tokio::test]
async fn a_corrupted_lease_row_is_reported_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    let store = SqliteLeaseStore::open(&path, "app").await.expect("open");
    store
        .create_lease_if_absent(&full_lease(1))
        .await
        .expect("create");
    let connection = raw_connection(&path);
    connection
        .busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    connection
        .execute(
            &format!("UPDATE {} SET checkpoint = 'garbage'", store.table()),
            [],
        )
        .expect("corrupt");
    // Scans skip the row (see sqlite_bad_rows.rs); reading it by key reports it.
    assert!(store.list_leases().await.expect("list").is_empty());
    let error = store.get_lease(&id(1)).await.expect_err("corrupt row");
    assert!(matches!(error, LeaseStoreError::InvalidStore(_)), "{error}");
    assert!(error.to_string().contains("checkpoint"), "{error}");
    assert!(error.to_string().contains("garbage"), "{error}");
}

const RACE_DB: &str = "KCL_CORE_RACE_DB";
const RACE_WORKER: &str = "KCL_CORE_RACE_WORKER";
const RACE_GO: &str = "KCL_CORE_RACE_GO";
const RACE_LEASES: u64 = 20;

/// Runs inside a child process started by `two_processes_race_to_take_the_same_leases`.
#[tokio::test]
#[ignore = "helper process for two_processes_race_to_take_the_same_leases"]
async fn race_helper_process() {
    let (Ok(db), Ok(worker), Ok(go)) = (
        std::env::var(RACE_DB),
        std::env::var(RACE_WORKER),
        std::env::var(RACE_GO),
    ) else {
        return;
    };
    let store = SqliteLeaseStore::open(&db, "race").await.expect("open");
    race_in_this_process(&store, &worker, Path::new(&go)).await;
}

/// The racing side, in a helper process: says it is ready, waits for the go file, then tries to
/// take every race lease and prints what happened to each.
async fn race_in_this_process(store: &dyn LeaseStore, worker: &str, go: &Path) {
    // libtest prints "test name ... " without a newline first: mark our lines.
    println!("\nRACE ready");
    std::io::stdout().flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "never told to go");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for index in 0..RACE_LEASES {
        match store.take_lease(&id(index), 0, worker).await {
            Ok(_) => println!("RACE won {index}"),
            Err(error) if error.is_condition_failed() => println!("RACE lost {index}"),
            Err(error) => println!("RACE error {index} {error}"),
        }
    }
}

/// Starts two helper processes running the ignored test `helper_test` (each configured by
/// `configure` and told its worker name), lets them race once both are ready, and checks that
/// every lease was won exactly once and that `store` shows each winner as the owner.
async fn race_two_processes(
    store: &dyn LeaseStore,
    helper_test: &str,
    go: &Path,
    configure: impl Fn(&mut Command),
) {
    for index in 0..RACE_LEASES {
        store
            .create_lease_if_absent(&Lease::new(id(index), ExtendedSequenceNumber::LATEST))
            .await
            .expect("create");
    }
    let exe = std::env::current_exe().expect("test binary");
    let workers = ["process-a", "process-b"];
    let mut children = Vec::new();
    for worker in workers {
        let mut command = Command::new(&exe);
        command
            .args([
                "--exact",
                helper_test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RACE_WORKER, worker)
            .env(RACE_GO, go)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().expect("spawn helper");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        // Wait until the helper has opened the store.
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).expect("read");
            assert!(read > 0, "helper exited before it was ready");
            if line.contains("RACE ready") {
                break;
            }
        }
        children.push((worker, child, stdout));
    }
    std::fs::write(go, b"go").expect("go");
    let mut wins: Vec<(u64, &str)> = Vec::new();
    for (worker, mut child, mut stdout) in children {
        let mut output = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut output).expect("output");
        assert!(
            child.wait().expect("wait").success(),
            "{worker} failed: {output}"
        );
        for line in output.lines() {
            let Some((_, ours)) = line.split_once("RACE ") else {
                continue;
            };
            let mut words = ours.split_whitespace();
            match (words.next(), words.next()) {
                (Some("won"), Some(index)) => wins.push((index.parse().expect("index"), worker)),
                (Some("lost"), Some(_)) => {}
                (Some("error"), _) => panic!("{worker}: {line}"),
                _ => {}
            }
        }
    }
    wins.sort_unstable();
    let won_leases: Vec<u64> = wins.iter().map(|(index, _)| *index).collect();
    assert_eq!(
        won_leases,
        (0..RACE_LEASES).collect::<Vec<_>>(),
        "exactly one winner each"
    );
    for (index, winner) in wins {
        let lease = get(store, index).await;
        assert!(lease.is_owned_by(winner), "lease {index}: {lease:?}");
        assert_eq!(lease.lease_counter, 1);
    }
}

#[tokio::test]
async fn two_processes_race_to_take_the_same_leases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("race.db");
    let go = dir.path().join("go");
    let store = SqliteLeaseStore::open(&db, "race").await.expect("open");
    race_two_processes(&store, "race_helper_process", &go, |command| {
        command.env(RACE_DB, &db);
    })
    .await;
}

#[cfg(feature = "dynamodb")]
#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;

/// The same conformance suite and the two-process race against the DynamoDB store on a local
/// DynamoDB-compatible server (moto, else dynalite; skipped loudly when neither is installed).
#[cfg(feature = "dynamodb")]
mod dynamodb {
    use super::*;
    use kcl_core::dynamodb::{DynamoDbLeaseStore, DynamoDbOptions};

    use super::dynamodb_local::LocalDynamoDb;

    const RACE_ENDPOINT: &str = "KCL_CORE_RACE_DYNAMODB_ENDPOINT";

    async fn start_server() -> Option<LocalDynamoDb> {
        tokio::task::spawn_blocking(LocalDynamoDb::start)
            .await
            .expect("launcher thread")
            .expect("start local dynamodb")
    }

    fn options(endpoint_url: &str, table: &str) -> DynamoDbOptions {
        DynamoDbOptions::new(table)
            .with_endpoint_url(endpoint_url)
            .with_region("us-east-1")
            .with_static_credentials("test", "test")
    }

    #[tokio::test]
    async fn dynamodb_store_conditions() {
        let Some(server) = start_server().await else {
            return;
        };
        let store = DynamoDbLeaseStore::connect(options(&server.endpoint_url(), "conformance"))
            .await
            .expect("connect");
        let before = store.requests_sent();
        conformance(&store).await;
        assert!(
            store.requests_sent() > before,
            "every operation of the suite is counted as a request"
        );
    }

    /// Runs inside a child process started by `two_processes_race_on_dynamodb`.
    #[tokio::test]
    #[ignore = "helper process for two_processes_race_on_dynamodb"]
    async fn dynamodb_race_helper_process() {
        let (Ok(endpoint), Ok(worker), Ok(go)) = (
            std::env::var(RACE_ENDPOINT),
            std::env::var(RACE_WORKER),
            std::env::var(RACE_GO),
        ) else {
            return;
        };
        // Everything from the standard AWS environment variables the parent set, as a worker
        // on a real host would get it (AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, credentials).
        assert_eq!(
            std::env::var("AWS_ENDPOINT_URL_DYNAMODB").as_deref(),
            Ok(endpoint.as_str())
        );
        let store = DynamoDbLeaseStore::connect(DynamoDbOptions::new("race"))
            .await
            .expect("connect");
        race_in_this_process(&store, &worker, Path::new(&go)).await;
    }

    #[tokio::test]
    async fn two_processes_race_on_dynamodb() {
        let Some(server) = start_server().await else {
            return;
        };
        let endpoint = server.endpoint_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let go = dir.path().join("go");
        let store = DynamoDbLeaseStore::connect(options(&endpoint, "race"))
            .await
            .expect("connect");
        race_two_processes(
            &store,
            "dynamodb::dynamodb_race_helper_process",
            &go,
            |command| {
                command
                    .env(RACE_ENDPOINT, &endpoint)
                    .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_ACCESS_KEY_ID", "test")
                    .env("AWS_SECRET_ACCESS_KEY", "test")
                    .env_remove("AWS_PROFILE");
            },
        )
        .await;
    }
}
