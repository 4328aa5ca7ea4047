//! The errors of the Firehose HTTP API, each with its AWS error type.

use broker::server::ExtensionError;

/// Why a Firehose API request failed (the AWS error type is [`ApiError::aws_type`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter breaks a rule (`InvalidArgumentException`).
    #[error("{0}")]
    InvalidArgument(String),
    /// A member breaks a constraint of the service model (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// The delivery stream does not exist (`ResourceNotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// The delivery stream exists or is busy (`ResourceInUseException`).
    #[error("{0}")]
    InUse(String),
    /// A limit was reached (`LimitExceededException`).
    #[error("{0}")]
    LimitExceeded(String),
    /// `CurrentDeliveryStreamVersionId` is stale (`ConcurrentModificationException`).
    #[error("{0}")]
    ConcurrentModification(String),
    /// The request body is not the operation's JSON (`SerializationException`).
    #[error("{0}")]
    Serialization(String),
    /// The operation is not one this API serves (`UnknownOperationException`).
    #[error("{0}")]
    UnknownOperation(String),
    /// The service failed (`ServiceUnavailableException`, HTTP 500).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The AWS error type (`__type`).
    pub fn aws_type(&self) -> &'static str {
        match self {
            ApiError::InvalidArgument(_) => "InvalidArgumentException",
            ApiError::Validation(_) => "ValidationException",
            ApiError::NotFound(_) => "ResourceNotFoundException",
            ApiError::InUse(_) => "ResourceInUseException",
            ApiError::LimitExceeded(_) => "LimitExceededException",
            ApiError::ConcurrentModification(_) => "ConcurrentModificationException",
            ApiError::Serialization(_) => "SerializationException",
            ApiError::UnknownOperation(_) => "UnknownOperationException",
            ApiError::Unavailable(_) => "ServiceUnavailableException",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            ApiError::Unavailable(_) => 500,
            _ => 400,
        }
    }

    /// `ResourceNotFoundException` for the delivery stream `name` (AWS's wording).
    pub(crate) fn stream_not_found(name: &str, account: &str) -> Self {
        ApiError::NotFound(format!(
            "Firehose {name} under account {account} not found."
        ))
    }
}

impl From<crate::error::FirehoseError> for ApiError {
    fn from(error: crate::error::FirehoseError) -> Self {
        match error {
            crate::error::FirehoseError::InvalidConfig { .. }
            | crate::error::FirehoseError::InvalidObjectName { .. } => {
                ApiError::InvalidArgument(error.to_string())
            }
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl From<ApiError> for ExtensionError {
    fn from(error: ApiError) -> Self {
        ExtensionError {
            status: error.http_status(),
            error_type: error.aws_type().to_owned(),
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_aws_type_and_status() {
        let cases = [
            (
                ApiError::InvalidArgument("x".into()),
                "InvalidArgumentException",
                400,
            ),
            (ApiError::Validation("x".into()), "ValidationException", 400),
            (
                ApiError::NotFound("x".into()),
                "ResourceNotFoundException",
                400,
            ),
            (ApiError::InUse("x".into()), "ResourceInUseException", 400),
            (
                ApiError::LimitExceeded("x".into()),
                "LimitExceededException",
                400,
            ),
            (
                ApiError::ConcurrentModification("x".into()),
                "ConcurrentModificationException",
                400,
            ),
            (
                ApiError::Serialization("x".into()),
                "SerializationException",
                400,
            ),
            (
                ApiError::UnknownOperation("x".into()),
                "UnknownOperationException",
                400,
            ),
            (
                ApiError::Unavailable("x".into()),
                "ServiceUnavailableException",
                500,
            ),
        ];
        for (error, aws_type, status) in cases {
            let extension = ExtensionError::from(error);
            assert_eq!(extension.error_type, aws_type);
            assert_eq!(extension.status, status);
            assert_eq!(extension.message, "x");
        }
    }

    #[test]
    fn config_errors_are_invalid_arguments_naming_the_field() {
        let error = ApiError::from(crate::error::FirehoseError::invalid(
            "BufferingHints.SizeInMBs",
            "must be between 1 and 128, got 0",
        ));
        assert_eq!(error.aws_type(), "InvalidArgumentException");
        assert!(
            error.to_string().contains("BufferingHints.SizeInMBs"),
            "{error}"
        );
    }
}
