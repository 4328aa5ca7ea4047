//! Helpers shared by the engine test suites.
#![allow(dead_code)]

use broker::engine::{
    Broker, BrokerConfig, CreateStreamInput, GetRecordsInput, GetShardIteratorInput,
    PutRecordInput, PutRecordOutput, StreamRef,
};
use kcl_core::clock::ManualClock;
use kcl_core::kinesis::{
    ChildShard, EpochMillis, KinesisError, KinesisErrorKind, Record, ShardId, StartingPosition,
};
use std::sync::Arc;

/// 2026-11-25T20:00:15Z.
pub(crate) const START: EpochMillis = EpochMillis(1_795_636_815_000);

/// A config on a manual clock, with throughput limits off unless a test turns them on.
pub(crate) fn manual_config() -> (Arc<ManualClock>, BrokerConfig) {
    let clock = Arc::new(ManualClock::new(START));
    let config = BrokerConfig::unlimited().with_clock(clock.clone());
    (clock, config)
}

pub(crate) fn manual_broker() -> (Arc<ManualClock>, Broker) {
    let (clock, config) = manual_config();
    (clock, Broker::new(config))
}

pub(crate) async fn create(broker: &Broker, name: &str, shards: u32) {
    broker
        .create_stream(CreateStreamInput {
            stream_name: name.into(),
            shard_count: Some(shards),
            ..Default::default()
        })
        .await
        .expect("create stream");
}

pub(crate) fn put_input(name: &str, key: &str, data: &str) -> PutRecordInput {
    PutRecordInput {
        stream: StreamRef::name(name),
        data: data.to_owned().into(),
        partition_key: key.into(),
        explicit_hash_key: None,
        sequence_number_for_ordering: None,
    }
}

pub(crate) async fn put(broker: &Broker, name: &str, key: &str, data: &str) -> PutRecordOutput {
    broker
        .put_record(put_input(name, key, data))
        .await
        .expect("put record")
}

pub(crate) async fn iterator(
    broker: &Broker,
    name: &str,
    shard: &ShardId,
    position: StartingPosition,
) -> String {
    broker
        .get_shard_iterator(GetShardIteratorInput {
            stream: StreamRef::name(name),
            shard_id: shard.clone(),
            position,
        })
        .await
        .expect("shard iterator")
        .shard_iterator
}

pub(crate) fn get(iterator: &str, limit: Option<u32>) -> GetRecordsInput {
    GetRecordsInput {
        shard_iterator: iterator.to_owned(),
        limit,
        stream_arn: None,
    }
}

/// Reads a shard from `iterator` until it is caught up (open shard) or ended (closed shard).
/// Returns the records and the child shards reported at the end (empty if still open).
pub(crate) async fn drain(broker: &Broker, mut iterator: String) -> (Vec<Record>, Vec<ChildShard>) {
    let mut records = Vec::new();
    loop {
        let page = broker
            .get_records(get(&iterator, None))
            .await
            .expect("get records");
        let empty = page.records.is_empty();
        records.extend(page.records);
        match page.next_shard_iterator {
            None => return (records, page.child_shards),
            Some(next) if empty && page.millis_behind_latest == 0 => {
                let _ = next;
                return (records, Vec::new());
            }
            Some(next) => iterator = next,
        }
    }
}

pub(crate) fn data_of(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|record| String::from_utf8_lossy(&record.data).into_owned())
        .collect()
}

#[track_caller]
pub(crate) fn assert_kind<T: std::fmt::Debug>(
    outcome: Result<T, KinesisError>,
    kind: KinesisErrorKind,
) -> KinesisError {
    let error = outcome.expect_err("the call must fail");
    assert_eq!(error.kind, kind, "unexpected error: {error}");
    error
}
