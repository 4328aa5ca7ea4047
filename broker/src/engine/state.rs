//! The engine's in-memory state: streams, their shard topology, shards and their logs.
//!
//! Lock order (never take an earlier lock while holding a later one):
//! broker control lock → streams map → `StreamState::meta` → `StreamState::topology` →
//! `ShardState::log` → `ShardState::read_limits`.

use super::api::{StreamMode, StreamStatus};
use super::log::RecordLog;
use super::throttle::TokenBucket;
use kcl_core::kinesis::{
    ChildShard, EpochMillis, HashKey, HashKeyRange, SequenceNumber, SequenceNumberRange, Shard,
    ShardId,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the engine's
/// invariants are restored by every critical section before it can panic).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Read-locks an `RwLock`, ignoring poisoning.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write-locks an `RwLock`, ignoring poisoning.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A closed shard's end.
#[derive(Debug, Clone)]
pub(crate) struct ShardEnd {
    pub(crate) ending_sequence_number: SequenceNumber,
    pub(crate) closed_at: EpochMillis,
    pub(crate) children: Vec<ChildShard>,
}

/// Write throughput buckets of a shard.
#[derive(Debug, Clone)]
pub(crate) struct WriteBuckets {
    pub(crate) records: TokenBucket,
    pub(crate) bytes: TokenBucket,
}

/// Shared-read throughput buckets of a shard.
#[derive(Debug, Clone)]
pub(crate) struct ReadBuckets {
    pub(crate) calls: TokenBucket,
    pub(crate) bytes: TokenBucket,
}

/// The mutable part of a shard, behind its lock.
#[derive(Debug, Default)]
pub(crate) struct ShardLog {
    pub(crate) records: RecordLog,
    pub(crate) end: Option<ShardEnd>,
    /// Arrival time of the newest record (arrival times never go backwards within a shard).
    pub(crate) last_arrival: EpochMillis,
    pub(crate) write_limits: Option<WriteBuckets>,
}

impl ShardLog {
    /// Drops records that arrived before `horizon`; returns the first retained sequence
    /// number if anything was dropped.
    pub(crate) fn trim_before(&mut self, horizon: EpochMillis) -> Option<SequenceNumber> {
        let expired = match self.records.first() {
            Some(oldest) if oldest.approximate_arrival_timestamp < horizon => {
                self.records.index_of_arrival(horizon)
            }
            _ => return None,
        };
        let retained_from = self
            .records
            .get(expired)
            .map(|record| record.sequence_number)
            .or_else(|| {
                self.records
                    .last()
                    .map(|record| record.sequence_number.successor())
            });
        self.records.trim_front(expired);
        retained_from
    }
}

/// One shard.
#[derive(Debug)]
pub(crate) struct ShardState {
    pub(crate) id: ShardId,
    pub(crate) parent_shard_id: Option<ShardId>,
    pub(crate) adjacent_parent_shard_id: Option<ShardId>,
    pub(crate) range: HashKeyRange,
    pub(crate) starting_sequence_number: SequenceNumber,
    pub(crate) created_at: EpochMillis,
    pub(crate) log: RwLock<ShardLog>,
    pub(crate) read_limits: Mutex<Option<ReadBuckets>>,
    /// Woken after every append and when the shard closes (enhanced fan-out waits on it).
    pub(crate) changed: Notify,
}

impl ShardState {
    pub(crate) fn new(
        id: ShardId,
        parents: (Option<ShardId>, Option<ShardId>),
        range: HashKeyRange,
        starting_sequence_number: SequenceNumber,
        created_at: EpochMillis,
    ) -> Self {
        ShardState {
            id,
            parent_shard_id: parents.0,
            adjacent_parent_shard_id: parents.1,
            range,
            starting_sequence_number,
            created_at,
            log: RwLock::new(ShardLog::default()),
            read_limits: Mutex::new(None),
            changed: Notify::new(),
        }
    }

    /// The shard as `ListShards` describes it.
    pub(crate) fn describe(&self) -> Shard {
        let ending_sequence_number = read(&self.log)
            .end
            .as_ref()
            .map(|end| end.ending_sequence_number);
        Shard {
            shard_id: self.id.clone(),
            parent_shard_id: self.parent_shard_id.clone(),
            adjacent_parent_shard_id: self.adjacent_parent_shard_id.clone(),
            hash_key_range: self.range,
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: self.starting_sequence_number,
                ending_sequence_number,
            },
        }
    }

    /// When the shard was closed, if it is.
    pub(crate) fn closed_at(&self) -> Option<EpochMillis> {
        read(&self.log).end.as_ref().map(|end| end.closed_at)
    }

    /// Whether the shard was open at some moment of `[from, to]`.
    pub(crate) fn open_during(&self, from: EpochMillis, to: EpochMillis) -> bool {
        let created_in_time = self.created_at <= to;
        let not_closed_before = self.closed_at().is_none_or(|closed| closed > from);
        created_in_time && not_closed_before
    }

    /// The child-shard entry describing this shard.
    pub(crate) fn as_child(&self) -> ChildShard {
        ChildShard {
            shard_id: self.id.clone(),
            parent_shards: self
                .parent_shard_id
                .iter()
                .chain(self.adjacent_parent_shard_id.iter())
                .cloned()
                .collect(),
            hash_key_range: self.range,
        }
    }
}

/// The shards of a stream.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    /// Every retained shard (open, or closed with records still in retention), by id.
    pub(crate) shards: BTreeMap<ShardId, Arc<ShardState>>,
    /// The open shards, ascending by starting hash key; together they cover the key space.
    pub(crate) open: Vec<Arc<ShardState>>,
    /// The index of the next shard to create.
    pub(crate) next_shard_index: u64,
}

impl Topology {
    /// The open shard owning `key`.
    pub(crate) fn route(&self, key: HashKey) -> Option<usize> {
        let after = self
            .open
            .partition_point(|shard| shard.range.starting_hash_key <= key);
        let index = after.checked_sub(1)?;
        self.open[index].range.contains(key).then_some(index)
    }

    /// Registers a new open shard and keeps `open` sorted.
    pub(crate) fn add_open(&mut self, shard: Arc<ShardState>) {
        self.shards.insert(shard.id.clone(), Arc::clone(&shard));
        let at = self
            .open
            .partition_point(|open| open.range.starting_hash_key < shard.range.starting_hash_key);
        self.open.insert(at, shard);
    }

    /// Removes a shard from the open list (it stays retained).
    pub(crate) fn remove_open(&mut self, id: &ShardId) {
        self.open.retain(|shard| &shard.id != id);
    }

    /// The next shard id.
    pub(crate) fn take_shard_id(&mut self) -> ShardId {
        let id = ShardId::from_index(self.next_shard_index);
        self.next_shard_index += 1;
        id
    }
}

/// A registered enhanced fan-out consumer.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerState {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) created_at: EpochMillis,
    /// Cancelled when the consumer is deregistered (ends its subscriptions).
    pub(crate) cancel: CancellationToken,
    /// The resource policy attached with `PutResourcePolicy` (stored verbatim, not enforced).
    pub(crate) resource_policy: Option<String>,
}

/// A stream's control-plane metadata.
#[derive(Debug, Default)]
pub(crate) struct StreamMeta {
    pub(crate) mode: StreamMode,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) consumers: BTreeMap<String, ConsumerState>,
    /// Deregistered consumer names → the creation second in their last ARN, so a consumer
    /// registered again under the same name gets a different ARN (the old one stays unknown).
    pub(crate) retired_consumers: BTreeMap<String, i64>,
    /// Wall and monotonic time of `DeleteStream`.
    pub(crate) deleting_since: Option<(EpochMillis, Duration)>,
    pub(crate) scaling_history: Vec<EpochMillis>,
    /// The KMS key of `StartStreamEncryption`; `Some` means `EncryptionType` `KMS`.
    pub(crate) encryption_key_id: Option<String>,
    /// Enabled shard-level metrics (see `settings::ShardLevelMetrics`).
    pub(crate) shard_level_metrics: super::settings::ShardLevelMetrics,
    /// The stream's resource policy (stored verbatim, not enforced).
    pub(crate) resource_policy: Option<String>,
    /// The warm throughput of an on-demand stream (`UpdateStreamWarmThroughput`), MiB/s.
    pub(crate) warm_throughput_mibps: Option<u32>,
}

/// One stream.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) uid: u64,
    pub(crate) created_at: EpochMillis,
    /// Monotonic time from which the stream is `ACTIVE` (create delay).
    pub(crate) active_from: Duration,
    /// The sequence-number counter (see `seq`).
    pub(crate) counter: AtomicU64,
    pub(crate) retention_hours: AtomicU32,
    /// Set once `DeleteStream` was called (mirrors `meta.deleting_since` for the hot path).
    pub(crate) deleting: AtomicBool,
    /// Mirrors `meta.encryption_key_id.is_some()` for the put path (`EncryptionType` `KMS`).
    pub(crate) encrypted: AtomicBool,
    /// The largest record (data plus partition key) `PutRecord(s)` accept, in bytes
    /// (`UpdateMaxRecordSize`).
    pub(crate) max_record_bytes: AtomicUsize,
    pub(crate) meta: Mutex<StreamMeta>,
    pub(crate) topology: RwLock<Topology>,
}

impl StreamState {
    /// The status at monotonic time `now`.
    pub(crate) fn status(&self, now: Duration) -> StreamStatus {
        if self.deleting.load(Ordering::Acquire) {
            return StreamStatus::Deleting;
        }
        if now < self.active_from {
            return StreamStatus::Creating;
        }
        StreamStatus::Active
    }

    /// The retention window.
    pub(crate) fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_hours.load(Ordering::Relaxed)) * 3600)
    }

    /// The oldest arrival time still retained at wall time `now`.
    pub(crate) fn horizon(&self, now: EpochMillis) -> EpochMillis {
        let retention = i64::try_from(self.retention().as_millis()).unwrap_or(i64::MAX);
        EpochMillis(now.0.saturating_sub(retention))
    }

    /// Whether a closed shard has passed out of retention (all its records expired).
    pub(crate) fn shard_expired(&self, shard: &ShardState, now: EpochMillis) -> bool {
        shard
            .closed_at()
            .is_some_and(|closed| closed <= self.horizon(now))
    }

    /// The retained shards at wall time `now`, in id order.
    pub(crate) fn retained_shards(&self, now: EpochMillis) -> Vec<Arc<ShardState>> {
        read(&self.topology)
            .shards
            .values()
            .filter(|shard| !self.shard_expired(shard, now))
            .cloned()
            .collect()
    }

    /// Number of open shards.
    pub(crate) fn open_shard_count(&self) -> u32 {
        u32::try_from(read(&self.topology).open.len()).unwrap_or(u32::MAX)
    }
}
