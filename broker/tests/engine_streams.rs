//! Control plane of the in-process engine: streams, pagination, shard filters, limits,
//! statuses with create/delete delays (and how reads answer meanwhile), retention bounds, modes,
//! tags, and consumer ARNs across deregistration.

mod engine_support;

use broker::engine::{
    AddTagsToStreamInput, Broker, BrokerConfig, ConsumerRef, CreateStreamInput, DeleteStreamInput,
    DescribeStreamInput, GetShardIteratorInput, ListShardsInput, ListStreamsInput,
    ListTagsForStreamInput, RegisterStreamConsumerInput, RemoveTagsFromStreamInput,
    RetentionPeriodInput, SplitShardInput, StreamMode, StreamRef, StreamStatus,
    SubscribeToShardInput, TagResourceInput, UntagResourceInput, UpdateShardCountInput,
    UpdateStreamModeInput,
};
use engine_support::*;
use kcl_core::kinesis::{EpochMillis, KinesisErrorKind, ShardFilter, ShardId, StartingPosition};
use std::collections::BTreeMap;
use std::time::Duration;

fn shard(index: u64) -> ShardId {
    ShardId::from_index(index)
}

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";

#[tokio::test]
async fn streams_are_created_described_and_deleted() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 3).await;
    let again = broker
        .create_stream(CreateStreamInput {
            stream_name: "s".into(),
            shard_count: Some(1),
            ..Default::default()
        })
        .await;
    let error = assert_kind(again, KinesisErrorKind::ResourceInUse);
    assert_eq!(
        error.message,
        "Stream s under account 000000000000 already exists."
    );
    for bad in ["", "has space", &"x".repeat(129)] {
        let outcome = broker
            .create_stream(CreateStreamInput {
                stream_name: bad.into(),
                shard_count: Some(1),
                ..Default::default()
            })
            .await;
        assert_kind(outcome, KinesisErrorKind::Validation);
    }
    let zero = broker
        .create_stream(CreateStreamInput {
            stream_name: "zero".into(),
            shard_count: Some(0),
            ..Default::default()
        })
        .await;
    assert_kind(zero, KinesisErrorKind::Validation);

    let by_arn = broker
        .describe_stream(DescribeStreamInput {
            stream: StreamRef::arn(ARN),
            limit: None,
            exclusive_start_shard_id: None,
        })
        .await
        .expect("describe");
    assert_eq!(by_arn.stream_name, "s");
    assert_eq!(by_arn.stream_arn, ARN);
    assert_eq!(by_arn.stream_status, StreamStatus::Active);
    assert_eq!(by_arn.shards.len(), 3);
    assert_eq!(by_arn.retention_period_hours, 24);
    assert_eq!(by_arn.stream_creation_timestamp, START);
    assert_eq!(by_arn.shards[2].hash_key_range.ending_hash_key, u128::MAX);

    let page = broker
        .describe_stream(DescribeStreamInput {
            stream: StreamRef::name("s"),
            limit: Some(2),
            exclusive_start_shard_id: None,
        })
        .await
        .expect("describe");
    assert_eq!(page.shards.len(), 2);
    assert!(page.has_more_shards);
    let rest = broker
        .describe_stream(DescribeStreamInput {
            stream: StreamRef::name("s"),
            limit: Some(2),
            exclusive_start_shard_id: Some(shard(1)),
        })
        .await
        .expect("describe");
    assert_eq!(rest.shards.len(), 1);
    assert!(!rest.has_more_shards);

    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("summary");
    assert_eq!(summary.open_shard_count, 3);
    assert_eq!(summary.consumer_count, 0);
    assert_eq!(summary.stream_mode, StreamMode::Provisioned);
    let shared: kcl_core::kinesis::StreamSummary = summary.into();
    assert_eq!(shared.stream_status, "ACTIVE");

    let elsewhere = broker
        .describe_stream_summary(StreamRef::arn(
            "arn:aws:kinesis:eu-west-1:111111111111:stream/s",
        ))
        .await;
    assert_kind(elsewhere, KinesisErrorKind::ResourceNotFound);
    assert_kind(
        broker
            .describe_stream_summary(StreamRef::arn("arn:nope"))
            .await,
        KinesisErrorKind::Validation,
    );
    assert!(StreamRef::from_parts(None, None).is_err());
    assert!(StreamRef::from_parts(Some("s".into()), Some(ARN.into())).is_ok());
    assert!(StreamRef::from_parts(Some("t".into()), Some(ARN.into())).is_err());

    put(&broker, "s", "k", "old").await;
    broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: false,
        })
        .await
        .expect("delete");
    let error = assert_kind(
        broker.describe_stream_summary(StreamRef::name("s")).await,
        KinesisErrorKind::ResourceNotFound,
    );
    assert_eq!(
        error.message,
        "Stream s under account 000000000000 not found."
    );
    create(&broker, "s", 1).await;
    let it = iterator(&broker, "s", &shard(0), StartingPosition::TrimHorizon).await;
    assert!(
        drain(&broker, it).await.0.is_empty(),
        "a recreated stream starts empty"
    );
}

#[tokio::test]
async fn delete_needs_enforce_with_consumers() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    broker
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.into(),
            consumer_name: "c".into(),
        })
        .await
        .expect("register");
    let refused = broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: false,
        })
        .await;
    assert_kind(refused, KinesisErrorKind::ResourceInUse);
    broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: true,
        })
        .await
        .expect("enforced delete");
}

#[tokio::test]
async fn list_streams_pages_by_name_and_token() {
    let (_clock, broker) = manual_broker();
    for name in ["e", "a", "c", "b", "d"] {
        create(&broker, name, 1).await;
    }
    let first = broker
        .list_streams(ListStreamsInput {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(first.stream_names, vec!["a", "b"]);
    assert!(first.has_more_streams);
    assert_eq!(
        first.stream_summaries[0].stream_arn,
        "arn:aws:kinesis:us-east-1:000000000000:stream/a"
    );
    let second = broker
        .list_streams(ListStreamsInput {
            limit: Some(2),
            next_token: first.next_token.clone(),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(second.stream_names, vec!["c", "d"]);
    let by_name = broker
        .list_streams(ListStreamsInput {
            limit: Some(10),
            exclusive_start_stream_name: Some("c".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(by_name.stream_names, vec!["d", "e"]);
    assert!(!by_name.has_more_streams && by_name.next_token.is_none());
    let bad = broker
        .list_streams(ListStreamsInput {
            next_token: Some("bogus".into()),
            ..Default::default()
        })
        .await;
    assert_kind(bad, KinesisErrorKind::InvalidArgument);
    let zero = broker
        .list_streams(ListStreamsInput {
            limit: Some(0),
            ..Default::default()
        })
        .await;
    assert_kind(zero, KinesisErrorKind::Validation);
}

#[tokio::test]
async fn list_shards_pages_with_tokens_that_expire() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 5).await;
    let first = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            max_results: Some(2),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(first.shards.len(), 2);
    let token = first.next_token.clone().expect("more");
    let together = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            next_token: Some(token.clone()),
            ..Default::default()
        })
        .await;
    let error = assert_kind(together, KinesisErrorKind::InvalidArgument);
    assert_eq!(
        error.message,
        "NextToken and StreamName cannot be provided together."
    );
    let mut ids = first
        .shards
        .iter()
        .map(|s| s.shard_id.clone())
        .collect::<Vec<_>>();
    let mut next = Some(token.clone());
    while let Some(token) = next {
        let page = broker
            .list_shards(ListShardsInput {
                next_token: Some(token),
                max_results: Some(2),
                ..Default::default()
            })
            .await
            .expect("page");
        ids.extend(page.shards.into_iter().map(|s| s.shard_id));
        next = page.next_token;
    }
    assert_eq!(ids, (0..5).map(shard).collect::<Vec<_>>());

    let after = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            exclusive_start_shard_id: Some(shard(2)),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(after.shards.len(), 2);

    let mut tampered = token.clone().into_bytes();
    tampered[4] = if tampered[4] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let forged = broker
        .list_shards(ListShardsInput {
            next_token: Some(tampered),
            ..Default::default()
        })
        .await;
    assert_kind(forged, KinesisErrorKind::InvalidArgument);
    clock.advance(Duration::from_secs(301));
    let expired = broker
        .list_shards(ListShardsInput {
            next_token: Some(token),
            ..Default::default()
        })
        .await;
    assert_kind(expired, KinesisErrorKind::ExpiredNextToken);
    let neither = broker.list_shards(ListShardsInput::default()).await;
    assert_kind(neither, KinesisErrorKind::InvalidArgument);
    let too_many = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            max_results: Some(10_001),
            ..Default::default()
        })
        .await;
    assert_kind(too_many, KinesisErrorKind::Validation);
}

#[tokio::test]
async fn shard_filters_select_by_time_and_position() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    clock.advance(Duration::from_secs(3600));
    let before_split = EpochMillis(START.0 + 1_800_000);
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(0),
            new_starting_hash_key: "1000".into(),
        })
        .await
        .expect("split");
    clock.advance(Duration::from_secs(3600));
    let after_split = EpochMillis(START.0 + 2 * 3_600_000);
    let ids = |filter: ShardFilter| {
        let broker = broker.clone();
        async move {
            broker
                .list_shards(ListShardsInput {
                    stream: Some(StreamRef::name("s")),
                    shard_filter: Some(filter),
                    ..Default::default()
                })
                .await
                .expect("list")
                .shards
                .into_iter()
                .map(|s| s.shard_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(ShardFilter::AtLatest).await, vec![shard(1), shard(2)]);
    assert_eq!(ids(ShardFilter::AtTrimHorizon).await, vec![shard(0)]);
    assert_eq!(
        ids(ShardFilter::FromTrimHorizon).await,
        vec![shard(0), shard(1), shard(2)]
    );
    assert_eq!(
        ids(ShardFilter::AtTimestamp(before_split)).await,
        vec![shard(0)]
    );
    assert_eq!(
        ids(ShardFilter::AtTimestamp(after_split)).await,
        vec![shard(1), shard(2)]
    );
    assert_eq!(
        ids(ShardFilter::FromTimestamp(before_split)).await,
        vec![shard(0), shard(1), shard(2)]
    );
    assert_eq!(
        ids(ShardFilter::FromTimestamp(after_split)).await,
        vec![shard(1), shard(2)]
    );
    assert_eq!(
        ids(ShardFilter::AfterShardId(shard(0))).await,
        vec![shard(1), shard(2)]
    );
    // After a day the parent has expired and the children are open at the trim horizon.
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        ids(ShardFilter::AtTrimHorizon).await,
        vec![shard(1), shard(2)]
    );
}

#[tokio::test]
async fn the_account_shard_limit_is_enforced() {
    let (_clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        shard_limit: 10,
        ..config
    });
    create(&broker, "a", 8).await;
    let over = broker
        .create_stream(CreateStreamInput {
            stream_name: "b".into(),
            shard_count: Some(3),
            ..Default::default()
        })
        .await;
    let error = assert_kind(over, KinesisErrorKind::LimitExceeded);
    assert!(error.message.starts_with(
        "This request would exceed the shard limit for the account 000000000000 in us-east-1. Current shard count for the account: 8. Limit: 10. Number of additional shards that would have resulted from this request: 3."
    ));
    create(&broker, "b", 2).await;
    let split = broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("b"),
            shard_to_split: shard(0),
            new_starting_hash_key: "10".into(),
        })
        .await;
    assert_kind(split, KinesisErrorKind::LimitExceeded);
    let scale = broker
        .update_shard_count(UpdateShardCountInput {
            stream: StreamRef::name("b"),
            target_shard_count: 4,
            scaling_type: "UNIFORM_SCALING".into(),
        })
        .await;
    assert_kind(scale, KinesisErrorKind::LimitExceeded);
    let limits = broker.describe_limits().await.expect("limits");
    assert_eq!((limits.shard_limit, limits.open_shard_count), (10, 10));
    assert_eq!(limits.on_demand_stream_count_limit, 50);
}

#[tokio::test]
async fn create_and_delete_delays_move_status_with_the_clock() {
    let (clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        create_delay: Duration::from_secs(10),
        delete_delay: Duration::from_secs(5),
        ..config
    });
    create(&broker, "s", 1).await;
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("summary");
    assert_eq!(summary.stream_status, StreamStatus::Creating);
    let describe = broker
        .describe_stream(DescribeStreamInput {
            stream: StreamRef::name("s"),
            limit: None,
            exclusive_start_shard_id: None,
        })
        .await
        .expect("describe");
    assert!(describe.shards.is_empty());
    assert_kind(
        broker.put_record(put_input("s", "k", "x")).await,
        KinesisErrorKind::ResourceNotFound,
    );
    let split = broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(0),
            new_starting_hash_key: "10".into(),
        })
        .await;
    let error = assert_kind(split, KinesisErrorKind::ResourceInUse);
    assert_eq!(
        error.message,
        "Stream s under account 000000000000 not ACTIVE, instead in state CREATING"
    );
    clock.advance(Duration::from_secs(10));
    put(&broker, "s", "k", "x").await;
    broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: false,
        })
        .await
        .expect("delete");
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("summary");
    assert_eq!(summary.stream_status, StreamStatus::Deleting);
    assert_kind(
        broker.put_record(put_input("s", "k", "x")).await,
        KinesisErrorKind::ResourceNotFound,
    );
    clock.advance(Duration::from_secs(5));
    assert_kind(
        broker.describe_stream_summary(StreamRef::name("s")).await,
        KinesisErrorKind::ResourceNotFound,
    );
    assert_eq!(
        broker.enforce_retention().await.streams_dropped,
        0,
        "already gone"
    );
}

#[tokio::test]
async fn retention_changes_are_bounded_and_directional() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let change = |hours: u32, increase: bool| {
        let broker = broker.clone();
        async move {
            let input = RetentionPeriodInput {
                stream: StreamRef::name("s"),
                retention_period_hours: hours,
            };
            if increase {
                broker.increase_stream_retention_period(input).await
            } else {
                broker.decrease_stream_retention_period(input).await
            }
        }
    };
    let error = assert_kind(change(20, true).await, KinesisErrorKind::InvalidArgument);
    assert_eq!(
        error.message,
        "Minimum allowed retention period is 24 hours. Requested retention period (20 hours) is too short."
    );
    let error = assert_kind(change(9999, true).await, KinesisErrorKind::InvalidArgument);
    assert_eq!(
        error.message,
        "Maximum allowed retention period is 8760 hours. Requested retention period (9999 hours) is too long."
    );
    change(30, true).await.expect("increase");
    let error = assert_kind(change(25, true).await, KinesisErrorKind::InvalidArgument);
    assert_eq!(
        error.message,
        "Requested retention period (25 hours) for stream s can not be shorter than existing retention period (30 hours). Use DecreaseRetentionPeriod API."
    );
    let error = assert_kind(change(40, false).await, KinesisErrorKind::InvalidArgument);
    assert!(
        error
            .message
            .contains("can not be longer than existing retention period (30 hours)")
    );
    change(24, false).await.expect("decrease");
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("summary");
    assert_eq!(summary.retention_period_hours, 24);
}

#[tokio::test]
async fn on_demand_streams_reject_resharding() {
    let (_clock, broker) = manual_broker();
    broker
        .create_stream(CreateStreamInput {
            stream_name: "s".into(),
            shard_count: None,
            stream_mode: Some(StreamMode::OnDemand),
            ..Default::default()
        })
        .await
        .expect("create");
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("summary");
    assert_eq!(
        (summary.stream_mode, summary.open_shard_count),
        (StreamMode::OnDemand, 4)
    );
    let split = broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(0),
            new_starting_hash_key: "10".into(),
        })
        .await;
    let error = assert_kind(split, KinesisErrorKind::InvalidArgument);
    assert_eq!(
        error.message,
        "Request is invalid. Stream s under account 000000000000 is in On-Demand mode."
    );
    assert_eq!(
        broker
            .describe_limits()
            .await
            .expect("limits")
            .on_demand_stream_count,
        1
    );
    broker
        .update_stream_mode(UpdateStreamModeInput {
            stream_arn: ARN.into(),
            stream_mode: StreamMode::Provisioned,
        })
        .await
        .expect("mode");
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: shard(0),
            new_starting_hash_key: "10".into(),
        })
        .await
        .expect("split once provisioned");
    let provisioned_without_count = broker
        .create_stream(CreateStreamInput {
            stream_name: "t".into(),
            ..Default::default()
        })
        .await;
    assert_kind(provisioned_without_count, KinesisErrorKind::InvalidArgument);
}

#[tokio::test]
async fn tags_are_added_listed_paged_and_removed() {
    let (_clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let tags = |range: std::ops::Range<usize>| -> BTreeMap<String, String> {
        range
            .map(|i| (format!("k{i:02}"), format!("v{i}")))
            .collect()
    };
    let too_many = broker
        .add_tags_to_stream(AddTagsToStreamInput {
            stream: StreamRef::name("s"),
            tags: tags(0..11),
        })
        .await;
    assert_kind(too_many, KinesisErrorKind::Validation);
    for chunk in 0..5 {
        broker
            .add_tags_to_stream(AddTagsToStreamInput {
                stream: StreamRef::name("s"),
                tags: tags(chunk * 10..chunk * 10 + 10),
            })
            .await
            .expect("add");
    }
    let over = broker
        .add_tags_to_stream(AddTagsToStreamInput {
            stream: StreamRef::name("s"),
            tags: tags(50..51),
        })
        .await;
    assert_kind(over, KinesisErrorKind::InvalidArgument);
    let page = broker
        .list_tags_for_stream(ListTagsForStreamInput {
            stream: StreamRef::name("s"),
            exclusive_start_tag_key: Some("k09".into()),
            limit: Some(5),
        })
        .await
        .expect("list");
    assert_eq!(
        page.tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        ["k10", "k11", "k12", "k13", "k14"]
    );
    assert!(page.has_more_tags);
    broker
        .remove_tags_from_stream(RemoveTagsFromStreamInput {
            stream: StreamRef::name("s"),
            tag_keys: (0..49).map(|i| format!("k{i:02}")).collect(),
        })
        .await
        .expect("remove");
    broker
        .tag_resource(TagResourceInput {
            resource_arn: ARN.into(),
            tags: BTreeMap::from([("team".to_owned(), "data".to_owned())]),
        })
        .await
        .expect("tag resource");
    let all = broker.list_tags_for_resource(ARN).await.expect("list");
    assert_eq!(
        all.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        ["k49", "team"]
    );
    broker
        .untag_resource(UntagResourceInput {
            resource_arn: ARN.into(),
            tag_keys: vec!["team".into()],
        })
        .await
        .expect("untag");
    let rest = broker
        .list_tags_for_stream(ListTagsForStreamInput {
            stream: StreamRef::name("s"),
            exclusive_start_tag_key: None,
            limit: None,
        })
        .await
        .expect("list");
    assert_eq!(rest.tags.len(), 1);
    assert!(!rest.has_more_tags);
}

/// Which answer a call gets from a stream in some status.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    InUse,
    NotFound,
}

fn answer_of<T: std::fmt::Debug>(
    outcome: Result<T, kcl_core::kinesis::KinesisError>,
) -> (Answer, String) {
    match outcome {
        Ok(_) => (Answer::Ok, String::new()),
        Err(error) if error.kind == KinesisErrorKind::ResourceInUse => {
            (Answer::InUse, error.message)
        }
        Err(error) if error.kind == KinesisErrorKind::ResourceNotFound => {
            (Answer::NotFound, error.message)
        }
        Err(error) => panic!("unexpected error: {error}"),
    }
}

/// Calls every read-side operation on stream `s` and returns (operation, answer, message).
async fn read_side_answers(broker: &Broker) -> Vec<(&'static str, Answer, String)> {
    let mut answers = Vec::new();
    let (answer, message) = answer_of(
        broker
            .list_shards(ListShardsInput {
                stream: Some(StreamRef::name("s")),
                ..Default::default()
            })
            .await,
    );
    answers.push(("ListShards by name", answer, message));
    let (answer, message) = answer_of(
        broker
            .list_shards(ListShardsInput {
                stream: Some(StreamRef::arn(ARN)),
                shard_filter: Some(ShardFilter::AtTrimHorizon),
                ..Default::default()
            })
            .await,
    );
    answers.push(("ListShards by ARN with a filter", answer, message));
    let (answer, message) = answer_of(
        broker
            .get_shard_iterator(GetShardIteratorInput {
                stream: StreamRef::name("s"),
                shard_id: shard(0),
                position: StartingPosition::TrimHorizon,
            })
            .await,
    );
    answers.push(("GetShardIterator", answer, message));
    let (answer, message) = answer_of(
        broker
            .describe_stream(DescribeStreamInput {
                stream: StreamRef::name("s"),
                limit: None,
                exclusive_start_shard_id: None,
            })
            .await,
    );
    answers.push(("DescribeStream", answer, message));
    let (answer, message) = answer_of(broker.describe_stream_summary(StreamRef::name("s")).await);
    answers.push(("DescribeStreamSummary", answer, message));
    let (answer, message) = answer_of(
        broker
            .register_stream_consumer(RegisterStreamConsumerInput {
                stream_arn: ARN.into(),
                consumer_name: "probe".into(),
            })
            .await,
    );
    answers.push(("RegisterStreamConsumer", answer, message));
    answers
}

#[tokio::test]
async fn streams_being_created_or_deleted_answer_reads_as_kinesis_does() {
    let (clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        create_delay: Duration::from_secs(10),
        delete_delay: Duration::from_secs(5),
        ..config
    });
    create(&broker, "s", 2).await;
    let creating = "Stream s under account 000000000000 not ACTIVE, instead in state CREATING";
    let not_found = "Stream s under account 000000000000 not found.";
    let expected_creating = vec![
        ("ListShards by name", Answer::InUse, creating.to_owned()),
        (
            "ListShards by ARN with a filter",
            Answer::InUse,
            creating.to_owned(),
        ),
        ("GetShardIterator", Answer::NotFound, not_found.to_owned()),
        ("DescribeStream", Answer::Ok, String::new()),
        ("DescribeStreamSummary", Answer::Ok, String::new()),
        ("RegisterStreamConsumer", Answer::InUse, creating.to_owned()),
    ];
    assert_eq!(read_side_answers(&broker).await, expected_creating);
    // One millisecond before the delay ends the stream is still CREATING.
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(read_side_answers(&broker).await, expected_creating);

    clock.advance(Duration::from_millis(1));
    let active: Vec<_> = read_side_answers(&broker)
        .await
        .into_iter()
        .map(|(operation, answer, _)| (operation, answer))
        .collect();
    assert!(
        active.iter().all(|(_, answer)| *answer == Answer::Ok),
        "{active:?}"
    );
    let listed = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            ..Default::default()
        })
        .await
        .expect("list an active stream");
    assert_eq!(listed.shards.len(), 2);

    broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: true,
        })
        .await
        .expect("delete");
    let deleting = "Stream s under account 000000000000 not ACTIVE, instead in state DELETING";
    assert_eq!(
        read_side_answers(&broker).await,
        vec![
            ("ListShards by name", Answer::InUse, deleting.to_owned()),
            (
                "ListShards by ARN with a filter",
                Answer::InUse,
                deleting.to_owned()
            ),
            ("GetShardIterator", Answer::NotFound, not_found.to_owned()),
            ("DescribeStream", Answer::Ok, String::new()),
            ("DescribeStreamSummary", Answer::Ok, String::new()),
            ("RegisterStreamConsumer", Answer::InUse, deleting.to_owned()),
        ]
    );
    clock.advance(Duration::from_secs(5));
    let gone: Vec<_> = read_side_answers(&broker)
        .await
        .into_iter()
        .map(|(operation, answer, _)| (operation, answer))
        .collect();
    assert!(
        gone.iter().all(|(_, answer)| *answer == Answer::NotFound),
        "{gone:?}"
    );
}

#[tokio::test]
async fn a_list_shards_token_of_a_stream_being_deleted_is_in_use() {
    let (_clock, config) = manual_config();
    let broker = Broker::new(BrokerConfig {
        delete_delay: Duration::from_secs(5),
        ..config
    });
    create(&broker, "s", 3).await;
    let first = broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            max_results: Some(1),
            ..Default::default()
        })
        .await
        .expect("first page");
    let token = first.next_token.expect("more pages");
    broker
        .delete_stream(DeleteStreamInput {
            stream: StreamRef::name("s"),
            enforce_consumer_deletion: false,
        })
        .await
        .expect("delete");
    let next = broker
        .list_shards(ListShardsInput {
            next_token: Some(token),
            ..Default::default()
        })
        .await;
    let error = assert_kind(next, KinesisErrorKind::ResourceInUse);
    assert_eq!(
        error.message,
        "Stream s under account 000000000000 not ACTIVE, instead in state DELETING"
    );
}

#[tokio::test]
async fn a_deregistered_consumer_arn_is_not_found_and_the_name_can_be_registered_again() {
    let (clock, broker) = manual_broker();
    create(&broker, "s", 1).await;
    let register = || {
        broker.register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.into(),
            consumer_name: "c".into(),
        })
    };
    let subscribe = |consumer_arn: &str| {
        broker.subscribe_to_shard(SubscribeToShardInput {
            consumer_arn: consumer_arn.to_owned(),
            shard_id: shard(0),
            starting_position: StartingPosition::TrimHorizon,
        })
    };
    let first = register().await.expect("register").consumer_arn;
    assert_eq!(
        first,
        format!("{ARN}/consumer/c:{}", START.0 / 1000),
        "the ARN ends with the creation second"
    );
    let _subscription = subscribe(&first).await.expect("subscribe");
    broker
        .deregister_stream_consumer(ConsumerRef::by_arn(&first))
        .await
        .expect("deregister");

    let not_found = format!("Consumer {first} under account 000000000000 not found.");
    let cases = [
        (
            "SubscribeToShard",
            subscribe(&first).await.map(|_| ()).err(),
        ),
        (
            "DescribeStreamConsumer by ARN",
            broker
                .describe_stream_consumer(ConsumerRef::by_arn(&first))
                .await
                .map(|_| ())
                .err(),
        ),
        (
            "DeregisterStreamConsumer again",
            broker
                .deregister_stream_consumer(ConsumerRef::by_arn(&first))
                .await
                .err(),
        ),
    ];
    for (operation, error) in cases {
        let error = error.unwrap_or_else(|| panic!("{operation} must fail"));
        assert_eq!(
            error.kind,
            KinesisErrorKind::ResourceNotFound,
            "{operation}: {error}"
        );
        assert_eq!(error.message, not_found, "{operation}");
    }
    let by_name = broker
        .describe_stream_consumer(ConsumerRef::by_name(ARN, "c"))
        .await;
    let error = assert_kind(by_name, KinesisErrorKind::ResourceNotFound);
    assert_eq!(
        error.message,
        "Consumer c under account 000000000000 not found."
    );

    // Registered again within the same second: a new ARN, ACTIVE, that subscribes; the old
    // ARN stays unknown.
    let again = register().await.expect("register again");
    assert_eq!(again.consumer_status, "ACTIVE");
    assert_ne!(again.consumer_arn, first);
    assert_eq!(
        again.consumer_arn,
        format!("{ARN}/consumer/c:{}", START.0 / 1000 + 1)
    );
    let _subscription = subscribe(&again.consumer_arn)
        .await
        .expect("subscribe with the new ARN");
    assert_kind(subscribe(&first).await, KinesisErrorKind::ResourceNotFound);
    let described = broker
        .describe_stream_consumer(ConsumerRef::by_name(ARN, "c"))
        .await
        .expect("describe by name");
    assert_eq!(described.consumer_arn, again.consumer_arn);
    assert_eq!(described.consumer_status, "ACTIVE");

    // Later, a registration's ARN carries its own creation second again.
    broker
        .deregister_stream_consumer(ConsumerRef::by_name(ARN, "c"))
        .await
        .expect("deregister by name");
    clock.advance(Duration::from_secs(60));
    let later = register().await.expect("register later");
    assert_eq!(
        later.consumer_arn,
        format!("{ARN}/consumer/c:{}", START.0 / 1000 + 60)
    );
    assert_kind(
        subscribe(&again.consumer_arn).await,
        KinesisErrorKind::ResourceNotFound,
    );
}
