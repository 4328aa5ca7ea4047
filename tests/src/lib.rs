//! Shared helpers of the cross-crate and multi-process test suites.
//!
//! - [`binary`] finds the `kinesis-broker` and `kcl` executables built next to the test.
//! - [`ChildGuard`] owns one child process: it is killed when the guard drops (also when a test
//!   panics), and its stderr goes to a log file whose tail is printed on failure.
//! - [`BrokerProcess`] starts a `kinesis-broker` on a free port (or a given one, to restart it
//!   in place) and learns its address from the `listening on ADDR` line.
//! - [`wait_until`] polls a condition with a generous deadline instead of sleeping blindly.
//! - [`fleet::ProcessFleet`]: a broker process plus `kcl worker` processes on one lease store
//!   (a SQLite file or a DynamoDB table).
//! - [`verify`]: checks a fleet from its jsonl sinks.

pub mod fleet;
pub mod verify;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries for the profile this test was built with
/// (`target/<profile>`), or `$KCL_BIN_DIR` if set.
pub fn binary_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KCL_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let test_executable = std::env::current_exe().context("locating the test executable")?;
    // target/<profile>/deps/<test>-<hash>
    let deps = test_executable
        .parent()
        .context("the test executable has no directory")?;
    let profile_dir = deps.parent().context("the deps directory has no parent")?;
    Ok(profile_dir.to_owned())
}

/// The path of a workspace binary (`kinesis-broker`, `kcl`). `cargo test --workspace` builds
/// them next to the test executables; if one is missing this fails with the command to run.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = binary_dir()?.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build -p kinesis-broker --bin kinesis-broker -p kcl --bin kcl` \
             (same profile as the tests) or run `cargo test --workspace`, which builds it",
            path.display()
        );
    }
    Ok(path)
}

/// Waits until `condition` returns `Some`, polling every `interval`, for at most `deadline`.
pub async fn wait_until<T>(
    what: &str,
    deadline: Duration,
    interval: Duration,
    mut condition: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = condition()? {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(interval).await;
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    log_path: PathBuf,
    exited: bool,
}

impl ChildGuard {
    /// Spawns `command` with stderr appended to `log_path` and stdin closed.
    pub fn spawn(name: &str, command: &mut Command, log_path: &Path) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(ChildGuard {
            name: name.to_owned(),
            child,
            log_path: log_path.to_owned(),
            exited: false,
        })
    }

    /// The child's name in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    /// The child's stdout, if it was piped and not yet taken.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        kill(self.pid(), signal).with_context(|| format!("sending {signal} to {}", self.name))
    }

    /// SIGKILL, then reap.
    pub fn kill_hard(&mut self) -> anyhow::Result<()> {
        if self.exited {
            return Ok(());
        }
        // The child may already have exited; killing a zombie is harmless.
        let _ = self.child.kill();
        self.child.wait().context("reaping a killed child")?;
        self.exited = true;
        Ok(())
    }

    /// SIGTERM (graceful shutdown) and wait up to `deadline` for the exit; returns whether it
    /// exited successfully.
    pub async fn terminate(&mut self, deadline: Duration) -> anyhow::Result<bool> {
        self.signal(Signal::SIGTERM)?;
        self.wait_exit(deadline).await
    }

    /// Waits up to `deadline` for the child to exit on its own; returns whether it exited
    /// successfully.
    pub async fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<bool> {
        let name = self.name.clone();
        let child = &mut self.child;
        let status = wait_until(
            &format!("{name} to exit"),
            deadline,
            Duration::from_millis(50),
            || Ok(child.try_wait()?),
        )
        .await?;
        self.exited = true;
        Ok(status.success())
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        !self.exited && matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of the child's stderr log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last stderr lines of {} ----\n{}",
                self.name,
                self.log_tail(40)
            );
        }
        // A stopped child must be continued to die promptly on some systems; SIGKILL works on
        // stopped processes on Linux, but continuing first is harmless.
        let _ = kill(self.pid(), Signal::SIGCONT);
        let _ = self.kill_hard();
    }
}

/// A running `kinesis-broker` process.
#[derive(Debug)]
pub struct BrokerProcess {
    /// The process.
    pub guard: ChildGuard,
    /// The address it listens on.
    pub address: SocketAddr,
}

impl BrokerProcess {
    /// Starts `kinesis-broker --listen LISTEN --no-throughput-limits [--data-dir DIR]` and waits
    /// for its `listening on ADDR` line.
    pub fn start(
        listen: &str,
        data_dir: Option<&Path>,
        log_path: &Path,
    ) -> anyhow::Result<BrokerProcess> {
        BrokerProcess::start_with_args(listen, data_dir, log_path, &[])
    }

    /// Like [`BrokerProcess::start`] with `extra_args` appended to the command line (e.g.
    /// `["--create-delay", "3s"]`).
    pub fn start_with_args(
        listen: &str,
        data_dir: Option<&Path>,
        log_path: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<BrokerProcess> {
        let mut command = Command::new(binary("kinesis-broker")?);
        command
            .args(["--listen", listen, "--no-throughput-limits"])
            .args(extra_args)
            .stdout(Stdio::piped());
        if let Some(dir) = data_dir {
            command.arg("--data-dir").arg(dir);
        }
        let mut guard = ChildGuard::spawn("kinesis-broker", &mut command, log_path)?;
        let stdout = guard.take_stdout().context("broker stdout is not piped")?;
        let (address_sender, address_receiver) = mpsc::channel();
        // Read the address line, then keep draining stdout so the broker never blocks on it.
        std::thread::spawn(move || {
            let mut sender = Some(address_sender);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.trim().strip_prefix("listening on ")
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(address.trim().to_owned());
                }
            }
        });
        let address = match address_receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => bail!(
                "kinesis-broker printed no `listening on ADDR` line within 60 s; stderr:\n{}",
                guard.log_tail(40)
            ),
        };
        let address = address
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("parsing the broker address {address:?}"))?;
        Ok(BrokerProcess { guard, address })
    }

    /// The endpoint URL of the broker.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Environment for child processes talking to a local broker: dummy AWS credentials.
pub fn local_aws_env() -> [(&'static str, &'static str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", "kcl-test"),
        ("AWS_SECRET_ACCESS_KEY", "kcl-test"),
        ("AWS_REGION", "us-east-1"),
    ]
}
