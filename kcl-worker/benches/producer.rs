//! KplProducer benchmarks in real time: user records/s of 100-byte records, aggregated vs plain,
//! against the in-process broker (per-shard limits on and off) and `kinesis-broker` over HTTP
//! (in-process server, limits on); then the buffer bound under a slow sink.
//!
//! `cargo bench -p kcl-worker --features embedded --bench producer` (`KCL_BENCH_RUNS=N` runs
//! per case, default 3; the median is reported; `KCL_BENCH_ONLY=limits|unlimited|http|slow`
//! runs one case).

use broker::engine::{Broker, BrokerConfig, CreateStreamInput, ThroughputLimits};
use kcl_worker::client::{HttpClientConfig, HttpStreamClient, StaticCredentials};
use kcl_worker::producer::{
    EmbeddedTarget, HttpTarget, KplProducer, KplProducerConfig, ProducerTarget, UserRecord,
    generated_payload,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAM: &str = "bench";
const RECORD_BYTES: usize = 100;

async fn broker(limits: ThroughputLimits, shards: u32) -> Broker {
    let broker = Broker::new(BrokerConfig {
        throughput: limits,
        ..BrokerConfig::default()
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

fn record(index: u64) -> UserRecord {
    UserRecord::new(
        format!("key-{}", index % 1_000),
        generated_payload(index, RECORD_BYTES),
    )
}

/// Sends `count` records and waits for all of them; returns user records per second.
async fn run(
    target: Arc<dyn ProducerTarget>,
    aggregate: bool,
    rate_limit: bool,
    count: u64,
) -> f64 {
    let producer = KplProducer::start(
        target,
        KplProducerConfig {
            aggregate,
            rate_limit,
            ..KplProducerConfig::default()
        },
    )
    .expect("producer");
    let started = Instant::now();
    let (receipts, mut pending) = tokio::sync::mpsc::channel(8_192);
    let waiter = tokio::spawn(async move {
        let mut stored = 0u64;
        while let Some(receipt) = pending.recv().await {
            let receipt: kcl_worker::producer::PutReceipt = receipt;
            if receipt.await.is_ok() {
                stored += 1;
            }
        }
        stored
    });
    for index in 0..count {
        let receipt = producer.send(record(index)).await.expect("send");
        receipts.send(receipt).await.expect("waiter");
    }
    drop(receipts);
    let stored = waiter.await.expect("waiter");
    let elapsed = started.elapsed().as_secs_f64();
    producer.shutdown().await.expect("shutdown");
    assert_eq!(stored, count, "every record stored");
    count as f64 / elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn case(
    name: &str,
    runs: usize,
    rate_limit: bool,
    count_plain: u64,
    count_aggregated: u64,
    target: impl Fn() -> futures::future::BoxFuture<'static, Arc<dyn ProducerTarget>>,
) {
    let mut plain = Vec::new();
    let mut aggregated = Vec::new();
    for _ in 0..runs {
        plain.push(run(target().await, false, rate_limit, count_plain).await);
        aggregated.push(run(target().await, true, rate_limit, count_aggregated).await);
    }
    let (plain, aggregated) = (median(plain), median(aggregated));
    let megabytes = |rate: f64| rate * RECORD_BYTES as f64 / 1e6;
    println!(
        "{name}: plain {plain:.0} records/s ({:.2} MB/s), aggregated {aggregated:.0} records/s ({:.2} MB/s), ratio {:.1}x",
        megabytes(plain),
        megabytes(aggregated),
        aggregated / plain
    );
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A sink at 1% of Kinesis's limits: the sender is held back by the buffer bound.
async fn slow_sink() {
    let broker = broker(ThroughputLimits::scaled(0.01), 1).await;
    let bound_bytes = 2 * 1_048_576;
    let producer = KplProducer::start(
        Arc::new(EmbeddedTarget::new(broker, STREAM)),
        KplProducerConfig {
            // Plain records, so the 10 records/s trickle is stored (an aggregate is larger
            // than this shard's whole byte bucket).
            aggregate: false,
            max_buffered_bytes: bound_bytes,
            max_buffered_records: 1_000_000,
            ..KplProducerConfig::default()
        },
    )
    .expect("producer");
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut receipts = Vec::new();
    while started.elapsed() < Duration::from_secs(5) {
        match tokio::time::timeout(Duration::from_millis(200), producer.send(record(sent))).await {
            Ok(receipt) => {
                receipts.push(receipt.expect("send"));
                sent += 1;
            }
            Err(_) => continue,
        }
    }
    let stats = producer.stats();
    println!(
        "slow sink (10 records/s, 10 KiB/s, buffer bound {bound_bytes} B): {sent} records accepted in 5 s, \
         peak buffered {} B ({:.0}% of the bound), {} stored, peak RSS {:.1} MiB (before {:.1} MiB)",
        stats.peak_buffered_bytes,
        100.0 * stats.peak_buffered_bytes as f64 / bound_bytes as f64,
        stats.user_records_put,
        peak_rss_mib(),
        rss_before,
    );
    assert!(stats.peak_buffered_bytes <= bound_bytes as u64);
    drop(receipts);
    producer.shutdown().await.expect("shutdown");
}

fn embedded(
    limits: ThroughputLimits,
    shards: u32,
) -> futures::future::BoxFuture<'static, Arc<dyn ProducerTarget>> {
    Box::pin(async move {
        Arc::new(EmbeddedTarget::new(broker(limits, shards).await, STREAM))
            as Arc<dyn ProducerTarget>
    })
}

async fn http_case(runs: usize) {
    let http_broker = broker(ThroughputLimits::KINESIS, 1).await;
    let server = broker::server::spawn(
        http_broker,
        broker::server::ServerOptions::default(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("server");
    let endpoint = server.endpoint();
    let stream_index = std::sync::atomic::AtomicU32::new(0);
    let http_target = move || {
        let index = stream_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let endpoint = endpoint.clone();
        let stream = format!("http-{index}");
        let future: futures::future::BoxFuture<'static, Arc<dyn ProducerTarget>> =
            Box::pin(async move {
                let client = HttpStreamClient::new(
                    HttpClientConfig::new(endpoint).with_credentials(StaticCredentials {
                        access_key_id: "bench".to_owned(),
                        secret_access_key: "bench".to_owned(),
                        session_token: None,
                    }),
                )
                .expect("client");
                client
                    .call_json(
                        "CreateStream",
                        serde_json::json!({"StreamName": stream, "ShardCount": 1}),
                    )
                    .await
                    .expect("create stream");
                Arc::new(HttpTarget::new(client, stream)) as Arc<dyn ProducerTarget>
            });
        future
    };
    case(
        "HTTP, 1 shard, Kinesis limits",
        runs,
        true,
        4_000,
        40_000,
        http_target,
    )
    .await;
    server.shutdown().await;
}

fn main() {
    let runs: usize = std::env::var("KCL_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("KCL_BENCH_ONLY").ok();
    let selected = |name: &str| only.as_deref().is_none_or(|only| only == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // First, so its peak RSS is not the other cases'.
        if selected("slow") {
            slow_sink().await;
        }
        if selected("limits") {
            case(
                "in-process, 1 shard, Kinesis limits",
                runs,
                true,
                4_000,
                40_000,
                || embedded(ThroughputLimits::KINESIS, 1),
            )
            .await;
        }
        if selected("unlimited") {
            case(
                "in-process, 4 shards, limits off (producer pacing off too)",
                runs,
                false,
                200_000,
                200_000,
                || embedded(ThroughputLimits::off(), 4),
            )
            .await;
        }
        if selected("http") {
            http_case(runs).await;
        }
    });
}
