//! # firehose
//!
//! Firehose-style delivery: records of a Kinesis stream are buffered (size and interval
//! hints), optionally transformed by a Lambda-contract command, and written as objects laid out
//! as Amazon Data Firehose lays them out in S3 (`PREFIX` + `NAME-VERSION-YYYY-MM-DD-HH-MM-SS-UUID`),
//! to a local directory or (feature `s3`) any S3-compatible store. Every delivery reads its
//! stream with kcl-worker's consumer and checkpoints only what is durable in the sink: a crash
//! anywhere delivers every record at least once.
//!
//! - [`config`]: the delivery-stream model and its validation.
//! - [`layout`]: prefixes and object names; [`buffer`]: when to flush.
//! - [`sink`]: where objects go; [`transform`]: the Lambda contract over a local command.
//! - [`delivery`]: the record processor and the per-delivery scheduler.
//!
//! The Firehose HTTP API (`Firehose_20150804.*` on `kinesis-broker`) lives in the `api` module.
//!
//! ## Features
//!
//! - default: the local-directory sink ([`LocalDirSink`]).
//! - `s3`: `sink::ObjectStoreSink`, S3 (or MinIO, moto) through the `object_store` crate.
//!
//! ## Example
//!
//! A delivery of an in-process broker's stream into a directory, flushed every second:
//!
//! ```
//! use broker::engine::{Broker, BrokerConfig, CreateStreamInput, PutRecordInput, StreamRef};
//! use firehose::{BufferingHints, Delivery, DeliveryParams, DeliveryStreamConfig, LocalDirSink, S3Destination};
//! use kcl_core::clock::TokioClock;
//! use kcl_core::lineage::InitialPosition;
//! use kcl_core::memory::InMemoryLeaseStore;
//! use kcl_worker::client::EmbeddedStreamClient;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = TokioClock::shared();
//! let broker = Broker::new(BrokerConfig::unlimited().with_clock(clock.clone()));
//! broker.create_stream(CreateStreamInput { stream_name: "logs".into(), shard_count: Some(1), ..Default::default() }).await?;
//! for line in ["first\n", "second\n"] {
//!     broker.put_record(PutRecordInput {
//!         stream: StreamRef::name("logs"),
//!         data: line.into(),
//!         partition_key: "host-1".into(),
//!         explicit_hash_key: None,
//!         sequence_number_for_ordering: None,
//!     }).await?;
//! }
//! let dir = tempfile::tempdir()?;
//! let delivery = Delivery::start(DeliveryParams {
//!     config: DeliveryStreamConfig {
//!         name: "logs-to-files".into(),
//!         version_id: 1,
//!         destination: S3Destination {
//!             buffering: BufferingHints { size_mib: 1, interval_secs: 1 },
//!             ..S3Destination::new("my-bucket")
//!         },
//!     },
//!     source_stream: "logs".into(),
//!     stream_client: Arc::new(EmbeddedStreamClient::new(broker.clone())),
//!     lease_store: Arc::new(InMemoryLeaseStore::new()),
//!     sink: Arc::new(LocalDirSink::new(dir.path())),
//!     clock,
//!     worker_id: "worker-1".into(),
//!     initial_position: InitialPosition::TrimHorizon,
//!     delivery_stream_arn: String::new(),
//! }).await?;
//! while delivery.stats().records_delivered < 2 {
//!     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//! }
//! // One object, DIR/my-bucket/YYYY/MM/DD/HH/logs-to-files-1-YYYY-MM-DD-HH-MM-SS-UUID,
//! // holding "first\nsecond\n".
//! assert_eq!(delivery.stats().files, 1);
//! delivery.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod buffer;
pub mod config;
pub mod delivery;
pub mod error;
pub mod layout;
pub mod sink;
pub mod transform;

#[cfg(feature = "api")]
pub mod api;

pub use config::{
    BufferingHints, Compression, DeliveryStreamConfig, DynamicPartitioning, PartitionKeyQuery,
    Processing, S3Destination,
};
pub use delivery::{Delivery, DeliveryHandle, DeliveryParams, DeliveryStats};
pub use error::FirehoseError;
pub use sink::{LocalDirSink, ObjectSink};
