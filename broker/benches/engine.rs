//! In-process engine throughput: `PutRecords` and `GetRecords` of 100-byte records,
//! batches of 500 (put) and pages of 10,000 (get), over 4 shards with throughput limits off.
//!
//! Run: `cargo bench -p broker --bench engine`. Criterion reports elements/s = records/s;
//! multiply by 100 bytes for MB/s of payload.

use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, GetRecordsInput, GetShardIteratorInput,
    PutRecordsInput, PutRecordsRequestEntry, StreamRef,
};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_main};
use kcl_core::kinesis::{HashKeyRange, ShardId, StartingPosition};
use std::time::{Duration, Instant};

const SHARDS: u32 = 4;
const BATCH: usize = 500;
const RECORD_BYTES: usize = 100;
const PAGE: u32 = 10_000;
const PAGES_PER_SHARD: usize = 10;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn new_stream() -> Broker {
    let broker = Broker::new(BrokerConfig::unlimited());
    broker
        .create_stream(CreateStreamInput {
            stream_name: "bench".into(),
            shard_count: Some(SHARDS),
            ..Default::default()
        })
        .await
        .expect("create stream");
    broker
}

/// A batch of 500 records with distinct partition keys (routed by MD5 over the 4 shards).
fn batch(payload: &Bytes, round: usize) -> PutRecordsInput {
    PutRecordsInput {
        stream: StreamRef::name("bench"),
        records: (0..BATCH)
            .map(|i| PutRecordsRequestEntry {
                data: payload.clone(),
                partition_key: format!("key-{round}-{i}"),
                explicit_hash_key: None,
            })
            .collect(),
    }
}

fn put_records(c: &mut Criterion) {
    let rt = runtime();
    let payload = Bytes::from(vec![b'x'; RECORD_BYTES]);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("put_records_500x100B_4shards", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let broker = new_stream().await;
                let inputs: Vec<PutRecordsInput> = (0..iters as usize)
                    .map(|round| batch(&payload, round % 64))
                    .collect();
                let start = Instant::now();
                for input in inputs {
                    let output = broker.put_records(input).await.expect("put");
                    assert_eq!(output.failed_record_count, 0);
                }
                let elapsed = start.elapsed();
                drop(broker);
                elapsed
            })
        });
    });
    group.finish();
}

fn get_records(c: &mut Criterion) {
    let rt = runtime();
    let payload = Bytes::from(vec![b'x'; RECORD_BYTES]);
    let ranges = HashKeyRange::split_evenly(SHARDS);
    let (broker, iterators) = rt.block_on(async {
        let broker = new_stream().await;
        let per_shard = PAGE as usize * PAGES_PER_SHARD;
        for (shard, range) in ranges.iter().enumerate() {
            for round in 0..per_shard / BATCH {
                let input = PutRecordsInput {
                    stream: StreamRef::name("bench"),
                    records: (0..BATCH)
                        .map(|i| PutRecordsRequestEntry {
                            data: payload.clone(),
                            partition_key: format!("key-{shard}-{round}-{i}"),
                            explicit_hash_key: Some(range.starting_hash_key.to_string()),
                        })
                        .collect(),
                };
                broker.put_records(input).await.expect("preload");
            }
        }
        // One iterator per page of every shard, so every measured call returns 10,000 records.
        let mut iterators = Vec::new();
        for shard in 0..SHARDS {
            let mut iterator = broker
                .get_shard_iterator(GetShardIteratorInput {
                    stream: StreamRef::name("bench"),
                    shard_id: ShardId::from_index(u64::from(shard)),
                    position: StartingPosition::TrimHorizon,
                })
                .await
                .expect("iterator")
                .shard_iterator;
            for _ in 0..PAGES_PER_SHARD {
                iterators.push(iterator.clone());
                let page = broker
                    .get_records(GetRecordsInput {
                        shard_iterator: iterator,
                        limit: Some(PAGE),
                        stream_arn: None,
                    })
                    .await
                    .expect("page");
                assert_eq!(page.records.len(), PAGE as usize);
                iterator = page.next_shard_iterator.expect("open shard");
            }
        }
        (broker, iterators)
    });
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(u64::from(PAGE)));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    let mut next = 0usize;
    group.bench_function("get_records_10000x100B_4shards", |b| {
        b.iter(|| {
            let iterator = iterators[next % iterators.len()].clone();
            next += 1;
            let page = rt
                .block_on(broker.get_records(GetRecordsInput {
                    shard_iterator: iterator,
                    limit: Some(PAGE),
                    stream_arn: None,
                }))
                .expect("get");
            assert_eq!(page.records.len(), PAGE as usize);
            page
        });
    });
    group.finish();
}

mod group {
    //! The criterion group (generated code has no docs of its own).
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::put_records, super::get_records);
}
criterion_main!(group::benches);
