//! Where the HTTP client's signing credentials come from: any
//! [`ProvideCredentials`] (static keys, the environment, or with the `aws` feature the standard
//! AWS chain), asked once and asked again shortly before what it gave expires.
//!
//! The AWS SDK's own identity cache is wired into an SDK client's runtime components; this client
//! signs its own requests, so [`CredentialsSource`] keeps the provider's last answer and its
//! expiry instead. The providers (profile files, SSO, web identity, ECS/EC2 metadata) are the
//! SDK's.

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use std::time::{Duration, SystemTime};

/// How long before their expiry cached credentials are refreshed (the AWS SDKs refresh temporary
/// credentials minutes ahead, so a request never goes out with credentials about to lapse).
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// AWS credentials given as values (or read once from the environment).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl StaticCredentials {
    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Option<Self> {
        let access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
        let secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
        let session_token = std::env::var("AWS_SESSION_TOKEN").ok();
        Some(StaticCredentials {
            access_key_id,
            secret_access_key,
            session_token,
        })
    }

    /// These credentials as a provider (they never expire).
    pub fn into_provider(self) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Credentials::new(
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            None,
            "kcl-rs-static",
        ))
    }
}

/// A credentials provider with the last credentials it gave, refreshed
/// [`REFRESH_BEFORE_EXPIRY`] before they expire. Concurrent callers wait for one refresh.
#[derive(Debug)]
pub struct CredentialsSource {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CredentialsSource {
    /// A source asking `provider`.
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        CredentialsSource {
            provider,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Credentials valid for at least [`REFRESH_BEFORE_EXPIRY`] after `now` (or without expiry):
    /// the cached ones, else fresh ones from the provider. The error names the provider's
    /// failure (e.g. no credentials anywhere in the chain).
    pub async fn credentials_at(&self, now: SystemTime) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && is_fresh(credentials, now)
        {
            return Ok(credentials.clone());
        }
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|error| format!("loading AWS credentials: {}", error_chain(&error)))?;
        tracing::debug!(
            access_key_id = fresh.access_key_id(),
            expiry = ?fresh.expiry(),
            "loaded AWS credentials"
        );
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

/// Whether `credentials` may still be used at `now` without a refresh.
fn is_fresh(credentials: &Credentials, now: SystemTime) -> bool {
    match credentials.expiry() {
        None => true,
        Some(expiry) => now + REFRESH_BEFORE_EXPIRY < expiry,
    }
}

/// An error and its sources in one line (the SDK's provider errors keep the cause in `source`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A provider handing out credentials numbered by call, each valid for an hour from `epoch`.
    #[derive(Debug)]
    struct Numbered {
        calls: Arc<AtomicU32>,
        epoch: SystemTime,
    }

    impl ProvideCredentials for Numbered {
        fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
        where
            Self: 'a,
        {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let expiry = self.epoch + Duration::from_secs(3600) * call;
            ProvideFuture::ready(Ok(Credentials::new(
                format!("AKID{call}"),
                "secret",
                Some("token".to_owned()),
                Some(expiry),
                "numbered",
            )))
        }
    }

    #[tokio::test]
    async fn credentials_are_cached_and_refreshed_before_expiry() {
        let calls = Arc::new(AtomicU32::new(0));
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let source = CredentialsSource::new(SharedCredentialsProvider::new(Numbered {
            calls: calls.clone(),
            epoch,
        }));
        // (seconds after epoch, expected key id, expected provider calls so far)
        let steps = [
            (0, "AKID1", 1),
            (60, "AKID1", 1),
            // 3600 - 300 is the last moment the first credentials are no longer "fresh".
            (3299, "AKID1", 1),
            (3300, "AKID2", 2),
            (3600, "AKID2", 2),
            (6900, "AKID3", 3),
        ];
        for (seconds, key, expected_calls) in steps {
            let now = epoch + Duration::from_secs(seconds);
            let credentials = source.credentials_at(now).await.expect("credentials");
            assert_eq!(credentials.access_key_id(), key, "at +{seconds}s");
            assert_eq!(
                calls.load(Ordering::SeqCst),
                expected_calls,
                "at +{seconds}s"
            );
        }
    }

    #[tokio::test]
    async fn static_credentials_never_expire() {
        let keys = StaticCredentials {
            access_key_id: "AKIDSTATIC".to_owned(),
            secret_access_key: "s3cr3t-value".to_owned(),
            session_token: None,
        };
        assert!(
            !format!("{keys:?}").contains("s3cr3t"),
            "Debug redacts the secret"
        );
        let source = CredentialsSource::new(keys.into_provider());
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
        let credentials = source.credentials_at(far).await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "AKIDSTATIC");
    }
}
