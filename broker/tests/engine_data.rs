//! Data plane of the in-process engine: puts, every iterator type, GetRecords paging and
//! caps, validation and throughput limits with Kinesis's error types, iterator integrity and
//! expiry, retention with a moved clock, and resharding chains.

mod engine_support;

use broker::engine::{
    Broker, BrokerConfig, GetShardIteratorInput, ListShardsInput, MergeShardsInput,
    PutRecordsInput, PutRecordsRequestEntry, RetentionPeriodInput, SplitShardInput, StreamRef,
    ThroughputLimits, UpdateShardCountInput,
};
use bytes::Bytes;
use engine_support::*;
use kcl_core::kinesis::{
    HashKeyRange, KinesisErrorKind, SequenceNumber, ShardFilter, ShardId, StartingPosition,
    partition_key_hash,
};
use std::collections::HashMap;
use std::time::Duration;

fn shard(index: u64) -> ShardId {
    ShardId::from_index(index)
}

fn entry(key: &str, data: &str) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry {
        data: data.to_owned().into(),
        partition_key: key.into(),
        explicit_hash_key: None,
    }
}

fn put_records(name: &str, records: Vec<PutRecordsRequestEntry>) -> PutRecordsInput {
    PutRecordsInput {
        stream: StreamRef::name(name),
        records,
    }
}

#[tokio::test]
async fn every_iterator_type_starts_where_kinesis_does() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let a = put(&broker, "s", "k", "a").await;
    clock.advance(Duration::from_secs(1));
    let b = put(&broker, "s", "k", "b").await;
    clock.advance(Duration::from_secs(1));
    let c_time = clock_wall(&clock);
    let c = put(&broker, "s", "k", "c").await;
    assert!(a.sequence_number < b.sequence_number && b.sequence_number < c.sequence_number);
    assert_eq!(a.sequence_number.to_string().len(), 56);

    let latest = iterator(&broker, "s", &shard(0), StartingPosition::Latest).await;
    let d = put(&broker, "s", "k", "d").await;

    let cases = [
        (StartingPosition::TrimHorizon, vec!["a", "b", "c", "d"]),
        (
            StartingPosition::AtSequenceNumber(b.sequence_number),
            vec!["b", "c", "d"],
        ),
        (
            StartingPosition::AfterSequenceNumber(b.sequence_number),
            vec!["c", "d"],
        ),
        (StartingPosition::AtTimestamp(c_time), vec!["c", "d"]),
        (
            StartingPosition::AfterSequenceNumber(d.sequence_number),
            vec![],
        ),
    ];
    for (position, expected) in cases {
        let it = iterator(&broker, "s", &shard(0), position).await;
        let (records, children) = drain(&broker, it).await;
        assert_eq!(data_of(&records), expected, "{position:?}");
        assert!(children.is_empty());
    }
    let (records, _) = drain(&broker, latest).await;
    assert_eq!(data_of(&records), vec!["d"]);
    assert_eq!(records[0].sequence_number, d.sequence_number);
    assert_eq!(&*records[0].partition_key, "k");
}

fn clock_wall(clock: &kcl_core::clock::ManualClock) -> kcl_core::kinesis::EpochMillis {
    use kcl_core::clock::Clock;
    clock.wall()
}

#[tokio::test]
async fn records_route_by_md5_or_explicit_hash_key() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 4).await;
    let ranges = HashKeyRange::split_evenly(4);
    for key in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        let output = put(&broker, "s", key, key).await;
        let hash = partition_key_hash(key);
        let expected = ranges
            .iter()
            .position(|range| range.contains(hash))
            .expect("covered");
        assert_eq!(output.shard_id, shard(expected as u64), "{key}");
    }
    let mut input = put_input("s", "alpha", "explicit");
    input.explicit_hash_key = Some(ranges[3].starting_hash_key.to_string());
    let output = broker.put_record(input).await.expect("put");
    assert_eq!(output.shard_id, shard(3));
    let it = iterator(
        &broker,
        "s",
        &shard(3),
        StartingPosition::AtSequenceNumber(output.sequence_number),
    )
    .await;
    let (records, _) = drain(&broker, it).await;
    assert_eq!(
        records[0].explicit_hash_key,
        Some(ranges[3].starting_hash_key)
    );
}

#[tokio::test]
async fn put_records_answers_per_record_in_request_order() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 3).await;
    let records: Vec<_> = (0..500)
        .map(|i| entry(&format!("key-{}", i % 37), &format!("r{i}")))
        .collect();
    let output = broker
        .put_records(put_records("s", records))
        .await
        .expect("put");
    assert_eq!(output.failed_record_count, 0);
    assert_eq!(output.records.len(), 500);
    let mut by_shard: HashMap<ShardId, Vec<(SequenceNumber, String)>> = HashMap::new();
    for (i, result) in output.records.iter().enumerate() {
        let shard_id = result.shard_id.clone().expect("accepted");
        by_shard
            .entry(shard_id)
            .or_default()
            .push((result.sequence_number.expect("accepted"), format!("r{i}")));
    }
    for (shard_id, expected) in by_shard {
        let it = iterator(&broker, "s", &shard_id, StartingPosition::TrimHorizon).await;
        let (records, _) = drain(&broker, it).await;
        let got: Vec<_> = records
            .iter()
            .map(|record| {
                (
                    record.sequence_number,
                    String::from_utf8_lossy(&record.data).into_owned(),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn invalid_puts_fail_with_kinesis_types_and_wording() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;

    let error = assert_kind(
        broker.put_record(put_input("s", "", "x")).await,
        KinesisErrorKind::Validation,
    );
    assert_eq!(
        error.message,
        "1 validation error detected: Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let long_key = "k".repeat(257);
    assert_kind(
        broker.put_record(put_input("s", &long_key, "x")).await,
        KinesisErrorKind::Validation,
    );
    broker
        .put_record(put_input("s", &"k".repeat(256), "x"))
        .await
        .expect("256 chars is fine");

    let big = PutRecordsRequestEntry {
        data: Bytes::from(vec![0u8; 1_048_576]),
        partition_key: "k".into(),
        explicit_hash_key: None,
    };
    let error = assert_kind(
        broker.put_records(put_records("s", vec![big])).await,
        KinesisErrorKind::Validation,
    );
    assert_eq!(
        error.message,
        "1 validation error detected: Value at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576"
    );
    let fits = PutRecordsRequestEntry {
        data: Bytes::from(vec![0u8; 1_048_575]),
        partition_key: "k".into(),
        explicit_hash_key: None,
    };
    broker
        .put_records(put_records("s", vec![fits.clone()]))
        .await
        .expect("exactly 1 MiB");
    let error = assert_kind(
        broker.put_records(put_records("s", vec![fits; 6])).await,
        KinesisErrorKind::InvalidArgument,
    );
    assert_eq!(error.message, "Records size exceeds 5 MB limit");

    let too_many: Vec<_> = (0..501).map(|i| entry(&i.to_string(), "x")).collect();
    let error = assert_kind(
        broker.put_records(put_records("s", too_many)).await,
        KinesisErrorKind::Validation,
    );
    assert!(error.message.contains("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"));
    assert_kind(
        broker.put_records(put_records("s", vec![])).await,
        KinesisErrorKind::Validation,
    );

    let mut input = put_input("s", "k", "x");
    input.explicit_hash_key = Some("340282366920938463463374607431768211456".into());
    let error = assert_kind(
        broker.put_record(input).await,
        KinesisErrorKind::InvalidArgument,
    );
    assert_eq!(
        error.message,
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456"
    );
    let mut input = put_input("s", "k", "x");
    input.explicit_hash_key = Some("12x".into());
    assert_kind(broker.put_record(input).await, KinesisErrorKind::Validation);
    let mut input = put_input("s", "k", "x");
    input.sequence_number_for_ordering = Some("007".into());
    assert_kind(broker.put_record(input).await, KinesisErrorKind::Validation);

    let error = assert_kind(
        broker.put_record(put_input("nope", "k", "x")).await,
        KinesisErrorKind::ResourceNotFound,
    );
    assert_eq!(
        error.message,
        "Stream nope under account 000000000000 not found."
    );
    assert_kind(
        broker.put_record(put_input("bad name", "k", "x")).await,
        KinesisErrorKind::Validation,
    );
}

#[tokio::test]
async fn get_records_honours_limit_and_the_10_mib_cap() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    for i in 0..12 {
        let input = put_records(
            "s",
            vec![PutRecordsRequestEntry {
                data: Bytes::from(vec![i as u8; 1_000_000]),
                partition_key: "k".into(),
                explicit_hash_key: None,
            }],
        );
        broker.put_records(input).await.expect("put");
    }
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    for bad in [0, 10_001] {
        assert_kind(
            broker.get_records(get(&it, Some(bad))).await,
            KinesisErrorKind::Validation,
        );
    }
    let two = broker.get_records(get(&it, Some(2))).await.expect("get");
    assert_eq!(two.records.len(), 2);
    assert!(two.millis_behind_latest == 0 || two.next_shard_iterator.is_some());
    let capped = broker.get_records(get(&it, None)).await.expect("get");
    assert_eq!(
        capped.records.len(),
        10,
        "10 x 1 MB fits 10 MiB, the 11th would not"
    );
    let rest = broker
        .get_records(get(
            capped.next_shard_iterator.as_deref().expect("open"),
            None,
        ))
        .await
        .expect("get");
    assert_eq!(rest.records.len(), 2);
    assert_eq!(rest.records[1].data[0], 11);
}

#[tokio::test]
async fn millis_behind_latest_counts_from_the_next_unread_record() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    put(&broker, "s", "k", "a").await;
    put(&broker, "s", "k", "b").await;
    clock.advance(Duration::from_secs(7));
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    let first = broker.get_records(get(&it, Some(1))).await.expect("get");
    assert_eq!(first.millis_behind_latest, 7_000);
    let second = broker
        .get_records(get(
            first.next_shard_iterator.as_deref().expect("open"),
            Some(1),
        ))
        .await
        .expect("get");
    assert_eq!(second.millis_behind_latest, 0);
}

#[tokio::test]
async fn forged_and_expired_iterators_are_rejected() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    put(&broker, "s", "k", "a").await;
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    assert!(it.len() <= 512);

    let mut bytes = it.clone().into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");
    for forged in [tampered.as_str(), "garbage", "", &it[..it.len() - 4]] {
        let error = assert_kind(
            broker.get_records(get(forged, None)).await,
            KinesisErrorKind::InvalidArgument,
        );
        assert_eq!(error.message, "Invalid ShardIterator.");
    }
    let (_, other) = manual_broker();
    create(&other, "s", 1).await;
    assert_kind(
        other.get_records(get(&it, None)).await,
        KinesisErrorKind::InvalidArgument,
    );

    clock.advance(Duration::from_secs(299));
    broker
        .get_records(get(&it, None))
        .await
        .expect("still valid");
    clock.advance(Duration::from_secs(2));
    let error = assert_kind(
        broker.get_records(get(&it, None)).await,
        KinesisErrorKind::ExpiredIterator,
    );
    assert_eq!(
        error.message,
        "Iterator expired. The iterator was created at time Wed Nov 25 20:00:15 UTC 2026 while right now it is Wed Nov 25 20:05:16 UTC 2026 which is further in the future than the tolerated delay of 300000 milliseconds."
    );
}

#[tokio::test]
async fn iterator_requests_are_checked() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 2).await;
    let put0 = put(&broker, "s", "k", "a").await;
    let other_shard = if put0.shard_id == shard(0) {
        shard(1)
    } else {
        shard(0)
    };
    let unknown = broker
        .get_shard_iterator(GetShardIteratorInput {
            stream: StreamRef::name("s"),
            shard_id: shard(9),
            position: StartingPosition::TrimHorizon,
        })
        .await;
    let error = assert_kind(unknown, KinesisErrorKind::ResourceNotFound);
    assert_eq!(
        error.message,
        "Shard shardId-000000000009 in stream s under account 000000000000 does not exist"
    );
    let far_future = SequenceNumber::from_parts(1 << 100, 0);
    for position in [
        StartingPosition::AtSequenceNumber(far_future),
        StartingPosition::AtSequenceNumber(SequenceNumber::from_u128(1)),
    ] {
        let outcome = broker
            .get_shard_iterator(GetShardIteratorInput {
                stream: StreamRef::name("s"),
                shard_id: other_shard.clone(),
                position,
            })
            .await;
        assert_kind(outcome, KinesisErrorKind::InvalidArgument);
    }
}

#[tokio::test]
async fn write_limits_fail_single_records_inside_put_records() {
    let (clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        throughput: ThroughputLimits::default(),
        ..config
    });
    create(&broker, "s", 1).await;
    let batch = || put_records("s", (0..500).map(|i| entry(&i.to_string(), "x")).collect());
    assert_eq!(
        broker
            .put_records(batch())
            .await
            .expect("put")
            .failed_record_count,
        0
    );
    assert_eq!(
        broker
            .put_records(batch())
            .await
            .expect("put")
            .failed_record_count,
        0
    );
    let third = broker.put_records(batch()).await.expect("put");
    assert_eq!(third.failed_record_count, 500);
    let failure = &third.records[0];
    assert_eq!(
        failure.error_code.as_deref(),
        Some("ProvisionedThroughputExceededException")
    );
    assert_eq!(
        failure.error_message.as_deref(),
        Some(
            "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000."
        )
    );
    assert!(failure.sequence_number.is_none() && failure.shard_id.is_none());
    assert_kind(
        broker.put_record(put_input("s", "k", "x")).await,
        KinesisErrorKind::ProvisionedThroughputExceeded,
    );
    clock.advance(Duration::from_millis(300));
    let partial = broker.put_records(batch()).await.expect("put");
    assert_eq!(
        partial.failed_record_count, 200,
        "300 ms refill 300 records"
    );
    assert!(partial.records[..300].iter().all(|r| r.is_success()));
    assert!(partial.records[300..].iter().all(|r| !r.is_success()));

    // Bytes: 1 MiB per second per shard.
    create(&broker, "bytes", 1).await;
    let record = || {
        put_records(
            "bytes",
            vec![PutRecordsRequestEntry {
                data: Bytes::from(vec![1u8; 600_000]),
                partition_key: "k".into(),
                explicit_hash_key: None,
            }],
        )
    };
    assert_eq!(
        broker
            .put_records(record())
            .await
            .expect("put")
            .failed_record_count,
        0
    );
    assert_eq!(
        broker
            .put_records(record())
            .await
            .expect("put")
            .failed_record_count,
        1
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        broker
            .put_records(record())
            .await
            .expect("put")
            .failed_record_count,
        0
    );
}

#[tokio::test]
async fn read_limits_throttle_calls_and_bytes() {
    let (clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        throughput: ThroughputLimits::default(),
        ..config
    });
    create(&broker, "s", 1).await;
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    for _ in 0..5 {
        broker
            .get_records(get(&it, None))
            .await
            .expect("within 5 calls/s");
    }
    let error = assert_kind(
        broker.get_records(get(&it, None)).await,
        KinesisErrorKind::ProvisionedThroughputExceeded,
    );
    assert!(
        error
            .message
            .starts_with("Rate exceeded for shard shardId-000000000000 in stream s")
    );
    clock.advance(Duration::from_millis(200));
    broker
        .get_records(get(&it, None))
        .await
        .expect("one call refilled");

    // 3 MiB written over 3 seconds, then read at once: the read goes 1 MiB into debt.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(1));
        let input = put_records(
            "s",
            vec![PutRecordsRequestEntry {
                data: Bytes::from(vec![1u8; 1_048_000]),
                partition_key: "k".into(),
                explicit_hash_key: None,
            }],
        );
        assert_eq!(
            broker
                .put_records(input)
                .await
                .expect("put")
                .failed_record_count,
            0
        );
    }
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    let page = broker.get_records(get(&it, None)).await.expect("get");
    assert_eq!(page.records.len(), 3);
    clock.advance(Duration::from_millis(250));
    assert_kind(
        broker.get_records(get(&it, None)).await,
        KinesisErrorKind::ProvisionedThroughputExceeded,
    );
    clock.advance(Duration::from_secs(1));
    broker
        .get_records(get(&it, None))
        .await
        .expect("debt repaid");
}

#[tokio::test]
async fn retention_trims_by_the_clock_and_trim_horizon_moves() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    put(&broker, "s", "k", "old").await;
    clock.advance(Duration::from_secs(23 * 3600));
    put(&broker, "s", "k", "new").await;
    let before = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    clock.advance(Duration::from_secs(3600 + 1));
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    let (records, _) = drain(&broker, it).await;
    assert_eq!(data_of(&records), vec!["new"]);
    let _ = before;
    let report = broker.enforce_retention().await;
    assert_eq!(report.records_trimmed, 1);
    clock.advance(Duration::from_secs(24 * 3600));
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    let (records, _) = drain(&broker, it).await;
    assert!(records.is_empty());

    // Longer retention keeps records longer.
    broker
        .increase_stream_retention_period(RetentionPeriodInput {
            stream: StreamRef::name("s"),
            retention_period_hours: 48,
        })
        .await
        .expect("increase");
    put(&broker, "s", "k", "kept").await;
    clock.advance(Duration::from_secs(30 * 3600));
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    assert_eq!(data_of(&drain(&broker, it).await.0), vec!["kept"]);
}

#[tokio::test]
async fn closed_parents_vanish_once_their_records_expire() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    put(&broker, "s", "k", "in-parent").await;
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(0),
            new_starting_hash_key: (1u128 << 127).to_string(),
        })
        .await
        .expect("split");
    let list = |filter: Option<ShardFilter>| {
        let broker = broker.clone();
        async move {
            broker
                .list_shards(ListShardsInput {
                    stream: Some(StreamRef::name("s")),
                    shard_filter: filter,
                    ..Default::default()
                })
                .await
                .expect("list")
                .shards
                .into_iter()
                .map(|shard| shard.shard_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None).await, vec![shard(0), shard(1), shard(2)]);
    clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(list(None).await, vec![shard(1), shard(2)]);
    let gone = broker
        .get_shard_iterator(GetShardIteratorInput {
            stream: StreamRef::name("s"),
            shard_id: shard(0),
            position: StartingPosition::TrimHorizon,
        })
        .await;
    assert_kind(gone, KinesisErrorKind::ResourceNotFound);
    let report = broker.enforce_retention().await;
    assert_eq!(report.shards_dropped, 1);
    assert_eq!(report.records_trimmed, 1);
}

async fn split(broker: &Broker, id: u64, at: u128) {
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(id),
            new_starting_hash_key: at.to_string(),
        })
        .await
        .expect("split");
}

async fn merge(broker: &Broker, a: u64, b: u64) {
    broker
        .merge_shards(MergeShardsInput {
            stream: StreamRef::name("s"),
            shard_to_merge: shard(a),
            adjacent_shard_to_merge: shard(b),
        })
        .await
        .expect("merge");
}

async fn put_round(broker: &Broker, round: usize, acked: &mut HashMap<String, Vec<String>>) {
    let records: Vec<_> = (0..40)
        .map(|k| entry(&format!("key-{k}"), &format!("{k}:{round}")))
        .collect();
    let output = broker
        .put_records(put_records("s", records))
        .await
        .expect("put");
    assert_eq!(output.failed_record_count, 0);
    for k in 0..40 {
        acked
            .entry(format!("key-{k}"))
            .or_default()
            .push(format!("{k}:{round}"));
    }
}

#[tokio::test]
async fn split_merge_split_chains_keep_lineage_and_order() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let mut acked = HashMap::new();
    put_round(&broker, 0, &mut acked).await;
    split(&broker, 0, 1u128 << 127).await; // -> 1, 2
    put_round(&broker, 1, &mut acked).await;
    merge(&broker, 2, 1).await; // -> 3 (parents 2 and 1)
    put_round(&broker, 2, &mut acked).await;
    split(&broker, 3, 1u128 << 126).await; // -> 4, 5
    put_round(&broker, 3, &mut acked).await;

    let shards = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            ..Default::default()
        })
        .await
        .expect("list")
        .shards;
    assert_eq!(shards.len(), 6);
    assert_eq!(shards[3].parent_shard_id, Some(shard(2)));
    assert_eq!(shards[3].adjacent_parent_shard_id, Some(shard(1)));
    assert_eq!(shards[4].parent_shard_id, Some(shard(3)));
    assert!(shards[..4].iter().all(|s| s.is_closed()));
    assert!(!shards[4].is_closed() && !shards[5].is_closed());
    for child in &shards[1..] {
        for parent in child.parent_shard_ids() {
            let parent = shards
                .iter()
                .find(|s| &s.shard_id == parent)
                .expect("parent listed");
            let parent_end = parent
                .sequence_number_range
                .ending_sequence_number
                .expect("closed");
            assert!(child.sequence_number_range.starting_sequence_number > parent_end);
        }
    }

    // Walk the lineage from the root: a child is read once all its parents are finished.
    let mut finished: Vec<ShardId> = Vec::new();
    let mut seen_per_key: HashMap<String, Vec<String>> = HashMap::new();
    let mut pending = vec![shard(0)];
    let mut max_parent_seq: HashMap<ShardId, SequenceNumber> = HashMap::new();
    while let Some(next) = pending.pop() {
        let it = iterator(&broker, "s", &next, StartingPosition::TrimHorizon).await;
        let (records, children) = drain(&broker, it).await;
        if let Some(bound) = max_parent_seq.get(&next) {
            assert!(records.iter().all(|r| r.sequence_number > *bound));
        }
        for record in &records {
            seen_per_key
                .entry(record.partition_key.to_string())
                .or_default()
                .push(String::from_utf8_lossy(&record.data).into_owned());
        }
        finished.push(next.clone());
        let last = records
            .last()
            .map(|r| r.sequence_number)
            .unwrap_or_default();
        for child in children {
            assert!(child.parent_shards.contains(&next));
            let bound = max_parent_seq.entry(child.shard_id.clone()).or_default();
            *bound = (*bound).max(last);
            let ready = child.parent_shards.iter().all(|p| finished.contains(p));
            if ready && !finished.contains(&child.shard_id) && !pending.contains(&child.shard_id) {
                pending.push(child.shard_id);
            }
        }
    }
    assert_eq!(finished.len(), 6);
    assert_eq!(seen_per_key, acked);
}

#[tokio::test]
async fn resharding_requests_are_checked() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 3).await;
    let error = broker
        .merge_shards(MergeShardsInput {
            stream: StreamRef::name("s"),
            shard_to_merge: shard(0),
            adjacent_shard_to_merge: shard(2),
        })
        .await;
    let error = assert_kind(error, KinesisErrorKind::InvalidArgument);
    assert_eq!(
        error.message,
        "Shards shardId-000000000000 and shardId-000000000002 in stream s under account 000000000000 are not an adjacent pair of shards eligible for merging"
    );
    let ranges = HashKeyRange::split_evenly(3);
    for bad in [ranges[0].starting_hash_key, ranges[0].ending_hash_key + 1] {
        let outcome = broker
            .split_shard(SplitShardInput {
                stream: StreamRef::name("s"),
                shard_to_split: shard(0),
                new_starting_hash_key: bad.to_string(),
            })
            .await;
        assert_kind(outcome, KinesisErrorKind::InvalidArgument);
    }
    let outcome = broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(7),
            new_starting_hash_key: "5".into(),
        })
        .await;
    assert_kind(outcome, KinesisErrorKind::ResourceNotFound);
    split(&broker, 0, 5).await;
    let again = broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(0),
            new_starting_hash_key: "3".into(),
        })
        .await;
    assert_kind(again, KinesisErrorKind::InvalidArgument);
    let bad_key = broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(1),
            new_starting_hash_key: "-3".into(),
        })
        .await;
    assert_kind(bad_key, KinesisErrorKind::Validation);
}

#[tokio::test]
async fn update_shard_count_scales_uniformly_with_exact_lineage() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 4).await;
    let mut acked = HashMap::new();
    put_round(&broker, 0, &mut acked).await;
    for (round, target) in [8u32, 5, 3, 6].into_iter().enumerate() {
        let output = broker
            .update_shard_count(UpdateShardCountInput {
                stream: StreamRef::name("s"),
                target_shard_count: target,
                scaling_type: "UNIFORM_SCALING".into(),
            })
            .await
            .expect("scale");
        assert_eq!(output.target_shard_count, target);
        let open = broker
            .list_shards(ListShardsInput {
                stream: Some(StreamRef::name("s")),
                shard_filter: Some(ShardFilter::AtLatest),
                ..Default::default()
            })
            .await
            .expect("list")
            .shards;
        let mut ranges: Vec<_> = open.iter().map(|s| s.hash_key_range).collect();
        ranges.sort();
        assert_eq!(ranges, HashKeyRange::split_evenly(target));
        put_round(&broker, round + 1, &mut acked).await;
    }
    // Every record is reachable exactly once, in order per key, through the lineage.
    let all = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            ..Default::default()
        })
        .await
        .expect("list")
        .shards;
    let mut per_key: HashMap<String, Vec<(SequenceNumber, String)>> = HashMap::new();
    for s in &all {
        let it = iterator(&broker, "s", &s.shard_id, StartingPosition::TrimHorizon).await;
        for record in drain(&broker, it).await.0 {
            per_key
                .entry(record.partition_key.to_string())
                .or_default()
                .push((
                    record.sequence_number,
                    String::from_utf8_lossy(&record.data).into_owned(),
                ));
        }
    }
    for (key, mut records) in per_key {
        records.sort();
        let data: Vec<_> = records.into_iter().map(|(_, d)| d).collect();
        assert_eq!(Some(&data), acked.get(&key));
    }

    let too_far = broker
        .update_shard_count(UpdateShardCountInput {
            stream: StreamRef::name("s"),
            target_shard_count: 13,
            scaling_type: "UNIFORM_SCALING".into(),
        })
        .await;
    let error = assert_kind(too_far, KinesisErrorKind::LimitExceeded);
    assert!(error.message.contains("cannot scale up over double"));
    let too_low = broker
        .update_shard_count(UpdateShardCountInput {
            stream: StreamRef::name("s"),
            target_shard_count: 2,
            scaling_type: "UNIFORM_SCALING".into(),
        })
        .await;
    assert_kind(too_low, KinesisErrorKind::LimitExceeded);
    let wrong_type = broker
        .update_shard_count(UpdateShardCountInput {
            stream: StreamRef::name("s"),
            target_shard_count: 6,
            scaling_type: "CUSTOM".into(),
        })
        .await;
    assert_kind(wrong_type, KinesisErrorKind::Validation);
    for _ in 4..10 {
        broker
            .update_shard_count(UpdateShardCountInput {
                stream: StreamRef::name("s"),
                target_shard_count: 6,
                scaling_type: "UNIFORM_SCALING".into(),
            })
            .await
            .expect("within 10 per day");
    }
    let eleventh = broker
        .update_shard_count(UpdateShardCountInput {
            stream: StreamRef::name("s"),
            target_shard_count: 6,
            scaling_type: "UNIFORM_SCALING".into(),
        })
        .await;
    assert_kind(eleventh, KinesisErrorKind::LimitExceeded);
}

#[tokio::test]
async fn concurrent_producers_and_consumers_see_every_record() {
    let broker = Broker::new(BrokerConfig::unlimited());
    create(&broker, "s", 4).await;
    let mut producers = Vec::new();
    for producer in 0..4 {
        let broker = broker.clone();
        producers.push(tokio::spawn(async move {
            for round in 0..20 {
                let records = (0..100)
                    .map(|i| {
                        entry(
                            &format!("p{producer}-{}", i % 10),
                            &format!("{producer}-{round}-{i}"),
                        )
                    })
                    .collect();
                let output = broker
                    .put_records(put_records("s", records))
                    .await
                    .expect("put");
                assert_eq!(output.failed_record_count, 0);
            }
        }));
    }
    for producer in producers {
        producer.await.expect("producer");
    }
    let mut total = 0;
    for index in 0..4 {
        let it = iterator(&broker, "s", &shard(index), StartingPosition::TrimHorizon).await;
        let (records, _) = drain(&broker, it).await;
        assert!(
            records
                .windows(2)
                .all(|w| w[0].sequence_number < w[1].sequence_number)
        );
        total += records.len();
    }
    assert_eq!(total, 4 * 20 * 100);
}

#[tokio::test]
async fn after_the_number_just_below_an_empty_shards_start_reads_from_its_start() {
    // A fan-out heartbeat on a still-empty shard carries "the number just below the shard's
    // start" as its continuation; resubscribing or iterating after it must be accepted.
    let (_clock, broker) = manual_broker();
    create(&broker, "empty", 1).await;
    let just_below_start: SequenceNumber =
        "49499999999999999999999999999999999999999999999999999999"
            .parse()
            .expect("sequence number");
    let after = iterator(
        &broker,
        "empty",
        &shard(0),
        StartingPosition::AfterSequenceNumber(just_below_start),
    )
    .await;
    put(&broker, "empty", "k", "first").await;
    put(&broker, "empty", "k", "second").await;
    let records = broker
        .get_records(get(&after, None))
        .await
        .expect("get records")
        .records;
    assert_eq!(data_of(&records), ["first", "second"]);

    let far_below: SequenceNumber = "49499999999999999999999999999999999999999999999999999998"
        .parse()
        .expect("sequence number");
    let refused = broker
        .get_shard_iterator(GetShardIteratorInput {
            stream: StreamRef::name("empty"),
            shard_id: shard(0),
            position: StartingPosition::AfterSequenceNumber(far_below),
        })
        .await;
    assert_kind(refused, KinesisErrorKind::InvalidArgument);
}
