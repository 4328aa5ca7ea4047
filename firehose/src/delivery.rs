//! Runs one delivery stream: a kcl-worker [`Scheduler`](kcl_worker::scheduler::Scheduler)
//! over the source stream whose record processors buffer, transform and write objects, and
//! checkpoint only what is durable in the sink.

use crate::config::{DeliveryStreamConfig, S3Destination};
use crate::error::FirehoseError;
use crate::sink::ObjectSink;
use kcl_core::clock::SharedClock;
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::InitialPosition;
use kcl_core::stream_client::StreamClient;
use std::sync::Arc;

/// Everything a delivery needs.
#[derive(Clone)]
pub struct DeliveryParams {
    /// The delivery stream.
    pub config: DeliveryStreamConfig,
    /// The stream read (in `stream_client`).
    pub source_stream: String,
    /// Reads the source stream.
    pub stream_client: Arc<dyn StreamClient>,
    /// Leases and checkpoints (application `firehose-<name>`).
    pub lease_store: Arc<dyn LeaseStore>,
    /// Where objects go.
    pub sink: Arc<dyn ObjectSink>,
    /// Monotonic time (buffer intervals, transformation timeouts) and wall time (keys).
    pub clock: SharedClock,
    /// This worker's id in the lease table.
    pub worker_id: String,
    /// Where shards never delivered before start (TRIM_HORIZON for DirectPut buffers).
    pub initial_position: InitialPosition,
}

impl std::fmt::Debug for DeliveryParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryParams")
            .field("config", &self.config)
            .field("source_stream", &self.source_stream)
            .field("worker_id", &self.worker_id)
            .field("initial_position", &self.initial_position)
            .finish_non_exhaustive()
    }
}

/// Counters of one delivery (since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Records read from the source.
    pub records_in: u64,
    /// Records written to delivered objects.
    pub records_delivered: u64,
    /// Records the transformation dropped.
    pub records_dropped: u64,
    /// Records written to the error prefix.
    pub records_failed: u64,
    /// Objects written (data and error objects).
    pub files: u64,
    /// Bytes written (after compression).
    pub bytes: u64,
}

/// Starts deliveries.
#[derive(Debug)]
pub struct Delivery;

impl Delivery {
    /// Validates the configuration and starts consuming the source stream.
    pub async fn start(params: DeliveryParams) -> Result<DeliveryHandle, FirehoseError> {
        params.config.validate()?;
        Err(FirehoseError::Worker(
            "delivery is not implemented yet".into(),
        ))
    }
}

/// A running delivery.
#[derive(Debug)]
pub struct DeliveryHandle {
    _private: (),
}

impl DeliveryHandle {
    /// Replaces the destination: new hints, prefixes and processing apply from the next object.
    pub fn update_destination(&self, destination: S3Destination) {
        let _ = destination;
    }

    /// The delivery's counters.
    pub fn stats(&self) -> DeliveryStats {
        DeliveryStats::default()
    }

    /// Stops the consumer without flushing: unflushed records were not checkpointed and are
    /// read again by the next start (at-least-once).
    pub async fn shutdown(self) {}
}
