//! The KPL-equivalent producer against the real broker: in-process (with tokio's paused clock
//! driving the broker's throughput limits and the producer's timers) and over HTTP.

use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, SplitShardInput, StreamRef, ThroughputLimits,
};
use bytes::Bytes;
use kcl_core::clock::TokioClock;
use kcl_core::kinesis::{KinesisErrorKind, Record, ShardId, StartingPosition};
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::{
    EmbeddedStreamClient, HttpClientConfig, HttpStreamClient, StaticCredentials,
};
use kcl_worker::kpl::deaggregate;
use kcl_worker::producer::{
    EmbeddedTarget, HttpTarget, KplProducer, KplProducerConfig, ProduceError, ProducerTarget,
    PutReceipt, UserRecord,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

const STREAM: &str = "produced";

async fn broker_with(limits: ThroughputLimits, shards: u32) -> Broker {
    let broker = Broker::new(BrokerConfig {
        throughput: limits,
        ..BrokerConfig::default().with_clock(TokioClock::shared())
    });
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.to_owned(),
            shard_count: Some(shards),
            ..CreateStreamInput::default()
        })
        .await
        .expect("stream");
    broker
}

fn config() -> KplProducerConfig {
    KplProducerConfig {
        clock: TokioClock::shared(),
        ..KplProducerConfig::default()
    }
}

/// The `index`-th test record: 100 bytes starting with its index, over `keys` partition keys.
fn user_record(index: u64, keys: u64) -> UserRecord {
    let mut data = format!("{index:012}").into_bytes();
    data.resize(100, b'.');
    UserRecord::new(format!("key-{}", index % keys), data)
}

fn index_of(data: &[u8]) -> u64 {
    std::str::from_utf8(&data[..12])
        .expect("utf8")
        .parse()
        .expect("index")
}

/// Every user record in the stream, de-aggregated the way our consumer does it (user records
/// outside the shard's range dropped), per shard in stored order: (shard, partition key, index).
async fn read_back(client: &dyn StreamClient) -> Vec<(String, String, u64)> {
    let shards = client.list_shards(STREAM, None).await.expect("shards");
    let mut out = Vec::new();
    for shard in shards {
        for record in read_shard(client, &shard.shard_id).await {
            for user in deaggregate(record, Some(shard.hash_key_range)) {
                out.push((
                    shard.shard_id.to_string(),
                    user.partition_key.to_string(),
                    index_of(&user.data),
                ));
            }
        }
    }
    out
}

async fn read_shard(client: &dyn StreamClient, shard_id: &ShardId) -> Vec<Record> {
    let mut iterator = client
        .get_shard_iterator(STREAM, shard_id, StartingPosition::TrimHorizon)
        .await
        .expect("iterator");
    let mut records = Vec::new();
    loop {
        let output = match client.get_records(&iterator, 10_000).await {
            Ok(output) => output,
            Err(error) if error.kind == KinesisErrorKind::ProvisionedThroughputExceeded => {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(error) => panic!("GetRecords: {error}"),
        };
        let empty = output.records.is_empty();
        records.extend(output.records);
        match output.next_shard_iterator {
            Some(next) if !(empty && output.millis_behind_latest == 0) => iterator = next,
            _ => return records,
        }
    }
}

/// Sends `count` records and returns their receipts.
async fn send_all(producer: &KplProducer, count: u64, keys: u64) -> Vec<PutReceipt> {
    let mut receipts = Vec::with_capacity(count as usize);
    for index in 0..count {
        receipts.push(producer.send(user_record(index, keys)).await.expect("send"));
    }
    receipts
}

fn assert_exactly_once(seen: &[(String, String, u64)], count: u64) {
    let mut times: HashMap<u64, usize> = HashMap::new();
    for (_, _, index) in seen {
        *times.entry(*index).or_default() += 1;
    }
    assert_eq!(times.len() as u64, count, "every record arrived");
    let duplicated: Vec<_> = times.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicated.is_empty(), "duplicates: {duplicated:?}");
}

/// Produces `count` records to a 4-shard stream with Kinesis's limits on; returns the virtual
/// seconds it took.
async fn produce_with_limits(aggregate: bool, count: u64) -> f64 {
    let broker = broker_with(ThroughputLimits::KINESIS, 4).await;
    let producer = KplProducer::start(
        Arc::new(EmbeddedTarget::new(broker.clone(), STREAM)),
        KplProducerConfig {
            aggregate,
            ..config()
        },
    )
    .expect("producer");
    let started = tokio::time::Instant::now();
    let receipts = send_all(&producer, count, 1_000).await;
    for receipt in receipts {
        let stored = receipt.await.expect("stored");
        assert_eq!(stored.sub_sequence_number.is_some(), aggregate);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = producer.stats();
    producer.shutdown().await.expect("shutdown");
    assert_eq!(stats.user_records_put, count);
    assert_eq!(stats.user_records_failed, 0);
    if aggregate {
        assert!(stats.aggregation_ratio() > 100.0, "{stats:?}");
    }
    let seen = read_back(&EmbeddedStreamClient::new(broker)).await;
    assert_exactly_once(&seen, count);
    elapsed
}

/// The acceptance run: 60,000 100-byte records to 4 shards with the default per-shard
/// limits on arrive exactly once, and aggregation reaches at least 5x the user-record rate of
/// plain PutRecords (measured in the broker's own, paused, clock).
#[tokio::test(start_paused = true)]
async fn aggregation_delivers_60000_records_exactly_once_at_5x_the_plain_rate() {
    let count = 60_000;
    let aggregated = produce_with_limits(true, count).await;
    let plain = produce_with_limits(false, count).await;
    let aggregated_rate = count as f64 / aggregated;
    let plain_rate = count as f64 / plain;
    eprintln!(
        "aggregated {aggregated:.2} s ({aggregated_rate:.0}/s), plain {plain:.2} s ({plain_rate:.0}/s)"
    );
    assert!(
        plain_rate <= 4_400.0,
        "plain is capped by 4 x 1,000 records/s: {plain_rate}"
    );
    assert!(
        aggregated_rate >= 5.0 * 4_000.0,
        "aggregated {aggregated_rate}/s vs plain {plain_rate}/s"
    );
}

/// A broker that throttles everything: the buffer bound holds, `try_send` fails fast, `send`
/// waits, and every receipt resolves (with the last error once its TTL passes).
#[tokio::test(start_paused = true)]
async fn backpressure_keeps_the_buffer_bounded_and_every_receipt_resolves() {
    // Half a record per second per shard, never a whole one: every put is throttled.
    let broker = broker_with(ThroughputLimits::scaled(0.0005), 2).await;
    let producer = KplProducer::start(
        Arc::new(EmbeddedTarget::new(broker, STREAM)),
        KplProducerConfig {
            max_buffered_records: 50,
            record_ttl: Duration::from_secs(5),
            ..config()
        },
    )
    .expect("producer");
    let receipts = send_all(&producer, 50, 7).await;
    let full = producer
        .try_send(user_record(50, 7))
        .expect_err("buffer full");
    assert!(
        matches!(full, ProduceError::BufferFull { records: 50, .. }),
        "{full}"
    );
    let waiting =
        tokio::time::timeout(Duration::from_secs(1), producer.send(user_record(51, 7))).await;
    assert!(waiting.is_err(), "send waits while the buffer is full");
    let stats = producer.stats();
    assert_eq!(stats.buffered_records, 50);
    assert!(stats.peak_buffered_bytes <= 50 * 106, "{stats:?}");
    assert!(stats.throttles > 0, "{stats:?}");
    for receipt in receipts {
        match receipt.await {
            Err(ProduceError::Expired {
                attempts,
                last_error,
            }) => {
                assert!(attempts >= 1);
                assert!(
                    last_error.contains("ProvisionedThroughputExceeded"),
                    "{last_error}"
                );
            }
            other => panic!("expected expiry, got {other:?}"),
        }
    }
    // Room again: send goes through at once (and expires in turn).
    let late = tokio::time::timeout(Duration::from_millis(10), producer.send(user_record(52, 7)))
        .await
        .expect("room")
        .expect("sent");
    assert!(matches!(late.await, Err(ProduceError::Expired { .. })));
    let stats = producer.stats();
    assert_eq!(stats.user_records_failed, 51);
    assert_eq!(stats.buffered_records, 0);
    producer.shutdown().await.expect("shutdown");
    let after = producer.send(user_record(53, 7)).await;
    assert!(matches!(after, Err(ProduceError::ShutDown)), "{after:?}");
}

/// With `ordered`, each partition key's records are stored in send order although the broker
/// (at a fifth of Kinesis's limits) throttles many of them and they are retried.
#[tokio::test(start_paused = true)]
async fn ordered_mode_keeps_per_key_order_through_retries() {
    let broker = broker_with(ThroughputLimits::scaled(0.2), 2).await;
    let producer = KplProducer::start(
        Arc::new(EmbeddedTarget::new(broker.clone(), STREAM)),
        KplProducerConfig {
            aggregate: false,
            ordered: true,
            ..config()
        },
    )
    .expect("producer");
    let count = 3_000;
    let receipts = send_all(&producer, count, 20).await;
    for receipt in receipts {
        receipt.await.expect("stored");
    }
    let stats = producer.stats();
    producer.shutdown().await.expect("shutdown");
    assert!(
        stats.throttles > 0 && stats.retries > 0,
        "retries were forced: {stats:?}"
    );
    let seen = read_back(&EmbeddedStreamClient::new(broker)).await;
    assert_exactly_once(&seen, count);
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, key, index) in seen {
        per_key.entry(key).or_default().push(index);
    }
    for (key, indexes) in per_key {
        assert!(indexes.is_sorted(), "{key} out of order: {indexes:?}");
    }
}

/// Aggregates predicted for a shard that was split meanwhile: the producer notices, reloads
/// the shard map, and every user record ends up readable exactly once.
#[tokio::test(start_paused = true)]
async fn shard_prediction_follows_a_split() {
    let broker = broker_with(ThroughputLimits::off(), 1).await;
    let target: Arc<dyn ProducerTarget> = Arc::new(EmbeddedTarget::new(broker.clone(), STREAM));
    let producer = KplProducer::start(target, config()).expect("producer");
    let before = send_all(&producer, 1_000, 500).await;
    producer.flush().await.expect("flush");
    for receipt in before {
        assert_eq!(
            receipt.await.expect("stored").shard_id,
            "shardId-000000000000"
        );
    }
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name(STREAM),
            shard_to_split: ShardId::from_index(0),
            new_starting_hash_key: (1u128 << 127).to_string(),
        })
        .await
        .expect("split");
    let mut after = Vec::new();
    for index in 1_000..4_000 {
        after.push(producer.send(user_record(index, 500)).await.expect("send"));
    }
    let mut shards: BTreeMap<String, usize> = BTreeMap::new();
    for receipt in after {
        *shards
            .entry(receipt.await.expect("stored").shard_id)
            .or_default() += 1;
    }
    producer.shutdown().await.expect("shutdown");
    assert_eq!(
        shards.keys().cloned().collect::<Vec<_>>(),
        ["shardId-000000000001", "shardId-000000000002"],
        "records after the split go to the children"
    );
    let seen = read_back(&EmbeddedStreamClient::new(broker)).await;
    assert_exactly_once(&seen, 4_000);
}

/// Over HTTP against `kinesis-broker` with Kinesis's limits, in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_producer_aggregates_and_delivers_exactly_once() {
    let broker = Broker::new(BrokerConfig::default());
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.to_owned(),
            shard_count: Some(2),
            ..CreateStreamInput::default()
        })
        .await
        .expect("stream");
    let server = broker::server::spawn(
        broker.clone(),
        broker::server::ServerOptions::default(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("server");
    let client = HttpStreamClient::new(HttpClientConfig::new(server.endpoint()).with_credentials(
        StaticCredentials {
            access_key_id: "test".to_owned(),
            secret_access_key: "test".to_owned(),
            session_token: None,
        },
    ))
    .expect("client");
    let producer = KplProducer::start(
        Arc::new(HttpTarget::new(client, STREAM)),
        KplProducerConfig::default(),
    )
    .expect("producer");
    let count = 5_000;
    let receipts = send_all(&producer, count, 100).await;
    for receipt in receipts {
        let stored = receipt.await.expect("stored");
        assert!(stored.sub_sequence_number.is_some());
    }
    let stats = producer.stats();
    producer.shutdown().await.expect("shutdown");
    assert!(stats.aggregation_ratio() > 10.0, "{stats:?}");
    let seen = read_back(&EmbeddedStreamClient::new(broker)).await;
    assert_exactly_once(&seen, count);
    server.shutdown().await;
}

/// Records sent before `flush` are all resolved when it returns; a record larger than the
/// aggregation limit goes as a plain record; bad records are refused naming the field.
#[tokio::test(start_paused = true)]
async fn flush_resolves_everything_and_bad_records_are_refused() {
    let broker = broker_with(ThroughputLimits::off(), 2).await;
    let producer = KplProducer::start(
        Arc::new(EmbeddedTarget::new(broker, STREAM)),
        KplProducerConfig {
            record_max_buffered_time: Duration::from_secs(60),
            ..config()
        },
    )
    .expect("producer");
    let small = producer.send(user_record(1, 3)).await.expect("send");
    let big = producer
        .send(UserRecord::new("big", Bytes::from(vec![7u8; 60_000])))
        .await
        .expect("send");
    producer.flush().await.expect("flush");
    let small = tokio::time::timeout(Duration::ZERO, small)
        .await
        .expect("resolved by flush");
    assert!(
        small.expect("stored").sub_sequence_number.is_none(),
        "a lone record goes plain"
    );
    let big = tokio::time::timeout(Duration::ZERO, big)
        .await
        .expect("resolved by flush");
    assert!(big.expect("stored").sub_sequence_number.is_none());
    for (record, field) in [
        (UserRecord::new("", "x"), "partition_key"),
        (UserRecord::new("k".repeat(257), "x"), "partition_key"),
        (UserRecord::new("k", vec![0u8; 1_048_576]), "data"),
    ] {
        match producer.send(record).await {
            Err(ProduceError::InvalidRecord { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    producer.shutdown().await.expect("shutdown");
}
