//! The server's one error type and how it is written on the wire.
//!
//! Every failure a client can see is a [`ServerError`]; [`ServerError::aws_type`] gives the
//! `__type` / `x-amzn-ErrorType` AWS would use and [`ServerError::http_status`] the status code.

use kcl_core::kinesis::{KinesisError, KinesisErrorKind};

/// The largest request body the server reads: a maximal record (10 MiB after
/// `UpdateMaxRecordSize`, see `engine::account`) or `PutRecords` (5 MiB) base64-encoded in
/// JSON, with room to spare.
pub const MAX_BODY_BYTES: usize = 15 * 1024 * 1024;

/// Everything that can go wrong answering a request, shaped as AWS shapes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// An error of the Kinesis engine, mapped to the wire one to one.
    #[error(transparent)]
    Kinesis(#[from] KinesisError),
    /// Constraint violations of the request, each already worded as AWS words it
    /// ("Value 'x' at 'streamName' failed to satisfy constraint: ...").
    #[error("{}", validation_message(.0))]
    Validation(Vec<String>),
    /// The body is not of the shape the operation expects.
    #[error("{0}")]
    Serialization(String),
    /// `X-Amz-Target` names no known operation.
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    /// The request body is larger than [`MAX_BODY_BYTES`].
    #[error("request body exceeds the limit of {MAX_BODY_BYTES} bytes")]
    RequestTooLarge,
    /// Authentication is required and the request carries no signature.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header (or its companions) is malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not one the server knows.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match the request.
    #[error("{0}")]
    InvalidSignature(String),
    /// A fault of the server itself (storage failure, a bug).
    #[error("{0}")]
    InternalFailure(String),
}

fn validation_message(violations: &[String]) -> String {
    let count = violations.len();
    let noun = if count == 1 { "error" } else { "errors" };
    format!(
        "{count} validation {noun} detected: {}",
        violations.join("; ")
    )
}

impl ServerError {
    /// A single validation violation worded as AWS does.
    pub fn validation(violation: impl Into<String>) -> Self {
        ServerError::Validation(vec![violation.into()])
    }

    /// The error type AWS writes in `__type` and `x-amzn-ErrorType`.
    pub fn aws_type(&self) -> &'static str {
        match self {
            ServerError::Kinesis(error) => match error.kind {
                // `Other` has no AWS name of its own; a server never answers it on purpose.
                KinesisErrorKind::Other => "InternalFailure",
                kind => kind.aws_type(),
            },
            ServerError::Validation(_) => "ValidationException",
            ServerError::Serialization(_) => "SerializationException",
            ServerError::UnknownOperation(_) => "UnknownOperationException",
            ServerError::RequestTooLarge => "RequestEntityTooLargeException",
            ServerError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ServerError::IncompleteSignature(_) => "IncompleteSignatureException",
            ServerError::UnrecognizedClient => "UnrecognizedClientException",
            ServerError::InvalidSignature(_) => "InvalidSignatureException",
            ServerError::InternalFailure(_) => "InternalFailure",
        }
    }

    /// The HTTP status code the error is answered with.
    pub fn http_status(&self) -> u16 {
        match self {
            ServerError::Kinesis(error) => match error.kind {
                KinesisErrorKind::Other => 500,
                KinesisErrorKind::AccessDenied => 403,
                kind => kind.http_status(),
            },
            ServerError::RequestTooLarge => 413,
            ServerError::InvalidSignature(_) => 403,
            ServerError::InternalFailure(_) => 500,
            _ => 400,
        }
    }

    /// The human-readable message of the error body.
    pub fn message(&self) -> String {
        match self {
            ServerError::Kinesis(error) => error.message.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_statuses_follow_aws() {
        let cases: Vec<(ServerError, &str, u16)> = vec![
            (
                KinesisError::new(KinesisErrorKind::ResourceNotFound, "x").into(),
                "ResourceNotFoundException",
                400,
            ),
            (
                KinesisError::new(KinesisErrorKind::InternalFailure, "x").into(),
                "InternalFailure",
                500,
            ),
            (ServerError::validation("v"), "ValidationException", 400),
            (
                ServerError::Serialization("s".into()),
                "SerializationException",
                400,
            ),
            (
                ServerError::UnknownOperation("Op".into()),
                "UnknownOperationException",
                400,
            ),
            (
                ServerError::RequestTooLarge,
                "RequestEntityTooLargeException",
                413,
            ),
            (
                ServerError::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
                400,
            ),
            (
                ServerError::InvalidSignature("s".into()),
                "InvalidSignatureException",
                403,
            ),
            (
                ServerError::UnrecognizedClient,
                "UnrecognizedClientException",
                400,
            ),
            (
                ServerError::InternalFailure("io".into()),
                "InternalFailure",
                500,
            ),
        ];
        for (error, aws_type, status) in cases {
            assert_eq!(error.aws_type(), aws_type, "{error:?}");
            assert_eq!(error.http_status(), status, "{error:?}");
        }
    }

    #[test]
    fn validation_messages_count_and_join() {
        let one = ServerError::validation("Value 'a b' at 'streamName' failed");
        assert_eq!(
            one.message(),
            "1 validation error detected: Value 'a b' at 'streamName' failed"
        );
        let two = ServerError::Validation(vec!["first".into(), "second".into()]);
        assert_eq!(two.message(), "2 validation errors detected: first; second");
    }
}
