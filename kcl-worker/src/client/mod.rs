//! [`StreamClient`](kcl_core::stream_client::StreamClient) implementations: any Kinesis HTTP
//! endpoint ([`HttpStreamClient`]) and, with the `embedded` feature, the in-process broker
//! (`EmbeddedStreamClient`). Signing credentials come from a provider ([`credentials`]); with
//! the `aws` feature from the standard AWS chain (`aws::aws_client_config`); the
//! endpoint by the AWS conventions ([`endpoint`]).

#[cfg(feature = "aws")]
pub mod aws;
pub mod credentials;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod endpoint;
pub mod eventstream;
pub mod http;
pub mod retry;

#[cfg(feature = "aws")]
pub use aws::{AwsOverrides, aws_client_config};
pub use credentials::{CredentialsSource, StaticCredentials};
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStreamClient;
pub use endpoint::{ResolvedEndpoint, resolve_endpoint};
pub use http::{HttpClientConfig, HttpStreamClient, JsonService};
pub use retry::RetryConfig;
