//! Retry policy: which failures are retried and how long to wait (exponential backoff with
//! jitter, by `backon`, unbounded in count: the record's time to live ends the retries).

use backon::BackoffBuilder as _;
use std::time::Duration;

/// The `ErrorCode` Kinesis gives a record rejected by a shard's throughput limits.
pub const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// Whether a per-record `ErrorCode` is a throttle (as opposed to another transient failure).
pub fn is_throttle(error_code: &str) -> bool {
    error_code == THROTTLED || error_code == "ProvisionedThroughputExceeded"
}

/// A fresh backoff for one Kinesis record: `min` doubled per attempt up to `max`, jittered.
pub fn backoff(min: Duration, max: Duration) -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .without_max_times()
        .with_jitter()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_never_run_out() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let delays: Vec<Duration> = backoff(min, max).take(50).collect();
        assert_eq!(
            delays.len(),
            50,
            "retries are bounded by the TTL, not a count"
        );
        for delay in &delays {
            assert!(*delay >= min, "{delay:?}");
            // Jitter adds at most one more delay on top.
            assert!(*delay <= max * 2, "{delay:?}");
        }
        assert!(delays[10] >= Duration::from_secs(1), "{:?}", delays[10]);
    }

    #[test]
    fn throttles_are_recognised() {
        for (code, throttle) in [
            (THROTTLED, true),
            ("ProvisionedThroughputExceeded", true),
            ("InternalFailure", false),
            ("", false),
        ] {
            assert_eq!(is_throttle(code), throttle, "{code}");
        }
    }
}
