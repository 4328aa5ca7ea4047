//! The checkpointer handed to processors: kcl-core's [`Checkpointer`] (the Java KCL's rules,
//! fenced by the held lease) plus this shard's metrics.

use crate::metrics::ShardMetrics;
use crate::record::KinesisClientRecord;
pub use kcl_core::checkpoint::{CheckpointError, Checkpointer, PreparedCheckpoint};
use kcl_core::kinesis::{SequenceNumber, ShardId};
use kcl_core::lease::ExtendedSequenceNumber;
use std::sync::Arc;

/// Checkpoints one shard. Cheap to clone; every clone writes the same lease.
#[derive(Debug, Clone)]
pub struct RecordCheckpointer {
    inner: Checkpointer,
    metrics: Arc<ShardMetrics>,
}

impl RecordCheckpointer {
    /// Wraps a kcl-core checkpointer.
    pub fn new(inner: Checkpointer, metrics: Arc<ShardMetrics>) -> Self {
        RecordCheckpointer { inner, metrics }
    }

    /// The shard this checkpointer writes.
    pub fn shard_id(&self) -> &ShardId {
        self.inner.shard_id()
    }

    /// The largest position delivered to the processor so far.
    pub fn largest_delivered(&self) -> Option<ExtendedSequenceNumber> {
        self.inner.largest_delivered()
    }

    /// Checkpoints the largest delivered record (`SHARD_END` once the shard has ended and its
    /// children's leases exist, i.e. from `shard_ended`).
    pub async fn checkpoint(&self) -> Result<(), CheckpointError> {
        let started = self.metrics.start();
        let result = self.inner.checkpoint().await;
        self.metrics.checkpoint_finished(started, result.is_ok());
        result
    }

    /// Checkpoints at a sequence and sub-sequence number, which must lie between the last
    /// checkpoint and the largest delivered record.
    pub async fn checkpoint_at(
        &self,
        sequence_number: SequenceNumber,
        sub_sequence_number: u64,
    ) -> Result<(), CheckpointError> {
        let started = self.metrics.start();
        let result = self
            .inner
            .checkpoint_at(sequence_number, sub_sequence_number)
            .await;
        self.metrics.checkpoint_finished(started, result.is_ok());
        result
    }

    /// Checkpoints at `record` (its sequence and sub-sequence number).
    pub async fn checkpoint_record(
        &self,
        record: &KinesisClientRecord,
    ) -> Result<(), CheckpointError> {
        self.checkpoint_at(record.sequence_number, record.sub_sequence_number)
            .await
    }

    /// Writes a pending checkpoint with optional application state; commit it later with
    /// [`PreparedCheckpoint::commit`]. After a failover, `initialize` receives it.
    pub async fn prepare_checkpoint(
        &self,
        position: ExtendedSequenceNumber,
        application_state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint, CheckpointError> {
        let result = self
            .inner
            .prepare_checkpoint(position, application_state)
            .await;
        if result.is_err() {
            self.metrics.checkpoint_failed();
        }
        result
    }

    /// The kcl-core checkpointer (for the worker's own bookkeeping).
    pub(crate) fn core(&self) -> &Checkpointer {
        &self.inner
    }
}
