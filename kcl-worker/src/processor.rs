//! The application's side: a [`ShardRecordProcessor`] per shard, made by a
//! [`ShardRecordProcessorFactory`].
//!
//! The worker calls a processor's methods one at a time, in this order: `initialize` once, then
//! `process_records` for each batch in order, then exactly one of `lease_lost` (the lease was
//! lost: do not checkpoint), `shard_ended` (the shard is closed and fully delivered: checkpoint
//! or it is called again) or `shutdown_requested` (the worker is stopping and still holds the
//! lease: checkpoint now to avoid duplicates on the next owner).

use crate::checkpointer::RecordCheckpointer;
use crate::record::KinesisClientRecord;
use kcl_core::kinesis::{ChildShard, ShardId};
use kcl_core::lease::ExtendedSequenceNumber;

/// An error returned by application code. What happens next is the worker's
/// [`FailurePolicy`](crate::config::FailurePolicy).
pub type ProcessorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What `initialize` learns about the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializationInput {
    /// The shard this processor handles.
    pub shard_id: ShardId,
    /// Where processing starts: the lease's checkpoint (a sentinel or a sequence number).
    pub extended_sequence_number: ExtendedSequenceNumber,
    /// A prepared but uncommitted checkpoint left by a previous owner, if any.
    pub pending_checkpoint: Option<ExtendedSequenceNumber>,
    /// The application state saved with the pending checkpoint.
    pub pending_state: Option<Vec<u8>>,
    /// The lease counter when this processor started. Every later acquisition of this shard's
    /// lease, by any worker, starts with a larger one (a take is conditional on the counter it
    /// saw and increments it), so it orders the shard's owners: use it as a fencing token for
    /// the processor's own writes elsewhere.
    pub lease_counter: u64,
}

/// One batch of records.
#[derive(Debug)]
pub struct ProcessRecordsInput {
    /// The records, in shard order (de-aggregated; never at or below the checkpoint).
    pub records: Vec<KinesisClientRecord>,
    /// Checkpoints this shard.
    pub checkpointer: RecordCheckpointer,
    /// How far the last record is behind the tip of the shard.
    pub millis_behind_latest: u64,
    /// Whether this is the last batch of a closed shard.
    pub is_at_shard_end: bool,
    /// The children of a closed shard (set with `is_at_shard_end`).
    pub child_shards: Vec<ChildShard>,
}

/// Processes the records of one shard. One instance per shard lease, called sequentially.
#[async_trait::async_trait]
pub trait ShardRecordProcessor: Send + 'static {
    /// Called once before any records, with the position processing resumes from.
    ///
    /// Default: does nothing.
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        let _ = input;
        Ok(())
    }

    /// Processes a batch. Return an error to have the batch handled by the failure policy
    /// (retried by default).
    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError>;

    /// The lease was lost (taken by another worker or expired). Checkpointing is no longer
    /// possible; the next owner resumes from the last checkpoint.
    ///
    /// Default: does nothing.
    async fn lease_lost(&mut self) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// The shard is closed and every record was delivered. The processor must checkpoint
    /// (`checkpointer.checkpoint()`), otherwise this is called again and the shard's children
    /// do not start.
    ///
    /// Default: checkpoints at `SHARD_END` (`checkpointer.checkpoint()`), which is what lets the
    /// shard finish. Override it to flush your own buffers first, and checkpoint at the end.
    async fn shard_ended(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }

    /// The worker is shutting down gracefully and still holds the lease: checkpoint what was
    /// processed so the next owner does not see it again. `checkpoint()` covers every record
    /// *delivered*; if the last batch failed (and is being retried), checkpoint the last record
    /// you actually processed with `checkpoint_record` / `checkpoint_at` instead.
    ///
    /// Default: does not checkpoint (the safe choice when the processor does not know what it
    /// finished): the next owner resumes from the last checkpoint, so records after it are
    /// delivered again, never lost.
    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        let _ = checkpointer;
        Ok(())
    }
}

/// Makes one processor per shard lease the worker acquires.
pub trait ShardRecordProcessorFactory: Send + Sync + 'static {
    /// A new processor for `shard_id`.
    fn create_processor(&self, shard_id: &ShardId) -> Box<dyn ShardRecordProcessor>;
}

impl<F> ShardRecordProcessorFactory for F
where
    F: Fn(&ShardId) -> Box<dyn ShardRecordProcessor> + Send + Sync + 'static,
{
    fn create_processor(&self, shard_id: &ShardId) -> Box<dyn ShardRecordProcessor> {
        self(shard_id)
    }
}
