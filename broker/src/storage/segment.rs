//! Segment files of the record log, and recovery: reading them back and cutting off a torn or
//! corrupt tail.
//!
//! The log is a sequence of files `NNNNNNNNNNNNNNNNNNNN.log` (a 20-digit increasing id) in
//! `<data-dir>/log/`. Only the newest one is written; older ones are immutable and are deleted
//! whole once every record in them has left retention (or belongs to a deleted stream).

use super::StorageError;
use super::frame::{self, FrameDefect, Next};
use super::records::{self, RecordBatch};
use bytes::Bytes;
use kcl_core::kinesis::{SequenceNumber, ShardId};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Identifies a shard across stream incarnations: `(stream uid, shard id)`.
pub type ShardKey = (u64, ShardId);

/// What one segment file holds, for retention decisions.
#[derive(Debug, Clone, Default)]
pub struct SegmentInfo {
    /// The segment's id (its file name).
    pub id: u64,
    /// The file's path.
    pub path: PathBuf,
    /// Bytes of intact frames.
    pub bytes: u64,
    /// The highest sequence number per shard in the segment.
    pub max_sequence: HashMap<ShardKey, SequenceNumber>,
}

impl SegmentInfo {
    /// Notes that a batch of `key` ending at `last` was written to this segment.
    pub fn note(&mut self, key: &ShardKey, last: SequenceNumber) {
        match self.max_sequence.get_mut(key) {
            Some(max) => *max = (*max).max(last),
            None => {
                self.max_sequence.insert(key.clone(), last);
            }
        }
    }
}

/// A cut made by recovery: the bytes from `offset` to the old end of `segment` were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file that was cut.
    pub segment: PathBuf,
    /// Where the intact data ends (the file's new length).
    pub offset: u64,
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
    /// Why: a torn write or a corrupt frame.
    pub reason: String,
}

/// The path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.log"))
}

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The ids of the segment files in `dir`, ascending. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        let well_formed = stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit());
        if let (true, Ok(id)) = (well_formed, stem.parse()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Fsyncs a directory so that creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// What reading the whole log gave back.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every intact batch, in log order.
    pub batches: Vec<RecordBatch>,
    /// Every segment, with what it holds.
    pub segments: Vec<SegmentInfo>,
    /// The cuts made.
    pub truncations: Vec<Truncation>,
    /// Intact frames read.
    pub frames: u64,
}

/// Reads every segment of `dir`, truncating each at its first torn or corrupt frame.
pub fn recover(dir: &Path) -> Result<Recovered, StorageError> {
    let mut recovered = Recovered::default();
    for id in list_segments(dir)? {
        let path = segment_path(dir, id);
        let data = Bytes::from(fs::read(&path).map_err(|e| io_error(&path, e))?);
        let mut info = SegmentInfo {
            id,
            path: path.clone(),
            ..SegmentInfo::default()
        };
        let mut offset = 0usize;
        let defect = loop {
            match frame::next(&data, offset) {
                Next::Frame(payload, after) => {
                    let start = offset + frame::HEADER_BYTES;
                    let payload = data.slice(start..start + payload.len());
                    match records::decode(&payload) {
                        Ok(batch) => {
                            if let Some(last) = batch.records.last() {
                                info.note(
                                    &(batch.stream_uid, batch.shard_id.clone()),
                                    last.sequence_number,
                                );
                            }
                            recovered.frames += 1;
                            recovered.batches.push(batch);
                            offset = after;
                        }
                        // Checksummed but not decodable: written by something else; stop.
                        Err(_) => break Some(FrameDefect::Corrupt),
                    }
                }
                Next::End => break None,
                Next::Defect(defect) => break Some(defect),
            }
        };
        if let Some(defect) = defect {
            let truncation = Truncation {
                segment: path.clone(),
                offset: offset as u64,
                dropped_bytes: (data.len() - offset) as u64,
                reason: defect.describe().to_string(),
            };
            tracing::warn!(
                segment = %path.display(),
                offset = truncation.offset,
                dropped_bytes = truncation.dropped_bytes,
                reason = %truncation.reason,
                "recovery truncated the log"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            file.set_len(offset as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(&path, e))?;
            recovered.truncations.push(truncation);
        }
        info.bytes = offset as u64;
        recovered.segments.push(info);
    }
    Ok(recovered)
}

/// The segment being appended to.
#[derive(Debug)]
pub struct ActiveSegment {
    /// What it holds so far.
    pub info: SegmentInfo,
    file: File,
}

impl ActiveSegment {
    /// Opens segment `id` of `dir` for appending (creating it if needed).
    pub fn open(dir: &Path, id: u64, info: Option<SegmentInfo>) -> Result<Self, StorageError> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        let info = info.unwrap_or_else(|| SegmentInfo {
            id,
            path: path.clone(),
            ..SegmentInfo::default()
        });
        Ok(ActiveSegment { info, file })
    }

    /// Appends `bytes` (whole frames).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.file
            .write_all(bytes)
            .map_err(|e| io_error(&self.info.path, e))?;
        self.info.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.file
            .sync_data()
            .map_err(|e| io_error(&self.info.path, e))
    }
}
