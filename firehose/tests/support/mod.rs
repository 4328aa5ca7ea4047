//! Shared helpers of the firehose tests: an in-process broker, a real SQLite lease file, a
//! local directory sink, and readers of the delivered objects.

#![allow(dead_code)]

use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, PutRecordsInput, PutRecordsRequestEntry, StreamRef,
};
use firehose::{
    Delivery, DeliveryHandle, DeliveryParams, DeliveryStreamConfig, LocalDirSink, S3Destination,
};
use kcl_core::clock::SharedClock;
use kcl_core::lineage::InitialPosition;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_worker::client::EmbeddedStreamClient;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a rig keeps leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leases {
    /// A real SQLite lease file (tests in real time).
    Sqlite,
    /// kcl-core's in-memory store, for tests in tokio's paused time: the SQLite store answers
    /// from its own thread, which does not hold back tokio's auto-advance, so paused time would
    /// jump past the lease's failover time while a renewal is in flight.
    Memory,
}

/// A broker with one stream, a lease store and an output directory.
pub(crate) struct Rig {
    pub(crate) leases: Leases,
    memory_store: Arc<kcl_core::memory::InMemoryLeaseStore>,
    pub(crate) broker: Broker,
    pub(crate) clock: SharedClock,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) stream: String,
}

impl Rig {
    /// A rig whose broker and deliveries use `clock`; `shards` shards on stream "source".
    pub(crate) async fn new(
        clock: SharedClock,
        shards: u32,
        leases: Leases,
    ) -> anyhow::Result<Self> {
        let broker = Broker::new(BrokerConfig::unlimited().with_clock(clock.clone()));
        broker
            .create_stream(CreateStreamInput {
                stream_name: "source".into(),
                shard_count: Some(shards),
                ..Default::default()
            })
            .await?;
        Ok(Rig {
            leases,
            memory_store: Arc::new(kcl_core::memory::InMemoryLeaseStore::new()),
            broker,
            clock,
            dir: tempfile::tempdir()?,
            stream: "source".into(),
        })
    }

    /// Where objects are written.
    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The lease file.
    pub(crate) fn lease_file(&self) -> PathBuf {
        self.dir.path().join("leases.sqlite")
    }

    /// Puts `records` (in order, one partition key so they share a shard) in batches of 500.
    pub(crate) async fn put(&self, records: &[Vec<u8>]) -> anyhow::Result<()> {
        for batch in records.chunks(500) {
            let output = self
                .broker
                .put_records(PutRecordsInput {
                    stream: StreamRef::name(&self.stream),
                    records: batch
                        .iter()
                        .map(|data| PutRecordsRequestEntry {
                            data: data.clone().into(),
                            partition_key: "one-key".into(),
                            explicit_hash_key: None,
                        })
                        .collect(),
                })
                .await?;
            anyhow::ensure!(output.failed_record_count == 0, "put failed: {output:?}");
        }
        Ok(())
    }

    /// Starts a delivery of the rig's stream with `destination` into `out()`.
    pub(crate) async fn start(
        &self,
        name: &str,
        destination: S3Destination,
    ) -> anyhow::Result<DeliveryHandle> {
        let lease_store: Arc<dyn kcl_core::lease_store::LeaseStore> = match self.leases {
            Leases::Sqlite => Arc::new(
                SqliteLeaseStore::open(self.lease_file(), &format!("firehose-{name}")).await?,
            ),
            Leases::Memory => self.memory_store.clone(),
        };
        let handle = Delivery::start(DeliveryParams {
            config: DeliveryStreamConfig {
                name: name.into(),
                version_id: 1,
                destination,
            },
            source_stream: self.stream.clone(),
            stream_client: Arc::new(EmbeddedStreamClient::new(self.broker.clone())),
            lease_store,
            sink: Arc::new(LocalDirSink::new(self.out())),
            clock: self.clock.clone(),
            worker_id: "worker-1".into(),
            initial_position: InitialPosition::TrimHorizon,
            delivery_stream_arn: format!(
                "arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}"
            ),
        })
        .await?;
        Ok(handle)
    }
}

/// `n` records `rec-000000\n`, `rec-000001\n`, ...
pub(crate) fn numbered(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("rec-{i:06}\n").into_bytes())
        .collect()
}

/// Every delivered object under `root/bucket/`: (key, decompressed body), sorted by key.
/// Temporary files (leading dot) are never delivered objects and must not exist afterwards.
pub(crate) fn objects(root: &Path, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let base = root.join(bucket);
    let mut found = Vec::new();
    let mut pending = vec![base.clone()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let key = path
                .strip_prefix(&base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            let raw = std::fs::read(&path).expect("read object");
            let body = if key.ends_with(".gz") {
                gunzip(&raw)
            } else {
                raw
            };
            found.push((key, body));
        }
    }
    found.sort();
    found
}

/// Decompresses one GZIP member.
pub(crate) fn gunzip(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// The lines (with their newline) of a body.
pub(crate) fn lines(body: &[u8]) -> Vec<Vec<u8>> {
    body.split_inclusive(|byte| *byte == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Polls `condition` every 100 ms (tokio time) until it holds; fails after `max_wait` of
/// tokio time or 120 s of wall time, whichever first.
pub(crate) async fn wait_until(
    what: &str,
    max_wait: Duration,
    mut condition: impl FnMut() -> bool,
) {
    let started = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < max_wait && wall.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what} ({:?} of tokio time, {:?} of wall time)",
            started.elapsed(),
            wall.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks an object name: `NAME-VERSION-YYYY-MM-DD-HH-MM-SS-UUID` + extension.
pub(crate) fn assert_object_name(file_name: &str, stream: &str, version: u64, extension: &str) {
    let rest = file_name
        .strip_prefix(&format!("{stream}-{version}-"))
        .unwrap_or_else(|| panic!("{file_name} does not start with {stream}-{version}-"));
    let rest = rest
        .strip_suffix(extension)
        .unwrap_or_else(|| panic!("{file_name} does not end with {extension:?}"));
    let parts: Vec<&str> = rest.splitn(7, '-').collect();
    assert_eq!(parts.len(), 7, "{file_name}");
    let widths = [4, 2, 2, 2, 2, 2];
    for (part, width) in parts.iter().zip(widths) {
        assert!(
            part.len() == width && part.bytes().all(|b| b.is_ascii_digit()),
            "{file_name}"
        );
    }
    assert!(
        uuid::Uuid::parse_str(parts[6]).is_ok(),
        "{file_name}: bad uuid"
    );
    assert!(!rest.ends_with(".gz"), "{file_name}");
}
