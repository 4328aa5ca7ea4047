//! The catalog of delivery streams: every stream's configuration, tags and version, kept in
//! memory and (with a data directory) persisted atomically as one JSON file
//! (`DATA_DIR/firehose/catalog.json`: temporary file, fsync, rename, fsync of the directory).

use crate::api::error::ApiError;
use crate::api::wire::{Tag, WireDestination};
use crate::config::DeliveryStreamConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a delivery stream's records come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Source {
    /// `DirectPut`: PutRecord/PutRecordBatch into the private buffer stream of the same name.
    DirectPut,
    /// `KinesisStreamAsSource`: a stream of this broker.
    KinesisStream {
        /// `KinesisStreamARN`.
        stream_arn: String,
        /// The stream's name.
        stream_name: String,
        /// `RoleARN` of the source configuration.
        role_arn: String,
    },
}

impl Source {
    /// The `DeliveryStreamType`.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Source::DirectPut => "DirectPut",
            Source::KinesisStream { .. } => "KinesisStreamAsSource",
        }
    }
}

/// One delivery stream as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// `DeliveryStreamARN`.
    pub(crate) arn: String,
    /// The source.
    pub(crate) source: Source,
    /// The destination as configured (the wire members, for descriptions and updates).
    pub(crate) destination: WireDestination,
    /// Whether it was configured as `ExtendedS3DestinationConfiguration`.
    pub(crate) extended: bool,
    /// The delivery model (name, version, resolved destination).
    pub(crate) config: DeliveryStreamConfig,
    /// Tags, in the order they were added.
    pub(crate) tags: Vec<Tag>,
    /// Creation time, epoch milliseconds (also where a Kinesis source starts reading).
    pub(crate) created_ms: i64,
    /// Last `UpdateDestination`, epoch milliseconds.
    pub(crate) updated_ms: Option<i64>,
}

impl Entry {
    /// The delivery stream's name.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    version: u32,
    delivery_streams: Vec<Entry>,
}

const CATALOG_VERSION: u32 = 1;

/// The delivery streams by name, with the file they persist to (if any).
#[derive(Debug)]
pub(crate) struct Catalog {
    path: Option<PathBuf>,
    entries: BTreeMap<String, Entry>,
}

impl Catalog {
    /// An in-memory catalog.
    pub(crate) fn in_memory() -> Self {
        Catalog {
            path: None,
            entries: BTreeMap::new(),
        }
    }

    /// Loads the catalog at `path` (empty when the file does not exist yet).
    pub(crate) fn load(path: PathBuf) -> Result<Self, ApiError> {
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Catalog {
                    path: Some(path),
                    entries: BTreeMap::new(),
                });
            }
            Err(error) => {
                return Err(ApiError::Unavailable(format!(
                    "cannot read the firehose catalog {}: {error}",
                    path.display()
                )));
            }
        };
        let file: CatalogFile = serde_json::from_slice(&text).map_err(|error| {
            ApiError::Unavailable(format!(
                "the firehose catalog {} is not valid: {error}",
                path.display()
            ))
        })?;
        if file.version != CATALOG_VERSION {
            return Err(ApiError::Unavailable(format!(
                "the firehose catalog {} has version {}, this build reads version {CATALOG_VERSION}",
                path.display(),
                file.version
            )));
        }
        let entries = file
            .delivery_streams
            .into_iter()
            .map(|entry| (entry.name().to_owned(), entry))
            .collect();
        Ok(Catalog {
            path: Some(path),
            entries,
        })
    }

    /// The entry named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Every entry, by name.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The number of delivery streams.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The catalog with `entry` inserted or replaced, persisted before it takes effect.
    pub(crate) async fn put(&mut self, entry: Entry) -> Result<(), ApiError> {
        let mut next = self.entries.clone();
        next.insert(entry.name().to_owned(), entry);
        self.persist(next).await
    }

    /// The catalog without `name`, persisted before it takes effect.
    pub(crate) async fn remove(&mut self, name: &str) -> Result<(), ApiError> {
        let mut next = self.entries.clone();
        next.remove(name);
        self.persist(next).await
    }

    async fn persist(&mut self, next: BTreeMap<String, Entry>) -> Result<(), ApiError> {
        if let Some(path) = &self.path {
            let file = CatalogFile {
                version: CATALOG_VERSION,
                delivery_streams: next.values().cloned().collect(),
            };
            let bytes = serde_json::to_vec_pretty(&file).map_err(|error| {
                ApiError::Unavailable(format!("cannot encode the firehose catalog: {error}"))
            })?;
            let path = path.clone();
            tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
                .await
                .map_err(|error| ApiError::Unavailable(error.to_string()))?
                .map_err(|error| {
                    ApiError::Unavailable(format!("cannot write the firehose catalog: {error}"))
                })?;
        }
        self.entries = next;
        Ok(())
    }
}

/// Writes `bytes` to `path` so readers see the old or the new file, never a mix, and the new
/// one survives a crash once this returns.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uuid::Uuid::new_v4()
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::S3Destination;

    fn entry(name: &str) -> Entry {
        Entry {
            arn: format!("arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}"),
            source: Source::DirectPut,
            destination: WireDestination::default(),
            extended: true,
            config: DeliveryStreamConfig {
                name: name.to_owned(),
                version_id: 1,
                destination: S3Destination::new("bucket"),
            },
            tags: vec![Tag {
                key: "team".into(),
                value: Some("data".into()),
            }],
            created_ms: 1_700_000_000_000,
            updated_ms: None,
        }
    }

    #[tokio::test]
    async fn entries_survive_a_reload_and_removal_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firehose").join("catalog.json");
        let mut catalog = Catalog::load(path.clone()).unwrap();
        assert_eq!(catalog.len(), 0);
        catalog.put(entry("a")).await.unwrap();
        catalog.put(entry("b")).await.unwrap();
        let reloaded = Catalog::load(path.clone()).unwrap();
        assert_eq!(reloaded.len(), 2);
        assert_eq!(reloaded.get("a"), Some(&entry("a")));
        catalog.remove("a").await.unwrap();
        let reloaded = Catalog::load(path.clone()).unwrap();
        assert_eq!(
            reloaded.entries().map(Entry::name).collect::<Vec<_>>(),
            vec!["b"]
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|file| file.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left behind");
    }

    #[test]
    fn a_damaged_catalog_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        std::fs::write(&path, b"{not json").unwrap();
        let error = Catalog::load(path).unwrap_err();
        assert!(error.to_string().contains("not valid"), "{error}");
    }
}
