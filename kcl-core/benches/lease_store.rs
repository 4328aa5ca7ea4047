// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

//! Lease-table operations per second: SQLite (WAL, synchronous=NORMAL) against the in-memory
//! store as a same-run baseline.
//!
//! Run: `cargo bench -p kcl-core --bench lease_store`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kcl_core::kinesis::{HashKeyRange, SequenceNumber, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, Renewal};
use kcl_core::memory::InMemoryLeaseStore;
use kcl_core::sqlite::SqliteLeaseStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCAN_LEASES: u64 = 10_000;
const RENEW_BATCH: u64 = 100;

fn realistic_lease(index: u64) -> Lease {
    let mut lease = Lease::new(
        ShardId::from_index(index),
        ExtendedSequenceNumber::new(
            "49590338271490256608559692538361571095921575989136588898"
                .parse::<SequenceNumber>()
                .expect("valid"),
            0,
        ),
    );
    lease.lease_owner = Some(format!("worker-{}", index % 16));
    lease.parent_shard_ids = vec![ShardId::from_index(index + 1_000_000)];
    lease.hash_key_range = Some(HashKeyRange::new(u128::from(index) << 64, u128::MAX));
    lease
}

struct Stores {
    _dir: tempfile::TempDir,
    sqlite: Arc<SqliteLeaseStore>,
    memory: Arc<InMemoryLeaseStore>,
}

fn stores(runtime: &tokio::runtime::Runtime, leases: u64) -> Stores {
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteLeaseStore::open(dir.path().join("bench.db"), "bench")
            .await
            .expect("open");
        let memory = InMemoryLeaseStore::new();
        for index in 0..leases {
            let lease = realistic_lease(index);
            sqlite.create_lease_if_absent(&lease).await.expect("create");
            memory.create_lease_if_absent(&lease).await.expect("create");
        }
        Stores {
            _dir: dir,
            sqlite: Arc::new(sqlite),
            memory: Arc::new(memory),
        }
    })
}

fn named(stores: &Stores) -> [(&'static str, Arc<dyn LeaseStore>); 2] {
    [
        ("sqlite", stores.sqlite.clone() as Arc<dyn LeaseStore>),
        ("memory", stores.memory.clone() as Arc<dyn LeaseStore>),
    ]
}

fn full_scan(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let stores = stores(runtime, SCAN_LEASES);
    let mut group = c.benchmark_group("full_scan_10000_leases");
    group.sample_size(20);
    for (name, store) in named(&stores) {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| {
                let store = store.clone();
                async move {
                    let leases = store.list_leases().await.expect("list");
                    assert_eq!(leases.len(), SCAN_LEASES as usize);
                }
            });
        });
    }
    group.finish();
}

/// Current counter of lease `index` (benches keep conditional writes valid across iterations).
async fn counter(store: &dyn LeaseStore, index: u64) -> u64 {
    store
        .get_lease(&ShardId::from_index(index))
        .await
        .expect("get")
        .expect("exists")
        .lease_counter
}

fn checkpoint(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let stores = stores(runtime, 100);
    let mut group = c.benchmark_group("checkpoint");
    group.throughput(Throughput::Elements(1));
    for (name, store) in named(&stores) {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter_custom(|iterations| {
                let store = store.clone();
                async move {
                    let shard = ShardId::from_index(7);
                    let mut expected = counter(store.as_ref(), 7).await;
                    let start = Instant::now();
                    for i in 0..iterations {
                        let update = CheckpointUpdate {
                            checkpoint: Some(ExtendedSequenceNumber::new(
                                SequenceNumber::from_u128(
                                    u128::from(expected) * 1_000 + u128::from(i),
                                ),
                                0,
                            )),
                            pending_checkpoint: None,
                            pending_checkpoint_state: None,
                        };
                        let written = store
                            .update_checkpoint(&shard, "worker-7", expected, &update)
                            .await
                            .expect("checkpoint");
                        expected = written.lease_counter;
                    }
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
}

/// A worker with many shards: 64 tasks checkpoint their own lease at the same time.
fn concurrent_checkpoints(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    const SHARDS: u64 = 64;
    let stores = stores(runtime, SHARDS);
    let mut group = c.benchmark_group("checkpoint_64_shards_concurrently");
    group.throughput(Throughput::Elements(SHARDS));
    for (name, store) in named(&stores) {
        let counters: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
            (0..SHARDS)
                .map(|index| {
                    std::sync::atomic::AtomicU64::new(
                        runtime.block_on(counter(store.as_ref(), index)),
                    )
                })
                .collect(),
        );
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| {
                let store = store.clone();
                let counters = counters.clone();
                async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for index in 0..SHARDS {
                        let store = store.clone();
                        let counters = counters.clone();
                        tasks.spawn(async move {
                            use std::sync::atomic::Ordering;
                            let expected = counters[index as usize].load(Ordering::SeqCst);
                            let update = CheckpointUpdate {
                                checkpoint: Some(ExtendedSequenceNumber::new(
                                    SequenceNumber::from_u128(u128::from(expected)),
                                    0,
                                )),
                                pending_checkpoint: None,
                                pending_checkpoint_state: None,
                            };
                            let owner = format!("worker-{}", index % 16);
                            let written = store
                                .update_checkpoint(
                                    &ShardId::from_index(index),
                                    &owner,
                                    expected,
                                    &update,
                                )
                                .await
                                .expect("checkpoint");
                            counters[index as usize].store(written.lease_counter, Ordering::SeqCst);
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.expect("task");
                    }
                }
            });
        });
    }
    group.finish();
}

fn take(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let stores = stores(runtime, 100);
    let mut group = c.benchmark_group("take");
    group.throughput(Throughput::Elements(1));
    for (name, store) in named(&stores) {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter_custom(|iterations| {
                let store = store.clone();
                async move {
                    let shard = ShardId::from_index(3);
                    let mut expected = counter(store.as_ref(), 3).await;
                    let start = Instant::now();
                    for i in 0..iterations {
                        let owner = if i % 2 == 0 { "worker-a" } else { "worker-b" };
                        let taken = store
                            .take_lease(&shard, expected, owner)
                            .await
                            .expect("take");
                        expected = taken.lease_counter;
                    }
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
}

fn renew(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let stores = stores(runtime, RENEW_BATCH);
    let mut group = c.benchmark_group("renew_batch_of_100");
    group.throughput(Throughput::Elements(RENEW_BATCH));
    for (name, store) in named(&stores) {
        group.bench_with_input(BenchmarkId::from_parameter(name), &store, |b, store| {
            b.to_async(runtime).iter_custom(|iterations| {
                let store = store.clone();
                async move {
                    let mut renewals = Vec::new();
                    for index in 0..RENEW_BATCH {
                        renewals.push(Renewal {
                            lease_key: ShardId::from_index(index),
                            expected_counter: counter(store.as_ref(), index).await,
                            owner: format!("worker-{}", index % 16),
                        });
                    }
                    let start = Instant::now();
                    for _ in 0..iterations {
                        let results = store.renew_leases(&renewals).await.expect("renew");
                        for (renewal, result) in renewals.iter_mut().zip(results) {
                            renewal.expected_counter = result.expect("renewed").lease_counter;
                        }
                    }
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    full_scan(c, &runtime);
    checkpoint(c, &runtime);
    concurrent_checkpoints(c, &runtime);
    take(c, &runtime);
    renew(c, &runtime);
}

criterion_group! {
    name = lease_store;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(lease_store);
