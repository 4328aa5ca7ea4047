//! Producers: the KPL-equivalent [`KplProducer`] (aggregation, collection, per-shard rate
//! limiting, retries, TTL, backpressure) and the batch [`Producer`] (`put_all` of a known list).
//!
//! ```no_run
//! use kcl_worker::client::{HttpClientConfig, HttpStreamClient};
//! use kcl_worker::producer::{HttpTarget, KplProducer, KplProducerConfig, UserRecord};
//! use std::sync::Arc;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpStreamClient::new(HttpClientConfig::new("http://127.0.0.1:4567"))?;
//! let producer = KplProducer::start(
//!     Arc::new(HttpTarget::new(client, "orders")),
//!     KplProducerConfig::default(),
//! )?;
//! let mut receipts = Vec::new();
//! for i in 0..10_000 {
//!     // Waits while the in-flight buffer is full.
//!     receipts.push(producer.send(UserRecord::new(format!("customer-{}", i % 10), format!("order-{i}"))).await?);
//! }
//! for receipt in receipts {
//!     let stored = receipt.await?;
//!     println!("{} {} {:?}", stored.shard_id, stored.sequence_number, stored.sub_sequence_number);
//! }
//! producer.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod aggregator;
mod batch;
pub mod collector;
mod config;
mod error;
mod handle;
pub mod metrics;
pub mod rate_limit;
pub mod retry;
pub mod shard_map;
mod target;
mod task;

pub use crate::kpl::UserRecord;
pub use batch::{
    MAX_BYTES_PER_REQUEST, MAX_RECORDS_PER_REQUEST, ProduceEntry, Producer, ProducerConfig,
    PutOutcome, PutRecordsTarget, StoredRecord, generated_entry, generated_payload, next_batch,
};
pub use config::{KplProducerConfig, MAX_KINESIS_RECORD_BYTES, MAX_PARTITION_KEY_CHARS};
pub use error::ProduceError;
pub use handle::{KplProducer, PutReceipt, PutResult};
pub use metrics::ProducerStats;
pub use rate_limit::ShardLimits;
#[cfg(feature = "embedded")]
pub use target::EmbeddedTarget;
pub use target::{HttpTarget, ProducerTarget, put_outcomes};
