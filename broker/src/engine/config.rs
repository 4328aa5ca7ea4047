//! The broker's configuration.

use kcl_core::clock::{SharedClock, SystemClock};
use std::time::Duration;

/// Per-shard throughput limits as Kinesis applies them.
///
/// On by default with Kinesis's numbers; `scale` multiplies every rate (2.0 = twice as
/// generous), and `enabled = false` switches every throughput check off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThroughputLimits {
    /// Whether throughput limits are checked at all.
    pub enabled: bool,
    /// Multiplier applied to every rate below.
    pub scale: f64,
    /// Writes per shard: records per second (Kinesis: 1,000).
    pub write_records_per_sec: f64,
    /// Writes per shard: bytes per second, data plus partition key (Kinesis: 1 MiB).
    pub write_bytes_per_sec: f64,
    /// Shared reads per shard: `GetRecords` calls per second (Kinesis: 5).
    pub read_calls_per_sec: f64,
    /// Shared reads per shard: bytes per second (Kinesis: 2 MiB).
    pub read_bytes_per_sec: f64,
    /// Enhanced fan-out: bytes per second per consumer per shard (Kinesis: 2 MiB).
    pub fan_out_bytes_per_sec: f64,
}

impl ThroughputLimits {
    /// Kinesis's limits, switched on.
    pub const KINESIS: ThroughputLimits = ThroughputLimits {
        enabled: true,
        scale: 1.0,
        write_records_per_sec: 1_000.0,
        write_bytes_per_sec: 1_048_576.0,
        read_calls_per_sec: 5.0,
        read_bytes_per_sec: 2_097_152.0,
        fan_out_bytes_per_sec: 2_097_152.0,
    };

    /// No throughput limits at all (benchmarks, bulk loads).
    pub fn off() -> Self {
        ThroughputLimits {
            enabled: false,
            ..ThroughputLimits::KINESIS
        }
    }

    /// Kinesis's limits multiplied by `scale`.
    pub fn scaled(scale: f64) -> Self {
        ThroughputLimits {
            scale,
            ..ThroughputLimits::KINESIS
        }
    }
}

impl Default for ThroughputLimits {
    fn default() -> Self {
        ThroughputLimits::KINESIS
    }
}

/// How a [`Broker`](super::Broker) behaves. `BrokerConfig::default()` mimics Kinesis in
/// `us-east-1` for account `000000000000`, with streams `ACTIVE` at once.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The account id shown in ARNs and messages.
    pub account_id: String,
    /// The region shown in ARNs and messages.
    pub region: String,
    /// Maximum number of open shards over all streams (Kinesis: 20,000 in large regions).
    pub shard_limit: u32,
    /// Maximum number of `ON_DEMAND` streams (Kinesis: 50).
    pub on_demand_stream_limit: u32,
    /// Shard count of `ON_DEMAND` streams created without one (Kinesis starts at 4).
    pub on_demand_initial_shards: u32,
    /// Per-shard throughput limits.
    pub throughput: ThroughputLimits,
    /// How long a shard iterator stays valid (Kinesis: 5 minutes).
    pub iterator_ttl: Duration,
    /// How long a `NextToken` stays valid (Kinesis: 300 seconds).
    pub next_token_ttl: Duration,
    /// How long a new stream stays `CREATING` (0 = `ACTIVE` at once).
    pub create_delay: Duration,
    /// How long a deleted stream stays `DELETING` before it is gone (0 = gone at once).
    pub delete_delay: Duration,
    /// Maximum size of one record, data plus partition key (Kinesis: 1 MiB).
    pub max_record_bytes: usize,
    /// Maximum size of a `PutRecords` request, data plus partition keys (Kinesis: 5 MiB).
    pub max_put_records_bytes: usize,
    /// Maximum records in one `PutRecords` request (Kinesis: 500).
    pub max_put_records_count: usize,
    /// Maximum bytes returned by one `GetRecords` call (Kinesis: 10 MiB).
    pub max_get_records_bytes: usize,
    /// Maximum enhanced fan-out consumers per stream (Kinesis: 20).
    pub max_consumers_per_stream: usize,
    /// How long one `SubscribeToShard` subscription lasts (Kinesis: 5 minutes).
    pub subscription_duration: Duration,
    /// Events an enhanced fan-out subscription may queue before it waits for its reader.
    pub subscription_buffer: usize,
    /// Where time comes from (retention, iterator expiry, token buckets, timestamps).
    pub clock: SharedClock,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            account_id: "000000000000".to_owned(),
            region: "us-east-1".to_owned(),
            shard_limit: 20_000,
            on_demand_stream_limit: 50,
            on_demand_initial_shards: 4,
            throughput: ThroughputLimits::default(),
            iterator_ttl: Duration::from_secs(300),
            next_token_ttl: Duration::from_secs(300),
            create_delay: Duration::ZERO,
            delete_delay: Duration::ZERO,
            max_record_bytes: 1_048_576,
            max_put_records_bytes: 5 * 1_048_576,
            max_put_records_count: 500,
            max_get_records_bytes: 10 * 1_048_576,
            max_consumers_per_stream: 20,
            subscription_duration: Duration::from_secs(300),
            subscription_buffer: 4,
            clock: SystemClock::shared(),
        }
    }
}

impl BrokerConfig {
    /// The default configuration with throughput limits switched off.
    pub fn unlimited() -> Self {
        BrokerConfig {
            throughput: ThroughputLimits::off(),
            ..BrokerConfig::default()
        }
    }

    /// This configuration with `clock` as its time source.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}
