//! The errors of the worker runtime.

use kcl_core::kinesis::KinesisError;
use kcl_core::lease_store::LeaseStoreError;

/// Why a worker operation failed.
///
/// Each message is complete (it includes the underlying error's message) and the error has no
/// `source()`: error chains (`anyhow`'s `{:#}`) print each message once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A configuration value breaks a rule.
    #[error("invalid configuration: {field} {reason}")]
    InvalidConfig {
        /// The offending setting.
        field: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// The stream service failed.
    #[error("stream error: {0}")]
    Stream(KinesisError),
    /// The lease store failed.
    #[error("lease store error: {0}")]
    LeaseStore(LeaseStoreError),
    /// The lease store kept failing with errors no retry fixes (disk full, a corrupt or
    /// read-only file, a foreign table) for longer than
    /// `SchedulerConfig::lease_store_failure_timeout`: the worker stopped.
    #[error("the lease store has been failing for {failing_for:?}; last error: {last_error}")]
    LeaseStoreUnavailable {
        /// How long it had been failing.
        failing_for: std::time::Duration,
        /// Its last error.
        last_error: String,
    },
    /// The worker was already run or shut down.
    #[error("the scheduler is already running or has stopped")]
    AlreadyRunning,
}

impl From<KinesisError> for WorkerError {
    fn from(error: KinesisError) -> Self {
        WorkerError::Stream(error)
    }
}

impl From<LeaseStoreError> for WorkerError {
    fn from(error: LeaseStoreError) -> Self {
        WorkerError::LeaseStore(error)
    }
}

impl WorkerError {
    /// An [`WorkerError::InvalidConfig`] for `field`.
    pub fn invalid_config(field: &'static str, reason: impl Into<String>) -> Self {
        WorkerError::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}
