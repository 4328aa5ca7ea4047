//! boto3 against the real `kinesis-broker --data-dir`: account settings, warm throughput, max
//! record sizes and streams of two regions (the `--region` one in the data directory, the
//! other under `regions/eu-west-1/`) set through boto3 are all still there after the process
//! is killed with SIGKILL and restarted on the same data directory. Skipped, with the reason
//! printed, when python3 or boto3 is not installed.

#[path = "../../tests/server_common/boto3.rs"]
mod boto3;
mod broker_process;

use broker_process::start_broker;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/boto3_account.py");

async fn run_script(endpoint: &str, phase: &str) {
    let success_line = format!("boto3 account {phase} passed");
    boto3::run_boto3_script(SCRIPT, endpoint, &[phase], &success_line).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_settings_and_regions_survive_sigkill_and_restart() {
    if !boto3::boto3_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut first = start_broker(&data_dir, &dir.path().join("first.log"), &[]).await;
    run_script(&first.endpoint, "setup").await;
    run_script(&first.endpoint, "verify").await;
    let pid = Pid::from_raw(first.child.id().unwrap() as i32);
    kill(pid, Signal::SIGKILL).unwrap();
    first.child.wait().await.unwrap();
    assert!(
        data_dir.join("regions/eu-west-1/metadata.json").is_file(),
        "the second region lives in its own directory"
    );
    assert!(data_dir.join("metadata.json").is_file());

    let mut second = start_broker(&data_dir, &dir.path().join("second.log"), &[]).await;
    run_script(&second.endpoint, "verify").await;
    second.child.kill().await.unwrap();
}
