//! The producer's metrics: emitted through the `metrics` facade (label `stream`; the library
//! never installs a recorder) and kept in counters readable as a [`ProducerStats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counter: user records stored.
pub const USER_RECORDS_PUT: &str = "kcl_producer_user_records_put_total";
/// Counter: user records whose future failed.
pub const USER_RECORDS_FAILED: &str = "kcl_producer_user_records_failed_total";
/// Counter: Kinesis records (aggregates or plain records) stored.
pub const KINESIS_RECORDS_PUT: &str = "kcl_producer_kinesis_records_put_total";
/// Gauge: user records stored per Kinesis record stored, since start.
pub const AGGREGATION_RATIO: &str = "kcl_producer_aggregation_ratio";
/// Counter: Kinesis records sent again after a failure.
pub const RETRIES: &str = "kcl_producer_retries_total";
/// Counter: Kinesis records rejected with `ProvisionedThroughputExceeded`.
pub const THROTTLES: &str = "kcl_producer_throttles_total";
/// Gauge: user record bytes in flight.
pub const BUFFERED_BYTES: &str = "kcl_producer_buffered_bytes";
/// Histogram: seconds per `PutRecords` request.
pub const PUT_LATENCY: &str = "kcl_producer_put_latency_seconds";

/// A snapshot of a producer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// User records stored.
    pub user_records_put: u64,
    /// User records whose future failed.
    pub user_records_failed: u64,
    /// Kinesis records stored (an aggregate counts once).
    pub kinesis_records_put: u64,
    /// `PutRecords` requests sent.
    pub requests: u64,
    /// Kinesis records sent again after a failure.
    pub retries: u64,
    /// Kinesis records rejected with `ProvisionedThroughputExceeded`.
    pub throttles: u64,
    /// User records in flight now.
    pub buffered_records: u64,
    /// User record bytes in flight now.
    pub buffered_bytes: u64,
    /// Most user record bytes ever in flight at once.
    pub peak_buffered_bytes: u64,
}

impl ProducerStats {
    /// User records per stored Kinesis record (1.0 without aggregation; 0 before any put).
    pub fn aggregation_ratio(&self) -> f64 {
        if self.kinesis_records_put == 0 {
            return 0.0;
        }
        self.user_records_put as f64 / self.kinesis_records_put as f64
    }
}

/// The facade handles of one producer's series, looked up once (label `stream`) so the per-record
/// paths only touch the handles.
#[derive(Debug)]
struct Series {
    user_records_put: metrics::Counter,
    user_records_failed: metrics::Counter,
    kinesis_records_put: metrics::Counter,
    aggregation_ratio: metrics::Gauge,
    retries: metrics::Counter,
    throttles: metrics::Counter,
    buffered_bytes: metrics::Gauge,
    put_latency: metrics::Histogram,
}

impl Series {
    fn new(stream: &str) -> Self {
        let label = || [("stream", stream.to_owned())];
        Series {
            user_records_put: metrics::counter!(USER_RECORDS_PUT, &label()),
            user_records_failed: metrics::counter!(USER_RECORDS_FAILED, &label()),
            kinesis_records_put: metrics::counter!(KINESIS_RECORDS_PUT, &label()),
            aggregation_ratio: metrics::gauge!(AGGREGATION_RATIO, &label()),
            retries: metrics::counter!(RETRIES, &label()),
            throttles: metrics::counter!(THROTTLES, &label()),
            buffered_bytes: metrics::gauge!(BUFFERED_BYTES, &label()),
            put_latency: metrics::histogram!(PUT_LATENCY, &label()),
        }
    }
}

/// Live counters of one producer, mirrored to the `metrics` facade.
#[derive(Debug)]
pub(crate) struct ProducerMetrics {
    series: Series,
    user_records_put: AtomicU64,
    user_records_failed: AtomicU64,
    kinesis_records_put: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    throttles: AtomicU64,
    buffered_records: AtomicU64,
    buffered_bytes: AtomicU64,
    peak_buffered_bytes: AtomicU64,
}

impl ProducerMetrics {
    pub(crate) fn new(stream: &str) -> Self {
        ProducerMetrics {
            series: Series::new(stream),
            user_records_put: AtomicU64::new(0),
            user_records_failed: AtomicU64::new(0),
            kinesis_records_put: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            buffered_records: AtomicU64::new(0),
            buffered_bytes: AtomicU64::new(0),
            peak_buffered_bytes: AtomicU64::new(0),
        }
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        ProducerStats {
            user_records_put: self.user_records_put.load(Ordering::Relaxed),
            user_records_failed: self.user_records_failed.load(Ordering::Relaxed),
            kinesis_records_put: self.kinesis_records_put.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttles: self.throttles.load(Ordering::Relaxed),
            buffered_records: self.buffered_records.load(Ordering::Relaxed),
            buffered_bytes: self.buffered_bytes.load(Ordering::Relaxed),
            peak_buffered_bytes: self.peak_buffered_bytes.load(Ordering::Relaxed),
        }
    }

    /// A Kinesis record carrying `user_records` user records was stored.
    pub(crate) fn stored(&self, user_records: u64) {
        let users = self
            .user_records_put
            .fetch_add(user_records, Ordering::Relaxed)
            + user_records;
        let kinesis = self.kinesis_records_put.fetch_add(1, Ordering::Relaxed) + 1;
        self.series.user_records_put.increment(user_records);
        self.series.kinesis_records_put.increment(1);
        self.series
            .aggregation_ratio
            .set(users as f64 / kinesis as f64);
    }

    pub(crate) fn failed(&self, user_records: u64) {
        self.user_records_failed
            .fetch_add(user_records, Ordering::Relaxed);
        self.series.user_records_failed.increment(user_records);
    }

    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.series.retries.increment(1);
    }

    pub(crate) fn throttled(&self) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
        self.series.throttles.increment(1);
    }

    pub(crate) fn request_done(&self, seconds: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.series.put_latency.record(seconds);
    }

    /// A user record of `bytes` entered the buffer.
    pub(crate) fn buffered(&self, bytes: u64) {
        self.buffered_records.fetch_add(1, Ordering::Relaxed);
        let now = self.buffered_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak_buffered_bytes.fetch_max(now, Ordering::Relaxed);
        self.series.buffered_bytes.set(now as f64);
    }

    /// A user record of `bytes` left the buffer (stored or failed).
    pub(crate) fn released(&self, bytes: u64) {
        self.buffered_records.fetch_sub(1, Ordering::Relaxed);
        let now = self.buffered_bytes.fetch_sub(bytes, Ordering::Relaxed) - bytes;
        self.series.buffered_bytes.set(now as f64);
    }
}
