//! Per-shard rate limiting that reacts to throttling: token buckets (records and bytes) start
//! at the shard limits, shrink on `ProvisionedThroughputExceeded` and recover gradually.
//!
//! Time is the producer clock's monotonic reading, passed in as `now`.

use std::collections::HashMap;
use std::time::Duration;

/// The lowest share of the shard limits a throttled shard is paced at.
const MIN_FACTOR: f64 = 0.05;
/// The share kept on each throttle (multiplicative decrease).
const DECREASE: f64 = 0.7;
/// Throttles closer together than this count once (one rejected request rejects many records).
const THROTTLE_DEBOUNCE: Duration = Duration::from_millis(100);

/// How fast a shard is allowed to be written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardLimits {
    /// Records per second per shard (Kinesis: 1,000).
    pub records_per_sec: f64,
    /// Bytes per second per shard (Kinesis: 1 MiB).
    pub bytes_per_sec: f64,
    /// Share of the limits regained per second without throttling (0.25 = back to full within
    /// four seconds of the last throttle from the lowest share).
    pub recovery_per_sec: f64,
}

impl Default for ShardLimits {
    fn default() -> Self {
        ShardLimits {
            records_per_sec: 1_000.0,
            bytes_per_sec: 1_048_576.0,
            recovery_per_sec: 0.25,
        }
    }
}

/// One shard's buckets and its current share of the limits.
#[derive(Debug, Clone)]
struct ShardState {
    records: f64,
    bytes: f64,
    factor: f64,
    updated_at: Duration,
    last_throttle: Option<Duration>,
}

/// Token buckets per shard, scaled by a factor that falls on throttling and rises back.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: ShardLimits,
    shards: HashMap<String, ShardState>,
}

impl RateLimiter {
    /// A limiter with `limits` per shard; every shard starts with full buckets.
    pub fn new(limits: ShardLimits) -> Self {
        RateLimiter {
            limits,
            shards: HashMap::new(),
        }
    }

    fn state(&mut self, shard: &str, now: Duration) -> &mut ShardState {
        let limits = self.limits;
        // Look up before inserting: the key is allocated only for a shard seen the first time.
        if !self.shards.contains_key(shard) {
            self.shards.insert(
                shard.to_owned(),
                ShardState {
                    records: limits.records_per_sec,
                    bytes: limits.bytes_per_sec,
                    factor: 1.0,
                    updated_at: now,
                    last_throttle: None,
                },
            );
        }
        let Some(state) = self.shards.get_mut(shard) else {
            unreachable!("inserted above");
        };
        let elapsed = now.saturating_sub(state.updated_at).as_secs_f64();
        if elapsed > 0.0 {
            state.factor = (state.factor + elapsed * limits.recovery_per_sec).min(1.0);
            let records_cap = limits.records_per_sec * state.factor;
            let bytes_cap = limits.bytes_per_sec * state.factor;
            state.records = (state.records + elapsed * records_cap).min(records_cap);
            state.bytes = (state.bytes + elapsed * bytes_cap).min(bytes_cap);
            state.updated_at = now;
        }
        state
    }

    /// Whether `records` records of `bytes` bytes may be sent to `shard` now. A request larger
    /// than a full bucket is allowed once the bucket is full (so it is never stuck).
    pub fn allows(&mut self, shard: &str, records: f64, bytes: f64, now: Duration) -> bool {
        let limits = self.limits;
        let state = self.state(shard, now);
        let records_cap = limits.records_per_sec * state.factor;
        let bytes_cap = limits.bytes_per_sec * state.factor;
        state.records + 1e-9 >= records.min(records_cap)
            && state.bytes + 1e-9 >= bytes.min(bytes_cap)
    }

    /// Takes `records` and `bytes` from `shard`'s buckets.
    pub fn take(&mut self, shard: &str, records: f64, bytes: f64, now: Duration) {
        let state = self.state(shard, now);
        state.records -= records;
        state.bytes -= bytes;
    }

    /// `shard` rejected records with `ProvisionedThroughputExceeded`: lower its share and
    /// empty its buckets.
    pub fn throttled(&mut self, shard: &str, now: Duration) {
        let state = self.state(shard, now);
        let recent = state
            .last_throttle
            .is_some_and(|at| now.saturating_sub(at) < THROTTLE_DEBOUNCE);
        if recent {
            return;
        }
        state.last_throttle = Some(now);
        state.factor = (state.factor * DECREASE).max(MIN_FACTOR);
        state.records = state.records.min(0.0);
        state.bytes = state.bytes.min(0.0);
    }

    /// The share of the limits `shard` is paced at now (1.0 = full limits).
    pub fn factor(&mut self, shard: &str, now: Duration) -> f64 {
        self.state(shard, now).factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARD: &str = "shardId-000000000000";

    fn millis(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn paces_at_the_shard_limits() {
        let mut limiter = RateLimiter::new(ShardLimits::default());
        let start = millis(1_000);
        assert!(limiter.allows(SHARD, 1_000.0, 100_000.0, start));
        limiter.take(SHARD, 1_000.0, 100_000.0, start);
        assert!(!limiter.allows(SHARD, 1.0, 100.0, start));
        // 100 ms later: 100 records' worth.
        assert!(limiter.allows(SHARD, 100.0, 10_000.0, start + millis(100)));
        assert!(!limiter.allows(SHARD, 150.0, 10_000.0, start + millis(100)));
        // Byte limit: 2 MiB at once is allowed only with a full bucket.
        let mut bytes = RateLimiter::new(ShardLimits::default());
        assert!(bytes.allows(SHARD, 1.0, 2_097_152.0, start));
        bytes.take(SHARD, 1.0, 2_097_152.0, start);
        assert!(!bytes.allows(SHARD, 1.0, 1.0, start + millis(900)));
        // Other shards are independent.
        assert!(limiter.allows("shardId-000000000001", 1_000.0, 1.0, start));
    }

    #[test]
    fn backs_off_on_throttling_and_recovers_gradually() {
        let mut limiter = RateLimiter::new(ShardLimits::default());
        let start = millis(0);
        limiter.throttled(SHARD, start);
        let after_one = limiter.factor(SHARD, start);
        assert!((after_one - 0.7).abs() < 1e-9, "{after_one}");
        // A second rejection of the same burst counts once.
        limiter.throttled(SHARD, start + millis(10));
        assert!(limiter.factor(SHARD, start + millis(10)) > 0.69);
        for step in 1..=20 {
            limiter.throttled(SHARD, start + millis(110 * step));
        }
        let floor_at = start + millis(110 * 20);
        let floor = limiter.factor(SHARD, floor_at);
        assert!(floor < 0.1, "{floor}");
        assert!(
            !limiter.allows(SHARD, 1.0, 1.0, floor_at),
            "buckets emptied"
        );
        // Recovery: a quarter of the limits per second, monotonically, up to the full limits.
        let mut previous = floor;
        for second in 1..=5 {
            let factor = limiter.factor(SHARD, floor_at + Duration::from_secs(second));
            assert!(factor >= previous, "{factor} < {previous}");
            previous = factor;
        }
        assert!((previous - 1.0).abs() < 1e-9, "{previous}");
    }
}
