//! boto3's `firehose` client against the real `kinesis-broker --firehose-dir`: DirectPut
//! buffering into files, a transformation command that drops and fails records, the API's
//! limits and errors, and KinesisStreamAsSource and DirectPut deliveries that survive SIGKILL
//! of the broker with every acknowledged record delivered. Skipped, with the reason printed,
//! when python3 or boto3 is not installed.

#[path = "../../tests/server_common/boto3.rs"]
mod boto3;
mod broker_process;

use broker_process::{start_broker, start_broker_on};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::Duration;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/firehose_scripts/firehose_boto3.py"
);
const SHAPER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/firehose_scripts/shaper.py"
);

async fn run_phase(endpoint: &str, firehose_dir: &Path, phase: &str, args: &[&str]) {
    let dir = firehose_dir.to_string_lossy().into_owned();
    let mut all = vec![dir.as_str(), phase];
    all.extend_from_slice(args);
    boto3::run_boto3_script(SCRIPT, endpoint, &all, &format!("OK {phase}")).await;
}

fn firehose_args(firehose_dir: &Path) -> Vec<String> {
    vec![
        "--firehose-dir".to_owned(),
        firehose_dir.to_string_lossy().into_owned(),
        "--firehose-lambda".to_owned(),
        format!("shaper=python3 {SHAPER}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_put_transform_and_api_through_boto3() {
    if !boto3::boto3_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let firehose_dir = dir.path().join("objects");
    let args = firehose_args(&firehose_dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut broker = start_broker(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &args,
    )
    .await;
    run_phase(&broker.endpoint, &firehose_dir, "api", &[]).await;
    run_phase(&broker.endpoint, &firehose_dir, "direct", &[]).await;
    run_phase(&broker.endpoint, &firehose_dir, "transform", &[]).await;
    run_phase(&broker.endpoint, &firehose_dir, "partition", &[]).await;
    broker.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_source_delivers_every_acknowledged_record_across_sigkill() {
    if !boto3::boto3_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let firehose_dir = dir.path().join("objects");
    let args = firehose_args(&firehose_dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = start_broker(&data_dir, &dir.path().join("first.log"), &args).await;
    let listen = first.endpoint.trim_start_matches("http://").to_owned();
    run_phase(&first.endpoint, &firehose_dir, "source-setup", &["orders"]).await;

    let acked = dir.path().join("acked.txt");
    let stop = dir.path().join("stop");
    let producer = {
        let (endpoint, firehose_dir) = (first.endpoint.clone(), firehose_dir.clone());
        let (acked, stop) = (
            acked.to_string_lossy().into_owned(),
            stop.to_string_lossy().into_owned(),
        );
        tokio::spawn(async move {
            run_phase(
                &endpoint,
                &firehose_dir,
                "produce",
                &["orders", &acked, &stop],
            )
            .await;
        })
    };
    // Kill the broker once records are flowing and some files were written.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let acked_lines = std::fs::read_to_string(&acked)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        let delivered = walk_files(&firehose_dir.join("source-bucket"));
        if acked_lines > 500 && delivered > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no records flowed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Acknowledged DirectPut records (in the buffer engine, maybe not yet in a file).
    run_phase(&first.endpoint, &firehose_dir, "direct-put", &["buffered"]).await;
    let pid = Pid::from_raw(first.child.id().unwrap() as i32);
    kill(pid, Signal::SIGKILL).unwrap();
    first.child.wait().await.unwrap();

    let mut second =
        start_broker_on(&listen, &data_dir, &dir.path().join("second.log"), &args).await;
    // Let the producer put more records into the restarted broker, then stop it.
    let resumed_from = std::fs::read_to_string(&acked)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&acked)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < resumed_from + 500
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the producer did not resume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&stop, b"stop").unwrap();
    producer.await.unwrap();
    run_phase(
        &second.endpoint,
        &firehose_dir,
        "source-verify",
        &["orders", &acked.to_string_lossy()],
    )
    .await;
    run_phase(
        &second.endpoint,
        &firehose_dir,
        "direct-verify",
        &["buffered"],
    )
    .await;
    second.child.kill().await.unwrap();
}

/// The number of files below `dir` (0 when it does not exist yet).
fn walk_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk_files(&path) } else { 1 }
        })
        .sum()
}
