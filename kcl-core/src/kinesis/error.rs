//! The error kinds of the Kinesis API, shared by the broker and every stream client.

use std::fmt;

/// The kind of a Kinesis error: its `__type` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KinesisErrorKind {
    /// `ResourceNotFoundException`: no such stream, shard or consumer.
    ResourceNotFound,
    /// `ResourceInUseException`: the resource exists or is not in the needed state.
    ResourceInUse,
    /// `InvalidArgumentException`: a value is invalid for the request.
    InvalidArgument,
    /// `LimitExceededException`: an account or rate limit was reached.
    LimitExceeded,
    /// `ProvisionedThroughputExceededException`: a per-shard throughput limit was reached.
    ProvisionedThroughputExceeded,
    /// `ExpiredIteratorException`: the shard iterator is older than its time to live.
    ExpiredIterator,
    /// `ExpiredNextTokenException`: the pagination token is too old.
    ExpiredNextToken,
    /// `ValidationException`: the request does not satisfy the API's constraints.
    Validation,
    /// `AccessDeniedException`: not allowed.
    AccessDenied,
    /// `InternalFailure`: a fault of the server.
    InternalFailure,
    /// Anything else a server answered, or a transport failure on the client side.
    Other,
}

impl KinesisErrorKind {
    /// The error type as AWS writes it in `__type` and `x-amzn-ErrorType`.
    pub fn aws_type(self) -> &'static str {
        match self {
            KinesisErrorKind::ResourceNotFound => "ResourceNotFoundException",
            KinesisErrorKind::ResourceInUse => "ResourceInUseException",
            KinesisErrorKind::InvalidArgument => "InvalidArgumentException",
            KinesisErrorKind::LimitExceeded => "LimitExceededException",
            KinesisErrorKind::ProvisionedThroughputExceeded => {
                "ProvisionedThroughputExceededException"
            }
            KinesisErrorKind::ExpiredIterator => "ExpiredIteratorException",
            KinesisErrorKind::ExpiredNextToken => "ExpiredNextTokenException",
            KinesisErrorKind::Validation => "ValidationException",
            KinesisErrorKind::AccessDenied => "AccessDeniedException",
            KinesisErrorKind::InternalFailure => "InternalFailure",
            KinesisErrorKind::Other => "UnknownError",
        }
    }

    /// The kind named by an AWS error type (the part after `#`, if any, is used).
    pub fn from_aws_type(aws_type: &str) -> Self {
        let name = aws_type.rsplit('#').next().unwrap_or(aws_type);
        let name = name.split(':').next().unwrap_or(name);
        match name {
            "ResourceNotFoundException" => KinesisErrorKind::ResourceNotFound,
            "ResourceInUseException" => KinesisErrorKind::ResourceInUse,
            "InvalidArgumentException" => KinesisErrorKind::InvalidArgument,
            "LimitExceededException" => KinesisErrorKind::LimitExceeded,
            "ProvisionedThroughputExceededException" => {
                KinesisErrorKind::ProvisionedThroughputExceeded
            }
            "ExpiredIteratorException" => KinesisErrorKind::ExpiredIterator,
            "ExpiredNextTokenException" => KinesisErrorKind::ExpiredNextToken,
            "ValidationException" => KinesisErrorKind::Validation,
            "AccessDeniedException" => KinesisErrorKind::AccessDenied,
            "InternalFailure" | "InternalFailureException" | "ServiceUnavailable" => {
                KinesisErrorKind::InternalFailure
            }
            _ => KinesisErrorKind::Other,
        }
    }

    /// The HTTP status a server answers this kind with.
    pub fn http_status(self) -> u16 {
        match self {
            KinesisErrorKind::InternalFailure => 500,
            _ => 400,
        }
    }

    /// Whether a client should retry the same request later (throttling, server faults).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            KinesisErrorKind::ProvisionedThroughputExceeded
                | KinesisErrorKind::LimitExceeded
                | KinesisErrorKind::InternalFailure
        )
    }
}

impl fmt::Display for KinesisErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.aws_type())
    }
}

/// An error of the Kinesis API: a kind and the message AWS would give. Displayed as
/// `Kind: message`; an error of kind [`Other`](KinesisErrorKind::Other) (a transport failure,
/// an error type this crate has no kind for) as its message alone, which names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisError {
    /// What kind of error this is.
    pub kind: KinesisErrorKind,
    /// The human-readable message, worded as AWS words it.
    pub message: String,
}

impl fmt::Display for KinesisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            KinesisErrorKind::Other => f.write_str(&self.message),
            kind => write!(f, "{kind}: {}", self.message),
        }
    }
}

impl std::error::Error for KinesisError {}

impl KinesisError {
    /// An error of `kind` with `message`.
    pub fn new(kind: KinesisErrorKind, message: impl Into<String>) -> Self {
        KinesisError {
            kind,
            message: message.into(),
        }
    }

    /// Whether a client should retry the same request later.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}
