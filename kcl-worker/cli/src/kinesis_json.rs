//! Any Kinesis JSON-protocol operation by name, for the commands that need operations beyond
//! [`StreamClient`](kcl_core::stream_client::StreamClient) (`PutRecords`, `CreateStream`,
//! `SplitShard`, ...).
//!
//! A thin face over [`HttpStreamClient::call_json`], so the CLI signs (SigV4) and retries
//! (`backon`) exactly as the worker's stream client does.

use kcl_core::kinesis::{KinesisError, KinesisErrorKind};
use kcl_worker::client::{HttpClientConfig, HttpStreamClient};
use serde_json::Value;

/// Calls Kinesis JSON-protocol operations on one endpoint.
#[derive(Debug, Clone)]
pub struct KinesisJsonApi {
    client: HttpStreamClient,
}

impl KinesisJsonApi {
    /// A caller configured by `config` (endpoint, region, credentials).
    pub fn new(config: HttpClientConfig) -> Result<Self, KinesisError> {
        let client = HttpStreamClient::new(config).map_err(|error| {
            KinesisError::new(KinesisErrorKind::InvalidArgument, error.to_string())
        })?;
        Ok(KinesisJsonApi { client })
    }

    /// The underlying client (e.g. for a [`kcl_worker::producer::HttpTarget`]).
    pub fn client(&self) -> &HttpStreamClient {
        &self.client
    }

    /// Calls `operation` (e.g. `"PutRecords"`) with `body` and returns the decoded answer.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, KinesisError> {
        self.client.call_json(operation, body.clone()).await
    }
}
