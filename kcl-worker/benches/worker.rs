//! End-to-end worker benchmarks over the in-process broker (real time, in-memory lease store):
//!
//! 1. throughput: a no-op processor over 8 shards, checkpointing every batch;
//! 2. put → process latency at 1,000 records/s with enhanced fan-out (push) retrieval;
//! 3. failover time after a crash with a failover time of 1 s;
//! 4. the cost of metrics: throughput with a Prometheus recorder off and on, interleaved.
//!
//! `cargo bench -p kcl-worker --features embedded --bench worker` (set `KCL_BENCH_QUICK=1` for a short run,
//! `KCL_BENCH_ONLY=throughput|latency|failover|metrics` for one of them).

use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, PutRecordInput, PutRecordsInput,
    PutRecordsRequestEntry, StreamRef, ThroughputLimits,
};
use bytes::Bytes;
use kcl_core::clock::SystemClock;
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::ShardId;
use kcl_core::lease_store::LeaseStore;
use kcl_core::memory::InMemoryLeaseStore;
use kcl_worker::checkpointer::RecordCheckpointer;
use kcl_worker::client::EmbeddedStreamClient;
use kcl_worker::config::SchedulerConfig;
use kcl_worker::processor::{ProcessRecordsInput, ProcessorError, ShardRecordProcessor};
use kcl_worker::retrieval::{FanOutConfig, PollingConfig, RetrievalMode};
use kcl_worker::scheduler::{Scheduler, SchedulerHandle};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Callback = Arc<dyn Fn(&ShardId, &ProcessRecordsInput) + Send + Sync>;

struct BenchProcessor {
    shard_id: ShardId,
    on_batch: Callback,
}

#[async_trait::async_trait]
impl ShardRecordProcessor for BenchProcessor {
    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        (self.on_batch)(&self.shard_id, &input);
        input.checkpointer.checkpoint().await?;
        Ok(())
    }
    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        Ok(checkpointer.checkpoint().await?)
    }
}

fn broker() -> Broker {
    let mut config = BrokerConfig::default().with_clock(SystemClock::shared());
    config.throughput = ThroughputLimits::off();
    Broker::new(config)
}

async fn create_stream(broker: &Broker, name: &str, shards: u32) {
    broker
        .create_stream(CreateStreamInput {
            stream_name: name.to_owned(),
            shard_count: Some(shards),
            ..Default::default()
        })
        .await
        .expect("create stream");
}

fn start_worker(
    broker: &Broker,
    store: Arc<dyn LeaseStore>,
    stream: &str,
    worker_id: &str,
    lease: LeaseConfig,
    retrieval: RetrievalMode,
    on_batch: Callback,
) -> (SchedulerHandle, tokio::task::JoinHandle<()>) {
    let mut config = SchedulerConfig::new(
        "bench",
        stream,
        worker_id,
        store,
        Arc::new(EmbeddedStreamClient::new(broker.clone())),
    );
    config.lease = lease;
    config.retrieval = retrieval;
    config.metrics_interval = None;
    let scheduler = Scheduler::new(config, move |shard_id: &ShardId| {
        Box::new(BenchProcessor {
            shard_id: shard_id.clone(),
            on_batch: on_batch.clone(),
        }) as Box<dyn ShardRecordProcessor>
    })
    .expect("scheduler");
    let handle = scheduler.handle();
    let task = tokio::spawn(async move {
        scheduler.run().await.expect("run");
    });
    (handle, task)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn throughput(records: usize, runs: usize) {
    let mut rates = Vec::new();
    for run in 0..runs {
        rates.push(throughput_once(&format!("throughput-{run}"), records).await);
    }
    println!(
        "THROUGHPUT median: {:.0} records/s (8 shards, 100-byte records, no-op processor, checkpoint every batch)",
        median(&mut rates)
    );
}

/// One throughput run on a new broker and stream `stream`; returns records/s.
async fn throughput_once(stream: &str, records: usize) -> f64 {
    let broker = broker();
    create_stream(&broker, stream, 8).await;
    let payload = Bytes::from(vec![b'x'; 100]);
    let produce_started = Instant::now();
    for batch in 0..records / 500 {
        let entries = (0..500)
            .map(|i| PutRecordsRequestEntry {
                data: payload.clone(),
                partition_key: format!("pk-{}", batch * 500 + i),
                explicit_hash_key: None,
            })
            .collect();
        broker
            .put_records(PutRecordsInput {
                stream: StreamRef::name(stream),
                records: entries,
            })
            .await
            .expect("put");
    }
    let produce_secs = produce_started.elapsed().as_secs_f64();
    let processed = Arc::new(AtomicUsize::new(0));
    let counter = processed.clone();
    let on_batch: Callback = Arc::new(move |_, input| {
        counter.fetch_add(input.records.len(), Ordering::Relaxed);
    });
    let retrieval = RetrievalMode::Polling(PollingConfig {
        max_records: 10_000,
        idle_time_between_reads: Duration::from_millis(200),
        ..Default::default()
    });
    let started = Instant::now();
    let (handle, task) = start_worker(
        &broker,
        Arc::new(InMemoryLeaseStore::new()),
        stream,
        "w1",
        LeaseConfig::default(),
        retrieval,
        on_batch,
    );
    while processed.load(Ordering::Relaxed) < records {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let checkpoints = handle.metrics().checkpoints;
    handle.shutdown().await;
    let _ = task.await;
    let rate = records as f64 / secs;
    println!(
        "{stream}: {records} records in {secs:.3} s = {rate:.0} records/s ({checkpoints} checkpoints; produced at {:.0} records/s)",
        records as f64 / produce_secs
    );
    rate
}

/// A recorder that exports through Prometheus while switched on and hands out no-op handles
/// while off: series are registered when a scheduler starts, so a run started while off
/// records nothing, like a binary without `--metrics-listen`.
#[derive(Debug)]
struct SwitchableRecorder {
    on: std::sync::atomic::AtomicBool,
    inner: metrics_exporter_prometheus::PrometheusRecorder,
}

impl metrics::Recorder for SwitchableRecorder {
    fn describe_counter(
        &self,
        key: metrics::KeyName,
        unit: Option<metrics::Unit>,
        description: metrics::SharedString,
    ) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(
        &self,
        key: metrics::KeyName,
        unit: Option<metrics::Unit>,
        description: metrics::SharedString,
    ) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(
        &self,
        key: metrics::KeyName,
        unit: Option<metrics::Unit>,
        description: metrics::SharedString,
    ) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(
        &self,
        key: &metrics::Key,
        metadata: &metrics::Metadata<'_>,
    ) -> metrics::Counter {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_counter(key, metadata)
        } else {
            metrics::Counter::noop()
        }
    }
    fn register_gauge(
        &self,
        key: &metrics::Key,
        metadata: &metrics::Metadata<'_>,
    ) -> metrics::Gauge {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_gauge(key, metadata)
        } else {
            metrics::Gauge::noop()
        }
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        metadata: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_histogram(key, metadata)
        } else {
            metrics::Histogram::noop()
        }
    }
}

/// Throughput with the Prometheus recorder off and on, interleaved (off, on, off, on, ...) in
/// one process so both see the same machine load; prints both medians and their ratio.
async fn metrics_cost(records: usize, pairs: usize) {
    let recorder = std::sync::Arc::new(SwitchableRecorder {
        on: std::sync::atomic::AtomicBool::new(false),
        inner: metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[0.0001, 0.001, 0.01, 0.1, 1.0])
            .expect("buckets")
            .build_recorder(),
    });
    let handle = recorder.inner.handle();
    // `metrics` implements `Recorder` for `Arc<R>`: the bench keeps a handle to switch it.
    metrics::set_global_recorder(recorder.clone()).expect("install the recorder");
    // A discarded warm-up run (allocator, page cache, CPU frequency).
    throughput_once("metrics-warm-up", records).await;
    let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        recorder.on.store(false, Ordering::Relaxed);
        let rate_off = throughput_once(&format!("metrics-off-{pair}"), records).await;
        recorder.on.store(true, Ordering::Relaxed);
        let rate_on = throughput_once(&format!("metrics-on-{pair}"), records).await;
        off.push(rate_off);
        on.push(rate_on);
        ratios.push(rate_on / rate_off);
    }
    let exported = handle.render();
    let processed_series = exported
        .lines()
        .filter(|line| line.starts_with("kcl_records_processed_total{"))
        .count();
    let (off, on) = (median(&mut off), median(&mut on));
    println!(
        "METRICS COST median: off {off:.0} records/s, on {on:.0} records/s, on/off of the medians = {:.3}, median of the per-pair on/off ratios = {:.3} ({processed_series} kcl_records_processed_total series exported)",
        on / off,
        median(&mut ratios)
    );
}

async fn latency(seconds: u64) {
    let broker = broker();
    create_stream(&broker, "latency", 1).await;
    let origin = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sink = samples.clone();
    let on_batch: Callback = Arc::new(move |_, input| {
        let now = origin.elapsed();
        let mut sink = sink.lock().expect("lock");
        for record in &input.records {
            let text = std::str::from_utf8(&record.data).unwrap_or("0");
            let sent = Duration::from_nanos(text.parse().unwrap_or(0));
            sink.push(now.saturating_sub(sent));
        }
    });
    let (handle, task) = start_worker(
        &broker,
        Arc::new(InMemoryLeaseStore::new()),
        "latency",
        "w1",
        LeaseConfig::default(),
        RetrievalMode::FanOut(FanOutConfig::default()),
        on_batch,
    );
    // Wait until the subscription delivers.
    let warmup = Arc::new(AtomicU64::new(0));
    while samples.lock().expect("lock").is_empty() {
        let sent = origin.elapsed().as_nanos().to_string();
        broker
            .put_record(PutRecordInput {
                stream: StreamRef::name("latency"),
                data: Bytes::from(sent),
                partition_key: "pk".to_owned(),
                explicit_hash_key: None,
                sequence_number_for_ordering: None,
            })
            .await
            .expect("put");
        warmup.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    samples.lock().expect("lock").clear();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let total = seconds * 1_000;
    for _ in 0..total {
        ticker.tick().await;
        let sent = origin.elapsed().as_nanos().to_string();
        broker
            .put_record(PutRecordInput {
                stream: StreamRef::name("latency"),
                data: Bytes::from(sent),
                partition_key: "pk".to_owned(),
                explicit_hash_key: None,
                sequence_number_for_ordering: None,
            })
            .await
            .expect("put");
    }
    while (samples.lock().expect("lock").len() as u64) < total {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.shutdown().await;
    let _ = task.await;
    let mut sorted = samples.lock().expect("lock").clone();
    sorted.sort();
    println!(
        "LATENCY put→process with fan-out at 1,000 records/s over {seconds} s ({} samples): p50 {:?}, p99 {:?}, max {:?}",
        sorted.len(),
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1]
    );
}

async fn failover(runs: usize) {
    let lease = LeaseConfig::builder()
        .failover_time(Duration::from_secs(1))
        .build()
        .expect("lease config");
    let mut times = Vec::new();
    for run in 0..runs {
        let broker = broker();
        let stream = format!("failover-{run}");
        create_stream(&broker, &stream, 4).await;
        let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
        let seen: Arc<Mutex<Vec<(String, ShardId, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for worker_id in ["w1", "w2"] {
            let sink = seen.clone();
            let id = worker_id.to_owned();
            let on_batch: Callback = Arc::new(move |shard_id, _| {
                sink.lock()
                    .expect("lock")
                    .push((id.clone(), shard_id.clone(), Instant::now()));
            });
            let retrieval = RetrievalMode::Polling(PollingConfig {
                idle_time_between_reads: Duration::from_millis(20),
                ..Default::default()
            });
            workers.push(start_worker(
                &broker,
                store.clone(),
                &stream,
                worker_id,
                lease.clone(),
                retrieval,
                on_batch,
            ));
        }
        // Wait for a 2/2 balance.
        loop {
            let leases = store.list_leases().await.expect("leases");
            let w1 = leases.iter().filter(|l| l.is_owned_by("w1")).count();
            let w2 = leases.iter().filter(|l| l.is_owned_by("w2")).count();
            if w1 == 2 && w2 == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let victim_shards: Vec<ShardId> = store
            .list_leases()
            .await
            .expect("leases")
            .into_iter()
            .filter(|l| l.is_owned_by("w1"))
            .map(|l| l.lease_key)
            .collect();
        let (_, w1_task) = workers.remove(0);
        let crashed_at = Instant::now();
        w1_task.abort();
        let _ = w1_task.await;
        // Keep producing so the survivor shows it processes the moved shards.
        let mut n = 0u64;
        let recovered = loop {
            n += 1;
            let entries = (0..16)
                .map(|i| PutRecordsRequestEntry {
                    data: Bytes::from_static(b"x"),
                    partition_key: format!("k{n}-{i}"),
                    explicit_hash_key: None,
                })
                .collect();
            broker
                .put_records(PutRecordsInput {
                    stream: StreamRef::name(&stream),
                    records: entries,
                })
                .await
                .expect("put");
            let done = victim_shards.iter().all(|shard| {
                seen.lock()
                    .expect("lock")
                    .iter()
                    .any(|(worker, seen_shard, at)| {
                        worker == "w2" && seen_shard == shard && *at > crashed_at
                    })
            });
            if done {
                break crashed_at.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        println!("failover run {run}: shards resumed on the survivor after {recovered:?}");
        times.push(recovered);
        let (handle, task) = workers.remove(0);
        handle.shutdown().await;
        let _ = task.await;
    }
    times.sort();
    println!(
        "FAILOVER (failover time 1 s, {runs} runs): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
}

fn main() {
    let quick = std::env::var_os("KCL_BENCH_QUICK").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (records, runs) = if quick { (200_000, 1) } else { (2_000_000, 3) };
        let only = std::env::var("KCL_BENCH_ONLY").unwrap_or_default();
        if only.is_empty() || only == "throughput" {
            throughput(records, runs).await;
        }
        if only.is_empty() || only == "latency" {
            latency(if quick { 2 } else { 10 }).await;
        }
        if only.is_empty() || only == "failover" {
            failover(if quick { 3 } else { 20 }).await;
        }
        if only.is_empty() || only == "metrics" {
            metrics_cost(records, if quick { 2 } else { 9 }).await;
        }
    });
}
