//! The persistence hook: how a durable store sees the engine, and how the engine is rebuilt.
//!
//! The engine keeps everything in memory. A [`Journal`] is told about every change that must
//! survive a restart, at the moment its order is fixed:
//!
//! - [`Journal::append`] receives the records one `PutRecord`/`PutRecords` call accepted for
//!   **one shard**, in sequence-number order, while the engine still holds that shard's write
//!   lock (so appends of one shard arrive in exactly the order of their sequence numbers). It
//!   returns a [`DurabilityTicket`]; the put path releases its locks and then awaits the ticket
//!   before acknowledging the records to the producer. A journal with `fsync=always` therefore
//!   hands out pending tickets and completes them from its writer thread after the fsync that
//!   covers them (group commit: many tickets per fsync).
//! - [`Journal::write_metadata`] receives a complete [`BrokerSnapshot`] (streams, shards and
//!   their lineage, retention, modes, tags, consumers, counters) after every control-plane
//!   change (create/delete stream, split, merge, scaling, retention, tags, consumers). Calls are
//!   serialised by the engine and made in the order of the changes; the latest snapshot wins.
//!   The control-plane call awaits the returned ticket before answering.
//! - [`Journal::trimmed`] tells the journal that records of a shard older than a sequence number
//!   have left the retention window (the journal may delete whole segments before it).
//!
//! **Every method is called with engine locks held and must not block**: copy what you need
//! into a queue/buffer and return; do the I/O (write, fsync) on a dedicated thread.
//!
//! On start, the durable store reads its files back into a [`RecoveredState`] and builds the
//! broker with [`Broker::restore`](super::Broker::restore). Records are matched to shards by
//! `(stream_uid, shard_id)`: the `stream_uid` distinguishes a stream from an earlier stream of
//! the same name that was deleted.
//!
//! [`NoopJournal`] (the default of [`Broker::new`](super::Broker::new)) keeps nothing.

use kcl_core::kinesis::{HashKeyRange, Record, SequenceNumber, ShardId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Why a journal could not make a change durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal failure: {message}")]
pub struct JournalError {
    /// What went wrong, for logs.
    pub message: String,
}

impl JournalError {
    /// A journal error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        JournalError {
            message: message.into(),
        }
    }
}

/// A promise that a journal change is durable (or failed to become durable).
///
/// Await it (it is a [`Future`]) to learn the outcome. A ticket whose sender was dropped
/// without an answer resolves to an error.
#[derive(Debug)]
pub struct DurabilityTicket {
    state: TicketState,
}

#[derive(Debug)]
enum TicketState {
    Ready(Option<Result<(), JournalError>>),
    Pending(oneshot::Receiver<Result<(), JournalError>>),
}

impl DurabilityTicket {
    /// A ticket that is already durable (in-memory journals, `fsync=never`).
    pub fn ready() -> Self {
        DurabilityTicket {
            state: TicketState::Ready(Some(Ok(()))),
        }
    }

    /// A ticket that has already failed.
    pub fn failed(error: JournalError) -> Self {
        DurabilityTicket {
            state: TicketState::Ready(Some(Err(error))),
        }
    }

    /// A pending ticket and the sender that completes it (send `Ok(())` after the fsync).
    pub fn pending() -> (Self, DurabilitySender) {
        let (sender, receiver) = oneshot::channel();
        let ticket = DurabilityTicket {
            state: TicketState::Pending(receiver),
        };
        (ticket, DurabilitySender { sender })
    }

    /// Whether the outcome is already known without waiting.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, TicketState::Ready(_))
    }
}

impl Future for DurabilityTicket {
    type Output = Result<(), JournalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            TicketState::Ready(outcome) => Poll::Ready(
                outcome
                    .take()
                    .unwrap_or_else(|| Err(JournalError::new("ticket polled after completion"))),
            ),
            TicketState::Pending(receiver) => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
                Poll::Ready(Err(_)) => Poll::Ready(Err(JournalError::new(
                    "journal dropped the change before it was durable",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The completing half of a pending [`DurabilityTicket`].
#[derive(Debug)]
pub struct DurabilitySender {
    sender: oneshot::Sender<Result<(), JournalError>>,
}

impl DurabilitySender {
    /// Completes the ticket with `outcome`. A waiter that went away is ignored.
    pub fn complete(self, outcome: Result<(), JournalError>) {
        let _ignored_if_waiter_gone = self.sender.send(outcome);
    }
}

/// The records one put call accepted for one shard, in sequence-number order.
#[derive(Debug, Clone, Copy)]
pub struct JournalAppend<'a> {
    /// The stream's name.
    pub stream_name: &'a str,
    /// The stream's unique id (see [`StreamSnapshot::stream_uid`]).
    pub stream_uid: u64,
    /// The shard the records belong to.
    pub shard_id: &'a ShardId,
    /// The records, with their sequence numbers and arrival timestamps assigned.
    pub records: &'a [Record],
}

/// The persistence hook of the engine. See the [module docs](self) for the contract.
///
/// Implementations must be cheap and non-blocking in every method (they run under engine
/// locks); do I/O on a dedicated thread and complete tickets from there.
pub trait Journal: Send + Sync + fmt::Debug + 'static {
    /// Records accepted for one shard, in order. Called under the shard's write lock; the
    /// records are acknowledged to the producer only after the returned ticket resolves `Ok`.
    fn append(&self, append: JournalAppend<'_>) -> DurabilityTicket;

    /// The whole metadata after a control-plane change. Calls are serialised and ordered; the
    /// last one describes the current state. The change is answered after the ticket resolves.
    fn write_metadata(&self, snapshot: &BrokerSnapshot) -> DurabilityTicket;

    /// Records of `shard_id` with a sequence number below `retained_from` have expired and
    /// will never be read again. The default does nothing.
    fn trimmed(&self, stream_uid: u64, shard_id: &ShardId, retained_from: SequenceNumber) {
        let _ = (stream_uid, shard_id, retained_from);
    }

    /// Whether this journal keeps anything. When `false` the engine skips building metadata
    /// snapshots. The default is `true`.
    fn is_durable(&self) -> bool {
        true
    }
}

/// A journal that keeps nothing: every ticket is ready at once. The in-memory default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopJournal;

impl Journal for NoopJournal {
    fn append(&self, _append: JournalAppend<'_>) -> DurabilityTicket {
        DurabilityTicket::ready()
    }

    fn write_metadata(&self, _snapshot: &BrokerSnapshot) -> DurabilityTicket {
        DurabilityTicket::ready()
    }

    fn is_durable(&self) -> bool {
        false
    }
}

/// A shared journal handle.
pub type SharedJournal = Arc<dyn Journal>;

/// Everything but the records: what [`Journal::write_metadata`] persists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerSnapshot {
    /// Format version of this snapshot (currently 1).
    pub version: u32,
    /// The key that signs shard iterators and pagination tokens, so they stay valid across a
    /// restart. Keep it private (it lets anyone forge iterators).
    pub token_key: [u8; 32],
    /// The next stream uid to hand out.
    pub next_stream_uid: u64,
    /// Every stream, including ones being deleted.
    pub streams: Vec<StreamSnapshot>,
    /// The account's minimum throughput billing commitment (`UpdateAccountSettings`);
    /// `None` in snapshots of earlier versions (never enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_commitment: Option<super::account::BillingCommitmentSnapshot>,
}

/// One stream's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSnapshot {
    /// The stream's name.
    pub stream_name: String,
    /// Unique among all streams ever created by this broker (a recreated stream gets a new one).
    pub stream_uid: u64,
    /// When the stream was created (wall clock, epoch milliseconds).
    pub created_at_millis: i64,
    /// When `DeleteStream` was called (epoch milliseconds), if it was (the stream is `DELETING`).
    pub deleting_since_millis: Option<i64>,
    /// Retention in hours.
    pub retention_period_hours: u32,
    /// `true` for `ON_DEMAND`, `false` for `PROVISIONED`.
    pub on_demand: bool,
    /// The stream's tags.
    pub tags: BTreeMap<String, String>,
    /// Registered enhanced fan-out consumers.
    pub consumers: Vec<ConsumerSnapshot>,
    /// Every retained shard, open and closed, in creation order.
    pub shards: Vec<ShardSnapshot>,
    /// The index the next new shard gets (`shardId-<index>`).
    pub next_shard_index: u64,
    /// A lower bound of the next sequence-number counter; on restore the engine also moves it
    /// past every recovered record.
    pub sequence_counter: u64,
    /// When `UpdateShardCount` calls happened, epoch milliseconds (10-per-24-hours rule).
    pub scaling_history_millis: Vec<i64>,
    /// The KMS key id of `StartStreamEncryption` (`EncryptionType` `KMS`); `None` for `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key_id: Option<String>,
    /// Enabled shard-level metrics (`EnableEnhancedMonitoring`), by their wire names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_level_metrics: Vec<String>,
    /// The stream's resource policy (`PutResourcePolicy`), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
    /// The record size limit (`UpdateMaxRecordSize`), KiB; `None`: Kinesis's 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_size_kib: Option<u32>,
    /// The warm throughput of an on-demand stream (`UpdateStreamWarmThroughput`), MiB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_throughput_mibps: Option<u32>,
}

/// One shard's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    /// The shard's id.
    pub shard_id: ShardId,
    /// The shard it was split from / the first of the two it was merged from.
    pub parent_shard_id: Option<ShardId>,
    /// The second parent of a merged shard.
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// First hash key.
    pub starting_hash_key: String,
    /// Last hash key (inclusive).
    pub ending_hash_key: String,
    /// The first sequence number the shard may use.
    pub starting_sequence_number: SequenceNumber,
    /// The last sequence number, once the shard is closed.
    pub ending_sequence_number: Option<SequenceNumber>,
    /// When the shard was created (epoch milliseconds).
    pub created_at_millis: i64,
    /// When the shard was closed (split or merged away), epoch milliseconds.
    pub closed_at_millis: Option<i64>,
    /// The shard's children, once closed.
    pub child_shard_ids: Vec<ShardId>,
}

impl ShardSnapshot {
    /// The shard's hash-key range, if the stored keys parse.
    pub fn hash_key_range(&self) -> Option<HashKeyRange> {
        let start = self.starting_hash_key.parse().ok()?;
        let end = self.ending_hash_key.parse().ok()?;
        Some(HashKeyRange::new(start, end))
    }
}

/// One consumer's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerSnapshot {
    /// The consumer's name.
    pub consumer_name: String,
    /// When it was registered, epoch milliseconds (its ARN ends with these seconds).
    pub created_at_millis: i64,
    /// The consumer's resource policy (`PutResourcePolicy`), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
}

/// The records recovered for one shard, in sequence-number order.
#[derive(Debug, Clone)]
pub struct RecoveredShard {
    /// The owning stream's uid.
    pub stream_uid: u64,
    /// The shard.
    pub shard_id: ShardId,
    /// The records, ascending by sequence number (duplicates and older-than-retention records
    /// are dropped by the engine).
    pub records: Vec<Record>,
}

/// What a durable store hands to [`Broker::restore`](super::Broker::restore).
#[derive(Debug, Clone)]
pub struct RecoveredState {
    /// The last metadata snapshot written, or `None` for an empty data directory.
    pub snapshot: Option<BrokerSnapshot>,
    /// Recovered records per shard. Shards absent from the snapshot are ignored (logged).
    pub shards: Vec<RecoveredShard>,
}
