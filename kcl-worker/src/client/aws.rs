//! (feature `aws`) An [`HttpClientConfig`] from the standard AWS configuration chain
//! (`aws-config`): credentials from the environment (with a session token), the shared profile
//! files (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), SSO, web identity
//! (IRSA), ECS and EC2 instance metadata; the region from `AWS_REGION` or the profile; the
//! endpoint by the rules of [`endpoint`](super::endpoint).

use super::credentials::StaticCredentials;
use super::endpoint::{ResolvedEndpoint, resolve_endpoint};
use super::http::HttpClientConfig;
use crate::error::WorkerError;
use aws_config::{BehaviorVersion, Region};

/// What to take from the caller instead of the AWS chain.
#[derive(Debug, Clone, Default)]
pub struct AwsOverrides {
    /// An explicit endpoint (first in the precedence of [`resolve_endpoint`]).
    pub endpoint: Option<String>,
    /// An explicit region (else `AWS_REGION`, `AWS_DEFAULT_REGION`... and the profile's).
    pub region: Option<String>,
    /// A profile name (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// The region when neither [`region`](Self::region) nor the chain gives one.
    pub default_region: Option<String>,
    /// Credentials to sign with instead of the chain's (e.g. placeholder keys for a local
    /// broker).
    pub credentials: Option<StaticCredentials>,
}

/// A client configuration whose credentials and region come from the AWS chain (the region is
/// resolved now, the credentials on the first request and again before they expire). Fails
/// with an error naming `region` when neither `overrides` nor the chain gives one.
pub async fn aws_client_config(overrides: AwsOverrides) -> Result<HttpClientConfig, WorkerError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &overrides.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &overrides.profile {
        loader = loader.profile_name(profile);
    }
    let sdk_config = loader.load().await;
    let region = sdk_config
        .region()
        .map(|region| region.as_ref().to_owned())
        .or(overrides.default_region)
        .ok_or_else(|| {
            WorkerError::invalid_config(
                "region",
                "is not set: give one explicitly or set AWS_REGION (or a profile's region)",
            )
        })?;
    let provider = match overrides.credentials {
        Some(credentials) => credentials.into_provider(),
        None => sdk_config.credentials_provider().ok_or_else(|| {
            WorkerError::invalid_config("credentials", "the AWS configuration has no provider")
        })?,
    };
    let ResolvedEndpoint { url, source } = resolve_endpoint(overrides.endpoint.as_deref(), &region);
    tracing::debug!(endpoint = %url, ?source, %region, "kinesis endpoint");
    Ok(HttpClientConfig::new(url)
        .with_region(region)
        .with_credentials_provider(provider))
}
