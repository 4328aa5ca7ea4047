//! Retry policy for stream-client calls: exponential backoff with jitter (`backon`).

use backon::ExponentialBuilder;
use std::time::Duration;

/// How a client retries transient failures (throttling, 5xx, timeouts, connection errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// Upper bound of any single delay.
    pub max_delay: Duration,
    /// Retries after the first attempt (0 = no retries).
    pub max_retries: usize,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            max_retries: 8,
        }
    }
}

impl RetryConfig {
    /// The `backon` builder for this policy (exponential, factor 2, with jitter).
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}
