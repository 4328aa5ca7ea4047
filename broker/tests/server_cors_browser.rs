//! CORS in a real browser: headless Chromium (driven over the DevTools protocol by
//! broker/scripts/cors_browser_cdp.py) calls the server from another origin with the headers
//! browser SDK code sends, so Chromium sends a preflight and enforces the CORS answer headers.
//! Skips LOUDLY without `chromium` or `python3` (or fails with `KCL_REQUIRE_TEST_TOOLS=1`, as
//! in CI, which installs Chromium: see `.ci/run`).

mod server_common;

use broker::engine::StreamRef;
use broker::server::ServerOptions;
use server_common::boto3::missing_tool;
use std::time::Duration;

fn find_on_path(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_page_calls_the_broker_across_origins() {
    let Some(chromium) = find_on_path(&["chromium", "chromium-browser", "google-chrome"]) else {
        missing_tool::skip_for_missing_tool(
            "the CORS browser test",
            "chromium is not installed (`apt-get install -y chromium`; CI does, see .ci/run)",
        );
        return;
    };
    let Some(python) = find_on_path(&["python3"]) else {
        missing_tool::skip_for_missing_tool(
            "the CORS browser test",
            "python3 is not installed (it drives chromium for this test)",
        );
        return;
    };
    let (broker, server) = server_common::start(ServerOptions::default()).await;
    let script = format!("{}/scripts/cors_browser_cdp.py", env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new(python)
        .arg(&script)
        .arg(&chromium)
        .arg(server.endpoint())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser driver finishes")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line: {stdout}\n{stderr}"));
    let report: serde_json::Value = serde_json::from_str(report).expect("a JSON report");

    // The calls went through the preflight, and the exposed headers are readable.
    assert_eq!(report["created"]["status"], 200, "{report}");
    assert!(report["created"]["requestId"].is_string(), "{report}");
    assert_eq!(
        report["listed"]["body"]["StreamNames"],
        serde_json::json!(["from-browser"]),
        "{report}"
    );
    assert_eq!(report["missing"]["status"], 400, "{report}");
    assert_eq!(
        report["missing"]["errorType"], "ResourceNotFoundException",
        "{report}"
    );
    assert_eq!(
        report["missing"]["body"]["__type"], "ResourceNotFoundException",
        "{report}"
    );
    broker
        .describe_stream_summary(StreamRef::name("from-browser"))
        .await
        .expect("the browser created the stream");
    server.shutdown().await;
}
