//! [`LocalDirSink`]: objects as files under `DIR/BUCKET/KEY`, written atomically and durably.

use super::ObjectSink;
use crate::error::FirehoseError;
use crate::layout::validate_key;
use bytes::Bytes;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `DIR/BUCKET/KEY`: a temporary file in the target directory, written, fsynced,
/// renamed over the final name, then the directory fsynced. Readers see the whole object or
/// nothing; after `put` returns `Ok` it survives a crash.
///
/// Temporary files are named `.KEYNAME.tmp-UUID` (a leading dot; never a delivered name).
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
}

impl LocalDirSink {
    /// A sink under `root` (created on first write if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirSink { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file `bucket/key` is stored in.
    pub fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, FirehoseError> {
        crate::config::validate_bucket(bucket)?;
        validate_key(key)?;
        Ok(self.root.join(bucket).join(key))
    }
}

#[async_trait::async_trait]
impl ObjectSink for LocalDirSink {
    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), FirehoseError> {
        let path = self.path_of(bucket, key)?;
        // Blocking file I/O (write + two fsyncs) runs off the async threads.
        tokio::task::spawn_blocking(move || write_atomically(&path, &body))
            .await
            .map_err(|join| FirehoseError::Io {
                action: "writing",
                path: key.to_owned(),
                source: std::io::Error::other(join.to_string()),
            })?
    }
}

fn write_atomically(path: &Path, body: &[u8]) -> Result<(), FirehoseError> {
    let dir = path.parent().ok_or_else(|| {
        FirehoseError::io(
            "writing",
            path,
            std::io::Error::other("no parent directory"),
        )
    })?;
    create_dir_all_durably(dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{file_name}.tmp-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file =
            std::fs::File::create(&temp).map_err(|e| FirehoseError::io("creating", &temp, e))?;
        file.write_all(body)
            .map_err(|e| FirehoseError::io("writing", &temp, e))?;
        file.sync_all()
            .map_err(|e| FirehoseError::io("syncing", &temp, e))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(|e| FirehoseError::io("renaming", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Creates `dir` and its missing parents, fsyncing each new directory's parent so the new
/// entries survive a crash.
fn create_dir_all_durably(dir: &Path) -> Result<(), FirehoseError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(FirehoseError::io("creating directory", dir, error)),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), FirehoseError> {
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| FirehoseError::io("syncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_writes_the_whole_object_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        sink.put("bucket", "a/b/c.txt", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        sink.put("bucket", "a/b/c.txt", Bytes::from_static(b"replaced"))
            .await
            .unwrap();
        let path = dir.path().join("bucket/a/b/c.txt");
        assert_eq!(std::fs::read(&path).unwrap(), b"replaced");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.txt")]);
    }

    #[tokio::test]
    async fn put_refuses_names_that_escape_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        for (bucket, key) in [
            ("bucket", "../x"),
            ("bucket", "/etc/x"),
            ("..", "x"),
            ("Bad_Bucket", "x"),
            ("bucket", "a//b"),
        ] {
            let error = sink.put(bucket, key, Bytes::new()).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    FirehoseError::InvalidObjectName { .. } | FirehoseError::InvalidConfig { .. }
                ),
                "{bucket}/{key}: {error}"
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
