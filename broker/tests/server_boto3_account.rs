//! boto3 against the in-process server (broker/scripts/boto3_account.py): DescribeAccountSettings,
//! UpdateAccountSettings, UpdateStreamWarmThroughput, UpdateMaxRecordSize, ON_DEMAND streams and
//! two clients signing for two regions. Skipped, with the reason printed, when python3 or boto3
//! is not installed. The same script checks everything across a restart of
//! `kinesis-broker --data-dir` in broker/server-bin/tests/boto3_durability.rs.

mod server_common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_account_settings_and_regions() {
    server_common::run_boto3_script("boto3_account.py", "boto3 account all passed").await;
}
