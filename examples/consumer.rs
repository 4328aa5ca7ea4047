//! A consumer with a custom record processor that checkpoints every N records, running one
//! worker over an in-process broker and a SQLite lease file.
//!
//! ```text
//! cargo run -p examples --example consumer
//! ```
//!
//! It produces 5,000 records into a 2-shard stream, processes them (summing the payload sizes),
//! checkpoints after every 500th record of a shard (and at shutdown), then shuts down gracefully
//! and prints the lease table: each shard's checkpoint is its last record.

use broker::engine::{Broker, BrokerConfig, CreateStreamInput};
use kcl_core::kinesis::ShardId;
use kcl_core::lease_store::LeaseStore;
use kcl_core::sqlite::SqliteLeaseStore;
use kcl_worker::checkpointer::RecordCheckpointer;
use kcl_worker::client::EmbeddedStreamClient;
use kcl_worker::config::SchedulerConfig;
use kcl_worker::processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, ShardRecordProcessor,
};
use kcl_worker::producer::{EmbeddedTarget, Producer, ProducerConfig, generated_entry};
use kcl_worker::scheduler::Scheduler;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const STREAM: &str = "orders";
const CHECKPOINT_EVERY: u64 = 500;

/// Sums payload sizes; checkpoints after every `CHECKPOINT_EVERY`-th record of its shard.
struct SizeCounter {
    shard_id: Option<ShardId>,
    since_checkpoint: u64,
    total_records: Arc<AtomicU64>,
    total_bytes: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl ShardRecordProcessor for SizeCounter {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        println!(
            "{}: starting after {}",
            input.shard_id, input.extended_sequence_number
        );
        self.shard_id = Some(input.shard_id);
        Ok(())
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) -> Result<(), ProcessorError> {
        for record in &input.records {
            self.total_bytes
                .fetch_add(record.data.len() as u64, Ordering::Relaxed);
            self.total_records.fetch_add(1, Ordering::Relaxed);
            self.since_checkpoint += 1;
            if self.since_checkpoint == CHECKPOINT_EVERY {
                // Checkpoint exactly at this record: a new owner resumes right after it.
                input.checkpointer.checkpoint_record(record).await?;
                self.since_checkpoint = 0;
            }
        }
        Ok(())
    }

    // lease_lost: the default (nothing to do); shard_ended: the default (checkpoint at the
    // shard's end, which lets its children start).

    async fn shutdown_requested(
        &mut self,
        checkpointer: RecordCheckpointer,
    ) -> Result<(), ProcessorError> {
        // Everything delivered was processed: checkpoint it so nothing is seen twice.
        checkpointer.checkpoint().await?;
        let shard = self.shard_id.as_ref().map_or("?", ShardId::as_str);
        println!("{shard}: checkpointed at shutdown");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let broker = Broker::new(BrokerConfig::unlimited());
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.to_owned(),
            shard_count: Some(2),
            ..CreateStreamInput::default()
        })
        .await?;
    let producer = Producer::new(
        Arc::new(EmbeddedTarget::new(broker.clone(), STREAM)),
        ProducerConfig::default(),
    );
    let produced = producer
        .put_all(
            (0..5_000)
                .map(|index| generated_entry(index, 64, 100))
                .collect(),
            |_| {},
        )
        .await?;

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn LeaseStore> =
        Arc::new(SqliteLeaseStore::open(dir.path().join("leases.db"), "orders-app").await?);
    let config = SchedulerConfig::new(
        "orders-app",
        STREAM,
        "worker-1",
        store.clone(),
        Arc::new(EmbeddedStreamClient::new(broker.clone())),
    );
    let total_records = Arc::new(AtomicU64::new(0));
    let total_bytes = Arc::new(AtomicU64::new(0));
    let factory = {
        let total_records = total_records.clone();
        let total_bytes = total_bytes.clone();
        move |_shard: &ShardId| -> Box<dyn ShardRecordProcessor> {
            Box::new(SizeCounter {
                shard_id: None,
                since_checkpoint: 0,
                total_records: total_records.clone(),
                total_bytes: total_bytes.clone(),
            })
        }
    };
    let scheduler = Scheduler::new(config, factory)?;
    let handle = scheduler.handle();
    let worker = tokio::spawn(scheduler.run());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while total_records.load(Ordering::Relaxed) < produced.len() as u64 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not all records processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown().await;
    worker.await??;
    println!(
        "processed {} records, {} payload bytes",
        total_records.load(Ordering::Relaxed),
        total_bytes.load(Ordering::Relaxed)
    );
    let mut leases = store.list_leases().await?;
    leases.sort_by(|a, b| a.lease_key.cmp(&b.lease_key));
    println!("{:<22} {:<10} CHECKPOINT", "SHARD", "OWNER");
    for lease in leases {
        println!(
            "{:<22} {:<10} {}",
            lease.lease_key,
            lease.lease_owner.as_deref().unwrap_or("-"),
            lease.checkpoint
        );
    }
    Ok(())
}
