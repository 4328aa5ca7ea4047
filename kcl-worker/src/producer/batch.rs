//! The batch producer: puts a known list of records with `PutRecords` requests of at most 500
//! records and 5 MiB, optional rate pacing, and retries (exponential backoff with jitter, by
//! `backon`) of the records a request rejected and of requests that failed transiently.
//!
//! For a stream of records with aggregation, per-shard rate limiting and backpressure, use
//! [`KplProducer`](super::KplProducer) instead.
//!
//! ```no_run
//! use kcl_worker::client::{HttpClientConfig, HttpStreamClient};
//! use kcl_worker::producer::{HttpTarget, ProduceEntry, Producer, ProducerConfig};
//! use std::sync::Arc;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpStreamClient::new(HttpClientConfig::new("http://127.0.0.1:4567"))?;
//! let producer = Producer::new(
//!     Arc::new(HttpTarget::new(client, "orders")),
//!     ProducerConfig::default(),
//! );
//! let entries = (0..1_000)
//!     .map(|i| ProduceEntry::new(format!("customer-{}", i % 10), format!("order-{i}")))
//!     .collect();
//! let stored = producer.put_all(entries, |_stored_now| {}).await?;
//! println!("{} records stored", stored.len());
//! # Ok(())
//! # }
//! ```

use super::error::ProduceError;
use backon::BackoffBuilder as _;
use bytes::Bytes;
use kcl_core::kinesis::KinesisError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Most records in one `PutRecords` request.
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
/// Most bytes (data + partition keys) in one `PutRecords` request.
pub const MAX_BYTES_PER_REQUEST: usize = 5 * 1024 * 1024;

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceEntry {
    /// The partition key.
    pub partition_key: String,
    /// The payload.
    pub data: Bytes,
}

impl ProduceEntry {
    /// An entry with `partition_key` and `data`.
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        ProduceEntry {
            partition_key: partition_key.into(),
            data: data.into(),
        }
    }

    /// What the record counts against the request size limit (payload + partition key).
    pub fn request_size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The outcome of one entry of a `PutRecords` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored in `shard_id` at `sequence_number`.
    Accepted {
        /// The shard the record went to.
        shard_id: String,
        /// Its sequence number.
        sequence_number: String,
    },
    /// Not stored; may be retried.
    Failed {
        /// `ProvisionedThroughputExceededException` or `InternalFailure`.
        error_code: String,
    },
}

/// Where a producer writes: one `PutRecords` call.
#[async_trait::async_trait]
pub trait PutRecordsTarget: Send + Sync {
    /// Puts `entries` (at most 500, at most 5 MiB) and returns one outcome per entry, in order.
    async fn put_records(&self, entries: &[ProduceEntry]) -> Result<Vec<PutOutcome>, KinesisError>;
}

/// A record the producer got stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record as given.
    pub entry: ProduceEntry,
    /// The shard it went to.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
}

/// Takes the next request's worth of entries from the front of `pending`: at most
/// `max_records` records and [`MAX_BYTES_PER_REQUEST`] bytes, but always at least one.
pub fn next_batch(pending: &mut VecDeque<ProduceEntry>, max_records: usize) -> Vec<ProduceEntry> {
    let max_records = max_records.clamp(1, MAX_RECORDS_PER_REQUEST);
    let mut request = super::collector::Collector::new(max_records, MAX_BYTES_PER_REQUEST);
    let mut batch = Vec::new();
    while let Some(entry) = pending.front() {
        if !request.fits(entry.request_size()) {
            break;
        }
        request.add(entry.request_size());
        if let Some(entry) = pending.pop_front() {
            batch.push(entry);
        }
    }
    batch
}

/// Batching, pacing and retry settings of a [`Producer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Records per request (1–500).
    pub batch_size: usize,
    /// Records per second; `None` for as fast as possible.
    pub rate: Option<u32>,
    /// Delay before the first retry of failed records or a failed request.
    pub min_retry_delay: Duration,
    /// Upper bound of one retry delay.
    pub max_retry_delay: Duration,
    /// Retries of a batch's failed records before giving up.
    pub max_retries: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_size: MAX_RECORDS_PER_REQUEST,
            rate: None,
            min_retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_secs(2),
            max_retries: 20,
        }
    }
}

impl ProducerConfig {
    fn backoff(&self) -> backon::ExponentialBackoff {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_retry_delay)
            .with_max_delay(self.max_retry_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }
}

/// Puts records in batches, paced and retried.
#[derive(Clone)]
pub struct Producer {
    target: Arc<dyn PutRecordsTarget>,
    config: ProducerConfig,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer writing to `target`.
    pub fn new(target: Arc<dyn PutRecordsTarget>, config: ProducerConfig) -> Self {
        Producer { target, config }
    }

    /// Puts every entry; `on_stored` is called with the number of records each request stored.
    /// Returns the stored records (the order of a retried record may differ from the input).
    pub async fn put_all(
        &self,
        entries: Vec<ProduceEntry>,
        mut on_stored: impl FnMut(usize) + Send,
    ) -> Result<Vec<StoredRecord>, ProduceError> {
        let started = tokio::time::Instant::now();
        let mut pending: VecDeque<ProduceEntry> = entries.into();
        let mut stored = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let batch = next_batch(&mut pending, self.config.batch_size);
            if let Some(rate) = self.config.rate.filter(|rate| *rate > 0) {
                let due =
                    Duration::from_secs_f64((stored.len() + batch.len()) as f64 / f64::from(rate));
                tokio::time::sleep_until(started + due).await;
            }
            let batch_stored = self.put_batch(batch).await?;
            on_stored(batch_stored.len());
            stored.extend(batch_stored);
        }
        Ok(stored)
    }

    /// Puts one batch, retrying the records (or the whole request) that failed transiently.
    pub async fn put_batch(
        &self,
        batch: Vec<ProduceEntry>,
    ) -> Result<Vec<StoredRecord>, ProduceError> {
        let mut backoff = self.config.backoff();
        let mut remaining = batch;
        let mut stored = Vec::with_capacity(remaining.len());
        let mut attempts = 0usize;
        loop {
            attempts += 1;
            let outcome = self.target.put_records(&remaining).await;
            let mut last_error = String::new();
            match outcome {
                Ok(outcomes) => {
                    let mut rejected = Vec::new();
                    for (entry, outcome) in remaining.into_iter().zip(outcomes) {
                        match outcome {
                            PutOutcome::Accepted {
                                shard_id,
                                sequence_number,
                            } => stored.push(StoredRecord {
                                entry,
                                shard_id,
                                sequence_number,
                            }),
                            PutOutcome::Failed { error_code } => {
                                last_error = error_code;
                                rejected.push(entry);
                            }
                        }
                    }
                    remaining = rejected;
                }
                Err(error) if error.is_retryable() => last_error = error.to_string(),
                Err(error) => return Err(ProduceError::Request(error)),
            }
            if remaining.is_empty() {
                return Ok(stored);
            }
            let Some(delay) = backoff.next() else {
                return Err(ProduceError::RecordsRejected {
                    failed: remaining.len(),
                    attempts,
                    last_error,
                });
            };
            tracing::debug!(
                rejected = remaining.len(),
                error = %last_error,
                ?delay,
                "retrying rejected records"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Synthetic records for demos and load tests: the payload of the `index`-th generated record: its index, zero-padded, then filler up to
/// `size` bytes (at least the index is always kept, so every generated record is unique).
pub fn generated_payload(index: u64, size: usize) -> Bytes {
    let mut payload = format!("{index:012}").into_bytes();
    if payload.len() < size {
        payload.resize(size, b'.');
    }
    Bytes::from(payload)
}

/// The `index`-th generated record: partition key `key-{index % keys}`.
pub fn generated_entry(index: u64, size: usize, keys: u32) -> ProduceEntry {
    let key_index = index % u64::from(keys.max(1));
    ProduceEntry {
        partition_key: format!("key-{key_index}"),
        data: generated_payload(index, size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_core::kinesis::KinesisErrorKind;
    use std::sync::Mutex;

    fn entry(size: usize) -> ProduceEntry {
        ProduceEntry {
            partition_key: "k".into(),
            data: Bytes::from(vec![0u8; size]),
        }
    }

    #[test]
    fn batches_respect_the_record_and_byte_limits() {
        let cases: [(Vec<usize>, usize, Vec<usize>); 4] = [
            (vec![10; 1200], 500, vec![500, 500, 200]),
            (vec![10; 7], 3, vec![3, 3, 1]),
            // 1 MiB records: five per request fit under 5 MiB with their keys? No: 5 * (1 MiB
            // + 1) > 5 MiB, so four per request.
            (vec![1024 * 1024; 9], 500, vec![4, 4, 1]),
            // A single oversized record still goes alone (the service rejects it clearly).
            (vec![6 * 1024 * 1024, 10], 500, vec![1, 1]),
        ];
        for (sizes, max_records, expected) in cases {
            let mut pending: VecDeque<_> = sizes.iter().map(|size| entry(*size)).collect();
            let mut batch_lengths = Vec::new();
            while !pending.is_empty() {
                let batch = next_batch(&mut pending, max_records);
                assert!(batch.len() <= max_records);
                batch_lengths.push(batch.len());
            }
            assert_eq!(batch_lengths, expected, "{max_records}");
        }
    }

    /// Rejects every record whose payload is in `flaky` on its first attempt.
    #[derive(Default)]
    struct FlakyTarget {
        calls: Mutex<Vec<usize>>,
        seen: Mutex<std::collections::HashSet<Bytes>>,
        fail_request_first: bool,
    }

    #[async_trait::async_trait]
    impl PutRecordsTarget for FlakyTarget {
        async fn put_records(
            &self,
            entries: &[ProduceEntry],
        ) -> Result<Vec<PutOutcome>, KinesisError> {
            let first_call = {
                let mut calls = self.calls.lock().expect("lock");
                calls.push(entries.len());
                calls.len() == 1
            };
            if first_call && self.fail_request_first {
                return Err(KinesisError::new(
                    KinesisErrorKind::InternalFailure,
                    "try again",
                ));
            }
            let mut seen = self.seen.lock().expect("lock");
            Ok(entries
                .iter()
                .map(|entry| {
                    let index: u64 = std::str::from_utf8(&entry.data[..12])
                        .expect("utf8")
                        .parse()
                        .expect("index");
                    if index.is_multiple_of(3) && seen.insert(entry.data.clone()) {
                        PutOutcome::Failed {
                            error_code: "ProvisionedThroughputExceededException".into(),
                        }
                    } else {
                        PutOutcome::Accepted {
                            shard_id: "shardId-000000000000".into(),
                            sequence_number: index.to_string(),
                        }
                    }
                })
                .collect())
        }
    }

    fn quick_config() -> ProducerConfig {
        ProducerConfig {
            batch_size: 4,
            min_retry_delay: Duration::from_millis(1),
            max_retry_delay: Duration::from_millis(5),
            ..ProducerConfig::default()
        }
    }

    #[tokio::test]
    async fn rejected_records_are_retried_until_all_are_stored() {
        let target = Arc::new(FlakyTarget {
            fail_request_first: true,
            ..Default::default()
        });
        let producer = Producer::new(target.clone(), quick_config());
        let entries: Vec<_> = (0..10).map(|index| generated_entry(index, 20, 3)).collect();
        let mut reported = 0;
        let stored = producer
            .put_all(entries.clone(), |count| reported += count)
            .await
            .expect("all stored");
        assert_eq!(reported, 10);
        let mut stored_entries: Vec<_> = stored.into_iter().map(|record| record.entry).collect();
        stored_entries.sort_by(|a, b| a.data.cmp(&b.data));
        assert_eq!(stored_entries, entries);
        let calls = target.calls.lock().expect("lock").clone();
        // Request failure, then per batch: the batch and a retry of its rejected records.
        assert_eq!(calls[0], 4);
        assert!(calls.iter().all(|size| *size <= 4));
    }

    #[tokio::test]
    async fn a_non_retryable_error_stops_the_producer() {
        struct Refusing;
        #[async_trait::async_trait]
        impl PutRecordsTarget for Refusing {
            async fn put_records(
                &self,
                _entries: &[ProduceEntry],
            ) -> Result<Vec<PutOutcome>, KinesisError> {
                Err(KinesisError::new(
                    KinesisErrorKind::ResourceNotFound,
                    "Stream s under account 000000000000 not found.",
                ))
            }
        }
        let producer = Producer::new(Arc::new(Refusing), quick_config());
        let error = producer
            .put_all(vec![generated_entry(0, 10, 1)], |_| {})
            .await
            .expect_err("fails");
        assert!(matches!(error, ProduceError::Request(_)), "{error}");
        // An error chain (what `anyhow`'s `{:#}` prints) says the service's message once.
        let chain: Vec<String> =
            std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        let printed = chain.join(": ");
        assert_eq!(
            printed,
            "the PutRecords request failed: ResourceNotFoundException: \
             Stream s under account 000000000000 not found."
        );
    }

    #[test]
    fn generated_records_are_unique_and_sized() {
        let a = generated_entry(7, 100, 4);
        assert_eq!(a.data.len(), 100);
        assert_eq!(a.partition_key, "key-3");
        assert!(a.data.starts_with(b"000000000007"));
        assert_eq!(
            generated_payload(123, 5).len(),
            12,
            "the index is never cut"
        );
    }
}
