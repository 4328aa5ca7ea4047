//! The [`KplProducer`] handle: `send` / `try_send` into a bounded in-flight buffer, `flush`,
//! `shutdown`, and the [`PutReceipt`] future each record's outcome arrives on.

use super::config::{KplProducerConfig, MAX_KINESIS_RECORD_BYTES, MAX_PARTITION_KEY_CHARS};
use super::error::ProduceError;
use super::metrics::{ProducerMetrics, ProducerStats};
use super::target::ProducerTarget;
use super::task::{Command, Task};
use crate::kpl::UserRecord;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where a user record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The shard it was stored in.
    pub shard_id: String,
    /// The sequence number of the Kinesis record carrying it.
    pub sequence_number: String,
    /// Its index inside the aggregate (`None` when it was sent as a plain record).
    pub sub_sequence_number: Option<u64>,
    /// `PutRecords` attempts it took.
    pub attempts: u32,
}

/// The outcome of one user record, resolved when it is stored or has failed.
#[derive(Debug)]
#[must_use = "a receipt tells whether the record was stored"]
pub struct PutReceipt {
    receiver: oneshot::Receiver<Result<PutResult, ProduceError>>,
}

impl Future for PutReceipt {
    type Output = Result<PutResult, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|outcome| outcome.unwrap_or(Err(ProduceError::ShutDown)))
    }
}

/// One user record's share of the buffer; released (and counted out) when dropped.
#[derive(Debug)]
pub(crate) struct BufferSlot {
    _records: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
    bytes: u64,
    metrics: Arc<ProducerMetrics>,
}

impl Drop for BufferSlot {
    fn drop(&mut self) {
        self.metrics.released(self.bytes);
    }
}

/// Where one user record's outcome goes; frees its buffer share once delivered.
#[derive(Debug)]
pub(crate) struct Completion {
    sender: oneshot::Sender<Result<PutResult, ProduceError>>,
    slot: BufferSlot,
}

impl Completion {
    /// Delivers the outcome (the caller may have dropped its receipt: that is fine).
    pub(crate) fn finish(self, outcome: Result<PutResult, ProduceError>) {
        if outcome.is_err() {
            self.slot.metrics.failed(1);
        }
        drop(self.slot);
        let _ = self.sender.send(outcome);
    }
}

/// A user record on its way to the background task.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub(crate) record: UserRecord,
    pub(crate) completion: Completion,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    records: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    metrics: Arc<ProducerMetrics>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A KPL-equivalent producer: aggregation, collection into `PutRecords`, per-shard rate
/// limiting that reacts to throttling, retries with backoff, per-record TTL, backpressure.
///
/// Clones share one producer. Call [`KplProducer::shutdown`] to drain and stop it.
#[derive(Debug, Clone)]
pub struct KplProducer {
    inner: Arc<Inner>,
}

fn validate_record(record: &UserRecord) -> Result<(), ProduceError> {
    let invalid = |field: &'static str, rule: String| ProduceError::InvalidRecord { field, rule };
    let key_chars = record.partition_key.chars().count();
    if key_chars == 0 || key_chars > MAX_PARTITION_KEY_CHARS {
        return Err(invalid(
            "partition_key",
            format!("must be 1 to {MAX_PARTITION_KEY_CHARS} characters (got {key_chars})"),
        ));
    }
    let size = record.request_size();
    if size > MAX_KINESIS_RECORD_BYTES {
        return Err(invalid(
            "data",
            format!(
                "plus partition_key must be at most {MAX_KINESIS_RECORD_BYTES} bytes (got {size})"
            ),
        ));
    }
    Ok(())
}

impl KplProducer {
    /// Starts a producer writing to `target` (its background task runs on the current tokio
    /// runtime).
    pub fn start(
        target: Arc<dyn ProducerTarget>,
        config: KplProducerConfig,
    ) -> Result<KplProducer, ProduceError> {
        config.validate()?;
        let metrics = Arc::new(ProducerMetrics::new(target.stream_name()));
        let (commands, receiver) = mpsc::channel(config.max_buffered_records + 64);
        let cancel = CancellationToken::new();
        let records = Arc::new(Semaphore::new(config.max_buffered_records));
        let bytes = Arc::new(Semaphore::new(config.max_buffered_bytes));
        let task = Task::new(target, config, metrics.clone());
        let handle = tokio::spawn(task.run(receiver, cancel.clone()));
        Ok(KplProducer {
            inner: Arc::new(Inner {
                commands,
                records,
                bytes,
                metrics,
                cancel,
                task: Mutex::new(Some(handle)),
            }),
        })
    }

    fn submitted(
        &self,
        record: UserRecord,
        records: OwnedSemaphorePermit,
        bytes: OwnedSemaphorePermit,
    ) -> (Submitted, PutReceipt) {
        let size = record.request_size() as u64;
        self.inner.metrics.buffered(size);
        let (sender, receiver) = oneshot::channel();
        let slot = BufferSlot {
            _records: records,
            _bytes: bytes,
            bytes: size,
            metrics: self.inner.metrics.clone(),
        };
        let submitted = Submitted {
            record,
            completion: Completion { sender, slot },
        };
        (submitted, PutReceipt { receiver })
    }

    /// Buffers `record`, waiting while the buffer is full; the receipt resolves when the
    /// record is stored or has failed (after its TTL, or on a non-retryable error).
    pub async fn send(&self, record: UserRecord) -> Result<PutReceipt, ProduceError> {
        validate_record(&record)?;
        let size = record.request_size().max(1) as u32;
        let records = self
            .inner
            .records
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ProduceError::ShutDown)?;
        let bytes = self
            .inner
            .bytes
            .clone()
            .acquire_many_owned(size)
            .await
            .map_err(|_| ProduceError::ShutDown)?;
        let (submitted, receipt) = self.submitted(record, records, bytes);
        self.inner
            .commands
            .send(Command::Record(submitted))
            .await
            .map_err(|_| ProduceError::ShutDown)?;
        Ok(receipt)
    }

    /// Buffers `record` if there is room now, else fails with [`ProduceError::BufferFull`].
    pub fn try_send(&self, record: UserRecord) -> Result<PutReceipt, ProduceError> {
        validate_record(&record)?;
        let size = record.request_size().max(1) as u32;
        let full = || {
            let stats = self.stats();
            ProduceError::BufferFull {
                records: stats.buffered_records as usize,
                bytes: stats.buffered_bytes as usize,
            }
        };
        let records = self
            .inner
            .records
            .clone()
            .try_acquire_owned()
            .map_err(|_| full())?;
        let bytes = self
            .inner
            .bytes
            .clone()
            .try_acquire_many_owned(size)
            .map_err(|_| full())?;
        let (submitted, receipt) = self.submitted(record, records, bytes);
        self.inner
            .commands
            .try_send(Command::Record(submitted))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => full(),
                mpsc::error::TrySendError::Closed(_) => ProduceError::ShutDown,
            })?;
        Ok(receipt)
    }

    /// Sends everything buffered now, without waiting for the buffered time, and waits until
    /// every record sent before this call is stored or has failed.
    pub async fn flush(&self) -> Result<(), ProduceError> {
        let (done, drained) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Flush(done))
            .await
            .map_err(|_| ProduceError::ShutDown)?;
        drained.await.map_err(|_| ProduceError::ShutDown)
    }

    /// Flushes, then stops the background task and waits for it. Records sent afterwards fail
    /// with [`ProduceError::ShutDown`].
    pub async fn shutdown(&self) -> Result<(), ProduceError> {
        let flushed = self.flush().await;
        self.inner.cancel.cancel();
        self.inner.records.close();
        self.inner.bytes.close();
        let handle = self
            .inner
            .task
            .lock()
            .map_err(|_| ProduceError::ShutDown)?
            .take();
        if let Some(handle) = handle
            && let Err(error) = handle.await
        {
            tracing::error!(%error, "the producer task ended abnormally");
        }
        match flushed {
            Err(ProduceError::ShutDown) | Ok(()) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A snapshot of the producer's counters.
    pub fn stats(&self) -> ProducerStats {
        self.inner.metrics.snapshot()
    }
}
