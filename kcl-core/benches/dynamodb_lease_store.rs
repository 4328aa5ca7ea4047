// criterion's macros and this bench's helpers generate undocumented items.
#![allow(missing_docs)]

//! The DynamoDB lease store on a local DynamoDB-compatible server (moto) next to SQLite in the
//! same run: take, renew (a batch of 10), checkpoint and scan (100 leases) latency; then the
//! DynamoDB requests one worker sends per minute at steady state, counted with
//! `requests_sent()` while replaying one minute of the worker's cadence.
//!
//! Run: `cargo bench -p kcl-core --features dynamodb --bench dynamodb_lease_store`
//! (skips with a loud message when neither moto nor dynalite is installed).

#[path = "../tests/support/dynamodb_local.rs"]
mod dynamodb_local;

use criterion::{Criterion, Throughput};
use dynamodb_local::LocalDynamoDb;
use kcl_core::config::LeaseConfig;
use kcl_core::dynamodb::{DynamoDbLeaseStore, DynamoDbOptions};
use kcl_core::kinesis::{HashKeyRange, SequenceNumber, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::{CheckpointUpdate, LeaseStore, Renewal};
use kcl_core::sqlite::SqliteLeaseStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEASES: u64 = 100;
const RENEW_BATCH: u64 = 10;

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
    lease.parent_shard_ids = vec![ShardId::from_index(index + 1_000_000)];
    lease.hash_key_range = Some(HashKeyRange::new(u128::from(index) << 64, u128::MAX));
    lease
}

fn dynamodb_options(server: &LocalDynamoDb, table: &str) -> DynamoDbOptions {
    DynamoDbOptions::new(table)
        .with_endpoint_url(server.endpoint_url())
        .with_region("us-east-1")
        .with_static_credentials("test", "test")
}

struct Stores {
    _dir: tempfile::TempDir,
    sqlite: Arc<SqliteLeaseStore>,
    dynamodb: Arc<DynamoDbLeaseStore>,
}

impl Stores {
    fn named(&self) -> [(&'static str, Arc<dyn LeaseStore>); 2] {
        [
            (
                "dynamodb-moto",
                self.dynamodb.clone() as Arc<dyn LeaseStore>,
            ),
            ("sqlite", self.sqlite.clone() as Arc<dyn LeaseStore>),
        ]
    }
}

async fn stores(server: &LocalDynamoDb) -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteLeaseStore::open(dir.path().join("bench.db"), "bench")
        .await
        .expect("open sqlite");
    let dynamodb = DynamoDbLeaseStore::connect(dynamodb_options(server, "bench"))
        .await
        .expect("connect dynamodb");
    for index in 0..LEASES {
        let lease = realistic_lease(index);
        sqlite.create_lease_if_absent(&lease).await.expect("create");
        dynamodb
            .create_lease_if_absent(&lease)
            .await
            .expect("create");
    }
    for store in [&sqlite as &dyn LeaseStore, &dynamodb] {
        for index in 0..LEASES {
            store
                .take_lease(&ShardId::from_index(index), 0, "worker-a")
                .await
                .expect("take");
        }
    }
    Stores {
        _dir: dir,
        sqlite: Arc::new(sqlite),
        dynamodb: Arc::new(dynamodb),
    }
}

async fn current(store: &dyn LeaseStore, index: u64) -> Lease {
    store
        .get_lease(&ShardId::from_index(index))
        .await
        .expect("get")
        .expect("exists")
}

fn latency(c: &mut Criterion, runtime: &tokio::runtime::Runtime, stores: &Stores) {
    let mut group = c.benchmark_group("dynamodb_vs_sqlite");
    group.throughput(Throughput::Elements(1));
    for (name, store) in stores.named() {
        group.bench_function(format!("take/{name}"), |b| {
            b.to_async(runtime).iter_custom(|iterations| {
                let store = store.clone();
                async move {
                    let shard = ShardId::from_index(3);
                    let mut expected = current(store.as_ref(), 3).await.lease_counter;
                    let start = Instant::now();
                    for i in 0..iterations {
                        let owner = if i % 2 == 0 { "worker-b" } else { "worker-a" };
                        let taken = store.take_lease(&shard, expected, owner).await;
                        expected = taken.expect("take").lease_counter;
                    }
                    start.elapsed()
                }
            });
        });
        group.bench_function(format!("checkpoint/{name}"), |b| {
            b.to_async(runtime).iter_custom(|iterations| {
                let store = store.clone();
                async move {
                    let lease = current(store.as_ref(), 7).await;
                    let owner = lease.lease_owner.clone().expect("owned");
                    let mut expected = lease.lease_counter;
                    let start = Instant::now();
                    for i in 0..iterations {
                        let sequence = u128::from(expected) * 1_000 + u128::from(i);
                        let update = CheckpointUpdate {
                            checkpoint: Some(ExtendedSequenceNumber::new(
                                SequenceNumber::from_u128(sequence),
                                0,
                            )),
                            pending_checkpoint: None,
                            pending_checkpoint_state: None,
                        };
                        let written = store
                            .update_checkpoint(&lease.lease_key, &owner, expected, &update)
                            .await;
                        expected = written.expect("checkpoint").lease_counter;
                    }
                    start.elapsed()
                }
            });
        });
        group.bench_function(format!("scan_{LEASES}_leases/{name}"), |b| {
            b.to_async(runtime).iter(|| {
                let store = store.clone();
                async move {
                    let leases = store.list_leases().await.expect("list");
                    assert_eq!(leases.len(), LEASES as usize);
                }
            });
        });
        group.bench_function(format!("renew_batch_of_{RENEW_BATCH}/{name}"), |b| {
            b.to_async(runtime).iter_custom(|iterations| {
                let store = store.clone();
                async move {
                    let mut renewals = Vec::new();
                    for index in 50..50 + RENEW_BATCH {
                        let lease = current(store.as_ref(), index).await;
                        renewals.push(Renewal {
                            lease_key: lease.lease_key.clone(),
                            expected_counter: lease.lease_counter,
                            owner: lease.lease_owner.expect("owned"),
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

/// One minute of one worker's steady state, replayed against the real store: the taker scans
/// every `take_interval`, the renewer renews every held lease every `renew_interval`, shard
/// sync and lease cleanup each scan once per `shard_sync_interval`, and the application
/// checkpoints each held shard `checkpoints_per_shard_per_minute` times. Returns the requests
/// the store actually sent, per activity.
async fn steady_state_minute(
    store: &DynamoDbLeaseStore,
    worker: &str,
    held: &[ShardId],
    checkpoints_per_shard_per_minute: u64,
) -> Vec<(&'static str, u64, u64)> {
    let config = LeaseConfig::default();
    let minute = Duration::from_secs(60).as_secs_f64();
    let rounds = |interval: Duration| (minute / interval.as_secs_f64()).round() as u64;
    let mut counts = Vec::new();

    let scans = rounds(config.take_interval()) + 2 * rounds(config.shard_sync_interval());
    let before = store.requests_sent();
    for _ in 0..scans {
        store.list_leases().await.expect("scan");
    }
    counts.push((
        "scans (taker + shard sync + cleanup)",
        scans,
        store.requests_sent() - before,
    ));

    let renew_rounds = rounds(config.renew_interval());
    let mut renewals = Vec::new();
    for shard in held {
        let lease = store.get_lease(shard).await.expect("get").expect("exists");
        renewals.push(Renewal {
            lease_key: shard.clone(),
            expected_counter: lease.lease_counter,
            owner: worker.to_owned(),
        });
    }
    let before = store.requests_sent();
    for _ in 0..renew_rounds {
        let results = store.renew_leases(&renewals).await.expect("renew");
        for (renewal, result) in renewals.iter_mut().zip(results) {
            renewal.expected_counter = result.expect("renewed").lease_counter;
        }
    }
    counts.push((
        "renewals",
        renew_rounds * held.len() as u64,
        store.requests_sent() - before,
    ));

    let before = store.requests_sent();
    let mut checkpoints = 0;
    for _ in 0..checkpoints_per_shard_per_minute {
        for renewal in &mut renewals {
            checkpoints += 1;
            let update = CheckpointUpdate {
                checkpoint: Some(ExtendedSequenceNumber::new(
                    SequenceNumber::from_u128(u128::from(renewal.expected_counter)),
                    0,
                )),
                pending_checkpoint: None,
                pending_checkpoint_state: None,
            };
            let written = store
                .update_checkpoint(
                    &renewal.lease_key,
                    worker,
                    renewal.expected_counter,
                    &update,
                )
                .await
                .expect("checkpoint");
            renewal.expected_counter = written.lease_counter;
        }
    }
    counts.push(("checkpoints", checkpoints, store.requests_sent() - before));
    counts
}

fn request_model(runtime: &tokio::runtime::Runtime, server: &LocalDynamoDb) {
    // A fleet of 4 workers on 100 shards: each holds 25 leases; the scans see all 100.
    let workers = 4u64;
    let per_worker = LEASES / workers;
    let checkpoints_per_shard_per_minute = 1;
    runtime.block_on(async {
        let store = DynamoDbLeaseStore::connect(dynamodb_options(server, "steady-state"))
            .await
            .expect("connect");
        let mut held = Vec::new();
        for index in 0..LEASES {
            let lease = realistic_lease(index);
            store.create_lease_if_absent(&lease).await.expect("create");
            if index < per_worker {
                store
                    .take_lease(&lease.lease_key, 0, "worker-a")
                    .await
                    .expect("take");
                held.push(lease.lease_key);
            }
        }
        let counts =
            steady_state_minute(&store, "worker-a", &held, checkpoints_per_shard_per_minute).await;
        println!(
            "\nDynamoDB requests per worker per minute at steady state \
             ({LEASES} shards, {workers} workers, {per_worker} leases each, \
             {checkpoints_per_shard_per_minute} checkpoint per shard per minute, default LeaseConfig):"
        );
        let mut total = 0;
        for (activity, operations, requests) in counts {
            println!("  {activity:<40} operations {operations:>5}  requests {requests:>5}");
            total += requests;
        }
        println!("  {:<40} {total:>23}", "total requests per worker per minute");
    });
}

fn main() {
    let server = match LocalDynamoDb::start() {
        Ok(Some(server)) => server,
        Ok(None) => return,
        Err(error) => panic!("local dynamodb did not start: {error}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stores = runtime.block_on(stores(&server));
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
        .configure_from_args();
    latency(&mut criterion, &runtime, &stores);
    criterion.final_summary();
    request_model(&runtime, &server);
}
