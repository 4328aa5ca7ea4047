//! Embedded broker: create a stream, produce, reshard, and read everything back in order.
//!
//! Run: `cargo run --release -p examples --example embedded_broker`
//!
//! It starts an in-process Kinesis-compatible broker (no network, no files), creates a
//! 2-shard stream, puts records for a few customers, splits a shard while data flows, puts
//! more, and then reads the stream the way a KCL worker does: from TRIM_HORIZON, finishing
//! each parent shard before its children. It prints what it did and checks that every
//! acknowledged record came back exactly once and in order per partition key.

use anyhow::{Context, bail};
use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, GetRecordsInput, GetShardIteratorInput,
    ListShardsInput, PutRecordsInput, PutRecordsRequestEntry, SplitShardInput, StreamRef,
};
use kcl_core::kinesis::{Record, ShardId, StartingPosition};
use std::collections::{BTreeMap, HashSet};

const STREAM: &str = "orders";
const CUSTOMERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let broker = Broker::new(BrokerConfig::default());
    broker
        .create_stream(CreateStreamInput {
            stream_name: STREAM.into(),
            shard_count: Some(2),
            ..Default::default()
        })
        .await?;
    println!(
        "created stream {STREAM} with 2 shards ({})",
        broker.stream_arn(STREAM)
    );

    let mut acknowledged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    produce(&broker, 0..4, &mut acknowledged).await?;

    let parent = ShardId::from_index(0);
    let summary = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name(STREAM)),
            ..Default::default()
        })
        .await?;
    let range = summary.shards[0].hash_key_range;
    let middle = range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2;
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name(STREAM),
            shard_to_split: parent.clone(),
            new_starting_hash_key: middle.to_string(),
        })
        .await?;
    println!("split {parent} at hash key {middle}");

    produce(&broker, 4..8, &mut acknowledged).await?;

    let delivered = consume(&broker).await?;
    for (customer, orders) in &delivered {
        println!("  {customer}: {}", orders.join(", "));
    }
    if delivered != acknowledged {
        bail!("the records read back differ from the acknowledged ones");
    }
    let total: usize = delivered.values().map(Vec::len).sum();
    println!("read back all {total} acknowledged records exactly once, in order per customer");
    Ok(())
}

/// Puts one order per customer for every round; records what was acknowledged.
async fn produce(
    broker: &Broker,
    rounds: std::ops::Range<u32>,
    acknowledged: &mut BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    for round in rounds {
        let orders: Vec<(String, String)> = CUSTOMERS
            .iter()
            .map(|customer| (customer.to_string(), format!("order-{round}")))
            .collect();
        let output = broker
            .put_records(PutRecordsInput {
                stream: StreamRef::name(STREAM),
                records: orders
                    .iter()
                    .map(|(customer, order)| PutRecordsRequestEntry {
                        data: order.clone().into(),
                        partition_key: customer.clone(),
                        explicit_hash_key: None,
                    })
                    .collect(),
            })
            .await?;
        if output.failed_record_count > 0 {
            bail!("{} records were not accepted", output.failed_record_count);
        }
        let shards: HashSet<_> = output
            .records
            .iter()
            .filter_map(|r| r.shard_id.clone())
            .collect();
        let mut shards: Vec<_> = shards.into_iter().map(|id| id.to_string()).collect();
        shards.sort();
        println!(
            "put round {round}: {} records into {}",
            output.records.len(),
            shards.join(", ")
        );
        for (customer, order) in orders {
            acknowledged.entry(customer).or_default().push(order);
        }
    }
    Ok(())
}

/// Reads every shard from TRIM_HORIZON, parents before children.
async fn consume(broker: &Broker) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let shards = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name(STREAM)),
            ..Default::default()
        })
        .await?
        .shards;
    let mut ready: Vec<ShardId> = shards
        .iter()
        .filter(|shard| shard.parent_shard_id.is_none())
        .map(|shard| shard.shard_id.clone())
        .rev()
        .collect();
    let mut finished: HashSet<ShardId> = HashSet::new();
    let mut delivered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(shard_id) = ready.pop() {
        let (records, children) = read_shard(broker, &shard_id).await?;
        let state = if children.is_empty() {
            "open"
        } else {
            "closed"
        };
        println!("read {} records from {shard_id} ({state})", records.len());
        for record in records {
            let order = String::from_utf8(record.data.to_vec()).context("utf-8 order")?;
            delivered
                .entry(record.partition_key.to_string())
                .or_default()
                .push(order);
        }
        finished.insert(shard_id.clone());
        for child in children.into_iter().rev() {
            if child
                .parent_shards
                .iter()
                .all(|parent| finished.contains(parent))
            {
                println!("  {shard_id} ended; its child {} is next", child.shard_id);
                ready.push(child.shard_id);
            }
        }
    }
    Ok(delivered)
}

/// Reads one shard until it is caught up (open) or ended (closed, with its children).
async fn read_shard(
    broker: &Broker,
    shard_id: &ShardId,
) -> anyhow::Result<(Vec<Record>, Vec<kcl_core::kinesis::ChildShard>)> {
    let mut iterator = broker
        .get_shard_iterator(GetShardIteratorInput {
            stream: StreamRef::name(STREAM),
            shard_id: shard_id.clone(),
            position: StartingPosition::TrimHorizon,
        })
        .await?
        .shard_iterator;
    let mut records = Vec::new();
    loop {
        let page = broker
            .get_records(GetRecordsInput {
                shard_iterator: iterator,
                limit: Some(1000),
                stream_arn: None,
            })
            .await?;
        let caught_up = page.records.is_empty() && page.millis_behind_latest == 0;
        records.extend(page.records);
        match page.next_shard_iterator {
            None => return Ok((records, page.child_shards)),
            Some(_) if caught_up => return Ok((records, Vec::new())),
            Some(next) => iterator = next,
        }
    }
}
