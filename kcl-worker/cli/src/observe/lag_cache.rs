//! Each shard's lag, remembered for a while, so a status page refreshed every second does not
//! spend the shards' read budget.
//!
//! Measuring one shard's lag costs a `GetShardIterator` and a `GetRecords`, and Kinesis allows
//! five `GetRecords` per second per shard shared by every reader — the application's own
//! consumers included. Asked on every refresh of every open page, the lag column would take a
//! fifth of that budget or more. The cache measures a shard again only when its value is older
//! than [`LagCache::max_age`]; concurrent snapshots wait for one measurement instead of each
//! starting their own.

use crate::leases::checkpoint_lag;
use kcl_core::clock::SharedClock;
use kcl_core::lease::Lease;
use kcl_core::stream_client::StreamClient;
use std::collections::HashMap;
use std::time::Duration;

/// How long a measured lag is shown before the shard is measured again (by default).
pub const DEFAULT_LAG_MAX_AGE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy)]
struct MeasuredLag {
    /// `None` when the stream did not answer.
    lag_millis: Option<u64>,
    /// The clock's monotonic time of the measurement.
    measured_at: Duration,
}

/// The last measured lag of every shard.
#[derive(Debug)]
pub struct LagCache {
    clock: SharedClock,
    max_age: Duration,
    measured: tokio::sync::Mutex<HashMap<String, MeasuredLag>>,
}

impl LagCache {
    /// A cache that measures a shard again once its lag is older than `max_age`.
    pub fn new(clock: SharedClock, max_age: Duration) -> Self {
        LagCache {
            clock,
            max_age,
            measured: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// How long a measured lag is shown before it is measured again.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The lag of each lease, by lease key: remembered values younger than the maximum age,
    /// fresh measurements for the others. Shards no longer in `leases` are forgotten.
    pub async fn lags(
        &self,
        client: &dyn StreamClient,
        stream: &str,
        leases: &[&Lease],
    ) -> HashMap<String, Option<u64>> {
        let mut measured = self.measured.lock().await;
        measured.retain(|shard, _| {
            leases
                .iter()
                .any(|lease| lease.lease_key.as_str() == shard.as_str())
        });
        let mut lags = HashMap::with_capacity(leases.len());
        for lease in leases {
            let shard = lease.lease_key.to_string();
            let now = self.clock.monotonic();
            let fresh = measured
                .get(&shard)
                .filter(|entry| now.saturating_sub(entry.measured_at) < self.max_age)
                .copied();
            let entry = match fresh {
                Some(entry) => entry,
                None => {
                    let lag_millis = checkpoint_lag(client, stream, lease).await;
                    let entry = MeasuredLag {
                        lag_millis,
                        measured_at: self.clock.monotonic(),
                    };
                    measured.insert(shard.clone(), entry);
                    entry
                }
            };
            lags.insert(shard, entry.lag_millis);
        }
        lags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker::engine::{Broker, BrokerConfig, CreateStreamInput};
    use kcl_core::clock::ManualClock;
    use kcl_core::kinesis::EpochMillis;
    use kcl_core::kinesis::{KinesisError, ShardId};
    use kcl_core::lease::ExtendedSequenceNumber;
    use kcl_worker::client::EmbeddedStreamClient;
    use kcl_worker::testing::hooks::{HookedStreamClient, StreamCall, StreamHook};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the `GetRecords` calls reaching the broker.
    #[derive(Debug, Default)]
    struct CountReads(AtomicUsize);

    #[async_trait::async_trait]
    impl StreamHook for CountReads {
        async fn before(&self, call: StreamCall<'_>) -> Result<(), KinesisError> {
            if let StreamCall::GetRecords { .. } = call {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_shard_is_measured_again_only_after_the_maximum_age() {
        let clock = Arc::new(ManualClock::new(EpochMillis(1_700_000_000_000)));
        let broker = Broker::new(BrokerConfig::default().with_clock(clock.clone()));
        broker
            .create_stream(CreateStreamInput {
                stream_name: "lagged".to_owned(),
                shard_count: Some(2),
                ..Default::default()
            })
            .await
            .expect("create");
        let client = HookedStreamClient::new(
            Arc::new(EmbeddedStreamClient::new(broker)),
            CountReads::default(),
        );
        let leases: Vec<Lease> = (0..2)
            .map(|index| {
                Lease::new(
                    ShardId::from_index(index),
                    ExtendedSequenceNumber::TRIM_HORIZON,
                )
            })
            .collect();
        let lease_refs: Vec<&Lease> = leases.iter().collect();
        let cache = LagCache::new(clock.clone(), Duration::from_secs(15));
        let reads = || client.hook().0.load(Ordering::SeqCst);

        let first = cache.lags(&client, "lagged", &lease_refs).await;
        assert_eq!(first.len(), 2);
        assert!(first.values().all(Option::is_some), "{first:?}");
        assert_eq!(reads(), 2, "one read per shard");

        for _ in 0..10 {
            clock.advance(Duration::from_secs(1));
            let again = cache.lags(&client, "lagged", &lease_refs).await;
            assert_eq!(again, first);
        }
        assert_eq!(reads(), 2, "no read while the lags are younger than 15 s");

        clock.advance(Duration::from_secs(5));
        cache.lags(&client, "lagged", &lease_refs).await;
        assert_eq!(reads(), 4, "each shard measured again after 15 s");

        let only_first = &lease_refs[..1];
        let remaining = cache.lags(&client, "lagged", only_first).await;
        assert_eq!(remaining.len(), 1, "a shard no longer leased is forgotten");
        assert_eq!(reads(), 4);
    }
}
