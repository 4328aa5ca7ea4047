//! boto3 against the in-process server (broker/scripts/boto3_settings.py): StartStreamEncryption,
//! StopStreamEncryption, Enable/DisableEnhancedMonitoring and Put/Get/DeleteResourcePolicy, with
//! their errors. Skipped, with the reason printed, when python3 or boto3 is not installed. The
//! same script checks the settings across a restart of `kinesis-broker --data-dir` in
//! broker/server-bin/tests/boto3_durability.rs.

mod server_common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_stream_settings() {
    server_common::run_boto3_script("boto3_settings.py", "boto3 settings all passed").await;
}
