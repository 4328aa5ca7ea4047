//! The one error type of the firehose crate.

/// Why a firehose operation failed.
///
/// Messages are lowercase and complete; invalid configuration names the field and the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirehoseError {
    /// A configuration value breaks a rule.
    #[error("invalid {field}: {rule}")]
    InvalidConfig {
        /// The offending field (the AWS name where there is one, e.g. `BufferingHints.SizeInMBs`).
        field: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A local file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`"writing"`, `"renaming"`, ...).
        action: &'static str,
        /// The file or directory.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The object store refused or failed a write.
    #[error("object store error writing {bucket}/{key}: {message}")]
    ObjectStore {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// The store's message.
        message: String,
    },
    /// An object key or bucket name is not acceptable.
    #[error("invalid object name {name:?}: {rule}")]
    InvalidObjectName {
        /// The name.
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The transformation command could not be run or answered badly (one attempt).
    #[error("transformation failed: {0}")]
    Transform(String),
    /// The consumer runtime failed.
    #[error("delivery worker error: {0}")]
    Worker(String),
}

impl FirehoseError {
    /// An [`FirehoseError::InvalidConfig`] for `field`.
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        FirehoseError::InvalidConfig {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// An [`FirehoseError::Io`].
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        FirehoseError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<kcl_worker::WorkerError> for FirehoseError {
    fn from(error: kcl_worker::WorkerError) -> Self {
        FirehoseError::Worker(error.to_string())
    }
}
