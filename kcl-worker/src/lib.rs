//! # kcl-worker
//!
//! The kcl-rs runtime. Write a [`ShardRecordProcessor`](processor::ShardRecordProcessor), give a
//! [`Scheduler`](scheduler::Scheduler) a lease store and a stream client, and run as many
//! copies as you like: each shard is processed by exactly one worker at a time, in order,
//! resuming from its last checkpoint after a failover, children only after their parents.
//!
//! - [`processor`]: the application API; [`checkpointer`]: checkpoints (kcl-core's rules).
//! - [`scheduler`]: lease taker, renewer, shard sync, cleanup and one consumer per held shard.
//! - [`retrieval`]: polling or enhanced fan-out, bounded prefetch, KPL de-aggregation ([`kpl`]).
//! - [`client`]: stream clients for any Kinesis HTTP endpoint and (feature `embedded`) the
//!   in-process broker.
//! - [`producer`]: the KPL-equivalent `KplProducer` (aggregation, per-shard rate limiting, backpressure) and batched `PutRecords`.
//! - [`metrics`]: per-worker and per-shard counters, also recorded into the `metrics` facade
//!   under the names in [`series`] (the library never installs a recorder); `testing` (feature `testing`): an
//!   in-process fleet toolkit.
//!
//! ## Features
//!
//! - default: the library for real Kinesis or any Kinesis HTTP endpoint (no broker, no CLI).
//! - `embedded`: [`client::EmbeddedStreamClient`] and `producer::EmbeddedTarget` over an
//!   in-process `broker::engine::Broker`.
//! - `testing` (implies `embedded`): the `testing` module: fleets of workers in one process,
//!   recording processors and a validator of delivery guarantees.
//!
//! The `kcl` command-line tool is its own package (`kcl-worker/cli`, `cargo run -p kcl`).
//!
//! ## Example
//!
//! One worker over an in-process broker (the example is compiled and run with the `embedded`
//! feature; against real Kinesis use [`client::HttpStreamClient`] instead).
#![cfg_attr(
    feature = "embedded",
    doc = r##"
```
use kcl_core::memory::InMemoryLeaseStore;
use kcl_worker::checkpointer::RecordCheckpointer;
use kcl_worker::client::EmbeddedStreamClient;
use kcl_worker::config::SchedulerConfig;
use kcl_worker::processor::*;
use kcl_worker::scheduler::Scheduler;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counter(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl ShardRecordProcessor for Counter {
    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        self.0.fetch_add(input.records.len(), Ordering::SeqCst);
        input.checkpointer.checkpoint().await?;
        Ok(())
    }
    // initialize, lease_lost: the defaults (nothing); shard_ended: the default (checkpoint).
    async fn shutdown_requested(&mut self, checkpointer: RecordCheckpointer) -> Result<(), ProcessorError> {
        Ok(checkpointer.checkpoint().await?)
    }
}

# #[tokio::main(flavor = "current_thread", start_paused = true)]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
use broker::engine::{Broker, BrokerConfig, CreateStreamInput, PutRecordInput, StreamRef};
let broker = Broker::new(BrokerConfig::default().with_clock(kcl_core::clock::TokioClock::shared()));
broker.create_stream(CreateStreamInput { stream_name: "orders".into(), shard_count: Some(2), ..Default::default() }).await?;
for i in 0..10 {
    broker.put_record(PutRecordInput {
        stream: StreamRef::name("orders"),
        data: format!("order-{i}").into(),
        partition_key: format!("customer-{i}"),
        explicit_hash_key: None,
        sequence_number_for_ordering: None,
    }).await?;
}
let mut config = SchedulerConfig::new(
    "billing", "orders", "worker-1",
    Arc::new(InMemoryLeaseStore::new()),
    Arc::new(EmbeddedStreamClient::new(broker.clone())),
);
config.clock = kcl_core::clock::TokioClock::shared();
let processed = Arc::new(AtomicUsize::new(0));
let counter = processed.clone();
let scheduler = Scheduler::new(config, move |_: &kcl_core::kinesis::ShardId| {
    Box::new(Counter(counter.clone())) as Box<dyn ShardRecordProcessor>
})?;
let handle = scheduler.handle();
let running = tokio::spawn(scheduler.run());
while processed.load(Ordering::SeqCst) < 10 {
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}
handle.shutdown().await; // shutdown_requested, checkpoint, leases released
running.await??;
# Ok(())
# }
```
"##
)]

mod backoff;
pub mod checkpointer;
pub mod client;
pub mod config;
mod consumer;
pub mod error;
pub mod health;
pub mod kpl;
pub mod metrics;
pub mod processor;
pub mod producer;
pub mod record;
pub mod retrieval;
pub mod scheduler;
pub mod series;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::WorkerError;
