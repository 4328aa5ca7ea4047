//! What a DynamoDB failure means for the lease store: the mapping from SDK errors and DynamoDB
//! error codes to [`LeaseStoreError`] kinds, and which of them are worth retrying.

use crate::lease_store::LeaseStoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// The class of one failed DynamoDB request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// `ConditionalCheckFailedException`: the write's condition did not hold.
    ConditionFailed,
    /// Throttled (provisioned throughput, request rate, account limits): retry with backoff.
    Throttled,
    /// Transient: a 5xx, a timeout, a dropped connection. Retry with backoff.
    Transient,
    /// The table is missing or access is denied: an operator must act.
    Unavailable,
    /// The request was refused as invalid, which for our fixed requests means the stored item
    /// does not have the Java KCL's types (e.g. `leaseCounter` is not a number).
    Invalid,
}

impl FailureClass {
    /// Whether the same request should be sent again after a backoff delay.
    pub(crate) fn is_retryable(self) -> bool {
        matches!(self, FailureClass::Throttled | FailureClass::Transient)
    }
}

/// Classifies a DynamoDB error code (the `__type` suffix of an error response).
pub(crate) fn classify_code(code: &str) -> FailureClass {
    match code {
        "ConditionalCheckFailedException" => FailureClass::ConditionFailed,
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "TooManyRequestsException" => FailureClass::Throttled,
        "ResourceNotFoundException"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignatureException"
        | "ResourceInUseException" => FailureClass::Unavailable,
        "ValidationException" | "SerializationException" => FailureClass::Invalid,
        // InternalServerError, ServiceUnavailable, ExpiredTokenException (the provider refreshes
        // credentials), TransactionConflictException and anything new: try again.
        _ => FailureClass::Transient,
    }
}

/// Classifies any SDK error: service errors by code, everything else (no response, timeout,
/// unparsable response) as transient.
pub(crate) fn classify<E, R>(error: &SdkError<E, R>) -> FailureClass
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => classify_code(code),
            None => FailureClass::Transient,
        },
        SdkError::ConstructionFailure(_) => FailureClass::Invalid,
        _ => FailureClass::Transient,
    }
}

/// A one-line description of an SDK error: the code and message of a service error, the
/// source chain of anything else.
pub(crate) fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = error {
        let code = service.err().code().unwrap_or("unknown error");
        return match service.err().message() {
            Some(message) => format!("{code}: {message}"),
            None => code.to_owned(),
        };
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The [`LeaseStoreError`] for a failure of `class` (not `ConditionFailed`, which each operation
/// turns into its own reason) while doing `what`.
pub(crate) fn to_store_error(class: FailureClass, what: &str, detail: &str) -> LeaseStoreError {
    let message = format!("{what}: {detail}");
    match class {
        FailureClass::Throttled => LeaseStoreError::Throttled(message),
        FailureClass::Unavailable => LeaseStoreError::Unavailable(message),
        FailureClass::Invalid => LeaseStoreError::InvalidStore(message),
        FailureClass::Transient | FailureClass::ConditionFailed => {
            LeaseStoreError::Storage(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_the_documented_classes() {
        let table = [
            (
                "ConditionalCheckFailedException",
                FailureClass::ConditionFailed,
                false,
            ),
            (
                "ProvisionedThroughputExceededException",
                FailureClass::Throttled,
                true,
            ),
            ("ThrottlingException", FailureClass::Throttled, true),
            ("RequestLimitExceeded", FailureClass::Throttled, true),
            ("LimitExceededException", FailureClass::Throttled, true),
            (
                "ResourceNotFoundException",
                FailureClass::Unavailable,
                false,
            ),
            ("AccessDeniedException", FailureClass::Unavailable, false),
            (
                "UnrecognizedClientException",
                FailureClass::Unavailable,
                false,
            ),
            ("ValidationException", FailureClass::Invalid, false),
            ("InternalServerError", FailureClass::Transient, true),
            ("ServiceUnavailable", FailureClass::Transient, true),
            ("ExpiredTokenException", FailureClass::Transient, true),
            ("SomethingNewException", FailureClass::Transient, true),
        ];
        for (code, class, retryable) in table {
            assert_eq!(classify_code(code), class, "{code}");
            assert_eq!(class.is_retryable(), retryable, "{code}");
        }
    }

    #[test]
    fn classes_become_the_matching_store_errors() {
        let table = [
            (FailureClass::Throttled, "throttled"),
            (FailureClass::Transient, "failed"),
            (FailureClass::Unavailable, "unavailable"),
            (FailureClass::Invalid, "invalid"),
        ];
        for (class, word) in table {
            let error = to_store_error(class, "take lease s", "boom");
            assert!(error.to_string().contains(word), "{class:?}: {error}");
            assert!(error.to_string().contains("take lease s: boom"));
            assert_eq!(error.is_retryable(), class.is_retryable(), "{class:?}");
        }
    }
}
