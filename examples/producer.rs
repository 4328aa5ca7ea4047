//! A KPL-equivalent producer: user records aggregated per shard, collected into PutRecords
//! requests, paced per shard and retried, into a stream of an in-process broker — or of any
//! Kinesis endpoint given as the first argument.
//!
//! ```text
//! cargo run -p examples --example producer                            # embedded broker
//! cargo run -p examples --example producer -- http://127.0.0.1:4567   # a running kinesis-broker
//! ```
//! (Against an endpoint, the stream `example-stream` must exist:
//! `cargo run -p kcl -- stream create example-stream`.)

use broker::engine::{Broker, BrokerConfig, CreateStreamInput};
use kcl_worker::client::{HttpClientConfig, HttpStreamClient, StaticCredentials};
use kcl_worker::producer::{
    EmbeddedTarget, HttpTarget, KplProducer, KplProducerConfig, ProducerTarget, UserRecord,
    generated_payload,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const STREAM: &str = "example-stream";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let target: Arc<dyn ProducerTarget> = match std::env::args().nth(1) {
        Some(endpoint) => {
            // Credentials from the environment, else placeholders (a local kinesis-broker
            // accepts any by default).
            let credentials = StaticCredentials::from_env().unwrap_or(StaticCredentials {
                access_key_id: "example".to_owned(),
                secret_access_key: "example".to_owned(),
                session_token: None,
            });
            let config = HttpClientConfig::new(endpoint).with_credentials(credentials);
            Arc::new(HttpTarget::new(HttpStreamClient::new(config)?, STREAM))
        }
        None => {
            let broker = Broker::new(BrokerConfig::default());
            broker
                .create_stream(CreateStreamInput {
                    stream_name: STREAM.to_owned(),
                    shard_count: Some(4),
                    ..CreateStreamInput::default()
                })
                .await?;
            Arc::new(EmbeddedTarget::new(broker, STREAM))
        }
    };
    // 100,000 records of 100 bytes over 1,000 partition keys, aggregated: far beyond the
    // 4 x 1,000 records/s that plain records reach on 4 shards (which the embedded broker
    // enforces by default).
    let producer = KplProducer::start(target, KplProducerConfig::default())?;
    let started = Instant::now();
    let mut receipts = Vec::new();
    for index in 0..100_000u64 {
        let record = UserRecord::new(
            format!("key-{}", index % 1_000),
            generated_payload(index, 100),
        );
        // Waits when the in-flight buffer is full (backpressure).
        receipts.push(producer.send(record).await?);
    }
    let mut per_shard: BTreeMap<String, usize> = BTreeMap::new();
    for receipt in receipts {
        *per_shard.entry(receipt.await?.shard_id).or_default() += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = producer.stats();
    producer.shutdown().await?;
    println!(
        "stored {} records in {elapsed:.2} s ({:.0} records/s) as {} Kinesis records",
        stats.user_records_put,
        stats.user_records_put as f64 / elapsed,
        stats.kinesis_records_put
    );
    for (shard, count) in per_shard {
        println!("  {shard}: {count} records");
    }
    Ok(())
}
