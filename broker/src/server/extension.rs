//! The extension hook: other AWS JSON services served on the broker's HTTP port.
//!
//! A crate that the broker cannot depend on (the Firehose API depends on the broker) registers an
//! [`ExtensionService`] in [`ServerOptions::extensions`](super::ServerOptions::extensions) for
//! its `X-Amz-Target` prefix (e.g. `Firehose_20150804.`). Requests with that prefix pass the
//! same body-size limit and SigV4 check as Kinesis requests, then go to the service with the
//! operation name, the raw body, the caller's region (from the credential scope) and the
//! request's format; the service answers a JSON value or an [`ExtensionError`] that the server
//! shapes as AWS does (`x-amzn-ErrorType`, `{"__type","message"}`).

use axum::body::Bytes;
use std::fmt::Debug;
use std::sync::Arc;

/// The wire format of a request to an extension (by its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionFormat {
    /// `application/x-amz-json-1.0` / `-1.1` (or no content type).
    Json,
    /// `application/x-amz-cbor-1.1`.
    Cbor,
}

/// One request routed to an extension.
#[derive(Debug, Clone)]
pub struct ExtensionRequest {
    /// The operation: the `X-Amz-Target` after the service's prefix (e.g. `PutRecord`).
    pub operation: String,
    /// The request body as received.
    pub body: Bytes,
    /// The region of the SigV4 credential scope; `None` for an unsigned request.
    pub region: Option<String>,
    /// The request's format.
    pub format: ExtensionFormat,
}

/// An error answered the AWS way: HTTP status, error type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionError {
    /// The HTTP status (400 for client errors, 500 for service failures).
    pub status: u16,
    /// The AWS error type (`__type`, `x-amzn-ErrorType`), e.g. `ResourceNotFoundException`.
    pub error_type: String,
    /// The human-readable message.
    pub message: String,
}

impl ExtensionError {
    /// A 400 client error of `error_type`.
    pub fn client(error_type: &str, message: impl Into<String>) -> Self {
        ExtensionError {
            status: 400,
            error_type: error_type.to_owned(),
            message: message.into(),
        }
    }

    /// A 500 service failure of `error_type`.
    pub fn service(error_type: &str, message: impl Into<String>) -> Self {
        ExtensionError {
            status: 500,
            error_type: error_type.to_owned(),
            message: message.into(),
        }
    }

    /// The JSON error body `{"__type": ..., "message": ...}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.error_type, "message": self.message })
    }
}

impl std::fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for ExtensionError {}

/// Another AWS JSON service answered on the broker's port.
#[async_trait::async_trait]
pub trait ExtensionService: Send + Sync + Debug {
    /// The `X-Amz-Target` prefix it serves, with its trailing dot (`Firehose_20150804.`).
    fn target_prefix(&self) -> &str;

    /// Answers one request (after the server's SigV4 check) with a JSON body or an error.
    async fn call(&self, request: ExtensionRequest) -> Result<serde_json::Value, ExtensionError>;
}

/// The registered extensions (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    services: Vec<Arc<dyn ExtensionService>>,
}

impl Extensions {
    /// Adds `service` (a later registration of the same prefix is never consulted).
    pub fn register(&mut self, service: Arc<dyn ExtensionService>) {
        self.services.push(service);
    }

    /// Whether no extension is registered.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The service whose prefix starts `target`, with the operation after the prefix.
    pub fn route<'t>(&self, target: &'t str) -> Option<(Arc<dyn ExtensionService>, &'t str)> {
        self.services.iter().find_map(|service| {
            target
                .strip_prefix(service.target_prefix())
                .map(|operation| (Arc::clone(service), operation))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Echo;

    #[async_trait::async_trait]
    impl ExtensionService for Echo {
        fn target_prefix(&self) -> &str {
            "Echo_20200101."
        }

        async fn call(
            &self,
            request: ExtensionRequest,
        ) -> Result<serde_json::Value, ExtensionError> {
            Ok(serde_json::json!({ "operation": request.operation }))
        }
    }

    #[test]
    fn routes_by_prefix_only() {
        let mut extensions = Extensions::default();
        assert!(extensions.is_empty());
        extensions.register(Arc::new(Echo));
        let cases = [
            ("Echo_20200101.Ping", Some("Ping")),
            ("Echo_20200101.", Some("")),
            ("Kinesis_20131202.PutRecord", None),
            ("Echo_20200101Ping", None),
            ("", None),
        ];
        for (target, expected) in cases {
            let routed = extensions.route(target).map(|(_, operation)| operation);
            assert_eq!(routed, expected, "{target}");
        }
    }

    #[test]
    fn errors_have_the_aws_body() {
        let error = ExtensionError::client("ResourceNotFoundException", "not found");
        assert_eq!(error.status, 400);
        assert_eq!(
            error.body(),
            serde_json::json!({"__type": "ResourceNotFoundException", "message": "not found"})
        );
        assert_eq!(
            ExtensionError::service("ServiceUnavailableException", "x").status,
            500
        );
    }
}
