//! A consumer against any Kinesis HTTP endpoint (real Kinesis or a `kinesis-broker`), built
//! on kcl-worker's default features only (no broker, no CLI): the HTTP stream client and a
//! SQLite lease file. BENCHMARKS.md times its clean release build ("Library footprint").
//!
//! ```text
//! cargo run --release -p examples --no-default-features --example http_consumer -- \
//!     http://127.0.0.1:4567 orders leases.db
//! ```
//!
//! Credentials and region come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_REGION`. It prints each record's shard, sequence number and size, checkpoints after
//! every batch and stops on Ctrl-C (checkpointing, releasing its leases).

use kcl_core::kinesis::ShardId;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_worker::checkpointer::RecordCheckpointer;
use kcl_worker::client::{HttpClientConfig, HttpStreamClient};
use kcl_worker::config::SchedulerConfig;
use kcl_worker::processor::{ProcessRecordsInput, ProcessorError, ShardRecordProcessor};
use kcl_worker::scheduler::Scheduler;
use std::sync::Arc;

/// Prints every record, checkpoints after each batch.
struct Printer {
    shard_id: ShardId,
}

#[async_trait::async_trait]
impl ShardRecordProcessor for Printer {
    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        for record in &input.records {
            println!(
                "{} {} {} bytes",
                self.shard_id,
                record.sequence_number,
                record.data.len()
            );
        }
        input.checkpointer.checkpoint().await?;
        Ok(())
    }

    // initialize, lease_lost: the defaults (nothing to do); shard_ended: the default
    // (checkpoint at the shard's end so its children start); shutdown_requested: checkpoint
    // what was processed so the next owner does not see it again.
    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        Ok(checkpointer.checkpoint().await?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4567".to_owned());
    let stream = args.next().unwrap_or_else(|| "orders".to_owned());
    let lease_file = args.next().unwrap_or_else(|| "leases.db".to_owned());

    let client = HttpStreamClient::new(HttpClientConfig::new(endpoint))?;
    let store = SqliteLeaseStore::open(lease_file, "printer-app").await?;
    let config = SchedulerConfig::new(
        "printer-app",
        stream,
        format!("printer-{}", std::process::id()),
        Arc::new(store),
        Arc::new(client),
    );
    let scheduler = Scheduler::new(config, |shard: &ShardId| {
        Box::new(Printer {
            shard_id: shard.clone(),
        }) as Box<dyn ShardRecordProcessor>
    })?;
    let handle = scheduler.handle();
    let running = tokio::spawn(scheduler.run());
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    running.await??;
    Ok(())
}
