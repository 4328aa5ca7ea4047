//! A processor that records everything it sees into a shared [`ObservationLog`].

use super::validator::{Observation, ObservationKind};
use crate::checkpointer::RecordCheckpointer;
use crate::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
use kcl_core::kinesis::ShardId;
use kcl_core::lease::ExtendedSequenceNumber;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The observations of a whole fleet, in the order they happened, each with the (real) time it
/// was recorded.
#[derive(Debug, Clone, Default)]
pub struct ObservationLog {
    entries: Arc<Mutex<Vec<(Instant, Observation)>>>,
    sessions: Arc<AtomicU64>,
}

impl ObservationLog {
    /// An empty log.
    pub fn new() -> Self {
        ObservationLog::default()
    }

    fn push(&self, observation: Observation) {
        self.lock().push((Instant::now(), observation));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, Observation)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_session(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A copy of every observation so far.
    pub fn snapshot(&self) -> Vec<Observation> {
        self.lock()
            .iter()
            .map(|(_, observation)| observation.clone())
            .collect()
    }

    /// A copy of every observation so far with the time it was recorded.
    pub fn timed_snapshot(&self) -> Vec<(Instant, Observation)> {
        self.lock().clone()
    }

    /// Runs `inspect` over the observations so far (with their times) without copying them.
    pub fn inspect<R>(&self, inspect: impl FnOnce(&[(Instant, Observation)]) -> R) -> R {
        inspect(&self.lock())
    }

    /// How many distinct payloads were processed so far.
    pub fn unique_processed(&self) -> usize {
        let entries = self.lock();
        let mut seen = std::collections::HashSet::new();
        for (_, entry) in entries.iter() {
            if let ObservationKind::Processed { data, .. } = &entry.kind {
                seen.insert(data.clone());
            }
        }
        seen.len()
    }
}

/// Injected processor failures: the first `failures` calls of `process_records` on `shard_id`
/// fail (returning an error, or panicking).
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The shard whose processor fails.
    pub shard_id: ShardId,
    /// How many calls fail.
    pub failures: u32,
    /// Panic instead of returning an error.
    pub panic: bool,
    calls: Arc<AtomicU32>,
    healed: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultPlan {
    /// A plan failing the first `failures` batches of `shard_id`.
    pub fn new(shard_id: ShardId, failures: u32, panic: bool) -> Self {
        FaultPlan {
            shard_id,
            failures,
            panic,
            calls: Arc::new(AtomicU32::new(0)),
            healed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Stops the injected failures: later calls succeed (shared by every clone of the plan).
    pub fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }

    fn fails_now(&self) -> bool {
        if self.healed.load(Ordering::SeqCst) {
            return false;
        }
        self.calls.fetch_add(1, Ordering::SeqCst) < self.failures
    }

    /// How many calls failed so far.
    pub fn failed_calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst).min(self.failures)
    }
}

/// Holds the processors of one worker inside `process_records` (after recording the batch,
/// before checkpointing) until released: lets a test freeze a worker mid-batch.
#[derive(Debug, Clone)]
pub struct HoldPlan {
    entered: Arc<tokio::sync::Notify>,
    released: Arc<tokio::sync::Semaphore>,
    holding: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for HoldPlan {
    fn default() -> Self {
        HoldPlan::new()
    }
}

impl HoldPlan {
    /// A plan that holds nothing until [`HoldPlan::arm`].
    pub fn new() -> Self {
        HoldPlan {
            entered: Arc::new(tokio::sync::Notify::new()),
            released: Arc::new(tokio::sync::Semaphore::new(0)),
            holding: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// The next `process_records` call blocks until [`HoldPlan::release`].
    pub fn arm(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Waits until a processor is blocked.
    pub async fn wait_entered(&self) {
        self.entered.notified().await;
    }

    /// Lets blocked processors go on (and stops holding new calls).
    pub fn release(&self) {
        self.holding.store(false, Ordering::SeqCst);
        self.released.add_permits(1_000);
    }

    async fn hold_if_armed(&self) {
        if self.holding.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            if let Ok(permit) = self.released.acquire().await {
                permit.forget();
            }
        }
    }
}

/// Makes [`RecordingProcessor`]s.
#[derive(Debug, Clone)]
pub struct RecordingProcessorFactory {
    /// The shared log.
    pub log: ObservationLog,
    /// The worker the processors run in.
    pub worker_id: String,
    /// Checkpoint after every this many batches (1 = every batch; 0 = only at shutdown/end).
    pub checkpoint_every: u32,
    /// Injected failures.
    pub faults: Vec<FaultPlan>,
    /// Holds this worker's processors mid-batch when armed.
    pub hold: Option<HoldPlan>,
}

impl ShardRecordProcessorFactory for RecordingProcessorFactory {
    fn create_processor(&self, shard_id: &ShardId) -> Box<dyn ShardRecordProcessor> {
        Box::new(RecordingProcessor {
            log: self.log.clone(),
            worker_id: self.worker_id.clone(),
            shard_id: shard_id.clone(),
            session: self.log.next_session(),
            checkpoint_every: self.checkpoint_every,
            batches: 0,
            last_processed: None,
            faults: self
                .faults
                .iter()
                .filter(|fault| &fault.shard_id == shard_id)
                .cloned()
                .collect(),
            hold: self.hold.clone(),
        })
    }
}

/// Records what it processes; checkpoints at the last record it processed.
#[derive(Debug)]
pub struct RecordingProcessor {
    log: ObservationLog,
    worker_id: String,
    shard_id: ShardId,
    session: u64,
    checkpoint_every: u32,
    batches: u32,
    last_processed: Option<ExtendedSequenceNumber>,
    faults: Vec<FaultPlan>,
    hold: Option<HoldPlan>,
}

impl RecordingProcessor {
    fn record(&self, kind: ObservationKind) {
        self.log.push(Observation {
            worker_id: self.worker_id.clone(),
            shard_id: self.shard_id.clone(),
            session: self.session,
            kind,
        });
    }

    async fn checkpoint(&self, checkpointer: &RecordCheckpointer, at_end: bool) -> bool {
        let (position, result) = if at_end {
            let position = ExtendedSequenceNumber::SHARD_END;
            self.record(ObservationKind::CheckpointRequested { position });
            (position, checkpointer.checkpoint().await)
        } else {
            let Some(position) = self.last_processed else {
                return true;
            };
            let sequence = position.sequence_number().unwrap_or_default();
            self.record(ObservationKind::CheckpointRequested { position });
            (
                position,
                checkpointer
                    .checkpoint_at(sequence, position.sub_sequence_number)
                    .await,
            )
        };
        let accepted = result.is_ok();
        self.record(ObservationKind::Checkpointed { position, accepted });
        accepted
    }
}

#[async_trait::async_trait]
impl ShardRecordProcessor for RecordingProcessor {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        self.record(ObservationKind::Initialized {
            start: input.extended_sequence_number,
            lease_counter: input.lease_counter,
        });
        Ok(())
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        for fault in &self.faults {
            if fault.fails_now() {
                if fault.panic {
                    panic!("injected panic on {}", self.shard_id);
                }
                return Err(format!("injected failure on {}", self.shard_id).into());
            }
        }
        for record in &input.records {
            self.record(ObservationKind::Processed {
                partition_key: record.partition_key.to_string(),
                data: record.data.clone(),
                position: record.extended_sequence_number(),
            });
            self.last_processed = Some(record.extended_sequence_number());
        }
        self.batches += 1;
        if let Some(hold) = &self.hold {
            hold.hold_if_armed().await;
        }
        if self.checkpoint_every > 0 && self.batches.is_multiple_of(self.checkpoint_every) {
            self.checkpoint(&input.checkpointer, false).await;
        }
        Ok(())
    }

    async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
        self.record(ObservationKind::LeaseLost);
        Ok(())
    }

    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        if self.checkpoint(&checkpointer, true).await {
            self.record(ObservationKind::ShardEnded);
        }
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        self.record(ObservationKind::ShutdownRequested);
        self.checkpoint(&checkpointer, false).await;
        Ok(())
    }
}
