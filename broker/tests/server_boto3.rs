//! boto3 against the server (broker/scripts/boto3_smoke.py): control plane, PutRecord(s),
//! GetRecords and a SubscribeToShard event stream. Skipped, with the reason printed, when
//! python3 or boto3 is not installed.

mod server_common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_the_server() {
    server_common::run_boto3_script("boto3_smoke.py", "boto3 smoke test passed").await;
}
