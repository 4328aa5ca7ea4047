//! Taking over a lease table a Java KCL fleet left behind.
//!
//! The test writes the items with aws-sdk-dynamodb directly — not through our store — with the
//! attribute names and types of the Java KCL's `DynamoDBLeaseSerializer` (leaseKey S,
//! leaseOwner S, leaseCounter N, ownerSwitchesSinceCheckpoint N, checkpoint S,
//! checkpointSubSequenceNumber N, parentShardId SS, childShardIds SS, startingHashKey /
//! endingHashKey S, throughputKBps N; see docs/java-kcl-lease-table.md), on a table created
//! the way the Java KCL creates it (HASH key leaseKey S, on-demand billing):
//!
//! - shard 0: split, checkpoint in the middle of the shard, owned by a dead Java worker; its
//!   children have no lease yet (the Java fleet never finished the parent);
//! - shard 1: split, finished (checkpoint `SHARD_END`), with `childShardIds`;
//! - shard 1's first child: checkpoint in the middle, a dead owner, and attributes our store
//!   does not know (they must survive our updates);
//! - shard 1's second child: `TRIM_HORIZON`, no owner.
//!
//! Then two `kcl worker --leases dynamodb:TABLE` processes run on the table (with
//! `--initial-position trim-horizon`, so ignoring a checkpoint would re-deliver old records):
//! every record after each checkpoint is delivered, none at or before it, children only after
//! their parents, and the unknown attributes are still on the item afterwards.

#[path = "../../kcl-core/tests/support/dynamodb_local.rs"]
mod dynamodb_local;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use dynamodb_local::LocalDynamoDb;
use kcl_core::kinesis::{SequenceNumber, Shard};
use kcl_worker::producer::StoredRecord;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tests::fleet::{FleetLeaseStore, FleetOptions, ProcessFleet, parent_map};
use tests::verify::verify_sinks;

const LONG: Duration = Duration::from_secs(120);
const TABLE: &str = "java-fleet-leases";
const DEAD_JAVA_WORKER: &str = "java-worker-7f3c-dead";
/// A leaseCounter far from 0: a takeover continues the Java fleet's counter.
const JAVA_COUNTER: u64 = 4057;
/// Attributes a newer Java KCL (or an operator) put on an item; our store must keep them.
const UNKNOWN_TEXT: (&str, &str) = ("javaTeamTag", "billing-consumers");
const UNKNOWN_NUMBER: (&str, &str) = ("javaLeaseMetricsVersion", "3");

fn dynamodb_client(endpoint_url: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "kcl-test",
            "kcl-test",
            None,
            None,
            "java-interop-test",
        ))
        .build();
    Client::from_conf(config)
}

/// Creates the table as the Java KCL's `DynamoDBLeaseRefresher.createLeaseTableIfNotExists`
/// does: HASH key `leaseKey` (S), on-demand billing.
async fn create_java_table(client: &Client) -> anyhow::Result<()> {
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    let started = Instant::now();
    loop {
        let described = client.describe_table().table_name(TABLE).send().await?;
        let status = described
            .table()
            .and_then(|table| table.table_status())
            .map(|status| status.as_str().to_owned());
        if status.as_deref() == Some("ACTIVE") {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < LONG, "table not ACTIVE: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string_set(values: &[&Shard]) -> AttributeValue {
    AttributeValue::Ss(
        values
            .iter()
            .map(|shard| shard.shard_id.to_string())
            .collect(),
    )
}

/// A lease item as `DynamoDBLeaseSerializer.toDynamoRecord` writes it.
fn java_item(
    shard: &Shard,
    owner: Option<&str>,
    counter: u64,
    checkpoint: &str,
) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("leaseKey".to_owned(), text(shard.shard_id.to_string())),
        ("leaseCounter".to_owned(), number(counter)),
        ("ownerSwitchesSinceCheckpoint".to_owned(), number(0)),
        ("checkpoint".to_owned(), text(checkpoint)),
        ("checkpointSubSequenceNumber".to_owned(), number(0)),
        (
            "startingHashKey".to_owned(),
            text(shard.hash_key_range.starting_hash_key.to_string()),
        ),
        (
            "endingHashKey".to_owned(),
            text(shard.hash_key_range.ending_hash_key.to_string()),
        ),
    ]);
    if let Some(owner) = owner {
        item.insert("leaseOwner".to_owned(), text(owner));
    }
    item
}

async fn put(client: &Client, item: HashMap<String, AttributeValue>) -> anyhow::Result<()> {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .send()
        .await?;
    Ok(())
}

async fn get(client: &Client, shard: &Shard) -> anyhow::Result<HashMap<String, AttributeValue>> {
    let output = client
        .get_item()
        .table_name(TABLE)
        .key("leaseKey", text(shard.shard_id.to_string()))
        .consistent_read(true)
        .send()
        .await?;
    Ok(output.item().cloned().unwrap_or_default())
}

/// The records of `shard`, in shard order.
fn records_of<'a>(produced: &'a [StoredRecord], shard: &Shard) -> Vec<&'a StoredRecord> {
    let mut records: Vec<&StoredRecord> = produced
        .iter()
        .filter(|record| record.shard_id == shard.shard_id.as_str())
        .collect();
    records.sort_by_key(|record| sequence(record));
    records
}

fn sequence(record: &StoredRecord) -> SequenceNumber {
    record
        .sequence_number
        .parse()
        .expect("the broker acknowledged a valid sequence number")
}

fn children_of<'a>(shards: &'a [Shard], parent: &Shard) -> Vec<&'a Shard> {
    shards
        .iter()
        .filter(|shard| shard.parent_shard_id.as_ref() == Some(&parent.shard_id))
        .collect()
}

/// Waits until every record of `expected` is in some sink.
async fn wait_delivered(fleet: &ProcessFleet, expected: &[StoredRecord]) {
    let started = Instant::now();
    loop {
        let seen: HashSet<Vec<u8>> = fleet
            .sinks()
            .expect("sinks")
            .into_iter()
            .flat_map(|sink| sink.records)
            .filter_map(|record| record.data_bytes())
            .collect();
        let missing: Vec<&StoredRecord> = expected
            .iter()
            .filter(|record| !seen.contains(record.entry.data.as_ref()))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < LONG,
            "{} of {} records after the Java checkpoints not delivered after {LONG:?} \
             (first: shard {} sequence {}); leases: {:?}\n--- j1\n{}\n--- j2\n{}",
            missing.len(),
            expected.len(),
            missing[0].shard_id,
            missing[0].sequence_number,
            fleet.leases().await,
            fleet.worker_log("j1"),
            fleet.worker_log("j2"),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcl_rs_takes_over_a_table_a_java_fleet_left() {
    let Some(server) = LocalDynamoDb::start().expect("starting the local DynamoDB server") else {
        return;
    };
    let endpoint_url = server.endpoint_url();
    let client = dynamodb_client(&endpoint_url);
    create_java_table(&client).await.expect("java-style table");

    let mut fleet = ProcessFleet::start(
        "java",
        FleetOptions {
            shards: 2,
            failover_ms: 2000,
            lease_store: FleetLeaseStore::DynamoDb {
                endpoint_url: endpoint_url.clone(),
                table: Some(TABLE.to_owned()),
            },
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet");

    // What the Java fleet consumed: records before both splits (shards 0 and 1), and some
    // after (shard 1's children).
    fleet.produce(300).await.expect("produce before the splits");
    let before_splits = fleet.open_shards().await.expect("shards");
    assert_eq!(before_splits.len(), 2);
    for shard in &before_splits {
        fleet.split(shard).await.expect("split");
    }
    fleet.produce(300).await.expect("produce after the splits");
    let shards = fleet.shards().await.expect("shards");
    let shard0 = &before_splits[0];
    let shard1 = &before_splits[1];
    let children0 = children_of(&shards, shard0);
    let children1 = children_of(&shards, shard1);
    assert_eq!((children0.len(), children1.len()), (2, 2));
    let (child_mid, child_fresh) = (children1[0], children1[1]);

    let produced = fleet.produced().to_vec();
    let shard0_records = records_of(&produced, shard0);
    let child_mid_records = records_of(&produced, child_mid);
    assert!(
        shard0_records.len() >= 10 && child_mid_records.len() >= 10,
        "enough records on the checkpointed shards: {} and {}",
        shard0_records.len(),
        child_mid_records.len()
    );
    let checkpoint0 = sequence(shard0_records[shard0_records.len() / 2]);
    let checkpoint_mid = sequence(child_mid_records[child_mid_records.len() / 3]);

    // The table as the Java fleet left it.
    put(
        &client,
        java_item(
            shard0,
            Some(DEAD_JAVA_WORKER),
            JAVA_COUNTER,
            &checkpoint0.to_string(),
        ),
    )
    .await
    .expect("shard 0 item");
    let mut finished = java_item(
        shard1,
        Some(DEAD_JAVA_WORKER),
        JAVA_COUNTER + 1,
        "SHARD_END",
    );
    finished.insert("childShardIds".to_owned(), string_set(&children1));
    put(&client, finished).await.expect("finished parent item");
    let mut mid = java_item(
        child_mid,
        Some(DEAD_JAVA_WORKER),
        JAVA_COUNTER + 2,
        &checkpoint_mid.to_string(),
    );
    mid.insert("parentShardId".to_owned(), string_set(&[shard1]));
    mid.insert("throughputKBps".to_owned(), number("12.5"));
    mid.insert(UNKNOWN_TEXT.0.to_owned(), text(UNKNOWN_TEXT.1));
    mid.insert(UNKNOWN_NUMBER.0.to_owned(), number(UNKNOWN_NUMBER.1));
    put(&client, mid).await.expect("mid-shard child item");
    let mut fresh = java_item(child_fresh, None, 0, "TRIM_HORIZON");
    fresh.insert("parentShardId".to_owned(), string_set(&[shard1]));
    put(&client, fresh).await.expect("fresh child item");

    // Our store reads the Java items as they are.
    let leases = fleet
        .leases()
        .await
        .expect("our store reads the Java items");
    let by_key: BTreeMap<String, _> = leases
        .iter()
        .map(|lease| (lease.lease_key.to_string(), lease))
        .collect();
    assert_eq!(by_key.len(), 4, "{leases:?}");
    let read_mid = by_key[child_mid.shard_id.as_str()];
    assert_eq!(read_mid.lease_owner.as_deref(), Some(DEAD_JAVA_WORKER));
    assert_eq!(read_mid.lease_counter, JAVA_COUNTER + 2);
    assert_eq!(read_mid.checkpoint.sequence_number(), Some(checkpoint_mid));
    assert_eq!(read_mid.parent_shard_ids, vec![shard1.shard_id.clone()]);
    assert!(by_key[shard1.shard_id.as_str()].is_finished());

    // kcl-rs workers take over.
    for worker in ["j1", "j2"] {
        fleet
            .start_worker_with(worker, &["--initial-position", "trim-horizon"])
            .expect("worker");
    }
    fleet
        .produce(200)
        .await
        .expect("produce after the takeover");

    // Expected: after each checkpoint; nothing of the finished parent; all of the fresh child
    // and of shard 0's children (no lease yet: TRIM_HORIZON, as the children of a parent).
    let all = fleet.produced().to_vec();
    let expected: Vec<StoredRecord> = all
        .iter()
        .filter(|record| {
            let shard = record.shard_id.as_str();
            if shard == shard0.shard_id.as_str() {
                sequence(record) > checkpoint0
            } else if shard == child_mid.shard_id.as_str() {
                sequence(record) > checkpoint_mid
            } else {
                shard != shard1.shard_id.as_str()
            }
        })
        .cloned()
        .collect();
    let skipped = all.len() - expected.len();
    assert!(skipped > 0 && !expected.is_empty());
    wait_delivered(&fleet, &expected).await;

    // Nothing at or before a Java checkpoint, nothing of the finished parent.
    let expected_data: HashSet<&[u8]> = expected
        .iter()
        .map(|record| record.entry.data.as_ref())
        .collect();
    let behind_checkpoints: Vec<String> = fleet
        .sinks()
        .expect("sinks")
        .into_iter()
        .flat_map(|sink| sink.records)
        .filter(|record| {
            record
                .data_bytes()
                .is_some_and(|data| !expected_data.contains(data.as_slice()))
        })
        .map(|record| format!("{} {}", record.shard_id, record.sequence_number))
        .collect();
    assert!(
        behind_checkpoints.is_empty(),
        "records at or before a Java checkpoint (or of the finished parent) were delivered \
         again: {behind_checkpoints:?}"
    );

    // Every record delivered is one of `expected` (a record at or before a Java checkpoint,
    // or of the finished parent, counts as "never acknowledged"); per-acquisition order;
    // children after parents in each sink and, live, across workers.
    let report = verify_sinks(
        &expected,
        &fleet.sinks().expect("sinks"),
        &fleet.handovers(),
        &parent_map(&shards),
        true,
    );
    eprintln!(
        "java interop verdict: {} ({skipped} records at or before the Java checkpoints)",
        report.summary()
    );
    assert!(report.is_ok(), "{}\n{:#?}", report.summary(), report.errors);
    let lineage = fleet.lineage_errors();
    assert!(lineage.is_empty(), "{lineage:#?}");

    // The mid-shard child's item after our workers checkpointed past everything on it: taken
    // over from the dead owner (counter continued), Java types kept, unknown attributes kept.
    let last_mid = records_of(&all, child_mid)
        .last()
        .map(|record| sequence(record))
        .expect("records on the mid-shard child");
    let started = Instant::now();
    let item = loop {
        let item = get(&client, child_mid).await.expect("get item");
        let checkpoint = item
            .get("checkpoint")
            .and_then(|value| value.as_s().ok())
            .and_then(|text| text.parse::<SequenceNumber>().ok());
        if checkpoint.is_some_and(|checkpoint| checkpoint >= last_mid) {
            break item;
        }
        assert!(
            started.elapsed() < LONG,
            "the mid-shard child was not checkpointed to {last_mid}: {item:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let owner = item.get("leaseOwner").and_then(|value| value.as_s().ok());
    assert!(
        owner.is_some_and(|owner| owner == "j1" || owner == "j2"),
        "{item:?}"
    );
    let counter = item
        .get("leaseCounter")
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse::<u64>().ok());
    assert!(
        counter.is_some_and(|counter| counter > JAVA_COUNTER + 2),
        "leaseCounter continues the Java fleet's: {item:?}"
    );
    assert!(
        item.get("checkpointSubSequenceNumber")
            .is_some_and(AttributeValue::is_n),
        "{item:?}"
    );
    assert_eq!(
        item.get("parentShardId"),
        Some(&string_set(&[shard1])),
        "{item:?}"
    );
    assert_eq!(
        item.get(UNKNOWN_TEXT.0),
        Some(&text(UNKNOWN_TEXT.1)),
        "{item:?}"
    );
    assert_eq!(
        item.get(UNKNOWN_NUMBER.0),
        Some(&number(UNKNOWN_NUMBER.1)),
        "{item:?}"
    );
    drop(fleet);
    drop(server);
}
