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
