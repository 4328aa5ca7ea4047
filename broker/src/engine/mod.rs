//! The in-process Kinesis Data Streams engine.
//!
//! A [`Broker`] is a cheap, cloneable handle to an in-memory stream store that behaves like
//! Kinesis Data Streams as a consumer framework can observe it: streams of shards over the
//! 128-bit hash-key space, 56-digit sequence numbers increasing within a shard (children after
//! parents), resharding with lineage, tamper-evident expiring shard iterators, retention
//! trimming, throughput limits answered with Kinesis's error types and wording, and enhanced
//! fan-out push subscriptions.
//!
//! ```
//! use broker::engine::{Broker, BrokerConfig, CreateStreamInput, PutRecordInput, StreamRef,
//!     GetShardIteratorInput, GetRecordsInput};
//! use kcl_core::kinesis::StartingPosition;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let broker = Broker::new(BrokerConfig::default());
//! broker.create_stream(CreateStreamInput {
//!     stream_name: "orders".into(),
//!     shard_count: Some(2),
//!     ..Default::default()
//! }).await?;
//! let put = broker.put_record(PutRecordInput {
//!     stream: StreamRef::name("orders"),
//!     data: "hello".into(),
//!     partition_key: "customer-1".into(),
//!     explicit_hash_key: None,
//!     sequence_number_for_ordering: None,
//! }).await?;
//! let iterator = broker.get_shard_iterator(GetShardIteratorInput {
//!     stream: StreamRef::name("orders"),
//!     shard_id: put.shard_id.clone(),
//!     position: StartingPosition::TrimHorizon,
//! }).await?;
//! let page = broker.get_records(GetRecordsInput {
//!     shard_iterator: iterator.shard_iterator,
//!     limit: None,
//!     stream_arn: None,
//! }).await?;
//! assert_eq!(page.records[0].data, "hello");
//! assert_eq!(page.records[0].sequence_number, put.sequence_number);
//! # Ok::<(), kcl_core::kinesis::KinesisError>(())
//! # }).unwrap();
//! ```
//!
//! ## Architecture
//!
//! - The stream map sits behind a read-mostly `RwLock`; each stream has its own shard
//!   topology lock (taken for writing only by resharding) and each shard its own log lock, so
//!   producers and consumers of different shards never contend, and there is no global lock on
//!   the data path.
//! - Records are immutable and shared (`Bytes` data, `Arc<str>` keys) in append-only chunks;
//!   reads binary-search by sequence number or arrival time and clone records out (reference
//!   count increments, never payload copies).
//! - `PutRecords` groups its batch by shard and takes each shard lock once.
//! - Time comes only from the injected [`Clock`](kcl_core::clock::Clock) in
//!   [`BrokerConfig::clock`]: retention, iterator expiry, token buckets and timestamps.
//! - Durability is delegated to a [`Journal`] (see [`journal`]); the default keeps nothing.

pub mod account;
pub mod api;
pub mod config;
pub mod journal;

mod control;
mod data;
mod fanout;
mod log;
mod seq;
mod settings;
mod state;
mod throttle;
pub(crate) mod token;
pub(crate) mod validate;

pub use account::{
    BillingCommitment, BillingCommitmentSnapshot, CommitmentStatus, UpdateMaxRecordSizeInput,
    UpdateStreamWarmThroughputInput, UpdateStreamWarmThroughputOutput, WarmThroughput,
};
pub use api::*;
pub use config::{BrokerConfig, ThroughputLimits};
pub use journal::{
    BrokerSnapshot, ConsumerSnapshot, DurabilitySender, DurabilityTicket, Journal, JournalAppend,
    JournalError, NoopJournal, RecoveredShard, RecoveredState, ShardSnapshot, SharedJournal,
    StreamSnapshot,
};

use kcl_core::clock::SharedClock;
use kcl_core::kinesis::{EpochMillis, KinesisError, KinesisErrorKind, ShardId};
use state::{ConsumerState, ShardEnd, ShardState, StreamMeta, StreamState, Topology};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use token::TokenSealer;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why [`Broker::restore`] refused recovered state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot was written by an incompatible version.
    #[error("metadata snapshot version {0} is not supported (expected 1)")]
    UnsupportedVersion(u32),
    /// A stream's metadata contradicts itself.
    #[error("stream {stream}: {problem}")]
    InconsistentStream {
        /// The stream's name.
        stream: String,
        /// What is wrong.
        problem: String,
    },
}

/// A token bucket shared between subscriptions of one consumer to one shard.
pub(crate) type SharedBucket = Arc<Mutex<throttle::TokenBucket>>;

/// The current snapshot format version.
const SNAPSHOT_VERSION: u32 = 1;

/// A handle to an in-process Kinesis engine. Clones share the same streams.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("account_id", &self.inner.config.account_id)
            .field("region", &self.inner.config.region)
            .field("streams", &state::read(&self.inner.streams).len())
            .finish()
    }
}

/// An active enhanced fan-out subscription of one consumer to one shard.
#[derive(Debug)]
pub(crate) struct ActiveSubscription {
    pub(crate) id: u64,
    pub(crate) started_at: Duration,
    pub(crate) cancel: CancellationToken,
}

pub(crate) struct BrokerInner {
    pub(crate) config: BrokerConfig,
    pub(crate) clock: SharedClock,
    pub(crate) journal: SharedJournal,
    pub(crate) sealer: TokenSealer,
    pub(crate) streams: RwLock<BTreeMap<String, Arc<StreamState>>>,
    pub(crate) next_stream_uid: AtomicU64,
    /// Serialises control-plane changes and the metadata snapshots that record them.
    pub(crate) control: Mutex<()>,
    pub(crate) subscriptions: Mutex<HashMap<(String, ShardId), ActiveSubscription>>,
    pub(crate) next_subscription_id: AtomicU64,
    pub(crate) fan_out_budgets: Mutex<HashMap<(String, ShardId), SharedBucket>>,
    /// The account's minimum throughput billing commitment (`UpdateAccountSettings`).
    pub(crate) account: Mutex<account::BillingCommitment>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl Broker {
    /// An empty in-memory broker (nothing is persisted).
    pub fn new(config: BrokerConfig) -> Broker {
        Broker::with_journal(config, Arc::new(NoopJournal))
    }

    /// An empty broker that reports every change to `journal`.
    pub fn with_journal(config: BrokerConfig, journal: SharedJournal) -> Broker {
        Broker::from_parts(
            config,
            journal,
            (rand::random(), 0),
            BTreeMap::new(),
            BillingCommitment::default(),
        )
    }

    fn from_parts(
        config: BrokerConfig,
        journal: SharedJournal,
        (token_key, next_stream_uid): ([u8; 32], u64),
        streams: BTreeMap<String, Arc<StreamState>>,
        account: BillingCommitment,
    ) -> Broker {
        let clock = Arc::clone(&config.clock);
        Broker {
            inner: Arc::new(BrokerInner {
                clock,
                journal,
                sealer: TokenSealer::new(token_key),
                streams: RwLock::new(streams),
                next_stream_uid: AtomicU64::new(next_stream_uid),
                control: Mutex::new(()),
                subscriptions: Mutex::new(HashMap::new()),
                next_subscription_id: AtomicU64::new(0),
                fan_out_budgets: Mutex::new(HashMap::new()),
                account: Mutex::new(account),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                config,
            }),
        }
    }

    /// Rebuilds a broker from what a durable store recovered, reporting future changes to
    /// `journal`. Streams that were being deleted are dropped; records older than their
    /// stream's retention, of unknown shards, or out of order are skipped (and logged).
    pub fn restore(
        config: BrokerConfig,
        journal: SharedJournal,
        recovered: RecoveredState,
    ) -> Result<Broker, RestoreError> {
        let Some(snapshot) = recovered.snapshot else {
            return Ok(Broker::with_journal(config, journal));
        };
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(RestoreError::UnsupportedVersion(snapshot.version));
        }
        let region = config.region.clone();
        let account = config.account_id.clone();
        let mut streams = BTreeMap::new();
        for stream in &snapshot.streams {
            if stream.deleting_since_millis.is_some() {
                continue;
            }
            let restored = restore_stream(stream, &region, &account)?;
            streams.insert(stream.stream_name.clone(), Arc::new(restored));
        }
        let by_uid: HashMap<u64, Arc<StreamState>> = streams
            .values()
            .map(|stream| (stream.uid, Arc::clone(stream)))
            .collect();
        let now = config.clock.wall();
        for shard_records in recovered.shards {
            restore_records(&by_uid, shard_records, now);
        }
        // Records become readable before their journal write is durable, so a crash can lose
        // sequence numbers that a consumer already saw (and checkpointed). Jumping every counter
        // past anything the crashed process could have handed out keeps every sequence number
        // issued after the restart above them, so a retried record is never hidden behind such a
        // checkpoint.
        for stream in streams.values() {
            stream.counter.fetch_add(seq::RESTART_GAP, Ordering::SeqCst);
        }
        Ok(Broker::from_parts(
            config,
            journal,
            (snapshot.token_key, snapshot.next_stream_uid),
            streams,
            snapshot
                .billing_commitment
                .map(BillingCommitment::from)
                .unwrap_or_default(),
        ))
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// The current metadata, as [`Journal::write_metadata`] receives it.
    pub fn snapshot(&self) -> BrokerSnapshot {
        self.inner.build_snapshot()
    }

    /// The ARN of the stream called `stream_name` in this broker's account and region.
    pub fn stream_arn(&self, stream_name: &str) -> String {
        self.inner.stream_arn(stream_name)
    }

    /// Stops every enhanced fan-out subscription and waits for their tasks to finish.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

fn restore_stream(
    snapshot: &StreamSnapshot,
    region: &str,
    account: &str,
) -> Result<StreamState, RestoreError> {
    let inconsistent = |problem: String| RestoreError::InconsistentStream {
        stream: snapshot.stream_name.clone(),
        problem,
    };
    let mut topology = Topology {
        next_shard_index: snapshot.next_shard_index,
        ..Topology::default()
    };
    let mut counter = snapshot.sequence_counter;
    for shard in &snapshot.shards {
        let range = shard.hash_key_range().ok_or_else(|| {
            inconsistent(format!(
                "shard {} has an invalid hash key range",
                shard.shard_id
            ))
        })?;
        let state = Arc::new(ShardState::new(
            shard.shard_id.clone(),
            (
                shard.parent_shard_id.clone(),
                shard.adjacent_parent_shard_id.clone(),
            ),
            range,
            shard.starting_sequence_number,
            EpochMillis(shard.created_at_millis),
        ));
        for sequence_number in [
            Some(shard.starting_sequence_number),
            shard.ending_sequence_number,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(used) = seq::to_counter(sequence_number) {
                counter = counter.max(used.saturating_add(1));
            }
        }
        if shard.ending_sequence_number.is_none() {
            topology.add_open(state);
        } else {
            topology.shards.insert(shard.shard_id.clone(), state);
        }
    }
    for shard in &snapshot.shards {
        let (Some(ending_sequence_number), Some(state)) = (
            shard.ending_sequence_number,
            topology.shards.get(&shard.shard_id),
        ) else {
            continue;
        };
        let children = shard
            .child_shard_ids
            .iter()
            .filter_map(|child| topology.shards.get(child).map(|child| child.as_child()))
            .collect();
        state::write(&state.log).end = Some(ShardEnd {
            ending_sequence_number,
            closed_at: EpochMillis(shard.closed_at_millis.unwrap_or(shard.created_at_millis)),
            children,
        });
    }
    check_coverage(&topology).map_err(inconsistent)?;
    let consumers = snapshot
        .consumers
        .iter()
        .map(|consumer| {
            let created_at = EpochMillis(consumer.created_at_millis);
            let state = ConsumerState {
                name: consumer.consumer_name.clone(),
                arn: consumer_arn(
                    region,
                    account,
                    &snapshot.stream_name,
                    &consumer.consumer_name,
                    created_at,
                ),
                created_at,
                cancel: CancellationToken::new(),
                resource_policy: consumer.resource_policy.clone(),
            };
            (consumer.consumer_name.clone(), state)
        })
        .collect();
    Ok(StreamState {
        name: snapshot.stream_name.clone(),
        arn: stream_arn(region, account, &snapshot.stream_name),
        uid: snapshot.stream_uid,
        created_at: EpochMillis(snapshot.created_at_millis),
        active_from: Duration::ZERO,
        counter: AtomicU64::new(counter),
        retention_hours: AtomicU32::new(snapshot.retention_period_hours),
        deleting: AtomicBool::new(false),
        encrypted: AtomicBool::new(snapshot.encryption_key_id.is_some()),
        max_record_bytes: AtomicUsize::new(account::kib_to_bytes(
            snapshot
                .max_record_size_kib
                .unwrap_or(account::MIN_RECORD_SIZE_KIB),
        )),
        meta: Mutex::new(StreamMeta {
            mode: if snapshot.on_demand {
                StreamMode::OnDemand
            } else {
                StreamMode::Provisioned
            },
            tags: snapshot.tags.clone(),
            consumers,
            retired_consumers: BTreeMap::new(),
            deleting_since: None,
            scaling_history: snapshot
                .scaling_history_millis
                .iter()
                .map(|millis| EpochMillis(*millis))
                .collect(),
            encryption_key_id: snapshot.encryption_key_id.clone(),
            shard_level_metrics: settings::ShardLevelMetrics::from_names(
                &snapshot.shard_level_metrics,
            )
            .map_err(|name| inconsistent(format!("unknown shard-level metric {name}")))?,
            resource_policy: snapshot.resource_policy.clone(),
            warm_throughput_mibps: snapshot.warm_throughput_mibps,
        }),
        topology: RwLock::new(topology),
    })
}

/// Checks that the open shards cover the whole hash-key space exactly once.
pub(crate) fn check_coverage(topology: &Topology) -> Result<(), String> {
    let mut next_key: Option<u128> = Some(0);
    for shard in &topology.open {
        if Some(shard.range.starting_hash_key) != next_key {
            return Err(format!(
                "open shard {} starts at {} but the previous open shard ended elsewhere",
                shard.id, shard.range.starting_hash_key
            ));
        }
        next_key = shard.range.ending_hash_key.checked_add(1);
    }
    if next_key.is_some() {
        return Err("the open shards do not cover the hash key space".to_owned());
    }
    Ok(())
}

fn restore_records(
    by_uid: &HashMap<u64, Arc<StreamState>>,
    recovered: RecoveredShard,
    now: EpochMillis,
) {
    let Some(stream) = by_uid.get(&recovered.stream_uid) else {
        tracing::warn!(
            stream_uid = recovered.stream_uid,
            shard_id = %recovered.shard_id,
            records = recovered.records.len(),
            "recovered records of an unknown stream were skipped"
        );
        return;
    };
    let Some(shard) = state::read(&stream.topology)
        .shards
        .get(&recovered.shard_id)
        .cloned()
    else {
        tracing::warn!(
            stream = %stream.name,
            shard_id = %recovered.shard_id,
            records = recovered.records.len(),
            "recovered records of an unknown shard were skipped"
        );
        return;
    };
    let horizon = stream.horizon(now);
    let mut log = state::write(&shard.log);
    let mut skipped = 0usize;
    for record in recovered.records {
        let in_order = log
            .records
            .last()
            .is_none_or(|last| last.sequence_number < record.sequence_number);
        if !in_order || record.approximate_arrival_timestamp < horizon {
            skipped += 1;
            continue;
        }
        if let Some(used) = seq::to_counter(record.sequence_number) {
            stream
                .counter
                .fetch_max(used.saturating_add(1), Ordering::SeqCst);
        }
        log.last_arrival = log.last_arrival.max(record.approximate_arrival_timestamp);
        log.records.push(record);
    }
    if skipped > 0 {
        tracing::info!(
            stream = %stream.name,
            shard_id = %shard.id,
            skipped,
            "recovered records that were expired or out of order were skipped"
        );
    }
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
pub(crate) fn stream_arn(region: &str, account: &str, stream_name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{stream_name}")
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:CREATION_EPOCH_SECONDS`.
pub(crate) fn consumer_arn(
    region: &str,
    account: &str,
    stream_name: &str,
    consumer_name: &str,
    created_at: EpochMillis,
) -> String {
    let seconds = created_at.0.div_euclid(1000);
    format!(
        "{}/consumer/{consumer_name}:{seconds}",
        stream_arn(region, account, stream_name)
    )
}

impl BrokerInner {
    pub(crate) fn account(&self) -> &str {
        &self.config.account_id
    }

    pub(crate) fn stream_arn(&self, stream_name: &str) -> String {
        stream_arn(&self.config.region, &self.config.account_id, stream_name)
    }

    pub(crate) fn now_wall(&self) -> EpochMillis {
        self.clock.wall()
    }

    pub(crate) fn now_mono(&self) -> Duration {
        self.clock.monotonic()
    }

    pub(crate) fn stream_not_found(&self, stream_name: &str) -> KinesisError {
        validate::not_found(format!(
            "Stream {stream_name} under account {} not found.",
            self.account()
        ))
    }

    pub(crate) fn shard_not_found(&self, shard_id: &str, stream_name: &str) -> KinesisError {
        validate::not_found(validate::shard_not_found_message(
            shard_id,
            stream_name,
            self.account(),
        ))
    }

    pub(crate) fn throughput_exceeded_message(
        &self,
        shard_id: &ShardId,
        stream_name: &str,
    ) -> String {
        format!(
            "Rate exceeded for shard {shard_id} in stream {stream_name} under account {}.",
            self.account()
        )
    }

    /// The stream name a reference denotes (checking an ARN's shape, region and account).
    pub(crate) fn resolve_name<'a>(&self, stream: &'a StreamRef) -> Result<&'a str, KinesisError> {
        match stream {
            StreamRef::Name(name) => {
                validate::name(name, "streamName")?;
                Ok(name)
            }
            StreamRef::Arn(arn) => self.stream_name_of_arn(arn, "streamARN"),
        }
    }

    /// The stream name in a stream ARN of this broker.
    pub(crate) fn stream_name_of_arn<'a>(
        &self,
        arn: &'a str,
        field: &str,
    ) -> Result<&'a str, KinesisError> {
        let parsed = validate::parse_arn(arn).filter(|parsed| parsed.consumer.is_none());
        let Some(parsed) = parsed else {
            let mut violations = validate::Violations::default();
            violations.value(
                arn,
                field,
                &format!(
                    "Member must satisfy regular expression pattern: {}",
                    validate::STREAM_ARN_PATTERN
                ),
            );
            return Err(violations
                .into_result()
                .err()
                .unwrap_or_else(|| validate::invalid_argument("invalid ARN")));
        };
        if parsed.account != self.config.account_id || parsed.region != self.config.region {
            return Err(validate::not_found(format!(
                "Stream {} under account {} not found.",
                parsed.stream_name, parsed.account
            )));
        }
        validate::name(parsed.stream_name, "streamName")?;
        Ok(parsed.stream_name)
    }

    /// The stream a reference denotes, in any status (deleted-and-gone streams are not found).
    pub(crate) fn stream_any(&self, stream: &StreamRef) -> Result<Arc<StreamState>, KinesisError> {
        let name = self.resolve_name(stream)?;
        self.stream_by_name(name)
    }

    pub(crate) fn stream_by_name(&self, name: &str) -> Result<Arc<StreamState>, KinesisError> {
        let found = state::read(&self.streams).get(name).cloned();
        let Some(found) = found else {
            return Err(self.stream_not_found(name));
        };
        if self.deletion_finished(&found) {
            self.forget_deleted_stream(&found);
            return Err(self.stream_not_found(name));
        }
        Ok(found)
    }

    /// The stream, which must be readable/writable (`ACTIVE` or `UPDATING`); others are not
    /// found, as Kinesis answers data calls on streams being created or deleted.
    pub(crate) fn stream_for_data(
        &self,
        stream: &StreamRef,
    ) -> Result<Arc<StreamState>, KinesisError> {
        let found = self.stream_any(stream)?;
        match found.status(self.now_mono()) {
            StreamStatus::Active | StreamStatus::Updating => Ok(found),
            StreamStatus::Creating | StreamStatus::Deleting => {
                Err(self.stream_not_found(&found.name))
            }
        }
    }

    /// Checks that a stream's shards may be listed: `ListShards` answers
    /// `ResourceInUseException` while the stream is `CREATING` or `DELETING` (the KCL waits for
    /// `ACTIVE` or `UPDATING` on it), with the wording Kinesis uses for a stream not `ACTIVE`.
    pub(crate) fn require_listable(&self, stream: &StreamState) -> Result<(), KinesisError> {
        match stream.status(self.now_mono()) {
            StreamStatus::Active | StreamStatus::Updating => Ok(()),
            status @ (StreamStatus::Creating | StreamStatus::Deleting) => {
                Err(validate::in_use(format!(
                    "Stream {} under account {} not ACTIVE, instead in state {}",
                    stream.name,
                    self.account(),
                    status.as_str()
                )))
            }
        }
    }

    /// The stream, which must be `ACTIVE` for a control-plane change.
    pub(crate) fn stream_active(
        &self,
        stream: &StreamRef,
    ) -> Result<Arc<StreamState>, KinesisError> {
        let found = self.stream_any(stream)?;
        let status = found.status(self.now_mono());
        if status != StreamStatus::Active {
            return Err(validate::in_use(format!(
                "Stream {} under account {} not ACTIVE, instead in state {}",
                found.name,
                self.account(),
                status.as_str()
            )));
        }
        Ok(found)
    }

    fn deletion_finished(&self, stream: &StreamState) -> bool {
        if !stream.deleting.load(Ordering::Acquire) {
            return false;
        }
        let deleting_since = state::lock(&stream.meta).deleting_since;
        deleting_since.is_some_and(|(_, since)| {
            self.now_mono() >= since.saturating_add(self.config.delete_delay)
        })
    }

    fn forget_deleted_stream(&self, stream: &Arc<StreamState>) {
        let mut streams = state::write(&self.streams);
        if streams
            .get(&stream.name)
            .is_some_and(|current| Arc::ptr_eq(current, stream))
        {
            streams.remove(&stream.name);
        }
    }

    /// Drops streams whose deletion has finished; returns whether any was dropped.
    pub(crate) fn purge_deleted_streams(&self) -> bool {
        let finished: Vec<Arc<StreamState>> = state::read(&self.streams)
            .values()
            .filter(|stream| self.deletion_finished(stream))
            .cloned()
            .collect();
        for stream in &finished {
            self.forget_deleted_stream(stream);
        }
        !finished.is_empty()
    }

    /// The metadata of every stream.
    pub(crate) fn build_snapshot(&self) -> BrokerSnapshot {
        let streams: Vec<Arc<StreamState>> = state::read(&self.streams).values().cloned().collect();
        BrokerSnapshot {
            version: SNAPSHOT_VERSION,
            token_key: self.sealer.key(),
            next_stream_uid: self.next_stream_uid.load(Ordering::SeqCst),
            streams: streams
                .iter()
                .map(|stream| snapshot_stream(stream))
                .collect(),
            billing_commitment: Some((*state::lock(&self.account)).into()),
        }
    }

    /// Records the current metadata with the journal (call with the control lock held) and
    /// returns the ticket to await after releasing it.
    pub(crate) fn journal_metadata(&self) -> DurabilityTicket {
        if !self.journal.is_durable() {
            return DurabilityTicket::ready();
        }
        let snapshot = self.build_snapshot();
        self.journal.write_metadata(&snapshot)
    }

    pub(crate) fn control_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        state::lock(&self.control)
    }
}

/// Waits for a metadata ticket, turning a journal failure into `InternalFailure`.
pub(crate) async fn await_durable(ticket: DurabilityTicket) -> Result<(), KinesisError> {
    ticket.await.map_err(|error| {
        tracing::error!(error = %error, "journal failed to persist a change");
        KinesisError::new(
            KinesisErrorKind::InternalFailure,
            "Internal service failure.",
        )
    })
}

fn snapshot_stream(stream: &StreamState) -> StreamSnapshot {
    let meta = state::lock(&stream.meta);
    let topology = state::read(&stream.topology);
    let shards = topology
        .shards
        .values()
        .map(|shard| {
            let log = state::read(&shard.log);
            ShardSnapshot {
                shard_id: shard.id.clone(),
                parent_shard_id: shard.parent_shard_id.clone(),
                adjacent_parent_shard_id: shard.adjacent_parent_shard_id.clone(),
                starting_hash_key: shard.range.starting_hash_key.to_string(),
                ending_hash_key: shard.range.ending_hash_key.to_string(),
                starting_sequence_number: shard.starting_sequence_number,
                ending_sequence_number: log.end.as_ref().map(|end| end.ending_sequence_number),
                created_at_millis: shard.created_at.0,
                closed_at_millis: log.end.as_ref().map(|end| end.closed_at.0),
                child_shard_ids: log
                    .end
                    .as_ref()
                    .map(|end| {
                        end.children
                            .iter()
                            .map(|child| child.shard_id.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    StreamSnapshot {
        stream_name: stream.name.clone(),
        stream_uid: stream.uid,
        created_at_millis: stream.created_at.0,
        deleting_since_millis: meta.deleting_since.map(|(wall, _)| wall.0),
        retention_period_hours: stream.retention_hours.load(Ordering::SeqCst),
        on_demand: meta.mode == StreamMode::OnDemand,
        tags: meta.tags.clone(),
        consumers: meta
            .consumers
            .values()
            .map(|consumer| ConsumerSnapshot {
                consumer_name: consumer.name.clone(),
                created_at_millis: consumer.created_at.0,
                resource_policy: consumer.resource_policy.clone(),
            })
            .collect(),
        shards,
        next_shard_index: topology.next_shard_index,
        sequence_counter: stream.counter.load(Ordering::SeqCst),
        scaling_history_millis: meta.scaling_history.iter().map(|at| at.0).collect(),
        encryption_key_id: meta.encryption_key_id.clone(),
        shard_level_metrics: meta.shard_level_metrics.names(),
        resource_policy: meta.resource_policy.clone(),
        max_record_size_kib: Some(account::bytes_to_kib(
            stream.max_record_bytes.load(Ordering::Acquire),
        )),
        warm_throughput_mibps: meta.warm_throughput_mibps,
    }
}
