//! The metadata snapshot file, replaced atomically: write a temporary file, fsync it, rename it
//! over the old one, fsync the directory. A crash leaves either the old or the new snapshot.

use super::StorageError;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The snapshot's file name in the data directory.
pub const FILE_NAME: &str = "metadata.json";

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshot's path in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Replaces the snapshot with `bytes`; with `durable`, fsyncs file and directory.
pub fn write_atomically(data_dir: &Path, bytes: &[u8], durable: bool) -> Result<(), StorageError> {
    let target = path(data_dir);
    let temporary = data_dir.join(format!("{FILE_NAME}.tmp"));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        // The snapshot holds the key that signs shard iterators: keep it private.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temporary)
        .map_err(|e| io_error(&temporary, e))?;
    file.write_all(bytes).map_err(|e| io_error(&temporary, e))?;
    if durable {
        file.sync_all().map_err(|e| io_error(&temporary, e))?;
    }
    drop(file);
    fs::rename(&temporary, &target).map_err(|e| io_error(&target, e))?;
    if durable {
        super::segment::sync_dir(data_dir)?;
    }
    Ok(())
}

/// Reads the snapshot, if there is one.
pub fn read(data_dir: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    let target = path(data_dir);
    match fs::read(&target) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(&target, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write_atomically(dir.path(), b"one", true).unwrap();
        write_atomically(dir.path(), b"two", true).unwrap();
        assert_eq!(
            read(dir.path()).unwrap().as_deref(),
            Some(b"two".as_slice())
        );
        assert!(!dir.path().join("metadata.json.tmp").exists());
    }
}
