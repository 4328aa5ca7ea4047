//! boto3 against the real `kinesis-broker --data-dir`: what a boto3 script sets (stream
//! settings; account settings, warm throughput, record sizes and streams of two regions) is
//! still there after the process is killed with SIGKILL and restarted on the same data
//! directory. Skipped, with the reason printed, when python3 or boto3 is not installed.

#[path = "../../tests/server_common/boto3.rs"]
mod boto3;
mod broker_process;

use broker_process::start_broker;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;

/// Runs `broker/scripts/SCRIPT`'s `setup` and `verify` phases, kills the broker with SIGKILL,
/// runs `after_kill` on the data directory, restarts the broker on it and runs `verify` again.
/// The script prints `boto3 LABEL PHASE passed` when a phase passes.
async fn survives_sigkill(script: &str, label: &str, after_kill: impl FnOnce(&Path)) {
    if !boto3::boto3_available() {
        return;
    }
    let script = format!("{}/../scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let run = |endpoint: String, phase: &'static str| {
        let script = script.clone();
        let success_line = format!("boto3 {label} {phase} passed");
        async move {
            boto3::run_boto3_script(&script, &endpoint, &[phase], &success_line).await;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut first = start_broker(&data_dir, &dir.path().join("first.log"), &[]).await;
    run(first.endpoint.clone(), "setup").await;
    run(first.endpoint.clone(), "verify").await;
    let pid = Pid::from_raw(first.child.id().unwrap() as i32);
    kill(pid, Signal::SIGKILL).unwrap();
    first.child.wait().await.unwrap();
    after_kill(&data_dir);

    let mut second = start_broker(&data_dir, &dir.path().join("second.log"), &[]).await;
    run(second.endpoint.clone(), "verify").await;
    second.child.kill().await.unwrap();
}

/// Encryption, enhanced monitoring, stream and consumer resource policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_settings_survive_sigkill_and_restart() {
    survives_sigkill("boto3_settings.py", "settings", |_| {}).await;
}

/// Account settings, warm throughput, max record sizes, and the streams of two regions (the
/// `--region` one in the data directory, the other under `regions/eu-west-1/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_settings_and_regions_survive_sigkill_and_restart() {
    survives_sigkill("boto3_account.py", "account", |data_dir| {
        assert!(
            data_dir.join("regions/eu-west-1/metadata.json").is_file(),
            "the second region lives in its own directory"
        );
        assert!(data_dir.join("metadata.json").is_file());
    })
    .await;
}
