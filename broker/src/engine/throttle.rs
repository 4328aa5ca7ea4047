//! Token buckets driven by the injected clock.

use std::time::Duration;

/// A token bucket: `rate` tokens per second, holding at most `capacity`.
///
/// [`TokenBucket::take_allowing_debt`] lets one large request drive the level negative, so the
/// following requests wait until the debt is repaid (how `GetRecords` behaves after a 10 MiB
/// answer).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    level: f64,
    refilled_at: Duration,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_sec: f64, capacity: f64, now: Duration) -> Self {
        TokenBucket {
            rate_per_sec,
            capacity,
            level: capacity,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let Some(elapsed) = now.checked_sub(self.refilled_at) else {
            return;
        };
        self.level = (self.level + elapsed.as_secs_f64() * self.rate_per_sec).min(self.capacity);
        self.refilled_at = now;
    }

    /// Takes `amount` if the bucket holds that much; otherwise takes nothing.
    pub(crate) fn try_take(&mut self, amount: f64, now: Duration) -> bool {
        self.refill(now);
        if self.level + f64::EPSILON < amount {
            return false;
        }
        self.level -= amount;
        true
    }

    /// The tokens available now.
    pub(crate) fn available(&mut self, now: Duration) -> f64 {
        self.refill(now);
        self.level
    }

    /// Takes `amount` even if that leaves the bucket in debt.
    pub(crate) fn take_allowing_debt(&mut self, amount: f64, now: Duration) {
        self.refill(now);
        self.level -= amount;
    }

    /// How long until `amount` tokens are available (zero if they are now).
    pub(crate) fn time_until(&mut self, amount: f64, now: Duration) -> Duration {
        self.refill(now);
        let missing = amount.min(self.capacity) - self.level;
        if missing <= 0.0 || self.rate_per_sec <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(missing / self.rate_per_sec)
            .unwrap_or(Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_capacity() {
        let start = Duration::from_secs(10);
        let mut bucket = TokenBucket::new(5.0, 5.0, start);
        for _ in 0..5 {
            assert!(bucket.try_take(1.0, start));
        }
        assert!(!bucket.try_take(1.0, start));
        assert!(bucket.try_take(1.0, start + Duration::from_millis(200)));
        assert!(!bucket.try_take(1.0, start + Duration::from_millis(200)));
        let much_later = start + Duration::from_secs(100);
        assert!((bucket.available(much_later) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn debt_delays_the_next_take() {
        let start = Duration::ZERO;
        let mut bucket = TokenBucket::new(2.0, 2.0, start);
        bucket.take_allowing_debt(10.0, start);
        assert!(bucket.available(start) < 0.0);
        assert_eq!(bucket.time_until(1.0, start), Duration::from_secs_f64(4.5));
        assert!(!bucket.try_take(1.0, start + Duration::from_secs(4)));
        assert!(bucket.try_take(1.0, start + Duration::from_secs(5)));
    }
}
