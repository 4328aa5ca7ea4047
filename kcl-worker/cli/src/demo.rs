//! `kcl demo`: a whole fleet in one process, on an embedded broker and a SQLite lease file.
//!
//! 1. starts a broker and creates a stream, then produces continuously;
//! 2. starts the workers (all sharing one SQLite lease file in a temp dir);
//! 3. crashes the busiest worker (its task is dropped: no callbacks, no lease released) and
//!    measures how long until another worker processes each of its shards;
//! 4. splits a shard while records keep flowing;
//! 5. stops producing, waits until everything produced was processed, and shuts the remaining
//!    workers down gracefully;
//! 6. prints a verdict: produced / processed / duplicates / lost, failover time.
//!
//! A live view (shard → owner, checkpoint, lag) is printed every second unless `quiet`.

use crate::leases::{checkpoint_lag, lease_rows};
use anyhow::Context;
use broker::engine::{Broker, BrokerConfig, CreateStreamInput, SplitShardInput, StreamRef};
use bytes::Bytes;
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::{ShardFilter, ShardId};
use kcl_core::lease_store::LeaseStore;
use kcl_core::sqlite::{SqliteLeaseStore, SqliteOptions};
use kcl_core::stream_client::StreamClient;
use kcl_worker::config::SchedulerConfig;
use kcl_worker::producer::{EmbeddedTarget, Producer, ProducerConfig, generated_entry};
use kcl_worker::retrieval::{PollingConfig, RetrievalMode};
use kcl_worker::scheduler::{Scheduler, SchedulerHandle};
use kcl_worker::testing::{
    Observation, ObservationKind, ObservationLog, ProducedRecord, RecordingProcessorFactory,
    ValidationReport, ValidationRules, validate,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Settings of a demo run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Shards of the stream.
    pub shards: u32,
    /// Workers.
    pub workers: usize,
    /// Records per second produced.
    pub rate: u32,
    /// Lease failover time.
    pub failover: Duration,
    /// Length of the warm-up and of the phase after the split.
    pub phase: Duration,
    /// Print the live view every second.
    pub live_view: bool,
    /// Serve the live status page and `/metrics` here while the demo runs.
    pub serve: Option<std::net::SocketAddr>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            shards: 4,
            workers: 3,
            rate: 2000,
            failover: Duration::from_secs(2),
            phase: Duration::from_secs(5),
            live_view: true,
            serve: None,
        }
    }
}

/// What the demo observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoVerdict {
    /// Records acknowledged by the broker.
    pub produced: usize,
    /// Records handed to processors, counting re-deliveries.
    pub processed: usize,
    /// Distinct produced records processed at least once.
    pub unique_processed: usize,
    /// Re-deliveries (processed − distinct).
    pub duplicates: usize,
    /// Produced records never processed.
    pub lost: usize,
    /// The testing toolkit's validation of everything the processors observed: per-shard and
    /// per-key order, children only after their parents, no stale checkpoint, nothing lost.
    pub validation: ValidationReport,
    /// The crashed worker and the shards it held.
    pub crashed: Option<(String, Vec<ShardId>)>,
    /// Crash → first record processed by a new owner, for the first and the last of the crashed
    /// worker's shards to resume.
    pub failover: Option<(Duration, Duration)>,
    /// The split shard and its children.
    pub split: Option<(ShardId, Vec<ShardId>)>,
    /// How long the graceful shutdown of the remaining workers took.
    pub graceful_shutdown: Duration,
}

impl DemoVerdict {
    /// Whether nothing was lost and the validation found no violation (nothing out of order,
    /// no child before its parent, no stale checkpoint).
    pub fn is_success(&self) -> bool {
        self.lost == 0 && self.validation.is_ok()
    }

    /// The verdict as text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        text.push_str("==== verdict ====\n");
        text.push_str(&format!("records produced   {}\n", self.produced));
        text.push_str(&format!(
            "records processed  {} ({} distinct)\n",
            self.processed, self.unique_processed
        ));
        text.push_str(&format!(
            "duplicates         {} (re-delivered after a lease changed hands: the uncheckpointed tail)\n",
            self.duplicates
        ));
        text.push_str(&format!("lost               {}\n", self.lost));
        let violations = self.validation.errors.len() - self.validation.lost;
        text.push_str(&format!(
            "violations         {violations} (order per shard and per key, children after parents, stale checkpoints)\n"
        ));
        for error in self
            .validation
            .errors
            .iter()
            .filter(|error| !error.ends_with("was never processed"))
            .take(5)
        {
            text.push_str(&format!("                   {error}\n"));
        }
        if let Some((worker, shards)) = &self.crashed {
            let names: Vec<_> = shards.iter().map(ShardId::to_string).collect();
            text.push_str(&format!(
                "crashed            {worker} holding [{}]\n",
                names.join(", ")
            ));
        }
        match self.failover {
            Some((first, all)) => text.push_str(&format!(
                "failover time      first shard resumed after {:.2} s, all after {:.2} s\n",
                first.as_secs_f64(),
                all.as_secs_f64()
            )),
            None => text.push_str("failover time      not measured\n"),
        }
        if let Some((parent, children)) = &self.split {
            let names: Vec<_> = children.iter().map(ShardId::to_string).collect();
            text.push_str(&format!(
                "split              {parent} -> [{}]\n",
                names.join(", ")
            ));
        }
        text.push_str(&format!(
            "graceful shutdown  {:.2} s\n",
            self.graceful_shutdown.as_secs_f64()
        ));
        text.push_str(if self.is_success() {
            "RESULT: OK - every produced record was processed\n"
        } else {
            "RESULT: FAILED\n"
        });
        text
    }
}

/// The first time each shard's records were processed, by observation.
fn processed(log: &[(Instant, Observation)]) -> impl Iterator<Item = (Instant, &Observation)> {
    log.iter().filter_map(|(at, observation)| {
        matches!(observation.kind, ObservationKind::Processed { .. }).then_some((*at, observation))
    })
}

struct DemoWorker {
    handle: SchedulerHandle,
    task: JoinHandle<Result<(), kcl_worker::WorkerError>>,
}

const APPLICATION: &str = "kcl-demo";
const STREAM: &str = "kcl-demo-stream";

struct Demo {
    config: DemoConfig,
    started: Instant,
    broker: Broker,
    client: Arc<dyn StreamClient>,
    store: Arc<dyn LeaseStore>,
    log: ObservationLog,
    produced: Arc<Mutex<Vec<ProducedRecord>>>,
}

impl Demo {
    fn say(&self, message: &str) {
        println!("[{:6.2}s] {message}", self.started.elapsed().as_secs_f64());
    }

    fn start_worker(&self, index: usize) -> anyhow::Result<(String, DemoWorker)> {
        let worker_id = format!("worker-{index}");
        let mut config = SchedulerConfig::new(
            APPLICATION,
            STREAM,
            worker_id.clone(),
            self.store.clone(),
            self.client.clone(),
        );
        config.lease = LeaseConfig::builder()
            .failover_time(self.config.failover)
            .build()
            .context("demo lease configuration")?;
        config.retrieval = RetrievalMode::Polling(PollingConfig {
            idle_time_between_reads: Duration::from_millis(100),
            ..PollingConfig::default()
        });
        config.parent_shard_poll_interval = Duration::from_millis(200);
        config.metrics_interval = None;
        let factory = RecordingProcessorFactory {
            log: self.log.clone(),
            worker_id: worker_id.clone(),
            checkpoint_every: 1,
            faults: Vec::new(),
            hold: None,
        };
        let scheduler = Scheduler::new(config, factory)?;
        let handle = scheduler.handle();
        let task = tokio::spawn(scheduler.run());
        Ok((worker_id, DemoWorker { handle, task }))
    }

    fn start_producer(&self, stop: CancellationToken) -> JoinHandle<anyhow::Result<()>> {
        let producer = Producer::new(
            Arc::new(EmbeddedTarget::new(self.broker.clone(), STREAM)),
            ProducerConfig::default(),
        );
        let produced = self.produced.clone();
        let per_tick = (self.config.rate / 10).max(1);
        tokio::spawn(async move {
            let mut next_index = 0u64;
            let mut ticker = tokio::time::interval(Duration::from_millis(100));
            while !stop.is_cancelled() {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = stop.cancelled() => break,
                }
                let entries: Vec<_> = (next_index..next_index + u64::from(per_tick))
                    .map(|index| generated_entry(index, 64, 64))
                    .collect();
                next_index += u64::from(per_tick);
                let stored = producer.put_all(entries, |_| {}).await?;
                let mut produced = produced
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                produced.extend(stored.into_iter().map(|record| record.entry));
            }
            Ok(())
        })
    }

    async fn print_live_view(&self) -> anyhow::Result<()> {
        let leases = self.store.list_leases().await?;
        let mut rows = lease_rows(&leases);
        for (row, lease) in rows.iter_mut().zip({
            let mut sorted = leases.clone();
            sorted.sort_by(|a, b| a.lease_key.cmp(&b.lease_key));
            sorted
        }) {
            row.lag_millis = checkpoint_lag(self.client.as_ref(), STREAM, &lease).await;
        }
        let produced = self
            .produced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len();
        let processed = self.log.inspect(|log| processed(log).count());
        self.say(&format!("produced {produced}, processed {processed}"));
        for row in rows {
            let checkpoint = if row.checkpoint.len() > 14 {
                format!("…{}", &row.checkpoint[row.checkpoint.len() - 12..])
            } else {
                row.checkpoint.clone()
            };
            println!(
                "           {:<22} {:<10} {:<14} {:<9} lag {} ms",
                row.shard_id,
                row.owner.as_deref().unwrap_or("-"),
                checkpoint,
                row.state,
                row.lag_millis
                    .map_or_else(|| "?".to_owned(), |lag| lag.to_string())
            );
        }
        Ok(())
    }

    /// Waits `duration`, printing the live view every second.
    async fn run_for(&self, duration: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + duration;
        while tokio::time::Instant::now() < deadline {
            let step = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(Duration::from_secs(1));
            tokio::time::sleep(step).await;
            if self.config.live_view {
                self.print_live_view().await?;
            }
        }
        Ok(())
    }

    /// Waits until `condition` holds, checking every 100 ms, for at most `deadline`.
    async fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        mut condition: impl FnMut(&Demo) -> bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut last_view = Instant::now();
        while !condition(self) {
            if started.elapsed() > deadline {
                anyhow::bail!("gave up after {deadline:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.config.live_view && last_view.elapsed() >= Duration::from_secs(1) {
                last_view = Instant::now();
                self.print_live_view().await?;
            }
        }
        Ok(())
    }
}

/// The first time a worker other than `crashed` processed each of `shards` after `since`.
fn resumption_times(
    log: &[(Instant, Observation)],
    crashed: &str,
    shards: &[ShardId],
    since: Instant,
) -> HashMap<ShardId, Instant> {
    let mut resumed = HashMap::new();
    for (at, observation) in processed(log) {
        let counts = at >= since
            && observation.worker_id != crashed
            && shards.contains(&observation.shard_id);
        if counts {
            resumed.entry(observation.shard_id.clone()).or_insert(at);
        }
    }
    resumed
}

/// Runs the demo and returns its verdict (also printed).
pub async fn run_demo(config: DemoConfig) -> anyhow::Result<DemoVerdict> {
    anyhow::ensure!(
        config.workers >= 2,
        "the demo needs at least 2 workers (one crashes)"
    );
    anyhow::ensure!(config.shards >= 1, "the demo needs at least 1 shard");
    let dir = tempfile::tempdir().context("creating a temp dir for the lease file")?;
    let broker = Broker::new(BrokerConfig::unlimited());
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.to_owned(),
            shard_count: Some(config.shards),
            ..CreateStreamInput::default()
        })
        .await?;
    let lease_file = dir.path().join("leases.db");
    let store: Arc<dyn LeaseStore> = Arc::new(
        SqliteLeaseStore::open_with_options(
            &lease_file,
            APPLICATION,
            SqliteOptions::for_failover_time(config.failover),
        )
        .await?,
    );
    let client: Arc<dyn StreamClient> = Arc::new(
        kcl_worker::client::embedded::EmbeddedStreamClient::new(broker.clone()),
    );
    let observe_server = match config.serve {
        Some(addr) => Some(serve_observability(addr, &store, &client).await?),
        None => None,
    };
    let demo = Demo {
        config: config.clone(),
        started: Instant::now(),
        broker,
        client,
        store,
        log: ObservationLog::new(),
        produced: Arc::new(Mutex::new(Vec::new())),
    };
    demo.say(&format!(
        "broker up; stream {STREAM} with {} shards; lease file {}",
        config.shards,
        lease_file.display()
    ));

    let stop_producing = CancellationToken::new();
    let producer = demo.start_producer(stop_producing.clone());
    demo.say(&format!("producing {} records/s", config.rate));

    let mut workers = BTreeMap::new();
    for index in 1..=config.workers {
        let (worker_id, worker) = demo.start_worker(index)?;
        workers.insert(worker_id, worker);
    }
    demo.say(&format!(
        "{} workers started (failover time {} ms)",
        config.workers,
        config.failover.as_millis()
    ));
    demo.wait_for(
        "every shard to be processed",
        Duration::from_secs(60),
        |demo| {
            let shards = demo.log.inspect(|log| {
                processed(log)
                    .map(|(_, o)| o.shard_id.clone())
                    .collect::<HashSet<_>>()
                    .len()
            });
            shards >= demo.config.shards as usize
        },
    )
    .await?;
    demo.run_for(config.phase).await?;

    // Crash the worker holding the most leases.
    let leases = demo.store.list_leases().await?;
    let mut held: BTreeMap<String, Vec<ShardId>> = BTreeMap::new();
    for lease in &leases {
        if let Some(owner) = &lease.lease_owner
            && !lease.is_finished()
        {
            held.entry(owner.clone())
                .or_default()
                .push(lease.lease_key.clone());
        }
    }
    let (victim, victim_shards) = held
        .into_iter()
        .max_by_key(|(_, shards)| shards.len())
        .context("no worker holds a lease")?;
    let crashed_at = Instant::now();
    if let Some(worker) = workers.remove(&victim) {
        worker.task.abort();
        let _ = worker.task.await;
    }
    let shard_names: Vec<_> = victim_shards.iter().map(ShardId::to_string).collect();
    demo.say(&format!(
        "CRASH: {victim} killed while holding [{}]",
        shard_names.join(", ")
    ));
    let deadline = config.failover * 4 + Duration::from_secs(30);
    demo.wait_for("the crashed worker's shards to resume", deadline, |demo| {
        demo.log.inspect(|log| {
            resumption_times(log, &victim, &victim_shards, crashed_at).len() == victim_shards.len()
        })
    })
    .await?;
    let failover = {
        let resumed = demo
            .log
            .inspect(|log| resumption_times(log, &victim, &victim_shards, crashed_at));
        let first = resumed
            .values()
            .min()
            .map(|at| at.duration_since(crashed_at));
        let last = resumed
            .values()
            .max()
            .map(|at| at.duration_since(crashed_at));
        first.zip(last)
    };
    if let Some((first, all)) = failover {
        demo.say(&format!(
            "failover: first shard resumed after {:.2} s, all after {:.2} s",
            first.as_secs_f64(),
            all.as_secs_f64()
        ));
    }

    // Split the first open shard at the middle of its range.
    let open = demo
        .client
        .list_shards(STREAM, Some(ShardFilter::AtLatest))
        .await?;
    let parent = open
        .first()
        .context("the stream has no open shard")?
        .clone();
    let middle = crate::control::middle_hash_key(&parent);
    demo.broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name(STREAM),
            shard_to_split: parent.shard_id.clone(),
            new_starting_hash_key: middle.to_string(),
        })
        .await?;
    let children: Vec<ShardId> = demo
        .client
        .list_shards(STREAM, None)
        .await?
        .into_iter()
        .filter(|shard| shard.parent_shard_id.as_ref() == Some(&parent.shard_id))
        .map(|shard| shard.shard_id)
        .collect();
    let child_names: Vec<_> = children.iter().map(ShardId::to_string).collect();
    demo.say(&format!(
        "SPLIT: {} -> [{}]",
        parent.shard_id,
        child_names.join(", ")
    ));
    demo.wait_for(
        "the split's children to be processed",
        Duration::from_secs(60),
        |demo| {
            demo.log.inspect(|log| {
                children.iter().all(|child| {
                    processed(log).any(|(_, observation)| &observation.shard_id == child)
                })
            })
        },
    )
    .await?;
    demo.run_for(config.phase).await?;

    stop_producing.cancel();
    producer.await.context("producer task")??;
    let produced_count = demo
        .produced
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .len();
    demo.say(&format!(
        "producer stopped after {produced_count} records; draining"
    ));
    let drain_result = demo
        .wait_for(
            "every produced record to be processed",
            Duration::from_secs(60),
            |demo| {
                let produced = demo
                    .produced
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                demo.log.inspect(|log| {
                    let seen: HashSet<&Bytes> = processed(log)
                        .filter_map(|(_, o)| match &o.kind {
                            ObservationKind::Processed { data, .. } => Some(data),
                            _ => None,
                        })
                        .collect();
                    produced.iter().all(|record| seen.contains(&record.data))
                })
            },
        )
        .await;
    if let Err(error) = drain_result {
        demo.say(&format!("{error:#}"));
    }

    let shutdown_started = Instant::now();
    for worker in workers.values() {
        worker.handle.shutdown().await;
    }
    for (worker_id, worker) in workers {
        match worker.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => demo.say(&format!("{worker_id} stopped with an error: {error}")),
            Err(error) => demo.say(&format!("{worker_id} task failed: {error}")),
        }
    }
    let graceful_shutdown = shutdown_started.elapsed();
    demo.say("remaining workers shut down gracefully; leases released");

    let observations = demo.log.snapshot();
    let produced = demo
        .produced
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let parents: HashMap<ShardId, Vec<ShardId>> = demo
        .client
        .list_shards(STREAM, None)
        .await?
        .into_iter()
        .map(|shard| {
            let parents = shard.parent_shard_ids().cloned().collect();
            (shard.shard_id, parents)
        })
        .collect();
    let validation = validate(
        &produced,
        &observations,
        &parents,
        ValidationRules {
            allow_duplicates: true,
        },
    );
    let processed_count = observations
        .iter()
        .filter(|o| matches!(o.kind, ObservationKind::Processed { .. }))
        .count();
    let verdict = DemoVerdict {
        produced: produced.len(),
        processed: processed_count,
        unique_processed: validation.unique_processed,
        duplicates: validation.duplicates,
        lost: validation.lost,
        validation,
        crashed: Some((victim, victim_shards)),
        failover,
        split: Some((parent.shard_id, children)),
        graceful_shutdown,
    };
    print!("{}", verdict.render());
    if let Some(server) = observe_server {
        server.shutdown().await;
    }
    Ok(verdict)
}

/// `kcl demo --serve`: the status page of the demo's lease table and the process's metrics.
async fn serve_observability(
    addr: std::net::SocketAddr,
    store: &Arc<dyn LeaseStore>,
    client: &Arc<dyn StreamClient>,
) -> anyhow::Result<crate::observe::server::ObserveServer> {
    let endpoints = crate::observe::server::Endpoints {
        metrics: Some(crate::observe::exporter::install()?),
        health: None,
        status: Some(crate::observe::status::StatusSource {
            store: store.clone(),
            stream: Some(crate::observe::status::StreamLag::new(
                client.clone(),
                STREAM,
                kcl_core::clock::SystemClock::shared(),
            )),
        }),
    };
    let server = crate::observe::server::serve(addr, endpoints).await?;
    println!(
        "status page: http://{0}/  metrics: http://{0}/metrics",
        server.local_addr()
    );
    Ok(server)
}
