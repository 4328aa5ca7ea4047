//! Record sinks of `kcl worker`: JSON lines appended to a file (flushed and fsynced before the
//! batch is checkpointed) or written to standard output.
//!
//! Each line is one [`SinkRecord`]:
//! `{"shard_id","sequence_number","sub_sequence_number","partition_key","data","approximate_arrival_timestamp","worker_id"}`
//! with `data` in base64 and the timestamp in epoch milliseconds, plus, when the processor knows
//! it, `"acquisition": {"id","checkpoint","sub_sequence_number"}` (a [`SinkAcquisition`]: which
//! acquisition of the shard's lease delivered the record, and the checkpoint it started from).
//! [`read_jsonl`] reads such a file back (the multi-process test suite and `kcl demo` verify
//! fleets with it); lines without `acquisition` read as `None`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kcl_core::lease::{CheckpointValue, ExtendedSequenceNumber};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a sink could not be opened, written or read. Messages include the I/O error (there is no
/// `source()`), so logs and error chains say it once.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink file could not be opened or prepared.
    #[error("cannot open sink file {path}: {error}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Writing, flushing or syncing failed; the batch must not be checkpointed.
    #[error("cannot write to sink {target}: {error}")]
    Write {
        /// The file path or `stdout`.
        target: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode a sink record: {0}")]
    Encode(serde_json::Error),
    /// The blocking writer task failed (panicked or was cancelled).
    #[error("sink writer task failed: {0}")]
    Task(String),
    /// Reading a sink file back failed.
    #[error("cannot read sink file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl From<serde_json::Error> for SinkError {
    fn from(error: serde_json::Error) -> Self {
        SinkError::Encode(error)
    }
}

/// One processed record as a sink writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkRecord {
    /// The shard the record was read from.
    pub shard_id: String,
    /// The record's sequence number (decimal string).
    pub sequence_number: String,
    /// The user record's index inside a KPL-aggregated record; 0 for plain records.
    pub sub_sequence_number: u64,
    /// The partition key.
    pub partition_key: String,
    /// The payload, base64.
    pub data: String,
    /// When the broker accepted the record (epoch milliseconds).
    pub approximate_arrival_timestamp: i64,
    /// The worker that processed the record.
    pub worker_id: String,
    /// The acquisition of the lease that delivered the record; `None` (and absent from the line)
    /// when the processor does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition: Option<SinkAcquisition>,
}

/// One acquisition of a shard's lease by a worker, as written with each of its records.
///
/// A worker that loses a lease (even by renewing it late) and takes it again starts a new
/// acquisition from the stored checkpoint, so the records after that checkpoint are delivered
/// again, legitimately. Within one acquisition a record is never delivered twice. Writing the
/// acquisition with every record lets a verifier tell the two apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkAcquisition {
    /// Unique among the acquisitions written to one sink file: `<process id>-<counter>`.
    pub id: String,
    /// The checkpoint the acquisition started from, as the lease table stores it: a decimal
    /// sequence number or a sentinel (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END`).
    pub checkpoint: String,
    /// The sub-sequence number of that checkpoint.
    pub sub_sequence_number: u64,
}

impl SinkAcquisition {
    /// A new acquisition (with a new id) that starts after `checkpoint`, the
    /// `extended_sequence_number` its processor was initialized with.
    pub fn starting_at(checkpoint: ExtendedSequenceNumber) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SinkAcquisition {
            id: format!(
                "{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            checkpoint: checkpoint.value.as_table_string(),
            sub_sequence_number: checkpoint.sub_sequence_number,
        }
    }

    /// The starting checkpoint, parsed back (`None` if the text is not a checkpoint).
    pub fn start(&self) -> Option<ExtendedSequenceNumber> {
        Some(ExtendedSequenceNumber {
            value: CheckpointValue::from_table_string(&self.checkpoint)?,
            sub_sequence_number: self.sub_sequence_number,
        })
    }
}

impl SinkRecord {
    /// A sink record for a payload given as raw bytes.
    pub fn new(
        shard_id: &str,
        sequence_number: String,
        sub_sequence_number: u64,
        partition_key: &str,
        data: &[u8],
        approximate_arrival_timestamp: i64,
        worker_id: &str,
    ) -> Self {
        SinkRecord {
            shard_id: shard_id.to_owned(),
            sequence_number,
            sub_sequence_number,
            partition_key: partition_key.to_owned(),
            data: BASE64.encode(data),
            approximate_arrival_timestamp,
            worker_id: worker_id.to_owned(),
            acquisition: None,
        }
    }

    /// The same record tagged with the acquisition that delivered it (unchanged for `None`).
    pub fn with_acquisition(mut self, acquisition: Option<&SinkAcquisition>) -> Self {
        self.acquisition = acquisition.cloned();
        self
    }

    /// The payload decoded from base64 (`None` if it is not valid base64).
    pub fn data_bytes(&self) -> Option<Vec<u8>> {
        BASE64.decode(&self.data).ok()
    }
}

#[derive(Debug, Clone)]
enum SinkTarget {
    File {
        path: PathBuf,
        file: Arc<Mutex<File>>,
    },
    Stdout,
}

/// A JSON-lines sink shared by all shard processors of one worker.
///
/// [`JsonlSink::write_batch`] returns only once the batch is durable (file: written, flushed
/// and `fdatasync`ed; stdout: written and flushed), so the caller may then checkpoint it. The
/// blocking I/O runs on tokio's blocking pool, never on the async worker threads.
#[derive(Debug, Clone)]
pub struct JsonlSink {
    target: SinkTarget,
}

impl JsonlSink {
    /// A sink appending to `path` (created if missing). If a previous writer was killed in the
    /// middle of a line, a newline is added first so that the torn line stays on its own.
    pub fn open_file(path: &Path) -> Result<Self, SinkError> {
        let open_error = |error| SinkError::Open {
            path: path.to_owned(),
            error,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(open_error)?;
        let length = file.metadata().map_err(open_error)?.len();
        if length > 0 {
            let mut last_byte = [0u8; 1];
            file.seek(SeekFrom::Start(length - 1)).map_err(open_error)?;
            file.read_exact(&mut last_byte).map_err(open_error)?;
            if last_byte[0] != b'\n' {
                file.write_all(b"\n").map_err(open_error)?;
                file.sync_data().map_err(open_error)?;
            }
        }
        Ok(JsonlSink {
            target: SinkTarget::File {
                path: path.to_owned(),
                file: Arc::new(Mutex::new(file)),
            },
        })
    }

    /// A sink writing to standard output.
    pub fn stdout() -> Self {
        JsonlSink {
            target: SinkTarget::Stdout,
        }
    }

    /// Writes `records` as JSON lines and makes them durable; returns once the caller may
    /// checkpoint them.
    pub async fn write_batch(&self, records: Vec<SinkRecord>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let target = self.target.clone();
        tokio::task::spawn_blocking(move || write_blocking(&target, &records))
            .await
            .map_err(|join_error| SinkError::Task(join_error.to_string()))?
    }
}

fn encode_lines(records: &[SinkRecord]) -> Result<Vec<u8>, SinkError> {
    let mut buffer = Vec::with_capacity(records.len() * 256);
    for record in records {
        serde_json::to_writer(&mut buffer, record)?;
        buffer.push(b'\n');
    }
    Ok(buffer)
}

fn write_blocking(target: &SinkTarget, records: &[SinkRecord]) -> Result<(), SinkError> {
    let lines = encode_lines(records)?;
    match target {
        SinkTarget::File { path, file } => {
            let write_error = |error| SinkError::Write {
                target: path.display().to_string(),
                error,
            };
            // A poisoned lock only means another writer panicked mid-batch; the file itself is
            // still an append-only file, so keep using it.
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.write_all(&lines).map_err(write_error)?;
            file.flush().map_err(write_error)?;
            file.sync_data().map_err(write_error)
        }
        SinkTarget::Stdout => {
            let write_error = |error| SinkError::Write {
                target: "stdout".to_owned(),
                error,
            };
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&lines).map_err(write_error)?;
            stdout.flush().map_err(write_error)
        }
    }
}

/// The records of a JSON-lines sink file, read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonlContents {
    /// The complete records, in file order.
    pub records: Vec<SinkRecord>,
    /// Lines that are not complete records: a writer killed in the middle of a batch leaves at
    /// most one such line per kill (never checkpointed, so its records are delivered again).
    pub torn_lines: usize,
}

/// Reads a JSON-lines sink file. A missing file reads as empty.
pub fn read_jsonl(path: &Path) -> Result<JsonlContents, SinkError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(JsonlContents::default());
        }
        Err(error) => {
            return Err(SinkError::Read {
                path: path.to_owned(),
                error,
            });
        }
    };
    let mut contents = JsonlContents::default();
    for line in text.split(|byte| *byte == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<SinkRecord>(line) {
            Ok(record) => contents.records.push(record),
            Err(_) => contents.torn_lines += 1,
        }
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64) -> SinkRecord {
        SinkRecord::new(
            "shardId-000000000001",
            sequence.to_string(),
            0,
            "key-7",
            format!("payload-{sequence}").as_bytes(),
            1_700_000_000_000,
            "worker-a",
        )
    }

    #[test]
    fn a_line_has_exactly_the_documented_fields() {
        let line = serde_json::to_value(record(42)).expect("encodes");
        let mut keys: Vec<_> = line.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "approximate_arrival_timestamp",
                "data",
                "partition_key",
                "sequence_number",
                "shard_id",
                "sub_sequence_number",
                "worker_id"
            ]
        );
        assert_eq!(line["data"], "cGF5bG9hZC00Mg==");
        assert_eq!(record(42).data_bytes().as_deref(), Some(&b"payload-42"[..]));
    }

    #[test]
    fn the_acquisition_is_written_only_when_known_and_reads_back() {
        let start = ExtendedSequenceNumber::new("42".parse().expect("valid"), 0);
        let acquisition = SinkAcquisition::starting_at(start);
        assert_eq!(acquisition.checkpoint, "42");
        assert_eq!(acquisition.start(), Some(start));
        assert_ne!(
            SinkAcquisition::starting_at(start).id,
            acquisition.id,
            "every acquisition gets its own id"
        );
        let tagged = record(43).with_acquisition(Some(&acquisition));
        let line = serde_json::to_value(&tagged).expect("encodes");
        assert_eq!(line["acquisition"]["checkpoint"], "42");
        let back: SinkRecord = serde_json::from_value(line).expect("decodes");
        assert_eq!(back, tagged);
        let untagged: SinkRecord =
            serde_json::from_value(serde_json::to_value(record(43)).expect("encodes"))
                .expect("a line without an acquisition decodes");
        assert_eq!(untagged.acquisition, None);
        assert_eq!(
            SinkAcquisition::starting_at(ExtendedSequenceNumber::TRIM_HORIZON).start(),
            Some(ExtendedSequenceNumber::TRIM_HORIZON)
        );
    }

    #[tokio::test]
    async fn batches_append_and_read_back_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.jsonl");
        let sink = JsonlSink::open_file(&path).expect("opens");
        sink.write_batch(vec![record(1), record(2)])
            .await
            .expect("writes");
        sink.write_batch(Vec::new())
            .await
            .expect("empty batch is fine");
        let reopened = JsonlSink::open_file(&path).expect("reopens");
        reopened.write_batch(vec![record(3)]).await.expect("writes");
        let contents = read_jsonl(&path).expect("reads");
        assert_eq!(contents.records, vec![record(1), record(2), record(3)]);
        assert_eq!(contents.torn_lines, 0);
    }

    #[tokio::test]
    async fn a_torn_tail_stays_on_its_own_line_and_is_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.jsonl");
        let complete = encode_lines(&[record(1)]).expect("encodes");
        let torn = &encode_lines(&[record(2)]).expect("encodes")[..30];
        std::fs::write(&path, [complete.as_slice(), torn].concat()).expect("writes");
        let sink = JsonlSink::open_file(&path).expect("opens after a torn write");
        sink.write_batch(vec![record(2)]).await.expect("writes");
        let contents = read_jsonl(&path).expect("reads");
        assert_eq!(contents.records, vec![record(1), record(2)]);
        assert_eq!(contents.torn_lines, 1);
    }

    #[test]
    fn a_missing_file_reads_as_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let contents = read_jsonl(&dir.path().join("absent.jsonl")).expect("reads");
        assert_eq!(contents, JsonlContents::default());
    }
}
