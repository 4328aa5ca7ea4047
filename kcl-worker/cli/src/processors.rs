//! The record processors of `kcl worker`: [`SinkProcessor`] (`--sink`) and
//! [`MultiLangProcessor`] (`--exec`), with their factories.

use crate::multilang::{
    CheckpointOutcome, CheckpointRequests, ChildCommand, ChildProcess, DaemonMessage,
    MultiLangError, ProtocolRecord, RefuseCheckpoints,
};
use crate::sink::{JsonlSink, SinkAcquisition, SinkRecord};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kcl_core::kinesis::{SequenceNumber, ShardId};
use kcl_core::lease::ExtendedSequenceNumber;
use kcl_core::lease_store::LeaseStoreError;
use kcl_worker::checkpointer::{CheckpointError, RecordCheckpointer};
use kcl_worker::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
use std::sync::Arc;
use std::time::Duration;

/// Writes every batch to a [`JsonlSink`], makes it durable, then checkpoints it.
#[derive(Debug)]
pub struct SinkProcessor {
    sink: JsonlSink,
    worker_id: Arc<str>,
    shard_id: ShardId,
    /// This acquisition of the lease (set by `initialize`), written with every record so a
    /// validator can tell a re-delivery at a new acquisition from one within an acquisition.
    acquisition: Option<SinkAcquisition>,
}

impl SinkProcessor {
    /// A processor for `shard_id` writing to `sink`, tagging records with `worker_id`.
    pub fn new(sink: JsonlSink, worker_id: Arc<str>, shard_id: ShardId) -> Self {
        SinkProcessor {
            sink,
            worker_id,
            shard_id,
            acquisition: None,
        }
    }
}

/// Checkpoints at the largest delivered record; a lost lease is not an error (the worker calls
/// `lease_lost` next), other failures are logged and left to the next batch's checkpoint.
async fn checkpoint_delivered(checkpointer: &RecordCheckpointer, shard_id: &ShardId) {
    match checkpointer.checkpoint().await {
        Ok(()) => {}
        Err(error) if error.is_lease_lost() => {
            tracing::info!(shard_id = %shard_id, %error, "checkpoint refused: lease lost");
        }
        Err(error) => {
            tracing::warn!(shard_id = %shard_id, %error, "checkpoint failed; the next batch retries it");
        }
    }
}

#[async_trait::async_trait]
impl ShardRecordProcessor for SinkProcessor {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        tracing::info!(
            shard_id = %input.shard_id,
            start = %input.extended_sequence_number,
            "shard initialized"
        );
        self.shard_id = input.shard_id;
        self.acquisition = Some(SinkAcquisition::starting_at(input.extended_sequence_number));
        Ok(())
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        if input.records.is_empty() {
            return Ok(());
        }
        let shard_id = self.shard_id.as_str();
        let lines = input
            .records
            .iter()
            .map(|record| {
                SinkRecord::new(
                    shard_id,
                    record.sequence_number.to_string(),
                    record.sub_sequence_number,
                    &record.partition_key,
                    &record.data,
                    record.approximate_arrival_timestamp.0,
                    &self.worker_id,
                )
                .with_acquisition(self.acquisition.as_ref())
            })
            .collect();
        // Durable first: a batch is checkpointed only once it is on disk.
        self.sink.write_batch(lines).await?;
        checkpoint_delivered(&input.checkpointer, &self.shard_id).await;
        Ok(())
    }

    async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
        tracing::info!(shard_id = %self.shard_id, "lease lost");
        Ok(())
    }

    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        tracing::info!(shard_id = %self.shard_id, "shard ended and checkpointed");
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        // Every delivered batch was already written and made durable.
        checkpoint_delivered(&checkpointer, &self.shard_id).await;
        Ok(())
    }
}

/// Makes a [`SinkProcessor`] per shard, all writing to one sink.
#[derive(Debug, Clone)]
pub struct SinkProcessorFactory {
    sink: JsonlSink,
    worker_id: Arc<str>,
}

impl SinkProcessorFactory {
    /// A factory for processors of `worker_id` writing to `sink`.
    pub fn new(sink: JsonlSink, worker_id: &str) -> Self {
        SinkProcessorFactory {
            sink,
            worker_id: worker_id.into(),
        }
    }
}

impl ShardRecordProcessorFactory for SinkProcessorFactory {
    fn create_processor(&self, shard_id: &ShardId) -> Box<dyn ShardRecordProcessor> {
        Box::new(SinkProcessor::new(
            self.sink.clone(),
            self.worker_id.clone(),
            shard_id.clone(),
        ))
    }
}

/// The Java exception simple name the MultiLangDaemon reports for a checkpoint failure.
pub fn exception_name(error: &CheckpointError) -> &'static str {
    match error {
        CheckpointError::LeaseLost { .. } => "ShutdownException",
        CheckpointError::OutOfRange { .. } => "IllegalArgumentException",
        CheckpointError::Store(LeaseStoreError::Throttled(_)) => "ThrottlingException",
        CheckpointError::Store(LeaseStoreError::InvalidStore(_)) => "InvalidStateException",
        CheckpointError::Store(_) => "KinesisClientLibDependencyException",
        _ => "KinesisClientLibDependencyException",
    }
}

fn position_text(position: Option<ExtendedSequenceNumber>) -> (Option<String>, Option<u64>) {
    match position {
        Some(position) => (
            Some(position.value.as_table_string()),
            Some(position.sub_sequence_number),
        ),
        None => (None, None),
    }
}

/// Answers a child's checkpoint requests with a shard's checkpointer.
struct CheckpointBridge<'a> {
    checkpointer: &'a RecordCheckpointer,
}

#[async_trait::async_trait]
impl CheckpointRequests for CheckpointBridge<'_> {
    async fn checkpoint(
        &mut self,
        sequence_number: Option<String>,
        sub_sequence_number: Option<u64>,
    ) -> CheckpointOutcome {
        let result = match &sequence_number {
            None => self.checkpointer.checkpoint().await,
            Some(text) => {
                let Ok(sequence) = text.parse::<SequenceNumber>() else {
                    return CheckpointOutcome::failed(
                        sequence_number,
                        sub_sequence_number,
                        "IllegalArgumentException",
                    );
                };
                self.checkpointer
                    .checkpoint_at(sequence, sub_sequence_number.unwrap_or(0))
                    .await
            }
        };
        match result {
            Ok(()) if sequence_number.is_none() => {
                let (sequence_number, sub_sequence_number) =
                    position_text(self.checkpointer.largest_delivered());
                CheckpointOutcome {
                    sequence_number,
                    sub_sequence_number,
                    error: None,
                }
            }
            Ok(()) => CheckpointOutcome {
                sequence_number,
                sub_sequence_number: Some(sub_sequence_number.unwrap_or(0)),
                error: None,
            },
            Err(error) => {
                tracing::info!(
                    shard_id = %self.checkpointer.shard_id(),
                    %error,
                    "checkpoint requested by the record processor failed"
                );
                CheckpointOutcome::failed(
                    sequence_number,
                    sub_sequence_number,
                    exception_name(&error),
                )
            }
        }
    }
}

/// Runs one MultiLangDaemon-protocol child process per shard and translates the worker's
/// calls into protocol actions. If the child dies, the call fails (the worker's failure policy
/// retries it) and the next call starts a new child, initialized again.
#[derive(Debug)]
pub struct MultiLangProcessor {
    command: ChildCommand,
    shard_id: ShardId,
    initialization: Option<InitializationInput>,
    child: Option<ChildProcess>,
}

const CHILD_EXIT_GRACE: Duration = Duration::from_secs(10);

impl MultiLangProcessor {
    /// A processor for `shard_id` running `command`.
    pub fn new(command: ChildCommand, shard_id: ShardId) -> Self {
        MultiLangProcessor {
            command,
            shard_id,
            initialization: None,
            child: None,
        }
    }

    /// The running child, started and initialized if needed.
    async fn child(&mut self) -> Result<&mut ChildProcess, MultiLangError> {
        if self.child.is_none() {
            let mut child = ChildProcess::spawn(&self.command, self.shard_id.as_str())?;
            let (sequence_number, sub_sequence_number) = position_text(
                self.initialization
                    .as_ref()
                    .map(|input| input.extended_sequence_number),
            );
            let initialize = DaemonMessage::Initialize {
                shard_id: self.shard_id.to_string(),
                sequence_number,
                sub_sequence_number,
            };
            child
                .exchange(&initialize, &mut RefuseCheckpoints("InvalidStateException"))
                .await?;
            self.child = Some(child);
        }
        self.child.as_mut().ok_or_else(|| MultiLangError::Exited {
            action: "initialize",
            status: "not started".to_owned(),
        })
    }

    /// Sends one action; on failure the child is discarded so the next call starts afresh.
    async fn exchange(
        &mut self,
        message: &DaemonMessage,
        checkpoints: &mut dyn CheckpointRequests,
    ) -> Result<(), ProcessorError> {
        let child = self.child().await;
        let outcome = match child {
            Ok(child) => child.exchange(message, checkpoints).await,
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            tracing::warn!(shard_id = %self.shard_id, %error, "record processor failed");
            if let Some(child) = self.child.take() {
                child.close(Duration::ZERO).await;
            }
            return Err(Box::new(error));
        }
        Ok(())
    }

    async fn finish_child(&mut self) {
        if let Some(child) = self.child.take() {
            child.close(CHILD_EXIT_GRACE).await;
        }
    }
}

#[async_trait::async_trait]
impl ShardRecordProcessor for MultiLangProcessor {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        self.shard_id = input.shard_id.clone();
        self.initialization = Some(input);
        self.finish_child().await;
        self.child()
            .await
            .map_err(|error| Box::new(error) as ProcessorError)?;
        Ok(())
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        let message = DaemonMessage::ProcessRecords {
            millis_behind_latest: input.millis_behind_latest,
            records: input
                .records
                .iter()
                .map(|record| ProtocolRecord {
                    data: BASE64.encode(&record.data),
                    partition_key: record.partition_key.to_string(),
                    sequence_number: record.sequence_number.to_string(),
                    sub_sequence_number: record.sub_sequence_number,
                    approximate_arrival_timestamp: record.approximate_arrival_timestamp.0,
                })
                .collect(),
        };
        let mut bridge = CheckpointBridge {
            checkpointer: &input.checkpointer,
        };
        self.exchange(&message, &mut bridge).await
    }

    async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
        if self.child.is_some() {
            let result = self
                .exchange(
                    &DaemonMessage::LeaseLost,
                    &mut RefuseCheckpoints("ShutdownException"),
                )
                .await;
            self.finish_child().await;
            return result;
        }
        Ok(())
    }

    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        let mut bridge = CheckpointBridge {
            checkpointer: &checkpointer,
        };
        let result = self.exchange(&DaemonMessage::ShardEnded, &mut bridge).await;
        self.finish_child().await;
        result
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        let mut bridge = CheckpointBridge {
            checkpointer: &checkpointer,
        };
        let result = self
            .exchange(&DaemonMessage::ShutdownRequested, &mut bridge)
            .await;
        self.finish_child().await;
        result
    }
}

/// Makes a [`MultiLangProcessor`] per shard.
#[derive(Debug, Clone)]
pub struct MultiLangProcessorFactory {
    command: ChildCommand,
}

impl MultiLangProcessorFactory {
    /// A factory running `command` (through `sh -c`) for every shard, with `KCL_SHARD_ID`,
    /// `KCL_WORKER_ID`, `KCL_STREAM` and `KCL_APPLICATION` in its environment.
    pub fn new(
        command: &str,
        worker_id: &str,
        stream: &str,
        application: &str,
        response_timeout: Option<Duration>,
    ) -> Self {
        MultiLangProcessorFactory {
            command: ChildCommand {
                command: command.to_owned(),
                env: vec![
                    ("KCL_WORKER_ID".to_owned(), worker_id.to_owned()),
                    ("KCL_STREAM".to_owned(), stream.to_owned()),
                    ("KCL_APPLICATION".to_owned(), application.to_owned()),
                ],
                response_timeout,
            },
        }
    }
}

impl ShardRecordProcessorFactory for MultiLangProcessorFactory {
    fn create_processor(&self, shard_id: &ShardId) -> Box<dyn ShardRecordProcessor> {
        let mut command = self.command.clone();
        command
            .env
            .push(("KCL_SHARD_ID".to_owned(), shard_id.to_string()));
        Box::new(MultiLangProcessor::new(command, shard_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_failures_map_to_the_java_exception_names() {
        let shard_id = ShardId::from_index(0);
        let cases = [
            (
                CheckpointError::LeaseLost {
                    shard_id: shard_id.clone(),
                    reason: "taken".into(),
                },
                "ShutdownException",
            ),
            (
                CheckpointError::OutOfRange {
                    shard_id,
                    requested: ExtendedSequenceNumber::SHARD_END,
                    last_checkpoint: ExtendedSequenceNumber::TRIM_HORIZON,
                    largest_permitted: ExtendedSequenceNumber::TRIM_HORIZON,
                },
                "IllegalArgumentException",
            ),
            (
                CheckpointError::Store(LeaseStoreError::Throttled("busy".into())),
                "ThrottlingException",
            ),
            (
                CheckpointError::Store(LeaseStoreError::InvalidStore("not sqlite".into())),
                "InvalidStateException",
            ),
            (
                CheckpointError::Store(LeaseStoreError::Storage("disk".into())),
                "KinesisClientLibDependencyException",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(exception_name(&error), expected, "{error}");
        }
    }

    #[test]
    fn positions_are_written_as_the_protocol_expects() {
        let sequence: SequenceNumber = "49590338271490256608559692538361571095921575989136588898"
            .parse()
            .expect("valid");
        assert_eq!(
            position_text(Some(ExtendedSequenceNumber::new(sequence, 3))),
            (Some(sequence.to_string()), Some(3))
        );
        assert_eq!(
            position_text(Some(ExtendedSequenceNumber::TRIM_HORIZON)),
            (Some("TRIM_HORIZON".to_owned()), Some(0))
        );
        assert_eq!(position_text(None), (None, None));
    }
}
