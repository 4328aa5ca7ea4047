//! The dedicated writer thread: every append and metadata snapshot goes through it, so no
//! async thread ever blocks on `write` or `fsync`.
//!
//! Group commit: the thread takes everything queued since its last round, writes it with one
//! `write`, makes it durable with one `fsync` (policy `always`), and only then completes the
//! durability tickets of all of it. Writers that arrive during an fsync simply form the next
//! group. With `interval` the tickets complete after the `write` (an OS crash may lose up to
//! one interval, a killed process loses nothing) and the thread fsyncs every interval; with
//! `never` it leaves flushing to the OS.

use super::segment::{self, ActiveSegment, SegmentInfo, ShardKey};
use super::{FsyncPolicy, StorageError, meta};
use crate::engine::journal::{DurabilitySender, JournalError};
use kcl_core::kinesis::SequenceNumber;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Work for the writer thread.
#[derive(Debug)]
pub enum Command {
    /// Whole frames of one shard's records.
    Append {
        /// The encoded frame.
        frame: Vec<u8>,
        /// The shard they belong to.
        key: ShardKey,
        /// The last sequence number in the frame.
        last: SequenceNumber,
        /// Completed once the frame is as durable as the policy promises.
        done: DurabilitySender,
    },
    /// A new metadata snapshot (already serialised) and the shards it still holds.
    Metadata {
        /// The serialised snapshot.
        bytes: Vec<u8>,
        /// Every shard of the snapshot (records of other shards are garbage).
        live: HashSet<ShardKey>,
        /// Completed once the snapshot is durable.
        done: DurabilitySender,
    },
    /// Records of a shard below `retained_from` have expired.
    Trimmed {
        /// The shard.
        key: ShardKey,
        /// The first retained sequence number.
        retained_from: SequenceNumber,
    },
    /// Make everything durable now, then answer.
    Sync {
        /// Answered after the fsync.
        done: DurabilitySender,
    },
    /// Make everything durable and stop.
    Shutdown,
}

/// The writer thread's state.
#[derive(Debug)]
pub struct Writer {
    pub(super) log_dir: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) policy: FsyncPolicy,
    pub(super) segment_bytes: u64,
    pub(super) active: ActiveSegment,
    pub(super) closed: Vec<SegmentInfo>,
    pub(super) live: Option<HashSet<ShardKey>>,
    pub(super) retained_from: HashMap<ShardKey, SequenceNumber>,
    /// Set after an I/O failure: nothing more is acknowledged (the log's state is unknown).
    pub(super) failed: Option<String>,
}

/// Upper bound of bytes gathered into one group before writing.
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

impl Writer {
    /// Runs until `Shutdown` or until every sender is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        let mut last_sync = Instant::now();
        let mut dirty = false;
        loop {
            let first = match self.policy {
                FsyncPolicy::Interval(interval) if dirty => {
                    let wait = interval.saturating_sub(last_sync.elapsed());
                    match commands.recv_timeout(wait.max(Duration::from_millis(1))) {
                        Ok(command) => Some(command),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => Some(Command::Shutdown),
                    }
                }
                _ => Some(commands.recv().unwrap_or(Command::Shutdown)),
            };
            let mut group = Vec::new();
            let mut group_bytes = 0usize;
            if let Some(command) = first {
                group.push(command);
                while group_bytes < MAX_GROUP_BYTES {
                    let Ok(command) = commands.try_recv() else {
                        break;
                    };
                    if let Command::Append { frame, .. } = &command {
                        group_bytes += frame.len();
                    }
                    group.push(command);
                }
            }
            let stop = self.process(group, &mut dirty, &mut last_sync);
            if stop {
                return;
            }
        }
    }

    /// Handles one group; returns whether to stop.
    fn process(&mut self, group: Vec<Command>, dirty: &mut bool, last_sync: &mut Instant) -> bool {
        let mut buffer = Vec::new();
        let mut appended = Vec::new();
        let mut sync_waiters = Vec::new();
        let mut metadata = Vec::new();
        let mut stop = false;
        for command in group {
            match command {
                Command::Append {
                    frame,
                    key,
                    last,
                    done,
                } => {
                    buffer.extend_from_slice(&frame);
                    appended.push((key, last, done));
                }
                Command::Metadata { bytes, live, done } => metadata.push((bytes, live, done)),
                Command::Trimmed { key, retained_from } => {
                    let entry = self.retained_from.entry(key).or_insert(retained_from);
                    *entry = (*entry).max(retained_from);
                }
                Command::Sync { done } => sync_waiters.push(done),
                Command::Shutdown => stop = true,
            }
        }

        if !appended.is_empty() {
            ::metrics::histogram!(GROUP_COMMIT_APPENDS).record(appended.len() as f64);
        }
        let must_sync = !sync_waiters.is_empty() || stop;
        let outcome = self.write_group(&buffer, &appended, must_sync, dirty, last_sync);
        let metadata_outcomes: Vec<_> = metadata
            .into_iter()
            .map(|(bytes, live, done)| (self.write_metadata(&bytes, live), done))
            .collect();
        // Roll and delete segments before answering, so an answered caller sees the result.
        if self.failed.is_none()
            && let Err(error) = self.maintain()
        {
            tracing::error!(error = %error, "log maintenance failed");
        }
        for (_, _, done) in appended {
            done.complete(outcome.clone());
        }
        for (result, done) in metadata_outcomes {
            done.complete(result);
        }
        for done in sync_waiters {
            done.complete(outcome.clone());
        }
        stop
    }

    fn fail(&mut self, error: &StorageError) -> JournalError {
        tracing::error!(error = %error, "log write failed; refusing further writes");
        let message = error.to_string();
        self.failed = Some(message.clone());
        JournalError::new(message)
    }

    fn write_group(
        &mut self,
        buffer: &[u8],
        appended: &[(ShardKey, SequenceNumber, DurabilitySender)],
        must_sync: bool,
        dirty: &mut bool,
        last_sync: &mut Instant,
    ) -> Result<(), JournalError> {
        if let Some(message) = &self.failed {
            return Err(JournalError::new(message.clone()));
        }
        if !buffer.is_empty() {
            if let Err(error) = self.active.write(buffer) {
                return Err(self.fail(&error));
            }
            for (key, last, _) in appended {
                self.active.info.note(key, *last);
            }
            *dirty = true;
        }
        let sync_now = match self.policy {
            FsyncPolicy::Always => *dirty,
            FsyncPolicy::Interval(interval) => {
                *dirty && (must_sync || last_sync.elapsed() >= interval)
            }
            FsyncPolicy::Never => *dirty && must_sync,
        };
        if sync_now {
            let sync_started = Instant::now();
            let synced = self.active.sync();
            ::metrics::histogram!(FSYNC_SECONDS).record(sync_started.elapsed().as_secs_f64());
            if let Err(error) = synced {
                return Err(self.fail(&error));
            }
            *dirty = false;
            *last_sync = Instant::now();
        }
        Ok(())
    }

    fn write_metadata(
        &mut self,
        bytes: &[u8],
        live: HashSet<ShardKey>,
    ) -> Result<(), JournalError> {
        if let Some(message) = &self.failed {
            return Err(JournalError::new(message.clone()));
        }
        let durable = self.policy != FsyncPolicy::Never;
        match meta::write_atomically(&self.data_dir, bytes, durable) {
            Ok(()) => {
                self.live = Some(live);
                Ok(())
            }
            Err(error) => Err(self.fail(&error)),
        }
    }

    /// Rolls the active segment when it is full and deletes segments nothing needs.
    fn maintain(&mut self) -> Result<(), StorageError> {
        if self.active.info.bytes >= self.segment_bytes {
            if self.policy != FsyncPolicy::Never {
                self.active.sync()?;
            }
            let next_id = self.active.info.id + 1;
            let next = ActiveSegment::open(&self.log_dir, next_id, None)?;
            segment::sync_dir(&self.log_dir)?;
            let previous = std::mem::replace(&mut self.active, next);
            self.closed.push(previous.info);
        }
        let Some(live) = &self.live else {
            return Ok(());
        };
        let retained_from = &self.retained_from;
        let expendable = |info: &SegmentInfo| {
            info.max_sequence.iter().all(|(key, max)| {
                !live.contains(key) || retained_from.get(key).is_some_and(|from| max < from)
            })
        };
        let (deletable, kept): (Vec<SegmentInfo>, Vec<SegmentInfo>) =
            std::mem::take(&mut self.closed)
                .into_iter()
                .partition(expendable);
        self.closed = kept;
        if deletable.is_empty() {
            return Ok(());
        }
        for info in &deletable {
            tracing::info!(segment = %info.path.display(), "deleting expired log segment");
            std::fs::remove_file(&info.path).map_err(|source| StorageError::Io {
                path: info.path.clone(),
                source,
            })?;
        }
        segment::sync_dir(&self.log_dir)
    }
}

/// Time one fsync of the log took (histogram; recorded through the `metrics` facade).
pub const FSYNC_SECONDS: &str = "kcl_broker_fsync_duration_seconds";
/// Appends (one put call's records for one shard each) written together by one group commit
/// (histogram).
pub const GROUP_COMMIT_APPENDS: &str = "kcl_broker_group_commit_appends";

/// Describes the writer's series to the installed recorder.
pub fn describe_metrics() {
    ::metrics::describe_histogram!(
        FSYNC_SECONDS,
        ::metrics::Unit::Seconds,
        "time one fsync of the log took"
    );
    ::metrics::describe_histogram!(
        GROUP_COMMIT_APPENDS,
        ::metrics::Unit::Count,
        "appends written together by one group commit"
    );
}
