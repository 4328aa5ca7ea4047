//! The live status page (`kcl status --serve`) in a real headless Chromium: it loads, shows
//! every shard of a 3-shard stream with its owner, and — without a reload — shows the new
//! owner after the worker holding every lease is killed and another takes over.
//!
//! Chromium is driven over the DevTools protocol by `tests/fixtures/status_page_cdp.py`
//! (Python standard library only). Skips LOUDLY when `chromium` or `python3` is absent; CI
//! installs Chromium (`apt-get install chromium`, see `.ci/run`). `KCL_STATUS_SCREENSHOT=PATH`
//! saves a screenshot of the updated page.
//!
//! Needs the `kinesis-broker` and `kcl` binaries of the same profile next to the test
//! executable: `cargo test -p tests` builds them.

#[path = "../../kcl-core/tests/support/missing_tool.rs"]
mod missing_tool;

use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tests::fleet::{FleetOptions, ProcessFleet};
use tests::{ChildGuard, binary};

/// Deadline of anything a correct process does in a few seconds (generous for a loaded machine).
const LONG: Duration = Duration::from_secs(90);

/// The first of `names` found on `PATH`.
fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `/api/status` until `accept` likes it.
async fn wait_for_status(
    url: &str,
    what: &str,
    accept: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    loop {
        if let Ok(response) = reqwest::get(url).await
            && let Ok(status) = response.json::<serde_json::Value>().await
            && accept(&status)
        {
            return Ok(status);
        }
        anyhow::ensure!(started.elapsed() < LONG, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// shard → owner of an `/api/status` answer.
fn owners(status: &serde_json::Value) -> Vec<(String, String)> {
    status["shards"]
        .as_array()
        .map(|shards| {
            shards
                .iter()
                .map(|shard| {
                    (
                        shard["shard_id"].as_str().unwrap_or_default().to_owned(),
                        shard["owner"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the driver's stdout lines on a thread (the driver is a plain child process).
fn spawn_line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

/// The next driver line starting with one of the `prefixes`' words, as (word, JSON rest).
async fn next_report(
    lines: &mpsc::Receiver<String>,
) -> anyhow::Result<(String, serde_json::Value)> {
    let started = Instant::now();
    loop {
        match lines.try_recv() {
            Ok(line) => {
                let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), "null"));
                let value = serde_json::from_str(rest).unwrap_or(serde_json::Value::Null);
                return Ok((word.to_owned(), value));
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                anyhow::bail!("the browser driver exited without a report")
            }
        }
        anyhow::ensure!(
            started.elapsed() < LONG * 2,
            "no report from the browser driver"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_every_shard_and_follows_a_failover_without_reload()
-> anyhow::Result<()> {
    let Some(chromium) = find_on_path(&["chromium", "chromium-browser", "google-chrome"]) else {
        missing_tool::skip_for_missing_tool(
            "the status page browser test",
            "chromium is not installed (`apt-get install -y chromium`; CI does, see .ci/run)",
        );
        return Ok(());
    };
    let Some(python) = find_on_path(&["python3"]) else {
        missing_tool::skip_for_missing_tool(
            "the status page browser test",
            "python3 is not installed (it drives chromium for this test)",
        );
        return Ok(());
    };
    let mut fleet = ProcessFleet::start(
        "observe-page",
        FleetOptions {
            shards: 3,
            failover_ms: 2000,
            durable: false,
            ..FleetOptions::default()
        },
    )
    .await?;
    fleet.start_worker("w1")?;

    let port = free_port()?;
    let page_url = format!("http://127.0.0.1:{port}/");
    let api_url = format!("http://127.0.0.1:{port}/api/status");
    let mut status_command = Command::new(binary("kcl")?);
    status_command
        .arg("status")
        .args(["--endpoint", fleet.endpoint()])
        .arg("--lease-db")
        .arg(fleet.lease_db())
        .args(["--application", "observe-page-app"])
        .args(["--stream", "observe-page-stream"])
        .args(["--serve", &port.to_string()])
        .envs(tests::local_aws_env())
        .stdout(Stdio::null());
    let _status_page = ChildGuard::spawn(
        "kcl status --serve",
        &mut status_command,
        &fleet.dir().join("status.log"),
    )?;
    let before = wait_for_status(&api_url, "w1 to own all 3 shards", |status| {
        let owners = owners(status);
        owners.len() == 3 && owners.iter().all(|(_, owner)| owner == "w1")
    })
    .await?;
    assert_eq!(before["workers"][0]["worker_id"], "w1", "{before}");
    assert_eq!(
        before["workers"][0]["shards"].as_array().map(Vec::len),
        Some(3)
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/status_page_cdp.py");
    let mut driver_command = Command::new(python);
    driver_command
        .arg(script)
        .arg(&chromium)
        .arg(&page_url)
        .arg("3")
        .arg(LONG.as_secs().to_string());
    if let Some(screenshot) = std::env::var_os("KCL_STATUS_SCREENSHOT") {
        driver_command.arg(screenshot);
    }
    driver_command.stdout(Stdio::piped());
    let mut driver = ChildGuard::spawn(
        "status page driver",
        &mut driver_command,
        &fleet.dir().join("driver.log"),
    )?;
    let lines = spawn_line_reader(driver.take_stdout().context("driver stdout")?);

    let (word, loaded) = next_report(&lines).await?;
    assert_eq!(word, "LOADED", "{loaded}");
    let shown: Vec<(&str, &str)> = loaded["shards"]
        .as_object()
        .map(|shards| {
            shards
                .iter()
                .map(|(shard, owner)| (shard.as_str(), owner.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(shown.len(), 3, "the page shows every shard: {loaded}");
    assert!(
        shown.iter().all(|(_, owner)| *owner == "w1"),
        "the page shows w1 owning every shard: {loaded}"
    );

    // Kill the owner; a new worker takes every lease after the failover time.
    fleet.kill("w1")?;
    fleet.start_worker("w2")?;
    let (word, updated) = next_report(&lines).await?;
    assert_eq!(word, "UPDATED", "the page followed the failover: {updated}");
    let shown_after: Vec<&str> = updated["shards"]
        .as_object()
        .map(|shards| shards.values().filter_map(|owner| owner.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(shown_after, ["w2", "w2", "w2"], "{updated}");
    assert_eq!(updated["loadId"], loaded["loadId"], "no reload");
    assert!(
        driver.wait_exit(LONG).await?,
        "the browser driver succeeded"
    );

    let after = wait_for_status(&api_url, "w2 in /api/status", |status| {
        owners(status).iter().all(|(_, owner)| owner == "w2")
    })
    .await?;
    assert_eq!(
        after["workers"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
    Ok(())
}
