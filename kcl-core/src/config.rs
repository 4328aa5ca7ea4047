//! Lease timing and assignment settings, with the Java KCL's defaults.
//!
//! Build one with [`LeaseConfig::builder`]; [`LeaseConfigBuilder::build`] rejects nonsense
//! (a zero failover time, an epsilon that leaves no renew interval, a zero steal limit, ...)
//! with a [`ConfigError`] naming the field and the rule.
//!
//! ```
//! use kcl_core::config::LeaseConfig;
//! use std::time::Duration;
//!
//! let defaults = LeaseConfig::default();
//! assert_eq!(defaults.failover_time(), Duration::from_secs(10));
//! assert_eq!(defaults.renew_interval(), Duration::from_millis(3_308));
//! assert_eq!(defaults.take_interval(), Duration::from_millis(20_050));
//!
//! let fast = LeaseConfig::builder().failover_time(Duration::from_secs(2)).build().unwrap();
//! assert_eq!(fast.renew_interval(), Duration::from_millis(641));
//! assert!(LeaseConfig::builder().failover_time(Duration::ZERO).build().is_err());
//! ```

use std::time::Duration;

/// A setting that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lease config: {field} {rule} (got {value})")]
pub struct ConfigError {
    /// The offending setting.
    pub field: &'static str,
    /// The rule it breaks, e.g. "must be greater than zero".
    pub rule: &'static str,
    /// The value given, as text.
    pub value: String,
}

/// How leases are timed and assigned. `Default` is the Java KCL's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    failover_time: Duration,
    epsilon: Duration,
    shard_sync_interval: Duration,
    max_leases_for_worker: usize,
    max_leases_to_steal_at_one_time: usize,
    very_old_lease_multiplier: u32,
    parallel_stealing: bool,
    steal_whole_deficit: bool,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            failover_time: Duration::from_millis(10_000),
            epsilon: Duration::from_millis(25),
            shard_sync_interval: Duration::from_millis(60_000),
            max_leases_for_worker: usize::MAX,
            max_leases_to_steal_at_one_time: 1,
            very_old_lease_multiplier: 3,
            parallel_stealing: true,
            steal_whole_deficit: true,
        }
    }
}

impl LeaseConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> LeaseConfigBuilder {
        LeaseConfigBuilder {
            config: LeaseConfig::default(),
        }
    }

    /// How long a lease lives without its counter changing before others may take it
    /// (`failoverTimeMillis`, default 10 s). A holder that has not renewed for this long
    /// considers the lease lost.
    pub fn failover_time(&self) -> Duration {
        self.failover_time
    }

    /// Safety margin subtracted from / added to intervals (default 25 ms).
    pub fn epsilon(&self) -> Duration {
        self.epsilon
    }

    /// How often held leases are renewed: failover / 3 − epsilon, in whole milliseconds as the
    /// Java KCL computes it (3308 ms by default).
    pub fn renew_interval(&self) -> Duration {
        third_in_millis(self.failover_time).saturating_sub(self.epsilon)
    }

    /// How often the lease table is scanned to take leases: 2 × (failover + epsilon)
    /// (20 050 ms by default).
    pub fn take_interval(&self) -> Duration {
        (self.failover_time + self.epsilon) * 2
    }

    /// How often shards are listed to create missing leases (default 60 s).
    pub fn shard_sync_interval(&self) -> Duration {
        self.shard_sync_interval
    }

    /// The most leases one worker holds (default unlimited, `usize::MAX`).
    pub fn max_leases_for_worker(&self) -> usize {
        self.max_leases_for_worker
    }

    /// The most leases stolen from one worker in one taker run (default 1).
    pub fn max_leases_to_steal_at_one_time(&self) -> usize {
        self.max_leases_to_steal_at_one_time
    }

    /// A lease unchanged for this many failover times is "very old" and taken first (default 3).
    pub fn very_old_lease_multiplier(&self) -> u32 {
        self.very_old_lease_multiplier
    }

    /// failover time × very-old multiplier (saturating).
    pub fn very_old_lease_age(&self) -> Duration {
        self.failover_time
            .checked_mul(self.very_old_lease_multiplier)
            .unwrap_or(Duration::MAX)
    }

    /// Whether one taker run may steal from several over-loaded workers (default on; the Java
    /// KCL steals from the single most loaded worker only).
    pub fn parallel_stealing(&self) -> bool {
        self.parallel_stealing
    }

    /// With [`parallel_stealing`](Self::parallel_stealing): whether one taker run steals this
    /// worker's whole deficit under the fair-share plan (default on, beyond the Java KCL), each
    /// victim losing at most its surplus over its fair share. When off, the fair-share plan
    /// takes at most [`max_leases_to_steal_at_one_time`](Self::max_leases_to_steal_at_one_time)
    /// leases from each victim per run, across all stealers. Ignored by the Java rule.
    pub fn steal_whole_deficit(&self) -> bool {
        self.steal_whole_deficit
    }
}

/// A third of `duration`, truncated to whole milliseconds (Java's `failoverTimeMillis / 3`).
fn third_in_millis(duration: Duration) -> Duration {
    let millis = duration.as_millis() / 3;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Builds a validated [`LeaseConfig`].
#[derive(Debug, Clone)]
pub struct LeaseConfigBuilder {
    config: LeaseConfig,
}

impl LeaseConfigBuilder {
    /// Sets the failover time (must be > 0 and leave a positive renew interval).
    pub fn failover_time(mut self, value: Duration) -> Self {
        self.config.failover_time = value;
        self
    }

    /// Sets epsilon (must be smaller than failover / 3).
    pub fn epsilon(mut self, value: Duration) -> Self {
        self.config.epsilon = value;
        self
    }

    /// Sets the shard sync interval (must be > 0).
    pub fn shard_sync_interval(mut self, value: Duration) -> Self {
        self.config.shard_sync_interval = value;
        self
    }

    /// Sets the most leases one worker holds (must be ≥ 1).
    pub fn max_leases_for_worker(mut self, value: usize) -> Self {
        self.config.max_leases_for_worker = value;
        self
    }

    /// Sets the most leases stolen from one worker per run (must be ≥ 1).
    pub fn max_leases_to_steal_at_one_time(mut self, value: usize) -> Self {
        self.config.max_leases_to_steal_at_one_time = value;
        self
    }

    /// Sets the very-old multiplier (must be ≥ 1).
    pub fn very_old_lease_multiplier(mut self, value: u32) -> Self {
        self.config.very_old_lease_multiplier = value;
        self
    }

    /// Turns stealing from several workers per run on or off.
    pub fn parallel_stealing(mut self, value: bool) -> Self {
        self.config.parallel_stealing = value;
        self
    }

    /// Turns stealing the whole deficit in one run on or off (see
    /// [`LeaseConfig::steal_whole_deficit`]).
    pub fn steal_whole_deficit(mut self, value: bool) -> Self {
        self.config.steal_whole_deficit = value;
        self
    }

    /// Validates and returns the config.
    pub fn build(self) -> Result<LeaseConfig, ConfigError> {
        let config = self.config;
        let millis = |value: Duration| format!("{} ms", value.as_millis());
        if config.failover_time.is_zero() {
            return Err(ConfigError {
                field: "failover_time",
                rule: "must be greater than zero",
                value: millis(config.failover_time),
            });
        }
        if config.epsilon >= third_in_millis(config.failover_time) {
            return Err(ConfigError {
                field: "epsilon",
                rule: "must be smaller than failover_time / 3 so renewals happen",
                value: millis(config.epsilon),
            });
        }
        if config.shard_sync_interval.is_zero() {
            return Err(ConfigError {
                field: "shard_sync_interval",
                rule: "must be greater than zero",
                value: millis(config.shard_sync_interval),
            });
        }
        if config.max_leases_for_worker == 0 {
            return Err(ConfigError {
                field: "max_leases_for_worker",
                rule: "must be at least 1",
                value: "0".to_owned(),
            });
        }
        if config.max_leases_to_steal_at_one_time == 0 {
            return Err(ConfigError {
                field: "max_leases_to_steal_at_one_time",
                rule: "must be at least 1",
                value: "0".to_owned(),
            });
        }
        if config.very_old_lease_multiplier == 0 {
            return Err(ConfigError {
                field: "very_old_lease_multiplier",
                rule: "must be at least 1",
                value: "0".to_owned(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_java_kcl_defaults() {
        let config = LeaseConfig::default();
        assert_eq!(config.failover_time(), Duration::from_millis(10_000));
        assert_eq!(config.epsilon(), Duration::from_millis(25));
        assert_eq!(config.renew_interval(), Duration::from_millis(3_308));
        assert_eq!(config.take_interval(), Duration::from_millis(20_050));
        assert_eq!(config.shard_sync_interval(), Duration::from_secs(60));
        assert_eq!(config.max_leases_for_worker(), usize::MAX);
        assert_eq!(config.max_leases_to_steal_at_one_time(), 1);
        assert_eq!(config.very_old_lease_age(), Duration::from_secs(30));
        assert!(config.parallel_stealing());
        assert_eq!(LeaseConfig::builder().build(), Ok(config));
    }

    #[test]
    fn nonsense_is_rejected_naming_the_field() {
        let cases: Vec<(LeaseConfigBuilder, &str)> = vec![
            (
                LeaseConfig::builder().failover_time(Duration::ZERO),
                "failover_time",
            ),
            (
                LeaseConfig::builder().failover_time(Duration::from_millis(60)),
                "epsilon",
            ),
            (
                LeaseConfig::builder().shard_sync_interval(Duration::ZERO),
                "shard_sync_interval",
            ),
            (
                LeaseConfig::builder().max_leases_for_worker(0),
                "max_leases_for_worker",
            ),
            (
                LeaseConfig::builder().max_leases_to_steal_at_one_time(0),
                "max_leases_to_steal_at_one_time",
            ),
            (
                LeaseConfig::builder().very_old_lease_multiplier(0),
                "very_old_lease_multiplier",
            ),
        ];
        for (builder, field) in cases {
            let error = builder.build().expect_err(field);
            assert_eq!(error.field, field);
            assert!(error.to_string().contains(field), "{error}");
        }
    }
}
