//! One record-processor child process driven over the MultiLangDaemon protocol.
//!
//! Every action is one exchange: the daemon writes the action line, then reads the child's
//! stdout until the child answers `{"action":"status","responseFor":<action>}`. Checkpoint
//! requests the child makes meanwhile are answered through a [`CheckpointRequests`] handler.
//! Blank lines are skipped, other non-protocol output is logged and ignored, and the child's
//! stderr goes straight to this process's stderr.

use super::messages::{ChildLine, DaemonMessage, encode_daemon_line, parse_child_line};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Why talking to a record-processor child failed. Messages include the underlying error (there is
/// no `source()`), so logs and error chains say it once.
#[derive(Debug, thiserror::Error)]
pub enum MultiLangError {
    /// The command could not be started.
    #[error("cannot start record processor {command:?}: {error}")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Writing to the child's stdin failed (it probably exited).
    #[error("cannot write {action} to the record processor: {error}")]
    Write {
        /// The action being sent.
        action: &'static str,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Reading the child's stdout failed.
    #[error("cannot read the record processor's output during {action}: {error}")]
    Read {
        /// The action being handled.
        action: &'static str,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The child closed its stdout (exited) before answering.
    #[error("record processor exited during {action} ({status})")]
    Exited {
        /// The action being handled.
        action: &'static str,
        /// How it exited, if known.
        status: String,
    },
    /// The child answered a different action than the one sent.
    #[error("record processor answered status for {got:?} while handling {expected}")]
    UnexpectedStatus {
        /// The action sent.
        expected: &'static str,
        /// The `responseFor` received.
        got: String,
    },
    /// The child did not answer in time.
    #[error("record processor did not answer {action} within {timeout:?}")]
    Timeout {
        /// The action being handled.
        action: &'static str,
        /// The configured limit.
        timeout: Duration,
    },
    /// A message could not be encoded.
    #[error("cannot encode a protocol message: {0}")]
    Encode(serde_json::Error),
}

impl From<serde_json::Error> for MultiLangError {
    fn from(error: serde_json::Error) -> Self {
        MultiLangError::Encode(error)
    }
}

/// The daemon's answer to a checkpoint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointOutcome {
    /// The position checkpointed (on success) or requested (on failure).
    pub sequence_number: Option<String>,
    /// Its sub-sequence number.
    pub sub_sequence_number: Option<u64>,
    /// On failure, the Java exception's simple name (`ShutdownException`,
    /// `InvalidStateException`, `IllegalArgumentException`, `ThrottlingException`, ...).
    pub error: Option<String>,
}

impl CheckpointOutcome {
    /// A failed checkpoint of the requested position.
    pub fn failed(
        sequence_number: Option<String>,
        sub_sequence_number: Option<u64>,
        error: &str,
    ) -> Self {
        CheckpointOutcome {
            sequence_number,
            sub_sequence_number,
            error: Some(error.to_owned()),
        }
    }
}

/// Performs the checkpoints a child asks for while it handles an action.
#[async_trait::async_trait]
pub trait CheckpointRequests: Send {
    /// Checkpoints at the given position, or at the largest delivered record (SHARD_END after
    /// a shard end) when `sequence_number` is `None`.
    async fn checkpoint(
        &mut self,
        sequence_number: Option<String>,
        sub_sequence_number: Option<u64>,
    ) -> CheckpointOutcome;
}

/// Refuses every checkpoint with one exception name: used for actions during which the
/// protocol forbids checkpoints (`initialize`: `InvalidStateException`, `leaseLost`:
/// `ShutdownException`).
#[derive(Debug, Clone, Copy)]
pub struct RefuseCheckpoints(pub &'static str);

#[async_trait::async_trait]
impl CheckpointRequests for RefuseCheckpoints {
    async fn checkpoint(
        &mut self,
        sequence_number: Option<String>,
        sub_sequence_number: Option<u64>,
    ) -> CheckpointOutcome {
        CheckpointOutcome::failed(sequence_number, sub_sequence_number, self.0)
    }
}

/// How to start a record-processor child.
#[derive(Debug, Clone)]
pub struct ChildCommand {
    /// The command line, run with `sh -c`.
    pub command: String,
    /// Extra environment variables (e.g. `KCL_SHARD_ID`, `KCL_WORKER_ID`).
    pub env: Vec<(String, String)>,
    /// How long one action may take before the child is considered hung; `None` waits forever.
    pub response_timeout: Option<Duration>,
}

/// A running record-processor child.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    response_timeout: Option<Duration>,
    shard_id: String,
}

impl ChildProcess {
    /// Starts the child for `shard_id`. It is killed if this handle is dropped.
    pub fn spawn(command: &ChildCommand, shard_id: &str) -> Result<Self, MultiLangError> {
        let spawn_error = |error| MultiLangError::Spawn {
            command: command.command.clone(),
            error,
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command.command)
            .envs(command.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C or a group-wide SIGTERM meant for the worker must
            // not kill the processor before it gets `shutdownRequested`. If the worker dies,
            // the child sees the end of its stdin and exits.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        let missing =
            |what: &str| spawn_error(std::io::Error::other(format!("child has no piped {what}")));
        let stdin = child.stdin.take().ok_or_else(|| missing("stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| missing("stdout"))?;
        Ok(ChildProcess {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            response_timeout: command.response_timeout,
            shard_id: shard_id.to_owned(),
        })
    }

    /// Sends `message` and handles the child's output until it reports the action done,
    /// answering checkpoint requests through `checkpoints`.
    pub async fn exchange(
        &mut self,
        message: &DaemonMessage,
        checkpoints: &mut dyn CheckpointRequests,
    ) -> Result<(), MultiLangError> {
        let action = message.action();
        let response_timeout = self.response_timeout;
        let exchange = self.exchange_unbounded(message, action, checkpoints);
        match response_timeout {
            None => exchange.await,
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(MultiLangError::Timeout { action, timeout })),
        }
    }

    async fn exchange_unbounded(
        &mut self,
        message: &DaemonMessage,
        action: &'static str,
        checkpoints: &mut dyn CheckpointRequests,
    ) -> Result<(), MultiLangError> {
        self.send(message, action).await?;
        loop {
            let line = match self.stdout.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return Err(self.exited(action).await),
                Err(error) => return Err(MultiLangError::Read { action, error }),
            };
            match parse_child_line(&line) {
                ChildLine::Blank => {}
                ChildLine::Other(text) => {
                    tracing::info!(shard_id = %self.shard_id, output = %text, "record processor output");
                }
                ChildLine::Message(super::messages::ChildMessage::Status { response_for }) => {
                    if response_for == action {
                        return Ok(());
                    }
                    return Err(MultiLangError::UnexpectedStatus {
                        expected: action,
                        got: response_for,
                    });
                }
                ChildLine::Message(super::messages::ChildMessage::Checkpoint {
                    sequence_number,
                    sub_sequence_number,
                }) => {
                    let outcome = checkpoints
                        .checkpoint(sequence_number, sub_sequence_number)
                        .await;
                    tracing::debug!(
                        shard_id = %self.shard_id,
                        sequence_number = ?outcome.sequence_number,
                        error = ?outcome.error,
                        "answered checkpoint request"
                    );
                    let answer = DaemonMessage::Checkpoint {
                        sequence_number: outcome.sequence_number,
                        sub_sequence_number: outcome.sub_sequence_number,
                        error: outcome.error,
                    };
                    self.send(&answer, action).await?;
                }
            }
        }
    }

    async fn send(
        &mut self,
        message: &DaemonMessage,
        action: &'static str,
    ) -> Result<(), MultiLangError> {
        let line = encode_daemon_line(message)?;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(MultiLangError::Write {
                action,
                error: std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"),
            });
        };
        let write_error = |error| MultiLangError::Write { action, error };
        stdin.write_all(&line).await.map_err(write_error)?;
        stdin.flush().await.map_err(write_error)
    }

    async fn exited(&mut self, action: &'static str) -> MultiLangError {
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(error)) => format!("exit status unknown: {error}"),
            Err(_) => "stdout closed, still running".to_owned(),
        };
        MultiLangError::Exited { action, status }
    }

    /// Closes the child's stdin (the protocol's end of input) and waits up to `grace` for it to
    /// exit, then kills it. Returns its exit status when known.
    pub async fn close(mut self, grace: Duration) -> Option<ExitStatus> {
        drop(self.stdin.take());
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(_)) => None,
            Err(_) => {
                let _ = self.child.kill().await;
                self.child.wait().await.ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multilang::messages::ProtocolRecord;
    use crate::sink::read_jsonl;
    use std::path::PathBuf;

    /// Answers every checkpoint request with success and remembers it.
    #[derive(Debug, Default)]
    struct RecordingCheckpoints {
        requests: Vec<(Option<String>, Option<u64>)>,
        refuse_with: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl CheckpointRequests for RecordingCheckpoints {
        async fn checkpoint(
            &mut self,
            sequence_number: Option<String>,
            sub_sequence_number: Option<u64>,
        ) -> CheckpointOutcome {
            self.requests
                .push((sequence_number.clone(), sub_sequence_number));
            CheckpointOutcome {
                sequence_number,
                sub_sequence_number,
                error: self.refuse_with.map(str::to_owned),
            }
        }
    }

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/multilang_processor.py")
    }

    fn python_available() -> bool {
        let available = std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if !available {
            eprintln!("skipped: python3 is not installed");
        }
        available
    }

    fn records(sequences: &[u64]) -> DaemonMessage {
        DaemonMessage::ProcessRecords {
            millis_behind_latest: 0,
            records: sequences
                .iter()
                .map(|sequence| ProtocolRecord {
                    data: "aGVsbG8=".into(),
                    partition_key: format!("key-{sequence}"),
                    sequence_number: sequence.to_string(),
                    sub_sequence_number: 0,
                    approximate_arrival_timestamp: 1_700_000_000_000,
                })
                .collect(),
        }
    }

    fn command(script: &str, output: Option<&std::path::Path>) -> ChildCommand {
        let mut env = vec![("KCL_WORKER_ID".to_owned(), "worker-under-test".to_owned())];
        if let Some(path) = output {
            env.push(("MULTILANG_OUTPUT".to_owned(), path.display().to_string()));
        }
        ChildCommand {
            command: script.to_owned(),
            env,
            response_timeout: Some(Duration::from_secs(60)),
        }
    }

    #[tokio::test]
    async fn a_python_processor_gets_records_and_checkpoints_through_the_protocol() {
        if !python_available() {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let output = dir.path().join("out.jsonl");
        let script = format!("python3 {}", fixture().display());
        let mut child =
            ChildProcess::spawn(&command(&script, Some(&output)), "shardId-000000000003")
                .expect("spawns");
        let initialize = DaemonMessage::Initialize {
            shard_id: "shardId-000000000003".into(),
            sequence_number: Some("TRIM_HORIZON".into()),
            sub_sequence_number: Some(0),
        };
        let mut refuse = RefuseCheckpoints("InvalidStateException");
        child
            .exchange(&initialize, &mut refuse)
            .await
            .expect("initializes");

        let mut checkpoints = RecordingCheckpoints::default();
        child
            .exchange(&records(&[11, 12, 13]), &mut checkpoints)
            .await
            .expect("processes");
        child
            .exchange(&records(&[14]), &mut checkpoints)
            .await
            .expect("processes");
        child
            .exchange(&DaemonMessage::ShardEnded, &mut checkpoints)
            .await
            .expect("ends the shard");
        assert_eq!(
            checkpoints.requests,
            vec![
                (Some("13".to_owned()), Some(0)),
                (Some("14".to_owned()), Some(0)),
                (None, None)
            ]
        );
        let status = child.close(Duration::from_secs(30)).await;
        assert!(status.is_some_and(|status| status.success()), "{status:?}");

        let written = read_jsonl(&output).expect("reads the child's output");
        let sequences: Vec<_> = written
            .records
            .iter()
            .map(|record| record.sequence_number.as_str())
            .collect();
        assert_eq!(sequences, ["11", "12", "13", "14"]);
        assert!(written.records.iter().all(|record| {
            record.shard_id == "shardId-000000000003" && record.worker_id == "worker-under-test"
        }));
    }

    #[tokio::test]
    async fn a_refused_checkpoint_is_reported_to_the_child_which_carries_on() {
        if !python_available() {
            return;
        }
        let script = format!("python3 {}", fixture().display());
        let mut child =
            ChildProcess::spawn(&command(&script, None), "shardId-000000000000").expect("spawns");
        let mut checkpoints = RecordingCheckpoints {
            refuse_with: Some("ShutdownException"),
            ..Default::default()
        };
        let initialize = DaemonMessage::Initialize {
            shard_id: "shardId-000000000000".into(),
            sequence_number: Some("5".into()),
            sub_sequence_number: Some(0),
        };
        child
            .exchange(&initialize, &mut checkpoints)
            .await
            .expect("initializes");
        child
            .exchange(&records(&[6]), &mut checkpoints)
            .await
            .expect("the batch completes although its checkpoint failed");
        child
            .exchange(&DaemonMessage::LeaseLost, &mut checkpoints)
            .await
            .expect("lease lost is acknowledged");
        assert_eq!(checkpoints.requests, vec![(Some("6".to_owned()), Some(0))]);
        child.close(Duration::from_secs(30)).await;
    }

    #[tokio::test]
    async fn a_child_that_exits_is_an_error_naming_the_action() {
        let mut child =
            ChildProcess::spawn(&command("exit 3", None), "shardId-000000000000").expect("spawns");
        let error = child
            .exchange(
                &DaemonMessage::LeaseLost,
                &mut RefuseCheckpoints("ShutdownException"),
            )
            .await
            .expect_err("the child is gone");
        assert!(
            matches!(
                error,
                MultiLangError::Exited {
                    action: "leaseLost",
                    ..
                } | MultiLangError::Write {
                    action: "leaseLost",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_status_for_another_action_is_an_error() {
        let script =
            r#"read line; printf '\n{"action":"status","responseFor":"initialize"}\n'; sleep 5"#;
        let mut child =
            ChildProcess::spawn(&command(script, None), "shardId-000000000000").expect("spawns");
        let error = child
            .exchange(
                &DaemonMessage::ShutdownRequested,
                &mut RefuseCheckpoints("x"),
            )
            .await
            .expect_err("wrong status");
        assert!(
            matches!(
                &error,
                MultiLangError::UnexpectedStatus { expected: "shutdownRequested", got }
                    if got == "initialize"
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn noise_on_stdout_is_ignored_and_a_silent_child_times_out() {
        let script = r#"read line; echo 'not json'; echo '{"action":"dance"}'; echo; sleep 30"#;
        let mut silent = command(script, None);
        silent.response_timeout = Some(Duration::from_millis(300));
        let mut child = ChildProcess::spawn(&silent, "shardId-000000000000").expect("spawns");
        let error = child
            .exchange(&DaemonMessage::ShardEnded, &mut RefuseCheckpoints("x"))
            .await
            .expect_err("no status ever comes");
        assert!(
            matches!(
                error,
                MultiLangError::Timeout {
                    action: "shardEnded",
                    ..
                }
            ),
            "{error}"
        );
        let status = child.close(Duration::from_millis(100)).await;
        assert!(status.is_some(), "the hung child is killed");
    }
}
