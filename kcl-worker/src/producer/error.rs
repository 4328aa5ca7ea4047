//! The producer's one error type, shared by the batch and the KPL-equivalent producer.

use kcl_core::kinesis::KinesisError;

/// Why producing (or one record) failed.
///
/// Each message is complete (it includes the service's error) and the error has no `source()`,
/// so error chains (`anyhow`'s `{:#}`) print the service's message once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProduceError {
    /// A request failed with a non-retryable error.
    #[error("the PutRecords request failed: {0}")]
    Request(KinesisError),
    /// Some records were still rejected after every retry.
    #[error(
        "{failed} records were still rejected after {attempts} attempts (last error {last_error})"
    )]
    RecordsRejected {
        /// How many records were never stored.
        failed: usize,
        /// Attempts made.
        attempts: usize,
        /// The last per-record error code.
        last_error: String,
    },
    /// A producer setting breaks a rule.
    #[error("invalid producer config: {field} {rule}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// A user record breaks a Kinesis rule.
    #[error("invalid user record: {field} {rule}")]
    InvalidRecord {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// `try_send` found the in-flight buffer full.
    #[error(
        "the producer buffer is full ({records} records, {bytes} bytes in flight); retry later or use send"
    )]
    BufferFull {
        /// User records in flight.
        records: usize,
        /// User record bytes in flight.
        bytes: usize,
    },
    /// The record was not stored within its time to live.
    #[error(
        "record expired after {attempts} attempts (time to live reached); last error: {last_error}"
    )]
    Expired {
        /// Attempts made.
        attempts: u32,
        /// The last error seen (or why it was never sent).
        last_error: String,
    },
    /// The producer was shut down (or its background task ended) before the record was stored.
    #[error("the producer was shut down before the record was stored")]
    ShutDown,
}

impl From<KinesisError> for ProduceError {
    fn from(error: KinesisError) -> Self {
        ProduceError::Request(error)
    }
}
