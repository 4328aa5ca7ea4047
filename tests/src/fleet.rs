//! A fleet of real processes: one `kinesis-broker` and several `kcl worker`s sharing a lease
//! store (a SQLite lease file, or a DynamoDB table: [`FleetLeaseStore`]), each writing a jsonl
//! sink, plus a producer in the test process.
//!
//! Two background tasks watch the lease table: one polls it every 25 ms (100 ms on DynamoDB)
//! and records every change of owner (with the checkpoint last seen under the old owner, for
//! [`crate::verify`]); the other checks every 200 ms that no child shard has records in a sink
//! while a parent lease is unfinished (sinks are read before the lease table, so a child seen
//! in a sink must already have finished parents).

use crate::verify::{FleetReport, Handover, SinkFile, verify_sinks};
use crate::{BrokerProcess, ChildGuard, binary, local_aws_env, wait_until};
use anyhow::Context;
use kcl::args::EndpointArgs;
use kcl::control::middle_hash_key;
use kcl::kinesis_json::KinesisJsonApi;
use kcl::sink::read_jsonl;
use kcl::worker::json_api;
use kcl_core::dynamodb::{DynamoDbLeaseStore, DynamoDbOptions};
use kcl_core::kinesis::{Shard, ShardFilter, ShardId};
use kcl_core::lease::Lease;
use kcl_core::lease_store::LeaseStore;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_core::stream_client::StreamClient;
use kcl_worker::client::HttpStreamClient;
use kcl_worker::producer::{HttpTarget, Producer, ProducerConfig, StoredRecord, generated_payload};
use nix::sys::signal::Signal;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a fleet is set up.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Shards of the stream.
    pub shards: u32,
    /// `--failover-ms` of every worker.
    pub failover_ms: u64,
    /// Give the broker a `--data-dir` (so it can be restarted with its data).
    pub durable: bool,
    /// Where the workers keep their leases.
    pub lease_store: FleetLeaseStore,
}

/// The lease store of a fleet's workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FleetLeaseStore {
    /// A SQLite lease file in the fleet's temp dir (`--lease-db PATH`).
    #[default]
    Sqlite,
    /// A DynamoDB table on a DynamoDB-compatible server (`--leases dynamodb:TABLE
    /// --dynamodb-endpoint URL`); the table is created by the fleet if absent.
    DynamoDb {
        /// The server, e.g. a local moto server.
        endpoint_url: String,
        /// The table; `None` passes `dynamodb:` alone, so the workers name it after the
        /// application (as the Java KCL does).
        table: Option<String>,
    },
}

impl FleetLeaseStore {
    /// The `kcl worker` arguments naming this store for `lease_db` (the SQLite file).
    fn worker_args(&self, lease_db: &Path) -> Vec<std::ffi::OsString> {
        match self {
            FleetLeaseStore::Sqlite => vec!["--lease-db".into(), lease_db.into()],
            FleetLeaseStore::DynamoDb {
                endpoint_url,
                table,
            } => vec![
                "--leases".into(),
                format!("dynamodb:{}", table.as_deref().unwrap_or_default()).into(),
                "--dynamodb-endpoint".into(),
                endpoint_url.into(),
            ],
        }
    }

    /// How often the lease watcher scans the table: a DynamoDB scan is a network round trip
    /// to a (Python) server shared with the workers, so it is polled less often.
    fn watch_interval(&self) -> Duration {
        match self {
            FleetLeaseStore::Sqlite => Duration::from_millis(25),
            FleetLeaseStore::DynamoDb { .. } => Duration::from_millis(100),
        }
    }

    /// Opens the store for the fleet's own observation (the lease watcher, [`ProcessFleet::leases`]).
    async fn open(
        &self,
        lease_db: &Path,
        application: &str,
    ) -> anyhow::Result<Arc<dyn LeaseStore>> {
        Ok(match self {
            FleetLeaseStore::Sqlite => {
                Arc::new(SqliteLeaseStore::open(lease_db, application).await?)
            }
            FleetLeaseStore::DynamoDb {
                endpoint_url,
                table,
            } => {
                let options = DynamoDbOptions::new(table.as_deref().unwrap_or(application))
                    .with_endpoint_url(endpoint_url.clone())
                    .with_region("us-east-1")
                    .with_static_credentials("kcl-test", "kcl-test");
                Arc::new(DynamoDbLeaseStore::connect(options).await?)
            }
        })
    }
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            shards: 4,
            failover_ms: 1000,
            durable: false,
            lease_store: FleetLeaseStore::Sqlite,
        }
    }
}

#[derive(Debug, Default)]
struct WatchState {
    /// shard → (owner, checkpoint while owned) at the last poll.
    last: HashMap<String, (Option<String>, Option<kcl_core::kinesis::SequenceNumber>)>,
    handovers: Vec<Handover>,
    lineage_errors: Vec<String>,
    polls: u64,
}

struct Worker {
    guard: ChildGuard,
}

/// The process fleet.
pub struct ProcessFleet {
    options: FleetOptions,
    broker: Option<BrokerProcess>,
    broker_listen: String,
    endpoint: EndpointArgs,
    /// The stream name.
    pub stream: String,
    /// The application name.
    pub application: String,
    lease_db: PathBuf,
    store: Arc<dyn LeaseStore>,
    client: HttpStreamClient,
    api: KinesisJsonApi,
    workers: BTreeMap<String, Worker>,
    sink_paths: Arc<Mutex<BTreeMap<String, PathBuf>>>,
    produced: Vec<StoredRecord>,
    next_index: u64,
    watch: Arc<Mutex<WatchState>>,
    _watchers: [WatcherTask; 2],
    /// `--idle-between-reads-ms` of workers started from now on.
    idle_between_reads_ms: u64,
    /// Keep the temp dir when dropped (see [`ProcessFleet::keep_files`]).
    keep_files: bool,
    // Last: dropped after the processes (whose guards print their log tails on failure).
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for ProcessFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFleet")
            .field("options", &self.options)
            .field("broker_listen", &self.broker_listen)
            .field("stream", &self.stream)
            .field("application", &self.application)
            .field("lease_db", &self.lease_db)
            .finish_non_exhaustive()
    }
}

impl Drop for ProcessFleet {
    fn drop(&mut self) {
        self.workers.clear();
        self.broker = None;
        if (std::thread::panicking() || self.keep_files)
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "fleet files kept for inspection in {}",
                dir.keep().display()
            );
        }
    }
}

/// The lease watcher task, aborted when the fleet is dropped.
struct WatcherTask(tokio::task::JoinHandle<()>);

impl Drop for WatcherTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn sequence_of(lease: &Lease) -> Option<kcl_core::kinesis::SequenceNumber> {
    lease.checkpoint.sequence_number()
}

/// Records owner changes (with the checkpoint last seen under the old owner).
async fn watch_once(store: &Arc<dyn LeaseStore>, state: &Arc<Mutex<WatchState>>) {
    let Ok(leases) = store.list_leases().await else {
        return;
    };
    let mut state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    state.polls += 1;
    for lease in &leases {
        let shard = lease.lease_key.to_string();
        let owner = lease.lease_owner.clone();
        let checkpoint = sequence_of(lease);
        if let Some((previous_owner, previous_checkpoint)) = state.last.get(&shard).cloned()
            && previous_owner != owner
            && let Some(from) = previous_owner
        {
            state.handovers.push(Handover {
                shard_id: shard.clone(),
                from,
                checkpoint: previous_checkpoint,
            });
        }
        state.last.insert(shard, (owner, checkpoint));
    }
}

/// Checks that no child shard has records in a sink while a parent lease is unfinished. Sinks
/// are read before the lease table, so a child seen in a sink must already have finished
/// parents.
async fn check_lineage(
    store: &Arc<dyn LeaseStore>,
    sink_paths: &Arc<Mutex<BTreeMap<String, PathBuf>>>,
    state: &Arc<Mutex<WatchState>>,
    parents: &HashMap<String, Vec<String>>,
) {
    if parents.is_empty() {
        return;
    }
    let paths: Vec<PathBuf> = sink_paths
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .values()
        .cloned()
        .collect();
    let mut child_shards_seen: HashSet<String> = HashSet::new();
    for path in paths {
        if let Ok(contents) = read_jsonl(&path) {
            for record in contents.records {
                if parents.contains_key(&record.shard_id) {
                    child_shards_seen.insert(record.shard_id);
                }
            }
        }
    }
    let Ok(leases) = store.list_leases().await else {
        return;
    };
    let by_key: HashMap<String, &Lease> = leases
        .iter()
        .map(|lease| (lease.lease_key.to_string(), lease))
        .collect();
    let mut state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for child in &child_shards_seen {
        for parent in parents.get(child).into_iter().flatten() {
            if let Some(lease) = by_key.get(parent)
                && !lease.is_finished()
            {
                let error = format!(
                    "child {child} has processed records while parent {parent} is at {}",
                    lease.checkpoint
                );
                if !state.lineage_errors.contains(&error) {
                    state.lineage_errors.push(error);
                }
            }
        }
    }
}

impl ProcessFleet {
    /// Starts a broker and creates the stream (no workers yet).
    pub async fn start(name: &str, options: FleetOptions) -> anyhow::Result<ProcessFleet> {
        let fleet = ProcessFleet::start_with_broker_args(name, options, &[]).await?;
        fleet.wait_stream_active().await?;
        Ok(fleet)
    }

    /// Starts a broker with `broker_args` appended to its command line (e.g.
    /// `["--create-delay", "3s"]`) and calls `CreateStream`, WITHOUT waiting for the stream to
    /// become `ACTIVE` (see [`ProcessFleet::wait_active`]).
    pub async fn start_with_broker_args(
        name: &str,
        options: FleetOptions,
        broker_args: &[&str],
    ) -> anyhow::Result<ProcessFleet> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let data_dir = options.durable.then(|| dir.path().join("broker-data"));
        let broker = BrokerProcess::start_with_args(
            "127.0.0.1:0",
            data_dir.as_deref(),
            &dir.path().join("broker.log"),
            broker_args,
        )?;
        let broker_listen = broker.address.to_string();
        let endpoint = EndpointArgs {
            endpoint: Some(broker.endpoint()),
            region: Some("us-east-1".to_owned()),
        };
        let api = json_api(&endpoint).await?;
        let client = api.client().clone();
        let stream = format!("{name}-stream");
        api.call(
            "CreateStream",
            &json!({"StreamName": stream, "ShardCount": options.shards}),
        )
        .await?;
        let lease_db = dir.path().join("leases.db");
        let application = format!("{name}-app");
        let store = options.lease_store.open(&lease_db, &application).await?;
        let watch_interval = options.lease_store.watch_interval();
        let watch = Arc::new(Mutex::new(WatchState::default()));
        let sink_paths = Arc::new(Mutex::new(BTreeMap::new()));
        // Two tasks: the lease watcher polls every 25 ms and never waits for the (slower) sink
        // scans of the lineage checker, so short-lived owners are not missed.
        let lease_watcher = {
            let store = store.clone();
            let watch = watch.clone();
            tokio::spawn(async move {
                loop {
                    watch_once(&store, &watch).await;
                    tokio::time::sleep(watch_interval).await;
                }
            })
        };
        let lineage_checker = {
            let store = store.clone();
            let watch = watch.clone();
            let sink_paths = sink_paths.clone();
            let client = client.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                loop {
                    if let Ok(shards) = client.list_shards(&stream, None).await {
                        let parents = parent_map(&shards);
                        check_lineage(&store, &sink_paths, &watch, &parents).await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let fleet = ProcessFleet {
            dir: Some(dir),
            options,
            broker: Some(broker),
            broker_listen,
            endpoint,
            stream,
            application,
            lease_db,
            store,
            client,
            api,
            workers: BTreeMap::new(),
            sink_paths,
            produced: Vec::new(),
            next_index: 0,
            watch,
            _watchers: [WatcherTask(lease_watcher), WatcherTask(lineage_checker)],
            idle_between_reads_ms: 100,
            keep_files: false,
        };
        Ok(fleet)
    }

    /// Waits (up to 60 s) until the stream is `ACTIVE`.
    pub async fn wait_active(&self) -> anyhow::Result<()> {
        self.wait_stream_active().await
    }

    /// The stream's status now (`CREATING`, `ACTIVE`, ...).
    pub async fn stream_status(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .describe_stream_summary(&self.stream)
            .await?
            .stream_status)
    }

    async fn wait_stream_active(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let status = self
                .client
                .describe_stream_summary(&self.stream)
                .await
                .map(|summary| summary.stream_status);
            if status.as_deref() == Ok("ACTIVE") {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "stream {} not active: {status:?}",
                self.stream
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The fleet's temp dir.
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Some(dir) => dir.path(),
            None => Path::new("/nonexistent"),
        }
    }

    /// Sets `--idle-between-reads-ms` of the workers started from now on (default 100): a
    /// longer pause keeps many idle polling shards from loading a small machine.
    pub fn set_idle_between_reads_ms(&mut self, millis: u64) {
        self.idle_between_reads_ms = millis;
    }

    /// Keeps the fleet's temp dir (logs, lease file, sinks) when the fleet is dropped, as a
    /// panicking test does, and returns its path (e.g. to report a failed benchmark run).
    pub fn keep_files(&mut self) -> PathBuf {
        self.keep_files = true;
        self.dir().to_owned()
    }

    /// The broker endpoint.
    pub fn endpoint(&self) -> &str {
        self.endpoint.endpoint.as_deref().unwrap_or_default()
    }

    fn worker_command(&self, worker_id: &str) -> anyhow::Result<Command> {
        let lease_args = self.options.lease_store.worker_args(&self.lease_db);
        self.worker_command_with(worker_id, &lease_args, &self.application)
    }

    fn worker_command_on(
        &self,
        worker_id: &str,
        lease_db: &Path,
        application: &str,
    ) -> anyhow::Result<Command> {
        let lease_args = FleetLeaseStore::Sqlite.worker_args(lease_db);
        self.worker_command_with(worker_id, &lease_args, application)
    }

    fn worker_command_with(
        &self,
        worker_id: &str,
        lease_args: &[std::ffi::OsString],
        application: &str,
    ) -> anyhow::Result<Command> {
        let mut command = Command::new(binary("kcl")?);
        command
            .arg("worker")
            .args(["--endpoint", self.endpoint()])
            .args(["--stream", &self.stream])
            .args(["--application", application])
            .args(lease_args)
            .args(["--worker-id", worker_id])
            .args(["--failover-ms", &self.options.failover_ms.to_string()])
            .args([
                "--idle-between-reads-ms",
                &self.idle_between_reads_ms.to_string(),
            ])
            .envs(local_aws_env())
            .env("RUST_LOG", "info");
        Ok(command)
    }

    /// Starts `kcl worker --sink jsonl:<dir>/<id>.jsonl`.
    pub fn start_worker(&mut self, worker_id: &str) -> anyhow::Result<()> {
        let sink = self.dir().join(format!("{worker_id}.jsonl"));
        let mut command = self.worker_command(worker_id)?;
        command
            .arg("--sink")
            .arg(format!("jsonl:{}", sink.display()));
        self.spawn_worker(worker_id, command, sink)
    }

    /// Starts `kcl worker --sink jsonl:<dir>/<id>.jsonl <extra_args>` (e.g.
    /// `["--retrieval", "push"]`; flags the fleet already passes — `--failover-ms`,
    /// `--idle-between-reads-ms`, ... — must not be repeated).
    pub fn start_worker_with(
        &mut self,
        worker_id: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<()> {
        let sink = self.dir().join(format!("{worker_id}.jsonl"));
        let mut command = self.worker_command(worker_id)?;
        command
            .arg("--sink")
            .arg(format!("jsonl:{}", sink.display()))
            .args(extra_args);
        self.spawn_worker(worker_id, command, sink)
    }

    /// Starts `kcl worker --sink <sink_spec> <extra_args>` whose sink the fleet does NOT read
    /// (not part of [`ProcessFleet::sinks`], [`ProcessFleet::wait_all_processed`] or
    /// [`ProcessFleet::verify`]): for sinks that are not readable jsonl files, e.g.
    /// `jsonl:/dev/full`, where every write fails with `ENOSPC`.
    pub fn start_worker_with_untracked_sink(
        &mut self,
        worker_id: &str,
        sink_spec: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<()> {
        let mut command = self.worker_command(worker_id)?;
        command.args(["--sink", sink_spec]).args(extra_args);
        self.spawn_worker_with(worker_id, command, None)
    }

    /// Starts `kcl worker --sink jsonl:<dir>/<id>.jsonl` on another lease file and application
    /// than the fleet's (same broker and stream). The fleet does not open `lease_db` itself, so
    /// the workers are the first to open a new file (see [`read_leases`]).
    pub fn start_worker_on(
        &mut self,
        worker_id: &str,
        lease_db: &Path,
        application: &str,
    ) -> anyhow::Result<()> {
        let sink = self.dir().join(format!("{worker_id}.jsonl"));
        let mut command = self.worker_command_on(worker_id, lease_db, application)?;
        command
            .arg("--sink")
            .arg(format!("jsonl:{}", sink.display()));
        self.spawn_worker(worker_id, command, sink)
    }

    /// Starts `kcl worker --exec "<exec>"` whose processor writes the jsonl file named by
    /// `$MULTILANG_OUTPUT`, set to `<dir>/<id>.jsonl`.
    pub fn start_exec_worker(&mut self, worker_id: &str, exec: &str) -> anyhow::Result<()> {
        let sink = self.dir().join(format!("{worker_id}.jsonl"));
        let mut command = self.worker_command(worker_id)?;
        command
            .args(["--exec", exec])
            .env("MULTILANG_OUTPUT", &sink);
        self.spawn_worker(worker_id, command, sink)
    }

    fn spawn_worker(
        &mut self,
        worker_id: &str,
        command: Command,
        sink: PathBuf,
    ) -> anyhow::Result<()> {
        self.spawn_worker_with(worker_id, command, Some(sink))
    }

    fn spawn_worker_with(
        &mut self,
        worker_id: &str,
        mut command: Command,
        sink: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.workers.contains_key(worker_id),
            "worker {worker_id} exists"
        );
        let log = self.dir().join(format!("{worker_id}.log"));
        let guard = ChildGuard::spawn(worker_id, &mut command, &log)?;
        if let Some(sink) = sink {
            self.sink_paths
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(worker_id.to_owned(), sink);
        }
        self.workers.insert(worker_id.to_owned(), Worker { guard });
        Ok(())
    }

    fn worker(&mut self, worker_id: &str) -> anyhow::Result<&mut Worker> {
        self.workers
            .get_mut(worker_id)
            .with_context(|| format!("no worker {worker_id}"))
    }

    /// SIGKILL.
    pub fn kill(&mut self, worker_id: &str) -> anyhow::Result<()> {
        self.worker(worker_id)?.guard.kill_hard()
    }

    /// Starts a killed (or exited) worker again, with the same id and sink (appended to), as
    /// a supervisor restarting a crashed process would.
    pub fn restart_worker(&mut self, worker_id: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.worker(worker_id)?.guard.is_running(),
            "{worker_id} is still running"
        );
        self.workers.remove(worker_id);
        self.start_worker(worker_id)
    }

    /// SIGSTOP.
    pub fn stop(&mut self, worker_id: &str) -> anyhow::Result<()> {
        self.worker(worker_id)?.guard.signal(Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn cont(&mut self, worker_id: &str) -> anyhow::Result<()> {
        self.worker(worker_id)?.guard.signal(Signal::SIGCONT)
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(&mut self, worker_id: &str) -> anyhow::Result<()> {
        let worker = self.worker(worker_id)?;
        let clean = worker.guard.terminate(Duration::from_secs(60)).await?;
        anyhow::ensure!(
            clean,
            "{worker_id} did not exit cleanly on SIGTERM:\n{}",
            worker.guard.log_tail(30)
        );
        Ok(())
    }

    /// Sends SIGTERM without waiting for the exit (see [`ProcessFleet::wait_exit`]).
    pub fn stop_gracefully_nowait(&mut self, worker_id: &str) -> anyhow::Result<()> {
        self.worker(worker_id)?.guard.signal(Signal::SIGTERM)
    }

    /// Waits for a worker to exit; fails unless it exits cleanly.
    pub async fn wait_exit(&mut self, worker_id: &str, deadline: Duration) -> anyhow::Result<()> {
        let worker = self.worker(worker_id)?;
        let clean = worker.guard.wait_exit(deadline).await?;
        anyhow::ensure!(
            clean,
            "{worker_id} exited with an error:\n{}",
            worker.guard.log_tail(30)
        );
        Ok(())
    }

    /// Sends SIGTERM and waits up to `deadline` for the exit; returns whether the exit was
    /// clean (unlike [`ProcessFleet::terminate`], an unclean exit is not an error).
    pub async fn terminate_and_wait(
        &mut self,
        worker_id: &str,
        deadline: Duration,
    ) -> anyhow::Result<bool> {
        self.worker(worker_id)?.guard.terminate(deadline).await
    }

    /// Waits up to `deadline` until a worker's log (its stderr) satisfies `condition`; fails
    /// early, with the log's tail, if the worker exits first.
    pub async fn wait_worker_log(
        &mut self,
        worker_id: &str,
        what: &str,
        deadline: Duration,
        mut condition: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if condition(&self.worker_log_full(worker_id)) {
                return Ok(());
            }
            anyhow::ensure!(
                self.is_running(worker_id),
                "{worker_id} exited before {what}:\n{}",
                self.worker_log(worker_id)
            );
            anyhow::ensure!(
                started.elapsed() < deadline,
                "timed out after {deadline:?} waiting for {what}:\n{}",
                self.worker_log(worker_id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the worker process is still running.
    pub fn is_running(&mut self, worker_id: &str) -> bool {
        self.workers
            .get_mut(worker_id)
            .is_some_and(|worker| worker.guard.is_running())
    }

    /// Follows every sink from its current end (see [`SinkTail`]).
    pub fn tail(&self) -> SinkTail {
        let paths = self
            .sink_paths
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let offsets = paths
            .into_iter()
            .map(|(worker, path)| {
                let length = std::fs::metadata(&path).map_or(0, |metadata| metadata.len());
                (worker, (path, length, Vec::new()))
            })
            .collect();
        SinkTail {
            sink_paths: self.sink_paths.clone(),
            offsets,
        }
    }

    /// A worker's whole log (its stderr, including its `--exec` children's stderr).
    pub fn worker_log_full(&self, worker_id: &str) -> String {
        std::fs::read_to_string(self.dir().join(format!("{worker_id}.log"))).unwrap_or_default()
    }

    /// The records acknowledged so far.
    pub fn produced(&self) -> &[StoredRecord] {
        &self.produced
    }

    /// The last lines of a worker's log.
    pub fn worker_log(&self, worker_id: &str) -> String {
        self.workers
            .get(worker_id)
            .map(|worker| worker.guard.log_tail(40))
            .unwrap_or_default()
    }

    /// Produces `count` new unique records (payload = index, partition keys cycling over 64).
    pub async fn produce(&mut self, count: u64) -> anyhow::Result<()> {
        let stored = self.spawn_producer(count, None).await??;
        self.add_produced(stored);
        Ok(())
    }

    /// Starts producing `count` new unique records in the background at `rate` records/s (as
    /// fast as possible with `None`); hand the result to [`ProcessFleet::add_produced`].
    pub fn spawn_producer(
        &mut self,
        count: u64,
        rate: Option<u32>,
    ) -> tokio::task::JoinHandle<anyhow::Result<Vec<StoredRecord>>> {
        self.spawn_producer_with(count, rate, 100, 40)
    }

    /// Like [`ProcessFleet::spawn_producer`] with `batch_size` records per request and
    /// payloads of `size` bytes.
    pub fn spawn_producer_with(
        &mut self,
        count: u64,
        rate: Option<u32>,
        batch_size: usize,
        size: usize,
    ) -> tokio::task::JoinHandle<anyhow::Result<Vec<StoredRecord>>> {
        let producer = Producer::new(
            Arc::new(HttpTarget::new(
                self.api.client().clone(),
                self.stream.clone(),
            )),
            ProducerConfig {
                batch_size,
                rate,
                ..ProducerConfig::default()
            },
        );
        let first = self.next_index;
        self.next_index += count;
        tokio::spawn(async move {
            let entries = (first..first + count)
                .map(|index| kcl_worker::producer::ProduceEntry {
                    partition_key: format!("key-{}", index % 64),
                    data: generated_payload(index, size),
                })
                .collect();
            Ok(producer.put_all(entries, |_| {}).await?)
        })
    }

    /// Produces about `rate` records per second in the background, forever (abort the task to
    /// stop). The records are not tracked for verification: for benchmarks.
    pub fn spawn_trickle(&mut self, rate: u32) -> tokio::task::JoinHandle<()> {
        let producer = Producer::new(
            Arc::new(HttpTarget::new(
                self.api.client().clone(),
                self.stream.clone(),
            )),
            ProducerConfig::default(),
        );
        let mut index = self.next_index;
        self.next_index += 1 << 40;
        let per_tick = u64::from((rate / 20).max(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(50));
            loop {
                ticker.tick().await;
                let entries = (index..index + per_tick)
                    .map(|index| kcl_worker::producer::ProduceEntry {
                        partition_key: format!("key-{}", index % 64),
                        data: generated_payload(index, 40),
                    })
                    .collect();
                index += per_tick;
                if let Err(error) = producer.put_all(entries, |_| {}).await {
                    eprintln!("trickle producer: {error}");
                }
            }
        })
    }

    /// Adds records a background producer got acknowledged.
    pub fn add_produced(&mut self, records: Vec<StoredRecord>) {
        self.produced.extend(records);
    }

    /// Records acknowledged so far.
    pub fn produced_count(&self) -> usize {
        self.produced.len()
    }

    /// The fleet's SQLite lease file (unused with [`FleetLeaseStore::DynamoDb`]).
    pub fn lease_db(&self) -> &Path {
        &self.lease_db
    }

    /// The owner changes the lease watcher has recorded so far (see [`Handover`]).
    pub fn handovers(&self) -> Vec<Handover> {
        self.watch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .handovers
            .clone()
    }

    /// Holds the SQLite write lock of the fleet's lease file for `duration` from another
    /// connection (`BEGIN IMMEDIATE` … `ROLLBACK`), as a stalled process sharing the file
    /// would; see [`hold_write_lock`].
    pub async fn hold_lease_file_write_lock(&self, duration: Duration) -> anyhow::Result<()> {
        hold_write_lock(&self.lease_db, duration).await
    }

    /// The stream's ARN.
    pub async fn stream_arn(&self) -> anyhow::Result<String> {
        let summary = self
            .api
            .call("DescribeStreamSummary", &json!({"StreamName": self.stream}))
            .await?;
        summary["StreamDescriptionSummary"]["StreamARN"]
            .as_str()
            .map(str::to_owned)
            .context("DescribeStreamSummary answered no StreamARN")
    }

    /// The registered enhanced fan-out consumers of the stream, as (name, ARN, status).
    pub async fn stream_consumers(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        let stream_arn = self.stream_arn().await?;
        let listed = self
            .api
            .call("ListStreamConsumers", &json!({"StreamARN": stream_arn}))
            .await?;
        let consumers = listed["Consumers"]
            .as_array()
            .context("ListStreamConsumers answered no Consumers")?;
        Ok(consumers
            .iter()
            .map(|consumer| {
                let text = |field: &str| consumer[field].as_str().unwrap_or_default().to_owned();
                (
                    text("ConsumerName"),
                    text("ConsumerARN"),
                    text("ConsumerStatus"),
                )
            })
            .collect())
    }

    /// `DeregisterStreamConsumer` of the consumer named `consumer_name` (a `kcl worker
    /// --retrieval push` registers one named after its application).
    pub async fn deregister_consumer(&self, consumer_name: &str) -> anyhow::Result<()> {
        let stream_arn = self.stream_arn().await?;
        self.api
            .call(
                "DeregisterStreamConsumer",
                &json!({"StreamARN": stream_arn, "ConsumerName": consumer_name}),
            )
            .await?;
        Ok(())
    }

    /// The lineage violations the live checker has seen so far (a child shard with records in a
    /// sink while a parent lease was unfinished).
    pub fn lineage_errors(&self) -> Vec<String> {
        self.watch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .lineage_errors
            .clone()
    }

    /// The current lease table.
    pub async fn leases(&self) -> anyhow::Result<Vec<Lease>> {
        Ok(self.store.list_leases().await?)
    }

    /// Worker → number of unfinished leases it owns.
    pub async fn lease_counts(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        let mut counts = BTreeMap::new();
        for lease in self.leases().await? {
            if let Some(owner) = lease.lease_owner
                && !lease.checkpoint.is_shard_end()
            {
                *counts.entry(owner).or_default() += 1;
            }
        }
        Ok(counts)
    }

    /// Unfinished shards owned by `worker_id`.
    pub async fn shards_of(&self, worker_id: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .leases()
            .await?
            .into_iter()
            .filter(|lease| lease.is_owned_by(worker_id) && !lease.is_finished())
            .map(|lease| lease.lease_key.to_string())
            .collect())
    }

    /// Waits until each of `workers` owns at least one lease, every open shard's lease is owned
    /// by one of them, the counts differ by at most one, and the owners stayed the same for two
    /// failover times (so a worker a lease was stolen from has noticed and stopped reading it).
    pub async fn wait_balanced(&self, workers: &[&str], deadline: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let settle = Duration::from_millis(2 * self.options.failover_ms);
        let mut stable: Option<(BTreeMap<String, Option<String>>, Instant)> = None;
        loop {
            let leases = self.leases().await?;
            let owners: BTreeMap<String, Option<String>> = leases
                .iter()
                .filter(|lease| !lease.is_finished())
                .map(|lease| (lease.lease_key.to_string(), lease.lease_owner.clone()))
                .collect();
            let mut counts: BTreeMap<&str, usize> =
                workers.iter().map(|worker| (*worker, 0)).collect();
            let mut all_owned = !owners.is_empty();
            for owner in owners.values() {
                match owner.as_deref().and_then(|owner| counts.get_mut(owner)) {
                    Some(count) => *count += 1,
                    None => all_owned = false,
                }
            }
            let max = counts.values().copied().max().unwrap_or(0);
            let min = counts.values().copied().min().unwrap_or(0);
            let balanced = all_owned && min >= 1 && max - min <= 1;
            stable = match stable {
                Some((previous, since)) if balanced && previous == owners => {
                    Some((previous, since))
                }
                _ if balanced => Some((owners, Instant::now())),
                _ => None,
            };
            if let Some((_, since)) = &stable
                && since.elapsed() >= settle
            {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < deadline,
                "leases not balanced over {workers:?} after {deadline:?}: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every worker's sink, read now.
    pub fn sinks(&self) -> anyhow::Result<Vec<SinkFile>> {
        let paths = self
            .sink_paths
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        paths
            .into_iter()
            .map(|(worker_id, path)| {
                let contents = read_jsonl(&path)?;
                Ok(SinkFile {
                    worker_id,
                    records: contents.records,
                    torn_lines: contents.torn_lines,
                })
            })
            .collect()
    }

    /// Waits until every produced record is in some sink.
    pub async fn wait_all_processed(&self, deadline: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let seen: HashSet<bytes::Bytes> = self
                .sinks()?
                .into_iter()
                .flat_map(|sink| sink.records)
                .filter_map(|record| record.data_bytes().map(bytes::Bytes::from))
                .collect();
            let missing = self
                .produced
                .iter()
                .filter(|record| !seen.contains(&record.entry.data))
                .count();
            if missing == 0 {
                return Ok(());
            }
            if started.elapsed() > deadline {
                let logs: Vec<String> = self
                    .workers
                    .keys()
                    .map(|worker| format!("--- {worker}\n{}", self.worker_log(worker)))
                    .collect();
                anyhow::bail!(
                    "{missing} of {} records unprocessed after {deadline:?}; leases: {:?}\n{}",
                    self.produced.len(),
                    self.lease_counts().await?,
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the lease watcher has polled at least twice more (so it saw the latest state).
    pub async fn settle_watcher(&self) -> anyhow::Result<()> {
        let target = self.watch.lock().unwrap_or_else(|p| p.into_inner()).polls + 2;
        wait_until(
            "the lease watcher",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || {
                let polls = self.watch.lock().unwrap_or_else(|p| p.into_inner()).polls;
                Ok((polls >= target).then_some(()))
            },
        )
        .await
    }

    /// All shards of the stream.
    pub async fn shards(&self) -> anyhow::Result<Vec<Shard>> {
        Ok(self.client.list_shards(&self.stream, None).await?)
    }

    /// The open shards.
    pub async fn open_shards(&self) -> anyhow::Result<Vec<Shard>> {
        Ok(self
            .client
            .list_shards(&self.stream, Some(ShardFilter::AtLatest))
            .await?)
    }

    /// Splits `shard` in the middle of its range.
    pub async fn split(&self, shard: &Shard) -> anyhow::Result<()> {
        self.api
            .call(
                "SplitShard",
                &json!({
                    "StreamName": self.stream,
                    "ShardToSplit": shard.shard_id.as_str(),
                    "NewStartingHashKey": middle_hash_key(shard).to_string(),
                }),
            )
            .await?;
        self.wait_stream_active().await
    }

    /// Merges two adjacent shards.
    pub async fn merge(&self, shard: &ShardId, adjacent: &ShardId) -> anyhow::Result<()> {
        self.api
            .call(
                "MergeShards",
                &json!({
                    "StreamName": self.stream,
                    "ShardToMerge": shard.as_str(),
                    "AdjacentShardToMerge": adjacent.as_str(),
                }),
            )
            .await?;
        self.wait_stream_active().await
    }

    /// SIGKILLs the broker and starts it again on the same address and data dir.
    pub async fn restart_broker(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.options.durable, "restarting needs a durable broker");
        if let Some(mut broker) = self.broker.take() {
            broker.guard.kill_hard()?;
        }
        let data_dir = self.dir().join("broker-data");
        let log = self.dir().join("broker.log");
        let listen = self.broker_listen.clone();
        // The port may linger briefly; retry for a while.
        let started = Instant::now();
        let broker = loop {
            match BrokerProcess::start(&listen, Some(&data_dir), &log) {
                Ok(broker) => break broker,
                Err(error) if started.elapsed() < Duration::from_secs(30) => {
                    eprintln!("broker restart failed, retrying: {error:#}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error),
            }
        };
        self.broker = Some(broker);
        self.wait_stream_active().await
    }

    /// Verifies the sinks (see [`crate::verify`]) plus the live lineage checks.
    pub async fn verify(&self, allow_duplicates: bool) -> anyhow::Result<FleetReport> {
        self.settle_watcher().await?;
        let parents = parent_map(&self.shards().await?);
        let (handovers, lineage_errors) = {
            let watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
            (watch.handovers.clone(), watch.lineage_errors.clone())
        };
        let mut report = verify_sinks(
            &self.produced,
            &self.sinks()?,
            &handovers,
            &parents,
            allow_duplicates,
        );
        report.errors.extend(lineage_errors);
        Ok(report)
    }
}

/// Reads only what was appended to the sinks since the last poll (cheap enough to poll every
/// few milliseconds, for timing measurements). Sinks of workers started later are followed
/// from their beginning.
#[derive(Debug)]
pub struct SinkTail {
    sink_paths: Arc<Mutex<BTreeMap<String, PathBuf>>>,
    offsets: BTreeMap<String, (PathBuf, u64, Vec<u8>)>,
}

impl SinkTail {
    /// The records appended since the last poll, as (worker, record).
    pub fn poll(&mut self) -> Vec<(String, kcl::sink::SinkRecord)> {
        use std::io::{Read, Seek, SeekFrom};
        let paths = self
            .sink_paths
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut records = Vec::new();
        for (worker, path) in paths {
            let (_, offset, partial) = self
                .offsets
                .entry(worker.clone())
                .or_insert_with(|| (path.clone(), 0, Vec::new()));
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut appended = Vec::new();
            let Ok(read) = file.read_to_end(&mut appended) else {
                continue;
            };
            *offset += read as u64;
            partial.extend_from_slice(&appended);
            let Some(last_newline) = partial.iter().rposition(|byte| *byte == b'\n') else {
                continue;
            };
            let complete: Vec<u8> = partial.drain(..=last_newline).collect();
            for line in complete.split(|byte| *byte == b'\n') {
                if let Ok(record) = serde_json::from_slice(line) {
                    records.push((worker.clone(), record));
                }
            }
        }
        records
    }
}

/// Holds the SQLite write lock of the file at `path` for `duration` from a new connection
/// (`BEGIN IMMEDIATE`, then `ROLLBACK` after `duration`), as another process stalled inside a
/// write transaction would. Waits up to 60 s to get the lock. Readers are not blocked (WAL).
pub async fn hold_write_lock(path: &Path, duration: Duration) -> anyhow::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let connection = rusqlite::Connection::open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(Duration::from_secs(60))?;
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .with_context(|| format!("taking the write lock of {}", path.display()))?;
        // The point is to hold the lock this long: nothing to wait for.
        std::thread::sleep(duration);
        connection.execute_batch("ROLLBACK")?;
        Ok(())
    })
    .await
    .context("the lock-holding thread panicked")?
}

/// Reads the lease table of `application` in the lease file at `lease_db`.
pub async fn read_leases(lease_db: &Path, application: &str) -> anyhow::Result<Vec<Lease>> {
    let store = SqliteLeaseStore::open(lease_db, application).await?;
    Ok(store.list_leases().await?)
}

/// child shard → its parents.
pub fn parent_map(shards: &[Shard]) -> HashMap<String, Vec<String>> {
    shards
        .iter()
        .filter(|shard| shard.parent_shard_id.is_some())
        .map(|shard| {
            (
                shard.shard_id.to_string(),
                shard.parent_shard_ids().map(ShardId::to_string).collect(),
            )
        })
        .collect()
}
