//! The exported metric series: the one place the worker records into the `metrics` facade.
//!
//! [`crate::metrics`] calls these handles from the same points that bump its snapshot
//! counters, so the Prometheus series and [`crate::metrics::WorkerMetricsSnapshot`] never
//! disagree. The library never installs a recorder: without one (the default) every handle
//! is a no-op; a binary installs one (e.g. `metrics-exporter-prometheus`) before it builds
//! its schedulers and may call [`describe`] for the HELP lines.
//!
//! Names follow Prometheus conventions: `kcl_` prefix, `_total` for counters, seconds for
//! durations. Every series carries `worker_id`; per-shard series also `shard_id`.

use ::metrics::{Counter, Gauge, Histogram, Unit};
use std::time::Duration;

/// Milliseconds the shard's last batch was behind the stream's tip (gauge; per shard).
pub const MILLIS_BEHIND_LATEST: &str = "kcl_shard_millis_behind_latest";
/// Records processed (counter; per shard).
pub const RECORDS_PROCESSED: &str = "kcl_records_processed_total";
/// Bytes (payload + partition key) processed (counter; per shard).
pub const BYTES_PROCESSED: &str = "kcl_bytes_processed_total";
/// Time `process_records` took for a batch, retries included (histogram; per shard).
pub const PROCESSING_SECONDS: &str = "kcl_processing_duration_seconds";
/// Time a checkpoint write took (histogram; per shard).
pub const CHECKPOINT_SECONDS: &str = "kcl_checkpoint_duration_seconds";
/// Successful checkpoints (counter; per shard).
pub const CHECKPOINTS: &str = "kcl_checkpoints_total";
/// Refused or failed checkpoints (counter; per shard).
pub const CHECKPOINT_FAILURES: &str = "kcl_checkpoint_failures_total";
/// Errors and panics of the record processor (counter; per shard).
pub const PROCESSOR_ERRORS: &str = "kcl_processor_errors_total";
/// Failed shard reads (counter; per shard).
pub const READ_ERRORS: &str = "kcl_read_errors_total";
/// Leases this worker holds now (gauge).
pub const LEASES_HELD: &str = "kcl_leases_held";
/// Leases taken, stolen ones included (counter).
pub const LEASES_TAKEN: &str = "kcl_leases_taken_total";
/// Leases stolen from other workers (counter).
pub const LEASES_STOLEN: &str = "kcl_leases_stolen_total";
/// Leases lost (counter).
pub const LEASES_LOST: &str = "kcl_leases_lost_total";
/// Leases released because reading their shard kept failing (counter).
pub const LEASES_RELEASED_ON_READ_FAILURES: &str = "kcl_leases_released_on_read_failures_total";
/// Time one renewal run over every held lease took (histogram).
pub const RENEWAL_SECONDS: &str = "kcl_lease_renewal_duration_seconds";
/// Renewal runs that failed (counter).
pub const RENEWAL_FAILURES: &str = "kcl_lease_renewal_failures_total";
/// Failed lease-store calls of the renewer, taker, shard sync and cleanup (counter).
pub const LEASE_STORE_ERRORS: &str = "kcl_lease_store_errors_total";

/// Describes every series (HELP text, unit) to the installed recorder; call it once after
/// installing one. Harmless without a recorder.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        MILLIS_BEHIND_LATEST,
        Unit::Milliseconds,
        "how far the shard's last batch was behind the tip of the stream"
    );
    describe_counter!(RECORDS_PROCESSED, Unit::Count, "records processed");
    describe_counter!(BYTES_PROCESSED, Unit::Bytes, "bytes processed");
    describe_histogram!(
        PROCESSING_SECONDS,
        Unit::Seconds,
        "time process_records took per batch"
    );
    describe_histogram!(
        CHECKPOINT_SECONDS,
        Unit::Seconds,
        "time a checkpoint write took"
    );
    describe_counter!(CHECKPOINTS, Unit::Count, "successful checkpoints");
    describe_counter!(CHECKPOINT_FAILURES, Unit::Count, "failed checkpoints");
    describe_counter!(PROCESSOR_ERRORS, Unit::Count, "record processor errors");
    describe_counter!(READ_ERRORS, Unit::Count, "failed shard reads");
    describe_gauge!(LEASES_HELD, Unit::Count, "leases held now");
    describe_counter!(LEASES_TAKEN, Unit::Count, "leases taken");
    describe_counter!(LEASES_STOLEN, Unit::Count, "leases stolen");
    describe_counter!(LEASES_LOST, Unit::Count, "leases lost");
    describe_counter!(
        LEASES_RELEASED_ON_READ_FAILURES,
        Unit::Count,
        "leases released after repeated read failures"
    );
    describe_histogram!(RENEWAL_SECONDS, Unit::Seconds, "time one renewal run took");
    describe_counter!(RENEWAL_FAILURES, Unit::Count, "failed renewal runs");
    describe_counter!(LEASE_STORE_ERRORS, Unit::Count, "failed lease-store calls");
}

/// The facade handles of one shard on one worker (registered once, cheap to bump).
#[derive(Debug, Clone)]
pub(crate) struct ShardSeries {
    pub(crate) millis_behind_latest: Gauge,
    pub(crate) records_processed: Counter,
    pub(crate) bytes_processed: Counter,
    pub(crate) processing_seconds: Histogram,
    pub(crate) checkpoint_seconds: Histogram,
    pub(crate) checkpoints: Counter,
    pub(crate) checkpoint_failures: Counter,
    pub(crate) processor_errors: Counter,
    pub(crate) read_errors: Counter,
}

impl ShardSeries {
    pub(crate) fn new(worker_id: &str, shard_id: &str) -> Self {
        let labels = [
            ("worker_id", worker_id.to_owned()),
            ("shard_id", shard_id.to_owned()),
        ];
        ShardSeries {
            millis_behind_latest: ::metrics::gauge!(MILLIS_BEHIND_LATEST, &labels),
            records_processed: ::metrics::counter!(RECORDS_PROCESSED, &labels),
            bytes_processed: ::metrics::counter!(BYTES_PROCESSED, &labels),
            processing_seconds: ::metrics::histogram!(PROCESSING_SECONDS, &labels),
            checkpoint_seconds: ::metrics::histogram!(CHECKPOINT_SECONDS, &labels),
            checkpoints: ::metrics::counter!(CHECKPOINTS, &labels),
            checkpoint_failures: ::metrics::counter!(CHECKPOINT_FAILURES, &labels),
            processor_errors: ::metrics::counter!(PROCESSOR_ERRORS, &labels),
            read_errors: ::metrics::counter!(READ_ERRORS, &labels),
        }
    }
}

/// The facade handles of one worker.
#[derive(Debug, Clone)]
pub(crate) struct WorkerSeries {
    pub(crate) leases_held: Gauge,
    pub(crate) leases_taken: Counter,
    pub(crate) leases_stolen: Counter,
    pub(crate) leases_lost: Counter,
    pub(crate) leases_released_on_read_failures: Counter,
    pub(crate) renewal_seconds: Histogram,
    pub(crate) renewal_failures: Counter,
    pub(crate) lease_store_errors: Counter,
}

impl WorkerSeries {
    pub(crate) fn new(worker_id: &str) -> Self {
        let labels = [("worker_id", worker_id.to_owned())];
        WorkerSeries {
            leases_held: ::metrics::gauge!(LEASES_HELD, &labels),
            leases_taken: ::metrics::counter!(LEASES_TAKEN, &labels),
            leases_stolen: ::metrics::counter!(LEASES_STOLEN, &labels),
            leases_lost: ::metrics::counter!(LEASES_LOST, &labels),
            leases_released_on_read_failures: ::metrics::counter!(
                LEASES_RELEASED_ON_READ_FAILURES,
                &labels
            ),
            renewal_seconds: ::metrics::histogram!(RENEWAL_SECONDS, &labels),
            renewal_failures: ::metrics::counter!(RENEWAL_FAILURES, &labels),
            lease_store_errors: ::metrics::counter!(LEASE_STORE_ERRORS, &labels),
        }
    }
}

/// A duration as the facade's seconds.
pub(crate) fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
