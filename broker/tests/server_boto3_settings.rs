//! boto3 against the in-process server (broker/scripts/boto3_settings.py): StartStreamEncryption,
//! StopStreamEncryption, Enable/DisableEnhancedMonitoring and Put/Get/DeleteResourcePolicy, with
//! their errors. Skipped, with the reason printed, when python3 or boto3 is not installed. The
//! same script checks the settings across a restart of `kinesis-broker --data-dir` in
//! broker/server-bin/tests/settings_durability.rs.

mod server_common;

use broker::server::ServerOptions;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_stream_settings() {
    let has_boto3 = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    if !has_boto3 {
        println!("skipped: python3 with boto3 is not installed (pip install boto3)");
        return;
    }
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/boto3_settings.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(server.endpoint())
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
        "boto3 script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("boto3 settings all passed"), "{stdout}");
    server.shutdown().await;
}
