//! [`ObjectStoreSink`]: objects in S3 or any S3-compatible store (MinIO, moto) through the
//! `object_store` crate's S3 client.

use super::ObjectSink;
use crate::error::FirehoseError;
use bytes::Bytes;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How to reach an S3-compatible service.
#[derive(Clone, Default)]
pub struct S3Options {
    /// The endpoint (`http://127.0.0.1:9000` for MinIO or moto); `None`: AWS.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` if empty).
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Writes objects with one S3 `PutObject` each (atomic: readers see all or nothing; durable
/// when the store acknowledged it). One `object_store` client per bucket, made on first use
/// from [`S3Options`] or registered with [`ObjectStoreSink::with_store`].
#[derive(Debug)]
pub struct ObjectStoreSink {
    options: Option<S3Options>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl ObjectStoreSink {
    /// A sink that makes an S3 client per bucket with `options`.
    pub fn s3(options: S3Options) -> Self {
        ObjectStoreSink {
            options: Some(options),
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// A sink with no S3 options: only buckets registered with [`Self::with_store`] work.
    pub fn empty() -> Self {
        ObjectStoreSink {
            options: None,
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `store` for `bucket`.
    pub fn with_store(self, bucket: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        self.lock().insert(bucket.into(), store);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn ObjectStore>>> {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store_for(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, FirehoseError> {
        if let Some(store) = self.lock().get(bucket) {
            return Ok(store.clone());
        }
        let options = self
            .options
            .as_ref()
            .ok_or_else(|| FirehoseError::ObjectStore {
                bucket: bucket.to_owned(),
                key: String::new(),
                message: "no store is configured for this bucket".into(),
            })?;
        let region = if options.region.is_empty() {
            "us-east-1"
        } else {
            options.region.as_str()
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_access_key_id(&options.access_key_id)
            .with_secret_access_key(&options.secret_access_key);
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(
                builder
                    .build()
                    .map_err(|error| FirehoseError::ObjectStore {
                        bucket: bucket.to_owned(),
                        key: String::new(),
                        message: error.to_string(),
                    })?,
            );
        self.lock().insert(bucket.to_owned(), store.clone());
        Ok(store)
    }
}

#[async_trait::async_trait]
impl ObjectSink for ObjectStoreSink {
    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), FirehoseError> {
        crate::layout::validate_key(key)?;
        let store = self.store_for(bucket)?;
        let fail = |message: String| FirehoseError::ObjectStore {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message,
        };
        let path = object_store::path::Path::parse(key).map_err(|error| fail(error.to_string()))?;
        store
            .put(&path, object_store::PutPayload::from_bytes(body))
            .await
            .map_err(|error| fail(error.to_string()))?;
        Ok(())
    }
}
