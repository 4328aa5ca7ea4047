//! Settings of the [`KplProducer`](super::KplProducer), with the KPL's defaults and validation
//! that names the setting and the rule it breaks.

use super::error::ProduceError;
use super::rate_limit::ShardLimits;
use kcl_core::clock::{SharedClock, SystemClock};
use std::time::Duration;

/// Kinesis's largest record: data plus partition key.
pub const MAX_KINESIS_RECORD_BYTES: usize = 1_048_576;
/// Kinesis's longest partition key, in Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// How a [`KplProducer`](super::KplProducer) aggregates, collects, paces and retries.
#[derive(Debug, Clone)]
pub struct KplProducerConfig {
    /// Pack user records bound for the same shard into KPL aggregates (KPL: on).
    pub aggregate: bool,
    /// Largest encoded aggregate in bytes (KPL: 51,200).
    pub aggregation_max_bytes: usize,
    /// Most user records in one aggregate.
    pub aggregation_max_records: usize,
    /// Most Kinesis records in one `PutRecords` request (Kinesis and KPL: 500).
    pub collection_max_records: usize,
    /// Most bytes in one `PutRecords` request (Kinesis: 5 MiB).
    pub collection_max_bytes: usize,
    /// How long a user record may wait to be batched before it is sent (KPL: 100 ms).
    pub record_max_buffered_time: Duration,
    /// How long a record is retried before its future fails with the last error (KPL: 30 s).
    pub record_ttl: Duration,
    /// Most user records in flight; `send` waits, `try_send` fails beyond it.
    pub max_buffered_records: usize,
    /// Most user record bytes (data + partition key) in flight; `send` waits beyond it.
    pub max_buffered_bytes: usize,
    /// Keep each partition key's records in order through retries (fewer records per
    /// request when keys repeat).
    pub ordered: bool,
    /// Pace each shard at its limits, backing off when throttled.
    pub rate_limit: bool,
    /// The per-shard limits the pacing starts from.
    pub shard_limits: ShardLimits,
    /// Most `PutRecords` requests in flight at once.
    pub max_concurrent_requests: usize,
    /// First retry delay (exponential with jitter from there).
    pub min_retry_delay: Duration,
    /// Longest retry delay.
    pub max_retry_delay: Duration,
    /// Shortest time between two `ListShards` reloads of the shard map.
    pub shard_map_min_refresh: Duration,
    /// Where time comes from (buffered time, TTL, rate limits).
    pub clock: SharedClock,
}

impl Default for KplProducerConfig {
    fn default() -> Self {
        KplProducerConfig {
            aggregate: true,
            aggregation_max_bytes: 51_200,
            aggregation_max_records: 10_000,
            collection_max_records: 500,
            collection_max_bytes: 5 * 1_048_576,
            record_max_buffered_time: Duration::from_millis(100),
            record_ttl: Duration::from_secs(30),
            max_buffered_records: 100_000,
            max_buffered_bytes: 64 * 1_048_576,
            ordered: false,
            rate_limit: true,
            shard_limits: ShardLimits::default(),
            max_concurrent_requests: 16,
            min_retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(2),
            shard_map_min_refresh: Duration::from_secs(1),
            clock: SystemClock::shared(),
        }
    }
}

fn invalid(field: &'static str, rule: impl Into<String>) -> ProduceError {
    ProduceError::InvalidConfig {
        field,
        rule: rule.into(),
    }
}

impl KplProducerConfig {
    /// Checks every setting; the error names the first one that breaks a rule.
    pub fn validate(&self) -> Result<(), ProduceError> {
        let within = |field: &'static str, value: usize, low: usize, high: usize| {
            if value < low || value > high {
                return Err(invalid(
                    field,
                    format!("must be between {low} and {high} (got {value})"),
                ));
            }
            Ok(())
        };
        within(
            "aggregation_max_bytes",
            self.aggregation_max_bytes,
            64,
            MAX_KINESIS_RECORD_BYTES,
        )?;
        within(
            "aggregation_max_records",
            self.aggregation_max_records,
            1,
            u32::MAX as usize,
        )?;
        within(
            "collection_max_records",
            self.collection_max_records,
            1,
            500,
        )?;
        within(
            "collection_max_bytes",
            self.collection_max_bytes,
            MAX_KINESIS_RECORD_BYTES,
            5 * MAX_KINESIS_RECORD_BYTES,
        )?;
        within(
            "max_buffered_records",
            self.max_buffered_records,
            1,
            tokio::sync::Semaphore::MAX_PERMITS,
        )?;
        within(
            "max_buffered_bytes",
            self.max_buffered_bytes,
            MAX_KINESIS_RECORD_BYTES,
            u32::MAX as usize,
        )?;
        within(
            "max_concurrent_requests",
            self.max_concurrent_requests,
            1,
            1_000,
        )?;
        if self.record_ttl.is_zero() {
            return Err(invalid("record_ttl", "must be more than zero"));
        }
        if self.min_retry_delay.is_zero() || self.min_retry_delay > self.max_retry_delay {
            return Err(invalid(
                "min_retry_delay",
                "must be more than zero and at most max_retry_delay",
            ));
        }
        let limits = self.shard_limits;
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if !positive(limits.records_per_sec) || !positive(limits.bytes_per_sec) {
            return Err(invalid(
                "shard_limits",
                "records_per_sec and bytes_per_sec must be positive",
            ));
        }
        if !positive(limits.recovery_per_sec) {
            return Err(invalid("shard_limits.recovery_per_sec", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        KplProducerConfig::default().validate().expect("defaults");
        let cases: Vec<(&str, KplProducerConfig)> = vec![
            (
                "aggregation_max_bytes",
                KplProducerConfig {
                    aggregation_max_bytes: 2_000_000,
                    ..KplProducerConfig::default()
                },
            ),
            (
                "collection_max_records",
                KplProducerConfig {
                    collection_max_records: 501,
                    ..KplProducerConfig::default()
                },
            ),
            (
                "max_buffered_bytes",
                KplProducerConfig {
                    max_buffered_bytes: 10,
                    ..KplProducerConfig::default()
                },
            ),
            (
                "record_ttl",
                KplProducerConfig {
                    record_ttl: Duration::ZERO,
                    ..KplProducerConfig::default()
                },
            ),
            (
                "min_retry_delay",
                KplProducerConfig {
                    min_retry_delay: Duration::from_secs(10),
                    ..KplProducerConfig::default()
                },
            ),
            (
                "shard_limits",
                KplProducerConfig {
                    shard_limits: ShardLimits {
                        records_per_sec: 0.0,
                        ..ShardLimits::default()
                    },
                    ..KplProducerConfig::default()
                },
            ),
        ];
        for (field, config) in cases {
            let error = config.validate().expect_err(field);
            assert!(
                matches!(&error, ProduceError::InvalidConfig { field: named, .. } if *named == field),
                "{field}: {error}"
            );
            assert!(error.to_string().contains(field), "{error}");
        }
    }
}
