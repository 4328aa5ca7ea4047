//! Delivery throughput to a local directory, with and without GZIP (a bench binary).
//!
//! Each run pre-loads 40 MiB of 1 KiB JSON-like records into a one-shard stream of an
//! in-process broker, starts a delivery (in-memory lease store, 5 MiB / 900 s hints, so every
//! object is flushed by size: 8 objects) and stops the clock when every record is in a durable
//! object. Reported: the median over the runs of end-to-end MB/s (from `Delivery::start`,
//! including the worker's start-up) and steady MB/s (from the first record read to the last
//! object stored). Baseline, same run: `LocalDirSink` storing the same 8 bodies directly
//! (encoded in the timed section for GZIP), i.e. the sink's ceiling.
//!
//! `cargo bench -p firehose --bench delivery` (`FIREHOSE_BENCH_RUNS=N` for N runs, default 5).

use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, PutRecordsInput, PutRecordsRequestEntry, StreamRef,
};
use bytes::Bytes;
use firehose::buffer::encode;
use firehose::sink::{LocalDirSink, ObjectSink};
use firehose::{
    BufferingHints, Compression, Delivery, DeliveryParams, DeliveryStreamConfig, S3Destination,
};
use kcl_core::clock::SystemClock;
use kcl_core::lineage::InitialPosition;
use kcl_core::memory::InMemoryLeaseStore;
use kcl_worker::client::EmbeddedStreamClient;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORD_BYTES: usize = 1024;
const OBJECT_MIB: u32 = 5;
const OBJECTS: usize = 8;
const RECORDS_PER_OBJECT: usize = OBJECT_MIB as usize * 1024 * 1024 / RECORD_BYTES;
const RECORDS: usize = RECORDS_PER_OBJECT * OBJECTS;
const PAYLOAD_BYTES: usize = RECORDS * RECORD_BYTES;

/// A JSON log line of exactly 1 KiB with some entropy (so GZIP does real work).
fn record(index: usize) -> Bytes {
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = String::new();
    while noise.len() < RECORD_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push_str(&format!("{state:016x}"));
    }
    let mut line = format!(
        "{{\"seq\":{index},\"user\":\"user-{}\",\"action\":\"{}\",\"trace\":\"{noise}",
        index % 997,
        ["view", "click", "buy", "search"][index % 4]
    );
    line.truncate(RECORD_BYTES - 3);
    line.push_str("\"}\n");
    assert_eq!(line.len(), RECORD_BYTES);
    Bytes::from(line)
}

async fn loaded_broker(records: &[Bytes]) -> Broker {
    let broker = Broker::new(BrokerConfig::unlimited().with_clock(SystemClock::shared()));
    broker
        .create_stream(CreateStreamInput {
            stream_name: "bench".into(),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("create stream");
    for batch in records.chunks(500) {
        let output = broker
            .put_records(PutRecordsInput {
                stream: StreamRef::name("bench"),
                records: batch
                    .iter()
                    .map(|data| PutRecordsRequestEntry {
                        data: data.clone(),
                        partition_key: "k".into(),
                        explicit_hash_key: None,
                    })
                    .collect(),
            })
            .await
            .expect("put");
        assert_eq!(output.failed_record_count, 0);
    }
    broker
}

struct Run {
    end_to_end: Duration,
    steady: Duration,
}

async fn delivery_run(records: &[Bytes], compression: Compression) -> Run {
    let broker = loaded_broker(records).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let delivery = Delivery::start(DeliveryParams {
        config: DeliveryStreamConfig {
            name: "bench".into(),
            version_id: 1,
            destination: S3Destination {
                compression,
                buffering: BufferingHints {
                    size_mib: OBJECT_MIB,
                    interval_secs: 900,
                },
                ..S3Destination::new("bucket")
            },
        },
        source_stream: "bench".into(),
        stream_client: Arc::new(EmbeddedStreamClient::new(broker)),
        lease_store: Arc::new(InMemoryLeaseStore::new()),
        sink: Arc::new(LocalDirSink::new(dir.path())),
        clock: SystemClock::shared(),
        worker_id: "bench".into(),
        initial_position: InitialPosition::TrimHorizon,
        delivery_stream_arn: String::new(),
    })
    .await
    .expect("start");
    let mut first_read = None;
    loop {
        let stats = delivery.stats();
        if first_read.is_none() && stats.records_in > 0 {
            first_read = Some(Instant::now());
        }
        if stats.records_delivered >= RECORDS as u64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "delivery stalled: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let finished = Instant::now();
    delivery.shutdown().await;
    Run {
        end_to_end: finished - started,
        steady: finished - first_read.unwrap_or(started),
    }
}

async fn sink_run(records: &[Bytes], compression: Compression) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = LocalDirSink::new(dir.path());
    let started = Instant::now();
    for (index, object) in records.chunks(RECORDS_PER_OBJECT).enumerate() {
        let object = object.to_vec();
        let body = tokio::task::spawn_blocking(move || encode(&object, compression))
            .await
            .expect("join")
            .expect("encode");
        sink.put("bucket", &format!("2024/01/01/00/object-{index}"), body)
            .await
            .expect("put");
    }
    started.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn mb_per_s(duration: Duration) -> f64 {
    PAYLOAD_BYTES as f64 / 1e6 / duration.as_secs_f64()
}

fn main() {
    let runs: usize = std::env::var("FIREHOSE_BENCH_RUNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let records: Vec<Bytes> = (0..RECORDS).map(record).collect();
    println!(
        "firehose delivery: {} records x {} B = {:.1} MB per run, {OBJECTS} objects of {OBJECT_MIB} MiB, {runs} runs (medians)",
        RECORDS,
        RECORD_BYTES,
        PAYLOAD_BYTES as f64 / 1e6
    );
    for (label, compression) in [
        ("uncompressed", Compression::Uncompressed),
        ("gzip", Compression::Gzip),
    ] {
        let mut sink = Vec::new();
        let mut end_to_end = Vec::new();
        let mut steady = Vec::new();
        // Interleaved, so drift on a shared machine hits both alike.
        for _ in 0..runs {
            sink.push(mb_per_s(runtime.block_on(sink_run(&records, compression))));
            let run = runtime.block_on(delivery_run(&records, compression));
            end_to_end.push(mb_per_s(run.end_to_end));
            steady.push(mb_per_s(run.steady));
        }
        let (sink, end_to_end, steady) = (median(sink), median(end_to_end), median(steady));
        println!(
            "{label:>12}: sink alone {sink:8.1} MB/s | delivery end-to-end {end_to_end:8.1} MB/s ({:.2}x sink) | steady {steady:8.1} MB/s ({:.2}x sink)",
            end_to_end / sink,
            steady / sink
        );
    }
}
