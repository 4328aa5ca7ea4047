//! The scheduler's configuration.

use crate::retrieval::RetrievalMode;
use kcl_core::clock::{SharedClock, SystemClock};
use kcl_core::config::LeaseConfig;
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::InitialPosition;
use kcl_core::stream_client::StreamClient;
use std::sync::Arc;
use std::time::Duration;

/// What to do when a processor returns an error or panics in `process_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Retry the same batch, with backoff, until it succeeds (default; the Java KCL instead
    /// skips the batch).
    RetryForever,
    /// Retry up to `max_retries` times, then skip the batch (log + metric) and go on.
    RetryThenSkip {
        /// Retries after the first attempt.
        max_retries: u32,
    },
    /// Retry up to `max_retries` times, then stop processing the shard and release its lease
    /// (another worker, or this one, takes it on a later taker run and resumes from the last
    /// checkpoint).
    StopShard {
        /// Retries after the first attempt.
        max_retries: u32,
    },
}

/// Everything a [`Scheduler`](crate::scheduler::Scheduler) needs.
#[derive(Clone)]
pub struct SchedulerConfig {
    /// The application (names the lease table and the fan-out consumer).
    pub application_name: String,
    /// The stream to consume.
    pub stream_name: String,
    /// This worker's id, unique in the fleet.
    pub worker_id: String,
    /// The lease table.
    pub lease_store: Arc<dyn LeaseStore>,
    /// The stream.
    pub stream_client: Arc<dyn StreamClient>,
    /// Where shards never processed before start.
    pub initial_position: InitialPosition,
    /// Lease timings and assignment limits.
    pub lease: LeaseConfig,
    /// Polling or enhanced fan-out.
    pub retrieval: RetrievalMode,
    /// What to do with a failing batch.
    pub failure_policy: FailurePolicy,
    /// First delay before retrying a failed processor call (doubles up to `max_retry_backoff`).
    pub min_retry_backoff: Duration,
    /// Largest delay between processor retries.
    pub max_retry_backoff: Duration,
    /// How often a child shard re-checks whether its parents have finished.
    pub parent_shard_poll_interval: Duration,
    /// How long a graceful shutdown waits for processors (`shutdown_requested`, final
    /// checkpoint) before stopping them (default 30 s, as the Java KCL's handoff timeout).
    pub shutdown_timeout: Duration,
    /// How often metrics are emitted as tracing events (`None`: never).
    pub metrics_interval: Option<Duration>,
    /// How long the lease store may keep failing with errors no retry fixes (disk full, a
    /// corrupt or read-only file) before the worker stops with
    /// [`WorkerError::LeaseStoreUnavailable`](crate::error::WorkerError::LeaseStoreUnavailable)
    /// (default 2 minutes; `None`: never stop). The worker reports itself unhealthy after half
    /// the failover time of failures of any kind.
    pub lease_store_failure_timeout: Option<Duration>,
    /// Call `process_records` with an empty record list when no records arrived for
    /// `empty_record_list_interval` (the Java KCL's `callProcessRecordsEvenForEmptyRecordList`),
    /// so processors with time-based flushing run while the shard is idle (default false).
    pub call_process_records_even_for_empty_record_list: bool,
    /// How long a shard is idle before an empty `process_records` call (default 1 s; only with
    /// `call_process_records_even_for_empty_record_list`).
    pub empty_record_list_interval: Duration,
    /// Monotonic and wall time.
    pub clock: SharedClock,
}

impl std::fmt::Debug for SchedulerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerConfig")
            .field("application_name", &self.application_name)
            .field("stream_name", &self.stream_name)
            .field("worker_id", &self.worker_id)
            .field("initial_position", &self.initial_position)
            .field("lease", &self.lease)
            .field("retrieval", &self.retrieval)
            .field("failure_policy", &self.failure_policy)
            .finish_non_exhaustive()
    }
}

impl SchedulerConfig {
    /// A configuration with the Java KCL's defaults (TRIM_HORIZON, polling, 10 s failover) and
    /// the system clock.
    pub fn new(
        application_name: impl Into<String>,
        stream_name: impl Into<String>,
        worker_id: impl Into<String>,
        lease_store: Arc<dyn LeaseStore>,
        stream_client: Arc<dyn StreamClient>,
    ) -> Self {
        SchedulerConfig {
            application_name: application_name.into(),
            stream_name: stream_name.into(),
            worker_id: worker_id.into(),
            lease_store,
            stream_client,
            initial_position: InitialPosition::TrimHorizon,
            lease: LeaseConfig::default(),
            retrieval: RetrievalMode::default(),
            failure_policy: FailurePolicy::RetryForever,
            min_retry_backoff: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(10),
            parent_shard_poll_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            metrics_interval: Some(Duration::from_secs(60)),
            lease_store_failure_timeout: Some(Duration::from_secs(120)),
            call_process_records_even_for_empty_record_list: false,
            empty_record_list_interval: Duration::from_secs(1),
            clock: SystemClock::shared(),
        }
    }
}
