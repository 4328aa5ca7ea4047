//! An in-process fleet: an embedded broker, one lease table, and workers a test can add,
//! crash, pause, resume and shut down while it produces records and reshards.

use super::pausable::{
    PausableLeaseStore, PausableProcessorFactory, PausableStreamClient, PauseGate,
};
use super::recording::{FaultPlan, HoldPlan, ObservationLog, RecordingProcessorFactory};
use super::validator::{
    ObservationKind, ProducedRecord, ValidationReport, ValidationRules, validate,
};
use crate::client::EmbeddedStreamClient;
use crate::config::{FailurePolicy, SchedulerConfig};
use crate::retrieval::RetrievalMode;
use crate::scheduler::{Scheduler, SchedulerHandle};
use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, MergeShardsInput, PutRecordsInput,
    PutRecordsRequestEntry, SplitShardInput, StreamRef, ThroughputLimits,
};
use bytes::Bytes;
use kcl_core::clock::SharedClock;
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::{HashKey, KinesisError, ShardId};
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::InitialPosition;
use kcl_core::stream_client::StreamClient;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a [`Fleet`] is set up.
#[derive(Clone)]
pub struct FleetConfig {
    /// The application name.
    pub application_name: String,
    /// The stream (created with `shard_count` shards).
    pub stream_name: String,
    /// Initial shard count.
    pub shard_count: u32,
    /// Lease timings.
    pub lease: LeaseConfig,
    /// Polling or fan-out.
    pub retrieval: RetrievalMode,
    /// Processor failure policy.
    pub failure_policy: FailurePolicy,
    /// Checkpoint every this many batches (0 = only on shutdown/shard end).
    pub checkpoint_every: u32,
    /// Injected processor failures.
    pub faults: Vec<FaultPlan>,
    /// The clock of the broker and the workers.
    pub clock: SharedClock,
    /// How often a child polls for its parents.
    pub parent_shard_poll_interval: Duration,
}

impl FleetConfig {
    /// A fleet with fast timings (failover 1 s), polling every 50 ms when idle.
    pub fn fast(clock: SharedClock, shard_count: u32) -> Self {
        let lease = LeaseConfig::builder()
            .failover_time(Duration::from_secs(1))
            .shard_sync_interval(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        FleetConfig {
            application_name: "fleet-app".to_owned(),
            stream_name: "fleet-stream".to_owned(),
            shard_count,
            lease,
            retrieval: RetrievalMode::Polling(crate::retrieval::PollingConfig {
                max_records: 1_000,
                idle_time_between_reads: Duration::from_millis(50),
                ..Default::default()
            }),
            failure_policy: FailurePolicy::RetryForever,
            checkpoint_every: 1,
            faults: Vec::new(),
            clock,
            parent_shard_poll_interval: Duration::from_millis(100),
        }
    }
}

struct FleetWorker {
    handle: SchedulerHandle,
    task: tokio::task::JoinHandle<()>,
    gate: PauseGate,
    hold: HoldPlan,
}

/// A fleet of workers over one embedded broker and one lease table.
pub struct Fleet {
    config: FleetConfig,
    broker: Broker,
    store: Arc<dyn LeaseStore>,
    client: Arc<dyn StreamClient>,
    log: ObservationLog,
    produced: Mutex<Vec<ProducedRecord>>,
    workers: Mutex<BTreeMap<String, FleetWorker>>,
    next_record: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("application_name", &self.application_name)
            .field("stream_name", &self.stream_name)
            .field("shard_count", &self.shard_count)
            .field("lease", &self.lease)
            .field("retrieval", &self.retrieval)
            .field("failure_policy", &self.failure_policy)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("faults", &self.faults)
            .field(
                "parent_shard_poll_interval",
                &self.parent_shard_poll_interval,
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config)
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Creates the broker (throughput limits off) and the stream, using `store` as the lease
    /// table (in memory or a SQLite file).
    pub async fn new(
        config: FleetConfig,
        store: Arc<dyn LeaseStore>,
    ) -> Result<Self, KinesisError> {
        let mut broker_config = BrokerConfig::default().with_clock(config.clock.clone());
        broker_config.throughput = ThroughputLimits::off();
        let broker = Broker::new(broker_config);
        let client: Arc<dyn StreamClient> = Arc::new(EmbeddedStreamClient::new(broker.clone()));
        Self::with_client(config, store, broker, client).await
    }

    /// Like [`Fleet::new`] with a given broker and the client workers read it through (e.g. an
    /// HTTP client to a server over the same broker).
    pub async fn with_client(
        config: FleetConfig,
        store: Arc<dyn LeaseStore>,
        broker: Broker,
        client: Arc<dyn StreamClient>,
    ) -> Result<Self, KinesisError> {
        broker
            .create_stream(CreateStreamInput {
                stream_name: config.stream_name.clone(),
                shard_count: Some(config.shard_count),
                ..Default::default()
            })
            .await?;
        Ok(Fleet {
            config,
            broker,
            store,
            client,
            log: ObservationLog::new(),
            produced: Mutex::new(Vec::new()),
            workers: Mutex::new(BTreeMap::new()),
            next_record: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The lease table.
    pub fn lease_store(&self) -> &Arc<dyn LeaseStore> {
        &self.store
    }

    /// What every processor observed so far.
    pub fn log(&self) -> &ObservationLog {
        &self.log
    }

    /// Every observation except processed records, one per line with its index, shard, worker
    /// and session: what a failed validation needs next to its report.
    pub fn lifecycle_trail(&self) -> String {
        self.log.inspect(|entries| {
            let mut trail = String::new();
            for (index, (_, observation)) in entries.iter().enumerate() {
                if matches!(observation.kind, ObservationKind::Processed { .. }) {
                    continue;
                }
                trail.push_str(&format!(
                    "{index} {} {} session {} {:?}\n",
                    observation.shard_id,
                    observation.worker_id,
                    observation.session,
                    observation.kind
                ));
            }
            trail
        })
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FleetWorker>> {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a worker named `worker_id`.
    pub fn add_worker(&self, worker_id: &str) -> SchedulerHandle {
        let gate = PauseGate::new();
        let store: Arc<dyn LeaseStore> =
            Arc::new(PausableLeaseStore::new(self.store.clone(), gate.clone()));
        let client: Arc<dyn StreamClient> =
            Arc::new(PausableStreamClient::new(self.client.clone(), gate.clone()));
        let mut config = SchedulerConfig::new(
            self.config.application_name.clone(),
            self.config.stream_name.clone(),
            worker_id,
            store,
            client,
        );
        config.initial_position = InitialPosition::TrimHorizon;
        config.lease = self.config.lease.clone();
        config.retrieval = self.config.retrieval.clone();
        config.failure_policy = self.config.failure_policy;
        config.min_retry_backoff = Duration::from_millis(20);
        config.max_retry_backoff = Duration::from_millis(200);
        config.parent_shard_poll_interval = self.config.parent_shard_poll_interval;
        config.metrics_interval = None;
        config.clock = self.config.clock.clone();
        let hold = HoldPlan::new();
        let factory = RecordingProcessorFactory {
            log: self.log.clone(),
            worker_id: worker_id.to_owned(),
            checkpoint_every: self.config.checkpoint_every,
            faults: self.config.faults.clone(),
            hold: Some(hold.clone()),
        };
        let factory = PausableProcessorFactory::new(Arc::new(factory), gate.clone());
        let scheduler = match Scheduler::new(config, factory) {
            Ok(scheduler) => scheduler,
            Err(error) => panic!("fleet worker config is valid: {error}"),
        };
        let handle = scheduler.handle();
        let task = tokio::spawn(async move {
            if let Err(error) = scheduler.run().await {
                tracing::error!(%error, "fleet worker failed");
            }
        });
        self.workers().insert(
            worker_id.to_owned(),
            FleetWorker {
                handle: handle.clone(),
                task,
                gate,
                hold,
            },
        );
        handle
    }

    /// Crashes a worker: all its tasks stop at once, no callbacks, no lease released.
    pub async fn crash(&self, worker_id: &str) {
        let worker = self.workers().remove(worker_id);
        if let Some(worker) = worker {
            worker.task.abort();
            let _ = worker.task.await;
        }
    }

    /// Shuts a worker down gracefully and waits until it stopped.
    pub async fn shutdown(&self, worker_id: &str) {
        let worker = self.workers().remove(worker_id);
        if let Some(worker) = worker {
            worker.handle.shutdown().await;
            let _ = worker.task.await;
        }
    }

    /// Shuts every worker down gracefully.
    pub async fn shutdown_all(&self) {
        let ids: Vec<String> = self.workers().keys().cloned().collect();
        for id in ids {
            self.shutdown(&id).await;
        }
    }

    /// Freezes a worker: its lease-store and stream calls, timers and callbacks block.
    pub fn pause(&self, worker_id: &str) {
        if let Some(worker) = self.workers().get(worker_id) {
            worker.gate.pause();
        }
    }

    /// The hold plan of a worker's processors (arm it to block the next batch mid-way).
    pub fn hold(&self, worker_id: &str) -> Option<HoldPlan> {
        self.workers()
            .get(worker_id)
            .map(|worker| worker.hold.clone())
    }

    /// Unfreezes a paused worker.
    pub fn resume(&self, worker_id: &str) {
        if let Some(worker) = self.workers().get(worker_id) {
            worker.gate.resume();
        }
    }

    /// The running workers' handles.
    pub fn handles(&self) -> Vec<SchedulerHandle> {
        self.workers()
            .values()
            .map(|worker| worker.handle.clone())
            .collect()
    }

    /// Puts `count` records with unique payloads over `keys` partition keys.
    pub async fn produce(&self, count: usize, keys: usize) -> Result<(), KinesisError> {
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self
                .next_record
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let partition_key = format!("key-{}", id % keys.max(1) as u64);
            entries.push(ProducedRecord {
                partition_key,
                data: Bytes::from(format!("record-{id:08}")),
            });
        }
        for chunk in entries.chunks(500) {
            let mut pending: Vec<ProducedRecord> = chunk.to_vec();
            while !pending.is_empty() {
                let output = self
                    .broker
                    .put_records(PutRecordsInput {
                        stream: StreamRef::name(&self.config.stream_name),
                        records: pending
                            .iter()
                            .map(|record| PutRecordsRequestEntry {
                                data: record.data.clone(),
                                partition_key: record.partition_key.clone(),
                                explicit_hash_key: None,
                            })
                            .collect(),
                    })
                    .await?;
                let mut retry = Vec::new();
                let mut produced = self
                    .produced
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (record, result) in pending.into_iter().zip(output.records) {
                    if result.error_code.is_some() {
                        retry.push(record);
                    } else {
                        produced.push(record);
                    }
                }
                pending = retry;
            }
        }
        Ok(())
    }

    /// Records produced by other means (e.g. KPL aggregates) to be validated.
    pub fn note_produced(&self, records: impl IntoIterator<Item = ProducedRecord>) {
        self.produced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(records);
    }

    /// How many records were produced.
    pub fn produced_count(&self) -> usize {
        self.produced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Splits `shard_id` at the middle of its hash range.
    pub async fn split(&self, shard_id: &ShardId) -> Result<(), KinesisError> {
        let shards = self
            .client
            .list_shards(&self.config.stream_name, None)
            .await?;
        let Some(shard) = shards.iter().find(|shard| &shard.shard_id == shard_id) else {
            return Err(KinesisError::new(
                kcl_core::kinesis::KinesisErrorKind::ResourceNotFound,
                "no such shard",
            ));
        };
        let range = shard.hash_key_range;
        let middle: HashKey =
            range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2 + 1;
        self.broker
            .split_shard(SplitShardInput {
                stream: StreamRef::name(&self.config.stream_name),
                shard_to_split: shard_id.clone(),
                new_starting_hash_key: middle.to_string(),
            })
            .await
    }

    /// Merges two adjacent shards.
    pub async fn merge(&self, shard_id: &ShardId, adjacent: &ShardId) -> Result<(), KinesisError> {
        self.broker
            .merge_shards(MergeShardsInput {
                stream: StreamRef::name(&self.config.stream_name),
                shard_to_merge: shard_id.clone(),
                adjacent_shard_to_merge: adjacent.clone(),
            })
            .await
    }

    /// The open shards, sorted by hash range.
    pub async fn open_shards(&self) -> Result<Vec<ShardId>, KinesisError> {
        let mut shards: Vec<_> = self
            .client
            .list_shards(&self.config.stream_name, None)
            .await?
            .into_iter()
            .filter(|shard| !shard.is_closed())
            .collect();
        shards.sort_by_key(|shard| shard.hash_key_range.starting_hash_key);
        Ok(shards.into_iter().map(|shard| shard.shard_id).collect())
    }

    /// Leases held per worker, from the lease table (unfinished leases only).
    pub async fn lease_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for lease in self.store.list_leases().await.unwrap_or_default() {
            if let (Some(owner), false) = (lease.lease_owner, lease.checkpoint.is_shard_end()) {
                *counts.entry(owner).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Waits (polling every 20 ms of tokio time) until `condition` holds or `deadline` passes.
    /// Returns whether it held.
    pub async fn wait_until<F, Fut>(&self, deadline: Duration, mut condition: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            if condition().await {
                return true;
            }
            if tokio::time::Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every produced record was processed at least once.
    pub async fn wait_all_processed(&self, deadline: Duration) -> bool {
        let log = self.log.clone();
        let target = self.produced_count();
        self.wait_until(deadline, || {
            let log = log.clone();
            async move { log.unique_processed() >= target }
        })
        .await
    }

    /// Validates everything observed against everything produced.
    pub async fn validate(&self, rules: ValidationRules) -> ValidationReport {
        let produced = self
            .produced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut parents: HashMap<ShardId, Vec<ShardId>> = HashMap::new();
        for shard in self
            .client
            .list_shards(&self.config.stream_name, None)
            .await
            .unwrap_or_default()
        {
            parents.insert(
                shard.shard_id.clone(),
                shard.parent_shard_ids().cloned().collect(),
            );
        }
        validate(&produced, &self.log.snapshot(), &parents, rules)
    }
}
