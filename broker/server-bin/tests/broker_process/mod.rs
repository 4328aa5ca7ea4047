//! A real `kinesis-broker` process for the restart tests: durable (`--fsync always`) on a data
//! directory, on a free loopback port, its log in a file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `kinesis-broker` (killed when dropped).
pub(crate) struct BrokerProcess {
    /// The process.
    pub(crate) child: Child,
    /// Its `http://ADDR` endpoint.
    pub(crate) endpoint: String,
}

/// Starts `kinesis-broker --fsync always --data-dir DATA_DIR` plus `extra_args`, logging to
/// `log_file`, and waits until it prints the address it listens on.
pub(crate) async fn start_broker(
    data_dir: &Path,
    log_file: &Path,
    extra_args: &[&str],
) -> BrokerProcess {
    start_broker_on("127.0.0.1:0", data_dir, log_file, extra_args).await
}

/// As [`start_broker`], listening on `listen` (e.g. the port of a killed broker, so clients
/// reconnect to its successor).
#[allow(dead_code)]
pub(crate) async fn start_broker_on(
    listen: &str,
    data_dir: &Path,
    log_file: &Path,
    extra_args: &[&str],
) -> BrokerProcess {
    let log = std::fs::File::create(log_file).expect("create the broker log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinesis-broker"))
        .args(["--listen", listen, "--fsync", "always"])
        .args(extra_args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("start kinesis-broker");
    let stdout = child.stdout.take().expect("the broker's stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("the broker starts within two minutes")
        .expect("read the broker's stdout")
        .expect("the broker prints its address");
    let addr = line
        .strip_prefix("listening on ")
        .expect("listening on ADDR");
    BrokerProcess {
        child,
        endpoint: format!("http://{addr}"),
    }
}
