//! Counters per shard and per worker, readable as snapshots and emitted as `tracing` events.
//!
//! Every recording method here also records into the `metrics` facade (see
//! [`crate::series`]), so snapshots and scraped Prometheus series come from the same points.
//! Durations are measured with the injected clock.

use crate::series::{self, ShardSeries, WorkerSeries};
use kcl_core::clock::SharedClock;
use kcl_core::kinesis::ShardId;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A started measurement: the injected clock's monotonic time when it began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started(Duration);

/// Live counters of one shard on this worker.
#[derive(Debug)]
pub struct ShardMetrics {
    series: ShardSeries,
    clock: SharedClock,
    /// Monotonic millis + 1 when the processor call in flight began; 0 when none is.
    processing_since: AtomicU64,
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
    fn new(worker_id: &str, shard_id: &ShardId, clock: SharedClock) -> Self {
        ShardMetrics {
            series: ShardSeries::new(worker_id, shard_id.as_str()),
            clock,
            processing_since: AtomicU64::new(0),
            records_processed: AtomicU64::new(0),
            bytes_processed: AtomicU64::new(0),
            batches_processed: AtomicU64::new(0),
            millis_behind_latest: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
            processor_errors: AtomicU64::new(0),
            read_errors: AtomicU64::new(0),
        }
    }

    /// Starts timing something on this shard.
    pub(crate) fn start(&self) -> Started {
        Started(self.clock.monotonic())
    }

    fn elapsed(&self, started: Started) -> Duration {
        self.clock.monotonic().saturating_sub(started.0)
    }

    /// A processor call (a batch delivery, retries included) begins.
    pub(crate) fn processing_started(&self) -> Started {
        let started = self.start();
        let since_millis = started.0.as_millis() as u64 + 1;
        self.processing_since.store(since_millis, Ordering::Relaxed);
        started
    }

    /// The processor call begun at `started` returned (however it ended).
    pub(crate) fn processing_finished(&self, started: Started) {
        self.processing_since.store(0, Ordering::Relaxed);
        self.series
            .processing_seconds
            .record(series::seconds(self.elapsed(started)));
    }

    /// How long the processor call in flight has been running, if one is.
    pub fn processing_for(&self) -> Option<Duration> {
        let since_millis = self.processing_since.load(Ordering::Relaxed);
        let since = Duration::from_millis(since_millis.checked_sub(1)?);
        Some(self.clock.monotonic().saturating_sub(since))
    }

    pub(crate) fn batch_processed(&self, records: usize, bytes: usize, millis_behind_latest: u64) {
        self.records_processed
            .fetch_add(records as u64, Ordering::Relaxed);
        self.bytes_processed
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.batches_processed.fetch_add(1, Ordering::Relaxed);
        self.millis_behind_latest
            .store(millis_behind_latest, Ordering::Relaxed);
        self.series.records_processed.increment(records as u64);
        self.series.bytes_processed.increment(bytes as u64);
        self.series
            .millis_behind_latest
            .set(millis_behind_latest as f64);
    }

    /// A checkpoint write begun at `started` ended with `succeeded`.
    pub(crate) fn checkpoint_finished(&self, started: Started, succeeded: bool) {
        self.series
            .checkpoint_seconds
            .record(series::seconds(self.elapsed(started)));
        if succeeded {
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
            self.series.checkpoints.increment(1);
        } else {
            self.checkpoint_failed();
        }
    }

    pub(crate) fn checkpoint_failed(&self) {
        self.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
        self.series.checkpoint_failures.increment(1);
    }

    pub(crate) fn processor_failed(&self) {
        self.processor_errors.fetch_add(1, Ordering::Relaxed);
        self.series.processor_errors.increment(1);
    }

    pub(crate) fn read_failed(&self) {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
        self.series.read_errors.increment(1);
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
#[derive(Debug)]
pub struct WorkerMetrics {
    worker_id: String,
    series: WorkerSeries,
    clock: SharedClock,
    /// Monotonic millis when a lease write of this worker (take or renewal run) last succeeded.
    last_lease_write: AtomicU64,
    renewal_failures: AtomicU64,
    leases_taken: AtomicU64,
    leases_stolen: AtomicU64,
    leases_lost: AtomicU64,
    leases_held: AtomicU64,
    leases_released_on_read_failures: AtomicU64,
    lease_store_failures: AtomicU64,
    shards: Mutex<HashMap<ShardId, Arc<ShardMetrics>>>,
}

impl WorkerMetrics {
    /// The counters of worker `worker_id`, timing with `clock`.
    pub fn new(worker_id: &str, clock: SharedClock) -> Self {
        WorkerMetrics {
            worker_id: worker_id.to_owned(),
            series: WorkerSeries::new(worker_id),
            last_lease_write: AtomicU64::new(clock.monotonic().as_millis() as u64),
            clock,
            renewal_failures: AtomicU64::new(0),
            leases_taken: AtomicU64::new(0),
            leases_stolen: AtomicU64::new(0),
            leases_lost: AtomicU64::new(0),
            leases_held: AtomicU64::new(0),
            leases_released_on_read_failures: AtomicU64::new(0),
            lease_store_failures: AtomicU64::new(0),
            shards: Mutex::new(HashMap::new()),
        }
    }

    /// The counters of `shard_id` (created on first use; kept across re-acquisitions).
    pub fn shard(&self, shard_id: &ShardId) -> Arc<ShardMetrics> {
        let mut shards = self
            .shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shards
            .entry(shard_id.clone())
            .or_insert_with(|| {
                Arc::new(ShardMetrics::new(
                    &self.worker_id,
                    shard_id,
                    self.clock.clone(),
                ))
            })
            .clone()
    }

    /// The shards whose processor call has been running for at least `limit`, longest first.
    pub fn stuck_shards(&self, limit: Duration) -> Vec<(ShardId, Duration)> {
        let shards = self
            .shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stuck: Vec<(ShardId, Duration)> = shards
            .iter()
            .filter_map(|(shard_id, metrics)| {
                let running_for = metrics.processing_for()?;
                (running_for >= limit).then(|| (shard_id.clone(), running_for))
            })
            .collect();
        stuck.sort_by_key(|(_, running_for)| std::cmp::Reverse(*running_for));
        stuck
    }

    /// How long ago a lease write (a take or a whole renewal run) last succeeded.
    pub fn since_last_lease_write(&self) -> Duration {
        let last = Duration::from_millis(self.last_lease_write.load(Ordering::Relaxed));
        self.clock.monotonic().saturating_sub(last)
    }

    /// Leases held now.
    pub fn snapshot_leases_held(&self) -> u64 {
        self.leases_held.load(Ordering::Relaxed)
    }

    fn lease_written(&self) {
        let now_millis = self.clock.monotonic().as_millis() as u64;
        self.last_lease_write
            .fetch_max(now_millis, Ordering::Relaxed);
    }

    /// Starts timing a renewal run.
    pub(crate) fn renewal_started(&self) -> Started {
        Started(self.clock.monotonic())
    }

    /// The renewal run begun at `started` ended; `renewed`: every held lease was renewed.
    pub(crate) fn renewal_finished(&self, started: Started, renewed: bool) {
        let took = self.clock.monotonic().saturating_sub(started.0);
        self.series.renewal_seconds.record(series::seconds(took));
        if renewed {
            self.lease_written();
        } else {
            self.renewal_failures.fetch_add(1, Ordering::Relaxed);
            self.series.renewal_failures.increment(1);
        }
    }

    pub(crate) fn lease_taken(&self, stolen: bool) {
        self.lease_written();
        self.leases_taken.fetch_add(1, Ordering::Relaxed);
        self.series.leases_taken.increment(1);
        if stolen {
            self.leases_stolen.fetch_add(1, Ordering::Relaxed);
            self.series.leases_stolen.increment(1);
        }
    }

    pub(crate) fn lease_lost(&self) {
        self.leases_lost.fetch_add(1, Ordering::Relaxed);
        self.series.leases_lost.increment(1);
    }

    pub(crate) fn lease_released_on_read_failures(&self) {
        self.leases_released_on_read_failures
            .fetch_add(1, Ordering::Relaxed);
        self.series.leases_released_on_read_failures.increment(1);
    }

    pub(crate) fn lease_store_failed(&self) {
        self.lease_store_failures.fetch_add(1, Ordering::Relaxed);
        self.series.lease_store_errors.increment(1);
    }

    pub(crate) fn set_leases_held(&self, held: usize) {
        self.leases_held.store(held as u64, Ordering::Relaxed);
        self.series.leases_held.set(held as f64);
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
            renewal_failures: self.renewal_failures.load(Ordering::Relaxed),
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
    /// Renewal runs in which some held lease could not be renewed (store errors).
    pub renewal_failures: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::clock::ManualClock;
    use kcl_core::kinesis::EpochMillis;

    fn setup() -> (Arc<ManualClock>, WorkerMetrics) {
        let clock = Arc::new(ManualClock::new(EpochMillis(0)));
        let metrics = WorkerMetrics::new("w1", clock.clone());
        (clock, metrics)
    }

    #[test]
    fn a_processor_call_running_past_the_limit_is_stuck_until_it_returns() {
        let (clock, metrics) = setup();
        let limit = Duration::from_secs(60);
        let (slow, quick) = (ShardId::from_index(0), ShardId::from_index(1));
        let slow_call = metrics.shard(&slow).processing_started();
        let quick_call = metrics.shard(&quick).processing_started();
        clock.advance(Duration::from_secs(30));
        metrics.shard(&quick).processing_finished(quick_call);
        assert!(metrics.stuck_shards(limit).is_empty());
        clock.advance(Duration::from_secs(31));
        assert_eq!(
            metrics.stuck_shards(limit),
            [(slow.clone(), Duration::from_secs(61))]
        );
        assert_eq!(metrics.shard(&quick).processing_for(), None);
        metrics.shard(&slow).processing_finished(slow_call);
        assert!(metrics.stuck_shards(limit).is_empty());
    }

    #[test]
    fn lease_writes_and_failed_renewals_are_tracked() {
        let (clock, metrics) = setup();
        clock.advance(Duration::from_secs(5));
        assert_eq!(metrics.since_last_lease_write(), Duration::from_secs(5));
        metrics.lease_taken(true);
        assert_eq!(metrics.since_last_lease_write(), Duration::ZERO);
        let run = metrics.renewal_started();
        clock.advance(Duration::from_secs(2));
        metrics.renewal_finished(run, false);
        assert_eq!(metrics.since_last_lease_write(), Duration::from_secs(2));
        let run = metrics.renewal_started();
        metrics.renewal_finished(run, true);
        assert_eq!(metrics.since_last_lease_write(), Duration::ZERO);
        let snapshot = metrics.snapshot("w1");
        assert_eq!(
            (
                snapshot.leases_taken,
                snapshot.leases_stolen,
                snapshot.renewal_failures
            ),
            (1, 1, 1)
        );
    }
}
