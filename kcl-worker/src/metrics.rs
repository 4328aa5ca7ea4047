//! Counters per shard and per worker, readable as snapshots and emitted as `tracing` events.

use kcl_core::kinesis::ShardId;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Live counters of one shard on this worker.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    records_processed: AtomicU64,
    bytes_processed: AtomicU64,
    batches_processed: AtomicU64,
    millis_behind_latest: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_failures: AtomicU64,
    processor_errors: AtomicU64,
    read_errors: AtomicU64,
}

impl ShardMetrics {
    pub(crate) fn batch_processed(&self, records: usize, bytes: usize, millis_behind_latest: u64) {
        self.records_processed
            .fetch_add(records as u64, Ordering::Relaxed);
        self.bytes_processed
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.batches_processed.fetch_add(1, Ordering::Relaxed);
        self.millis_behind_latest
            .store(millis_behind_latest, Ordering::Relaxed);
    }

    pub(crate) fn checkpointed(&self) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn checkpoint_failed(&self) {
        self.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn processor_failed(&self) {
        self.processor_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read_failed(&self) {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> ShardMetricsSnapshot {
        ShardMetricsSnapshot {
            records_processed: self.records_processed.load(Ordering::Relaxed),
            bytes_processed: self.bytes_processed.load(Ordering::Relaxed),
            batches_processed: self.batches_processed.load(Ordering::Relaxed),
            millis_behind_latest: self.millis_behind_latest.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            checkpoint_failures: self.checkpoint_failures.load(Ordering::Relaxed),
            processor_errors: self.processor_errors.load(Ordering::Relaxed),
            read_errors: self.read_errors.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one shard at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardMetricsSnapshot {
    /// Records handed to `process_records` and acknowledged.
    pub records_processed: u64,
    /// Bytes (payload + partition key) of those records.
    pub bytes_processed: u64,
    /// Batches processed.
    pub batches_processed: u64,
    /// Millis behind the tip at the last batch.
    pub millis_behind_latest: u64,
    /// Successful checkpoints.
    pub checkpoints: u64,
    /// Refused or failed checkpoints.
    pub checkpoint_failures: u64,
    /// Errors and panics of the processor.
    pub processor_errors: u64,
    /// Failed reads of the shard (`GetShardIterator`, `GetRecords`, `SubscribeToShard`).
    pub read_errors: u64,
}

/// Live counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    leases_taken: AtomicU64,
    leases_stolen: AtomicU64,
    leases_lost: AtomicU64,
    leases_held: AtomicU64,
    leases_released_on_read_failures: AtomicU64,
    lease_store_failures: AtomicU64,
    shards: Mutex<HashMap<ShardId, Arc<ShardMetrics>>>,
}

impl WorkerMetrics {
    /// The counters of `shard_id` (created on first use; kept across re-acquisitions).
    pub fn shard(&self, shard_id: &ShardId) -> Arc<ShardMetrics> {
        let mut shards = self
            .shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shards.entry(shard_id.clone()).or_default().clone()
    }

    pub(crate) fn lease_taken(&self, stolen: bool) {
        self.leases_taken.fetch_add(1, Ordering::Relaxed);
        if stolen {
            self.leases_stolen.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn lease_lost(&self) {
        self.leases_lost.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lease_released_on_read_failures(&self) {
        self.leases_released_on_read_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lease_store_failed(&self) {
        self.lease_store_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_leases_held(&self, held: usize) {
        self.leases_held.store(held as u64, Ordering::Relaxed);
    }

    /// The current values, with per-shard totals.
    pub fn snapshot(&self, worker_id: &str) -> WorkerMetricsSnapshot {
        let shards: BTreeMap<ShardId, ShardMetricsSnapshot> = self
            .shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(shard_id, metrics)| (shard_id.clone(), metrics.snapshot()))
            .collect();
        let total = |field: fn(&ShardMetricsSnapshot) -> u64| shards.values().map(field).sum();
        WorkerMetricsSnapshot {
            worker_id: worker_id.to_owned(),
            leases_held: self.leases_held.load(Ordering::Relaxed),
            leases_taken: self.leases_taken.load(Ordering::Relaxed),
            leases_stolen: self.leases_stolen.load(Ordering::Relaxed),
            leases_lost: self.leases_lost.load(Ordering::Relaxed),
            leases_released_on_read_failures: self
                .leases_released_on_read_failures
                .load(Ordering::Relaxed),
            lease_store_failures: self.lease_store_failures.load(Ordering::Relaxed),
            read_errors: total(|s| s.read_errors),
            records_processed: total(|s| s.records_processed),
            bytes_processed: total(|s| s.bytes_processed),
            checkpoints: total(|s| s.checkpoints),
            checkpoint_failures: total(|s| s.checkpoint_failures),
            processor_errors: total(|s| s.processor_errors),
            max_millis_behind_latest: shards
                .values()
                .map(|s| s.millis_behind_latest)
                .max()
                .unwrap_or(0),
            shards,
        }
    }
}

/// The counters of one worker at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetricsSnapshot {
    /// The worker.
    pub worker_id: String,
    /// Leases currently held.
    pub leases_held: u64,
    /// Leases taken (including stolen ones).
    pub leases_taken: u64,
    /// Leases stolen from other workers.
    pub leases_stolen: u64,
    /// Leases lost (renewal failed or expired).
    pub leases_lost: u64,
    /// Leases released because reading their shard kept failing with non-retryable errors.
    pub leases_released_on_read_failures: u64,
    /// Failed lease-store calls of the renewer, taker, shard sync and cleanup.
    pub lease_store_failures: u64,
    /// Failed shard reads over all shards.
    pub read_errors: u64,
    /// Records processed over all shards.
    pub records_processed: u64,
    /// Bytes processed over all shards.
    pub bytes_processed: u64,
    /// Successful checkpoints over all shards.
    pub checkpoints: u64,
    /// Failed checkpoints over all shards.
    pub checkpoint_failures: u64,
    /// Processor errors and panics over all shards.
    pub processor_errors: u64,
    /// The largest millis-behind-latest over all shards.
    pub max_millis_behind_latest: u64,
    /// Per-shard counters.
    pub shards: BTreeMap<ShardId, ShardMetricsSnapshot>,
}

impl WorkerMetricsSnapshot {
    /// Emits the snapshot as `tracing` events: one for the worker, one per shard.
    pub fn emit(&self) {
        tracing::info!(
            worker_id = %self.worker_id,
            leases_held = self.leases_held,
            leases_taken = self.leases_taken,
            leases_stolen = self.leases_stolen,
            leases_lost = self.leases_lost,
            leases_released_on_read_failures = self.leases_released_on_read_failures,
            lease_store_failures = self.lease_store_failures,
            read_errors = self.read_errors,
            records_processed = self.records_processed,
            bytes_processed = self.bytes_processed,
            checkpoints = self.checkpoints,
            checkpoint_failures = self.checkpoint_failures,
            processor_errors = self.processor_errors,
            max_millis_behind_latest = self.max_millis_behind_latest,
            "worker metrics"
        );
        for (shard_id, shard) in &self.shards {
            tracing::debug!(
                worker_id = %self.worker_id,
                shard_id = %shard_id,
                records_processed = shard.records_processed,
                bytes_processed = shard.bytes_processed,
                millis_behind_latest = shard.millis_behind_latest,
                checkpoints = shard.checkpoints,
                checkpoint_failures = shard.checkpoint_failures,
                processor_errors = shard.processor_errors,
                "shard metrics"
            );
        }
    }
}
