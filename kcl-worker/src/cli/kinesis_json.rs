//! Any Kinesis JSON-protocol operation by name, for the commands that need operations beyond
//! [`StreamClient`](kcl_core::stream_client::StreamClient) (`PutRecords`, `CreateStream`,
//! `SplitShard`, ...): SigV4-signed with `aws-sigv4`, retried with `backon` on throttling,
//! server faults and transport errors.

use crate::client::{RetryConfig, StaticCredentials};
use backon::Retryable;
use kcl_core::kinesis::{KinesisError, KinesisErrorKind};
use serde_json::Value;
use std::time::{Duration, SystemTime};

const TARGET_PREFIX: &str = "Kinesis_20131202.";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Calls Kinesis JSON-protocol operations on one endpoint.
#[derive(Debug, Clone)]
pub struct KinesisJsonApi {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    region: String,
    credentials: aws_credential_types::Credentials,
    retry: RetryConfig,
}

/// One failed attempt: the service's error (with its HTTP status) or a transport failure.
#[derive(Debug)]
struct Attempt {
    status: Option<u16>,
    error: KinesisError,
}

impl Attempt {
    fn is_retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => status >= 500 || self.error.is_retryable(),
        }
    }
}

impl KinesisJsonApi {
    /// A caller for `endpoint` signing for `region` with `credentials`.
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: StaticCredentials,
    ) -> Result<Self, KinesisError> {
        let invalid = |reason: String| KinesisError::new(KinesisErrorKind::InvalidArgument, reason);
        let endpoint = reqwest::Url::parse(endpoint)
            .map_err(|error| invalid(format!("endpoint {endpoint:?} is not a URL: {error}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| invalid(format!("cannot build an HTTP client: {error}")))?;
        Ok(KinesisJsonApi {
            http,
            endpoint,
            region: region.to_owned(),
            credentials: aws_credential_types::Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                credentials.session_token,
                None,
                "kcl-cli",
            ),
            retry: RetryConfig::default(),
        })
    }

    /// Calls `operation` (e.g. `"PutRecords"`) with `body` and returns the decoded answer.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, KinesisError> {
        let body = serde_json::to_vec(body).map_err(|error| {
            KinesisError::new(KinesisErrorKind::InvalidArgument, error.to_string())
        })?;
        let attempt = || self.attempt(operation, &body);
        attempt
            .retry(self.retry.backoff())
            .when(Attempt::is_retryable)
            .notify(|attempt, delay| {
                tracing::debug!(operation, error = %attempt.error, ?delay, "retrying");
            })
            .await
            .map_err(|attempt| attempt.error)
    }

    async fn attempt(&self, operation: &str, body: &[u8]) -> Result<Value, Attempt> {
        let transport = |message: String| Attempt {
            status: None,
            error: KinesisError::new(KinesisErrorKind::Other, message),
        };
        let target = format!("{TARGET_PREFIX}{operation}");
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header("content-type", JSON_CONTENT_TYPE)
            .header("x-amz-target", &target)
            .body(body.to_vec());
        for (name, value) in self.sign(&target, body).map_err(transport)? {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport(format!("{operation}: {error}")))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| transport(format!("reading the {operation} answer: {error}")))?;
        let answer: Value = if bytes.is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let error_type = answer.get("__type").and_then(Value::as_str).unwrap_or("");
        let message = answer
            .get("message")
            .or_else(|| answer.get("Message"))
            .and_then(Value::as_str)
            .map_or_else(
                || format!("{operation} failed with HTTP {status} {error_type}"),
                str::to_owned,
            );
        Err(Attempt {
            status: Some(status),
            error: KinesisError::new(KinesisErrorKind::from_aws_type(error_type), message),
        })
    }

    fn sign(&self, target: &str, body: &[u8]) -> Result<Vec<(String, String)>, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("kinesis")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| format!("signing: {error}"))?
            .into();
        let headers = [
            ("content-type", JSON_CONTENT_TYPE),
            ("x-amz-target", target),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|error| format!("signing: {error}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| format!("signing: {error}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}
