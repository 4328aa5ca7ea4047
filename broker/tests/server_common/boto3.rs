//! Running the repository's boto3 scripts (broker/scripts/) against a server: shared by the
//! broker's server tests and kinesis-broker's restart tests (included with `#[path]`).

#![allow(dead_code)]

use std::time::Duration;

#[path = "../../../kcl-core/tests/support/missing_tool.rs"]
pub(crate) mod missing_tool;

/// Whether python3 with boto3 is installed; when it is not, says loudly that the test is skipped
/// (or fails it when `KCL_REQUIRE_TEST_TOOLS=1`, as in CI).
pub(crate) fn boto3_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    if !available {
        missing_tool::skip_for_missing_tool(
            "the boto3 test",
            "python3 with boto3 is not installed (pip install boto3)",
        );
    }
    available
}

/// Runs `python3 SCRIPT ENDPOINT ARGS...` (`script`: a path, normally under broker/scripts/)
/// and checks that it exits successfully and prints `success_line`.
pub(crate) async fn run_boto3_script(
    script: &str,
    endpoint: &str,
    args: &[&str],
    success_line: &str,
) {
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(endpoint)
        .args(args)
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
        "boto3 script {script} {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(success_line), "{stdout}");
}
