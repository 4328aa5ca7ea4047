//! Fleet cold start: many connections (threads of one process, and separate processes) opening
//! a NEW lease file at the same moment, for one or several applications, must all succeed, and
//! the file must end up with every application's table.

use kcl_core::sqlite::{APPLICATION_ID, SqliteLeaseStore, table_name};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const APPLICATIONS: [&str; 3] = ["orders", "billing", "audit"];

/// Checks the file after a round: a kcl-rs file in WAL mode with one table per application.
fn assert_initialised(path: &Path, applications: &[&str], round: usize) {
    let connection = rusqlite::Connection::open(path).expect("raw open");
    connection
        .busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    let application_id: i32 = connection
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .expect("application_id");
    assert_eq!(application_id, APPLICATION_ID, "round {round}");
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode.to_ascii_lowercase(), "wal", "round {round}");
    for application in applications {
        let table = table_name(application);
        let tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&table],
                |row| row.get(0),
            )
            .expect("table lookup");
        assert_eq!(tables, 1, "round {round}: table of {application} missing");
        let registered: i64 = connection
            .query_row(
                "SELECT count(*) FROM kcl_applications WHERE application_name = ?1 \
                 AND table_name = ?2",
                [*application, table.as_str()],
                |row| row.get(0),
            )
            .expect("registry lookup");
        assert_eq!(registered, 1, "round {round}: {application} not registered");
    }
}

/// 30 rounds × 8 threads, each with its own store (own connection, own connection thread),
/// released together by a barrier onto a file that does not exist yet.
#[test]
fn many_connections_open_a_new_file_at_the_same_moment() {
    const ROUNDS: usize = 30;
    const OPENERS: usize = 8;
    let closer = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leases.db");
        let barrier = Arc::new(Barrier::new(OPENERS));
        let openers: Vec<_> = (0..OPENERS)
            .map(|index| {
                let application = APPLICATIONS[index % APPLICATIONS.len()];
                let barrier = barrier.clone();
                let path = path.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    barrier.wait();
                    let opened = runtime.block_on(SqliteLeaseStore::open(&path, application));
                    (application, opened)
                })
            })
            .collect();
        let mut stores = Vec::new();
        let mut failures = Vec::new();
        for opener in openers {
            let (application, opened) = opener.join().expect("opener thread");
            match opened {
                Ok(store) => stores.push(store),
                Err(error) => failures.push(format!("{application}: {error}")),
            }
        }
        assert!(
            failures.is_empty(),
            "round {round}: {} of {OPENERS} opens failed: {failures:#?}",
            failures.len()
        );
        assert_initialised(&path, &APPLICATIONS, round);
        for store in stores {
            closer.block_on(store.close());
        }
    }
}

const COLD_DB: &str = "KCL_CORE_COLD_DB";
const COLD_APPLICATION: &str = "KCL_CORE_COLD_APPLICATION";
const COLD_GO: &str = "KCL_CORE_COLD_GO";

/// Runs inside a child process started by `many_processes_open_a_new_file_at_the_same_moment`.
#[test]
#[ignore = "helper process for many_processes_open_a_new_file_at_the_same_moment"]
fn cold_start_helper_process() {
    let (Ok(db), Ok(application), Ok(go)) = (
        std::env::var(COLD_DB),
        std::env::var(COLD_APPLICATION),
        std::env::var(COLD_GO),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // libtest prints "test name ... " without a newline first: mark our lines.
    println!("\nCOLD ready");
    std::io::stdout().flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&go).exists() {
        assert!(Instant::now() < deadline, "never told to go");
        std::thread::sleep(Duration::from_millis(1));
    }
    match runtime.block_on(SqliteLeaseStore::open(&db, &application)) {
        Ok(store) => {
            runtime.block_on(store.close());
            println!("COLD opened");
        }
        Err(error) => println!("COLD error {error}"),
    }
}

/// Rounds of 4 child processes (the test binary re-executed), 2 applications, all told to open
/// the same new file at once.
#[test]
fn many_processes_open_a_new_file_at_the_same_moment() {
    const ROUNDS: usize = 12;
    const PROCESSES: usize = 4;
    let exe = std::env::current_exe().expect("test binary");
    let applications = &APPLICATIONS[..2];
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("leases.db");
        let go = dir.path().join("go");
        let mut children = Vec::new();
        for index in 0..PROCESSES {
            let application = applications[index % applications.len()];
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "cold_start_helper_process",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(COLD_DB, &db)
                .env(COLD_APPLICATION, application)
                .env(COLD_GO, &go)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn helper");
            let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            // Wait until the helper is running, so that all of them start opening together.
            loop {
                line.clear();
                let read = stdout.read_line(&mut line).expect("read");
                assert!(read > 0, "helper exited before it was ready");
                if line.contains("COLD ready") {
                    break;
                }
            }
            children.push((application, child, stdout));
        }
        std::fs::write(&go, b"go").expect("go");
        let mut failures = Vec::new();
        for (application, mut child, mut stdout) in children {
            let mut output = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut output).expect("output");
            let exited = child.wait().expect("wait");
            if !exited.success() || !output.contains("COLD opened") {
                failures.push(format!("{application}: {exited}: {}", output.trim()));
            }
        }
        assert!(
            failures.is_empty(),
            "round {round}: processes failed to open: {failures:#?}"
        );
        assert_initialised(&db, applications, round);
    }
}
