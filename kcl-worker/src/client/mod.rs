//! [`StreamClient`](kcl_core::stream_client::StreamClient) implementations: any Kinesis HTTP
//! endpoint ([`HttpStreamClient`]) and, with the `embedded` feature, the in-process broker
//! (`EmbeddedStreamClient`).

#[cfg(feature = "embedded")]
pub mod embedded;
pub mod eventstream;
pub mod http;
pub mod retry;

#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStreamClient;
pub use http::{HttpClientConfig, HttpStreamClient, StaticCredentials};
pub use retry::RetryConfig;
