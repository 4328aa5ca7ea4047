//! The SQLite store under real faults: another connection holding the write lock (throttled after
//! the configured busy timeout, then fine), a file that cannot be opened, and a file whose lease
//! table is corrupt (unavailable, not retryable). Every error here comes from SQLite itself.

use kcl_core::kinesis::ShardId;
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{LeaseStore, LeaseStoreError};
use kcl_core::sqlite::{DEFAULT_BUSY_TIMEOUT, SqliteLeaseStore, SqliteOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn raw_connection(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).expect("raw open");
    connection
        .busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    connection
}

#[test]
fn the_busy_timeout_is_derived_from_the_failover_time() {
    assert_eq!(SqliteOptions::default().busy_timeout, DEFAULT_BUSY_TIMEOUT);
    assert_eq!(DEFAULT_BUSY_TIMEOUT, Duration::from_secs(10) / 4);
    assert_eq!(
        SqliteOptions::for_failover_time(Duration::from_secs(2)).busy_timeout,
        Duration::from_millis(500)
    );
}

/// A write that waits for another connection's write lock gives up as `Throttled` after the
/// configured busy timeout (3 s, longer than the 2.5 s default, so the lower bound shows the
/// option is the one applied), and the same write succeeds once the lock is released.
#[tokio::test]
async fn a_write_blocked_by_another_writer_is_throttled_after_the_busy_timeout() {
    let busy_timeout = Duration::from_secs(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    let store = SqliteLeaseStore::open_with_options(
        &path,
        "app",
        SqliteOptions::default().with_busy_timeout(busy_timeout),
    )
    .await
    .expect("open");
    let shard = ShardId::from_index(0);
    store
        .create_lease_if_absent(&Lease::new(shard.clone(), ExtendedSequenceNumber::LATEST))
        .await
        .expect("create");

    let blocker = raw_connection(&path);
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let started = Instant::now();
    let error = store
        .take_lease(&shard, 0, "worker")
        .await
        .expect_err("blocked");
    let waited = started.elapsed();
    assert!(
        matches!(error, LeaseStoreError::Throttled(_)),
        "expected Throttled, got {error:?}"
    );
    assert!(error.is_retryable(), "{error}");
    // A lower bound only: on a loaded machine it may take longer, never shorter.
    assert!(
        waited >= busy_timeout - Duration::from_millis(100),
        "gave up after {waited:?}, before the busy timeout {busy_timeout:?}"
    );

    blocker.execute_batch("ROLLBACK").expect("release");
    let taken = store
        .take_lease(&shard, 0, "worker")
        .await
        .expect("the lock is released");
    assert!(taken.is_owned_by("worker"));
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-directory").join("leases.db");
    let error = SqliteLeaseStore::open(&path, "app")
        .await
        .expect_err("no directory");
    assert!(
        matches!(error, LeaseStoreError::Unavailable(_)),
        "expected Unavailable, got {error:?}"
    );
    assert!(error.to_string().contains("cannot open"), "{error}");
    assert!(!error.is_retryable());
}

/// The lease table's root page overwritten on disk: scans and point reads fail as
/// `Unavailable` ("file is corrupt"), not as a retryable error.
#[tokio::test]
async fn a_corrupt_lease_table_is_unavailable_and_not_retryable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    let store = SqliteLeaseStore::open(&path, "app").await.expect("open");
    for index in 0..20 {
        store
            .create_lease_if_absent(&Lease::new(
                ShardId::from_index(index),
                ExtendedSequenceNumber::LATEST,
            ))
            .await
            .expect("create");
    }
    let table = store.table().to_owned();
    // Closing the last connection checkpoints the WAL into the file.
    store.close().await;
    let (root_page, page_size): (u64, u64) = {
        let connection = raw_connection(&path);
        let root_page = connection
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                [&table],
                |row| row.get(0),
            )
            .expect("root page");
        let page_size = connection
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .expect("page size");
        (root_page, page_size)
    };
    assert!(root_page >= 2, "the lease table is not on the header page");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the file");
        file.seek(SeekFrom::Start((root_page - 1) * page_size))
            .expect("seek");
        file.write_all(&vec![0xFF; page_size as usize])
            .expect("overwrite the root page");
        file.sync_all().expect("sync");
    }

    let store = SqliteLeaseStore::open(&path, "app")
        .await
        .expect("the header and schema are intact");
    let error = store.list_leases().await.expect_err("corrupt table");
    assert!(
        matches!(error, LeaseStoreError::Unavailable(_)),
        "expected Unavailable, got {error:?}"
    );
    assert!(error.to_string().contains("corrupt"), "{error}");
    assert!(!error.is_retryable());
    let error = store
        .get_lease(&ShardId::from_index(0))
        .await
        .expect_err("corrupt table");
    assert!(
        matches!(error, LeaseStoreError::Unavailable(_)),
        "expected Unavailable, got {error:?}"
    );
}

/// Another process holding the write lock while this one opens (as during its own set-up):
/// set-up is retried past the busy timeout until the lock is released, then the open succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_retries_set_up_while_another_connection_holds_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    SqliteLeaseStore::open(&path, "first")
        .await
        .expect("initialise")
        .close()
        .await;
    let blocker = raw_connection(&path);
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let options = SqliteOptions::default()
        .with_busy_timeout(Duration::from_millis(20))
        .with_open_timeout(Duration::from_secs(60));
    let opening = tokio::spawn({
        let path = path.clone();
        async move { SqliteLeaseStore::open_with_options(&path, "second", options).await }
    });
    // The open cannot complete while the lock is held (it must create its table), however long
    // this takes; holding it for many busy timeouts makes set-up fail as busy several times.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!opening.is_finished(), "opened while the lock was held");
    blocker.execute_batch("ROLLBACK").expect("release");
    let store = opening
        .await
        .expect("task")
        .expect("open succeeds once the lock is released");
    assert!(store.list_leases().await.expect("list").is_empty());
}

/// A lock held for longer than the open timeout fails the open as `Throttled` (retryable).
#[tokio::test]
async fn open_gives_up_as_throttled_after_the_open_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leases.db");
    SqliteLeaseStore::open(&path, "first")
        .await
        .expect("initialise")
        .close()
        .await;
    let blocker = raw_connection(&path);
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let options = SqliteOptions::default()
        .with_busy_timeout(Duration::from_millis(20))
        .with_open_timeout(Duration::from_millis(200));
    let error = SqliteLeaseStore::open_with_options(&path, "second", options)
        .await
        .expect_err("the lock is never released while opening");
    assert!(
        matches!(error, LeaseStoreError::Throttled(_)),
        "expected Throttled, got {error:?}"
    );
    assert!(error.to_string().contains("stayed busy"), "{error}");
    assert!(error.is_retryable());
    blocker.execute_batch("ROLLBACK").expect("release");
}
