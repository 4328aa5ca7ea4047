//! boto3 against the real `kinesis-broker --data-dir`: stream settings (encryption, enhanced
//! monitoring, stream and consumer resource policies) set through boto3 are still reported
//! after the process is killed with SIGKILL and restarted on the same data directory. Skipped,
//! with the reason printed, when python3 or boto3 is not installed.

mod broker_process;

use broker_process::start_broker;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;
use tokio::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/boto3_settings.py");

async fn run_script(endpoint: &str, phase: &str) {
    let run = Command::new("python3")
        .arg(SCRIPT)
        .arg(endpoint)
        .arg(phase)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the boto3 script finishes")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "boto3 {phase} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("boto3 settings {phase} passed")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_settings_survive_sigkill_and_restart() {
    let has_boto3 = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    if !has_boto3 {
        println!("skipped: python3 with boto3 is not installed (pip install boto3)");
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

    let mut second = start_broker(&data_dir, &dir.path().join("second.log"), &[]).await;
    run_script(&second.endpoint, "verify").await;
    second.child.kill().await.unwrap();
}
