//! A producer: PutRecords in batches of up to 500, retrying rejected records, into a stream of
//! an in-process broker — or of any Kinesis endpoint given as the first argument.
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
    EmbeddedTarget, HttpTarget, Producer, ProducerConfig, PutRecordsTarget, generated_entry,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const STREAM: &str = "example-stream";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let target: Arc<dyn PutRecordsTarget> = match std::env::args().nth(1) {
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
    // 20,000 records of 100 bytes over 1,000 partition keys, at most 3,000 records/s
    // (the embedded broker enforces Kinesis's 1,000 records/s per shard by default).
    let entries = (0..20_000)
        .map(|index| generated_entry(index, 100, 1_000))
        .collect();
    let producer = Producer::new(
        target,
        ProducerConfig {
            rate: Some(3_000),
            ..ProducerConfig::default()
        },
    );
    let started = Instant::now();
    let stored = producer.put_all(entries, |_| {}).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut per_shard: BTreeMap<String, usize> = BTreeMap::new();
    for record in &stored {
        *per_shard.entry(record.shard_id.clone()).or_default() += 1;
    }
    println!(
        "stored {} records in {elapsed:.2} s ({:.0} records/s)",
        stored.len(),
        stored.len() as f64 / elapsed
    );
    for (shard, count) in per_shard {
        println!("  {shard}: {count} records");
    }
    Ok(())
}
