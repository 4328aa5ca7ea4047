//! Where finished objects go: the [`ObjectSink`] trait, a local directory laid out as S3
//! ([`LocalDirSink`]) and, with feature `s3`, any S3-compatible store ([`ObjectStoreSink`]).

use crate::error::FirehoseError;
use bytes::Bytes;

mod local;
#[cfg(feature = "s3")]
mod object_store;

pub use local::LocalDirSink;
#[cfg(feature = "s3")]
pub use object_store::{ObjectStoreSink, S3Options};

/// Stores finished objects.
#[async_trait::async_trait]
pub trait ObjectSink: Send + Sync + std::fmt::Debug {
    /// Stores `body` at `bucket/key` atomically (readers never see a partial object); durable
    /// when `Ok`.
    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), FirehoseError>;
}
