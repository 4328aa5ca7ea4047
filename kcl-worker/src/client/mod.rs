//! [`StreamClient`](kcl_core::stream_client::StreamClient) implementations: the in-process
//! broker and any Kinesis HTTP endpoint.

pub mod embedded;
pub mod eventstream;
pub mod http;
pub mod retry;

pub use embedded::EmbeddedStreamClient;
pub use http::{HttpClientConfig, HttpStreamClient, StaticCredentials};
pub use retry::RetryConfig;
