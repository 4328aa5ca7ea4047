//! Durable storage for the broker: an append-only, checksummed record log plus an atomically
//! replaced metadata snapshot, behind the engine's [`Journal`] hook.
//!
//! Layout of a data directory:
//!
//! ```text
//! <data-dir>/metadata.json        the latest BrokerSnapshot (streams, shards, lineage, ...)
//! <data-dir>/log/00000000000000000001.log
//! <data-dir>/log/00000000000000000002.log   segments of frames; only the newest is written
//! ```
//!
//! Every frame is `length | CRC32 | payload` ([`frame`]); a record frame holds the records one
//! put call accepted for one shard ([`records`]). A single log for all shards lets one fsync
//! cover every concurrent writer (group commit, see [`writer`]). [`open`] reads everything back,
//! truncates a torn or corrupt tail and says so in a [`RecoveryReport`], and hands the engine a
//! [`RecoveredState`] to restore from. Retention deletes whole segments once every record in
//! them has expired or belongs to a deleted stream.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use broker::storage::{FsyncPolicy, StorageConfig};
//!
//! let opened = broker::storage::open(StorageConfig::new("./data", FsyncPolicy::Always))?;
//! println!("recovered {} records", opened.report.records);
//! # Ok(())
//! # }
//! ```

pub mod frame;
pub mod meta;
pub mod records;
pub mod segment;
pub mod writer;

use crate::engine::journal::{
    BrokerSnapshot, DurabilityTicket, Journal, JournalAppend, JournalError, RecoveredShard,
    RecoveredState,
};
use kcl_core::kinesis::{SequenceNumber, ShardId};
use segment::{ActiveSegment, ShardKey};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
pub use writer::describe_metrics;
use writer::{Command, Writer};

/// When the log is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before acknowledging: an acknowledged record survives a power loss. Concurrent writers
    /// share fsyncs (group commit).
    Always,
    /// Every interval: acknowledged after the write reached the OS (survives a killed process;
    /// a power loss may lose up to one interval).
    Interval(Duration),
    /// Never explicitly (the OS flushes when it likes); survives a killed process.
    Never,
}

impl FsyncPolicy {
    /// Parses `always`, `interval` (with `interval`) or `never`.
    pub fn parse(name: &str, interval: Duration) -> Option<FsyncPolicy> {
        match name {
            "always" => Some(FsyncPolicy::Always),
            "interval" => Some(FsyncPolicy::Interval(interval)),
            "never" => Some(FsyncPolicy::Never),
            _ => None,
        }
    }
}

/// Where and how to store.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// The fsync policy.
    pub fsync: FsyncPolicy,
    /// Size at which a new log segment is started.
    pub segment_bytes: u64,
}

impl StorageConfig {
    /// Storage in `data_dir` with `fsync` and 64 MiB segments.
    pub fn new(data_dir: impl Into<PathBuf>, fsync: FsyncPolicy) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            fsync,
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file operation failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The metadata snapshot cannot be read.
    #[error("metadata snapshot {} is unreadable: {message}", path.display())]
    Metadata {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the log writer thread: {0}")]
    Thread(String),
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether a metadata snapshot was found.
    pub metadata_found: bool,
    /// Log segments read.
    pub segments: usize,
    /// Intact frames read.
    pub frames: u64,
    /// Records recovered.
    pub records: u64,
    /// Torn or corrupt tails cut off (empty after a clean shutdown).
    pub truncations: Vec<segment::Truncation>,
}

/// An opened data directory: the journal to give the engine, and what to restore it from.
#[derive(Debug)]
pub struct Opened {
    /// The journal (hand it to `Broker::restore`).
    pub journal: std::sync::Arc<DiskJournal>,
    /// The recovered state.
    pub state: RecoveredState,
    /// What recovery found.
    pub report: RecoveryReport,
}

/// Opens (or creates) a data directory: recovers its contents and starts the writer thread.
///
/// Blocking (reads every segment): call it before starting the runtime or via
/// `spawn_blocking`.
pub fn open(config: StorageConfig) -> Result<Opened, StorageError> {
    let data_dir = config.data_dir.clone();
    let log_dir = data_dir.join("log");
    std::fs::create_dir_all(&log_dir).map_err(|source| StorageError::Io {
        path: log_dir.clone(),
        source,
    })?;

    let snapshot = read_snapshot(&data_dir)?;
    let recovered = segment::recover(&log_dir)?;
    let mut report = RecoveryReport {
        metadata_found: snapshot.is_some(),
        segments: recovered.segments.len(),
        frames: recovered.frames,
        records: 0,
        truncations: recovered.truncations,
    };

    let mut by_shard: HashMap<ShardKey, Vec<kcl_core::kinesis::Record>> = HashMap::new();
    let mut order: Vec<ShardKey> = Vec::new();
    for batch in recovered.batches {
        report.records += batch.records.len() as u64;
        let key = (batch.stream_uid, batch.shard_id);
        let records = by_shard.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        records.extend(batch.records);
    }
    let shards = order
        .into_iter()
        .filter_map(|key| {
            let mut records = by_shard.remove(&key)?;
            records.sort_by_key(|record| record.sequence_number);
            Some(RecoveredShard {
                stream_uid: key.0,
                shard_id: key.1,
                records,
            })
        })
        .collect();

    let mut segments = recovered.segments;
    let active = match segments.pop() {
        Some(last) => ActiveSegment::open(&log_dir, last.id, Some(last))?,
        None => {
            let active = ActiveSegment::open(&log_dir, 1, None)?;
            segment::sync_dir(&log_dir)?;
            active
        }
    };
    let writer = Writer {
        log_dir,
        data_dir,
        policy: config.fsync,
        segment_bytes: config.segment_bytes.max(1),
        active,
        closed: segments,
        live: snapshot.as_ref().map(live_shards),
        retained_from: HashMap::new(),
        failed: None,
    };
    let (commands, receiver) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("broker-log-writer".into())
        .spawn(move || writer.run(receiver))
        .map_err(|error| StorageError::Thread(error.to_string()))?;

    tracing::info!(
        metadata_found = report.metadata_found,
        segments = report.segments,
        frames = report.frames,
        records = report.records,
        truncations = report.truncations.len(),
        "storage recovered"
    );
    Ok(Opened {
        journal: std::sync::Arc::new(DiskJournal {
            commands,
            thread: Mutex::new(Some(thread)),
        }),
        state: RecoveredState { snapshot, shards },
        report,
    })
}

fn read_snapshot(data_dir: &Path) -> Result<Option<BrokerSnapshot>, StorageError> {
    let Some(bytes) = meta::read(data_dir)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| StorageError::Metadata {
            path: meta::path(data_dir),
            message: error.to_string(),
        })
}

fn live_shards(snapshot: &BrokerSnapshot) -> HashSet<ShardKey> {
    snapshot
        .streams
        .iter()
        .flat_map(|stream| {
            stream
                .shards
                .iter()
                .map(move |shard| (stream.stream_uid, shard.shard_id.clone()))
        })
        .collect()
}

/// The durable [`Journal`]: queues work for the writer thread and hands out tickets it
/// completes.
#[derive(Debug)]
pub struct DiskJournal {
    commands: mpsc::Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl DiskJournal {
    fn send(&self, command: Command) -> Result<(), JournalError> {
        self.commands
            .send(command)
            .map_err(|_| JournalError::new("the log writer has stopped"))
    }

    /// Makes everything queued so far durable (fsync regardless of policy).
    pub async fn sync(&self) -> Result<(), JournalError> {
        let (ticket, done) = DurabilityTicket::pending();
        self.send(Command::Sync { done })?;
        ticket.await
    }

    /// Syncs everything and stops the writer thread, waiting for it (blocking: call from
    /// `spawn_blocking` or outside the runtime). Later appends fail.
    pub fn shutdown(&self) {
        let _already_stopped = self.send(Command::Shutdown);
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the log writer thread panicked");
        }
    }
}

impl Journal for DiskJournal {
    fn append(&self, append: JournalAppend<'_>) -> DurabilityTicket {
        let Some(last) = append.records.last() else {
            return DurabilityTicket::ready();
        };
        let mut frame_bytes = Vec::with_capacity(
            frame::HEADER_BYTES + records::encoded_len(append.shard_id, append.records),
        );
        let start = frame::begin(&mut frame_bytes);
        records::encode(
            &mut frame_bytes,
            append.stream_uid,
            append.shard_id,
            append.records,
        );
        frame::seal(&mut frame_bytes, start);
        let (ticket, done) = DurabilityTicket::pending();
        let command = Command::Append {
            frame: frame_bytes,
            key: (append.stream_uid, append.shard_id.clone()),
            last: last.sequence_number,
            done,
        };
        match self.send(command) {
            Ok(()) => ticket,
            Err(error) => DurabilityTicket::failed(error),
        }
    }

    fn write_metadata(&self, snapshot: &BrokerSnapshot) -> DurabilityTicket {
        let bytes = match serde_json::to_vec(snapshot) {
            Ok(bytes) => bytes,
            Err(error) => {
                return DurabilityTicket::failed(JournalError::new(format!(
                    "cannot serialise metadata: {error}"
                )));
            }
        };
        let (ticket, done) = DurabilityTicket::pending();
        let command = Command::Metadata {
            bytes,
            live: live_shards(snapshot),
            done,
        };
        match self.send(command) {
            Ok(()) => ticket,
            Err(error) => DurabilityTicket::failed(error),
        }
    }

    fn trimmed(&self, stream_uid: u64, shard_id: &ShardId, retained_from: SequenceNumber) {
        let _stopped_writer_needs_no_trim = self.send(Command::Trimmed {
            key: (stream_uid, shard_id.clone()),
            retained_from,
        });
    }
}

impl Drop for DiskJournal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
