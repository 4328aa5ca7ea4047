//! Drives the HTTP server with the official AWS SDK for Rust across every operation.

mod server_common;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ScalingType, ShardFilter, ShardFilterType, ShardIteratorType, StartingPosition, StreamMode,
    StreamModeDetails, SubscribeToShardEventStream,
};
use broker::server::ServerOptions;
use std::collections::BTreeMap;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn read_shard(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shard_id: &str,
) -> Result<(Vec<(String, Vec<u8>)>, Vec<String>), Box<dyn std::error::Error>> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await?
        .shard_iterator;
    let mut records = Vec::new();
    let mut children = Vec::new();
    // An open shard keeps returning iterators; stop at the first empty page.
    while let Some(current) = iterator {
        let page = client.get_records().shard_iterator(current).send().await?;
        for record in page.records() {
            records.push((
                record.sequence_number().to_string(),
                record.data().as_ref().to_vec(),
            ));
        }
        children.extend(page.child_shards().iter().map(|c| c.shard_id().to_string()));
        if page.records().is_empty() {
            break;
        }
        iterator = page.next_shard_iterator;
    }
    Ok((records, children))
}

#[tokio::test]
async fn every_operation_works_through_the_sdk() -> TestResult {
    // A generous bound so a regression fails the test instead of hanging CI.
    tokio::time::timeout(Duration::from_secs(300), every_operation())
        .await
        .expect("the SDK scenario finishes within five minutes")
}

async fn every_operation() -> TestResult {
    let (_broker, server) = server_common::start(ServerOptions::default()).await;
    let client = server_common::client(&server.endpoint());
    let stream = "orders";

    // Create, list, describe.
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(2)
        .send()
        .await?;
    let listed = client.list_streams().send().await?;
    assert_eq!(listed.stream_names(), [stream]);
    assert_eq!(listed.stream_summaries().len(), 1);
    let described = client.describe_stream().stream_name(stream).send().await?;
    let description = described.stream_description().unwrap();
    assert_eq!(description.stream_status().as_str(), "ACTIVE");
    assert_eq!(description.shards().len(), 2);
    assert_eq!(description.retention_period_hours(), 24);
    let stream_arn = description.stream_arn().to_string();
    assert_eq!(
        stream_arn,
        "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    );
    let summary = client
        .describe_stream_summary()
        .stream_arn(&stream_arn)
        .send()
        .await?;
    assert_eq!(
        summary
            .stream_description_summary()
            .unwrap()
            .open_shard_count(),
        2
    );
    let limits = client.describe_limits().send().await?;
    assert_eq!(limits.shard_limit(), 20_000);
    assert_eq!(limits.open_shard_count(), 2);

    // Writes: PutRecord by name and by ARN, PutRecords.
    let first = client
        .put_record()
        .stream_name(stream)
        .partition_key("alpha")
        .data(Blob::new(b"first".to_vec()))
        .send()
        .await?;
    let by_arn = client
        .put_record()
        .stream_arn(&stream_arn)
        .partition_key("alpha")
        .data(Blob::new(b"second".to_vec()))
        .send()
        .await?;
    assert_eq!(first.shard_id(), by_arn.shard_id());
    assert!(first.sequence_number().len() >= 20);
    let mut batch = client.put_records().stream_name(stream);
    for i in 0..20 {
        batch = batch.records(
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(Blob::new(format!("record-{i}").into_bytes()))
                .build()?,
        );
    }
    let put = batch.send().await?;
    assert_eq!(put.failed_record_count(), Some(0));
    assert_eq!(put.records().len(), 20);

    // Reads: every record back, from every shard, with the acknowledged sequence numbers.
    let shards = client.list_shards().stream_name(stream).send().await?;
    assert_eq!(shards.shards().len(), 2);
    let mut acknowledged: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    acknowledged.insert(first.sequence_number().into(), b"first".to_vec());
    acknowledged.insert(by_arn.sequence_number().into(), b"second".to_vec());
    for (i, entry) in put.records().iter().enumerate() {
        acknowledged.insert(
            entry.sequence_number().unwrap().into(),
            format!("record-{i}").into_bytes(),
        );
    }
    let mut read: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for shard in shards.shards() {
        let (records, _) = read_shard(&client, stream, shard.shard_id()).await?;
        read.extend(records);
    }
    assert_eq!(read, acknowledged);

    // Every iterator type.
    let shard_id = first.shard_id().to_string();
    let iterator_page = |kind: ShardIteratorType, sequence: Option<&str>| {
        let client = client.clone();
        let shard_id = shard_id.clone();
        let sequence = sequence.map(str::to_string);
        async move {
            let mut request = client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard_id)
                .shard_iterator_type(kind);
            if let Some(sequence) = sequence {
                request = request.starting_sequence_number(sequence);
            }
            let iterator = request.send().await?.shard_iterator.unwrap();
            let page = client.get_records().shard_iterator(iterator).send().await?;
            Ok::<_, Box<dyn std::error::Error>>(
                page.records()
                    .iter()
                    .map(|r| r.sequence_number().to_string())
                    .collect::<Vec<_>>(),
            )
        }
    };
    let at = iterator_page(
        ShardIteratorType::AtSequenceNumber,
        Some(first.sequence_number()),
    )
    .await?;
    assert_eq!(
        at.first().map(String::as_str),
        Some(first.sequence_number())
    );
    let after = iterator_page(
        ShardIteratorType::AfterSequenceNumber,
        Some(first.sequence_number()),
    )
    .await?;
    assert_eq!(
        after.first().map(String::as_str),
        Some(by_arn.sequence_number())
    );
    assert!(
        iterator_page(ShardIteratorType::Latest, None)
            .await?
            .is_empty()
    );
    let at_time = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&shard_id)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(aws_smithy_types::DateTime::from_secs(0))
        .send()
        .await?;
    let page = client
        .get_records()
        .shard_iterator(at_time.shard_iterator().unwrap())
        .limit(1)
        .send()
        .await?;
    assert_eq!(page.records().len(), 1);
    assert!(page.records()[0].approximate_arrival_timestamp().is_some());
    assert!(page.millis_behind_latest().is_some());

    // Resharding: split, read the parent to its end (children reported), merge, scale.
    let parent = shards.shards()[0].clone();
    let range = parent.hash_key_range().unwrap();
    let start: u128 = range.starting_hash_key().parse()?;
    let end: u128 = range.ending_hash_key().parse()?;
    let middle = start + (end - start) / 2;
    client
        .split_shard()
        .stream_name(stream)
        .shard_to_split(parent.shard_id())
        .new_starting_hash_key(middle.to_string())
        .send()
        .await?;
    let after_split = client.list_shards().stream_name(stream).send().await?;
    assert_eq!(after_split.shards().len(), 4);
    let (_, children) = read_shard(&client, stream, parent.shard_id()).await?;
    assert_eq!(children.len(), 2);
    client
        .merge_shards()
        .stream_name(stream)
        .shard_to_merge(&children[0])
        .adjacent_shard_to_merge(&children[1])
        .send()
        .await?;
    let open = client
        .list_shards()
        .stream_name(stream)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()?,
        )
        .send()
        .await?;
    assert_eq!(open.shards().len(), 2);
    let scaled = client
        .update_shard_count()
        .stream_name(stream)
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await?;
    assert_eq!(scaled.current_shard_count(), Some(2));
    assert_eq!(scaled.target_shard_count(), Some(4));

    // Retention.
    client
        .increase_stream_retention_period()
        .stream_name(stream)
        .retention_period_hours(48)
        .send()
        .await?;
    client
        .decrease_stream_retention_period()
        .stream_name(stream)
        .retention_period_hours(36)
        .send()
        .await?;
    let summary = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await?;
    assert_eq!(
        summary
            .stream_description_summary()
            .unwrap()
            .retention_period_hours(),
        36
    );
    let too_short = client
        .increase_stream_retention_period()
        .stream_name(stream)
        .retention_period_hours(30)
        .send()
        .await
        .unwrap_err();
    assert_eq!(too_short.code(), Some("InvalidArgumentException"));

    // Tags, by stream and by resource ARN.
    client
        .add_tags_to_stream()
        .stream_name(stream)
        .tags("team", "payments")
        .tags("tier", "gold")
        .send()
        .await?;
    client
        .remove_tags_from_stream()
        .stream_name(stream)
        .tag_keys("tier")
        .send()
        .await?;
    let tags = client
        .list_tags_for_stream()
        .stream_name(stream)
        .send()
        .await?;
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].key(), "team");
    assert!(!tags.has_more_tags());
    client
        .tag_resource()
        .resource_arn(&stream_arn)
        .tags("owner", "me")
        .send()
        .await?;
    client
        .untag_resource()
        .resource_arn(&stream_arn)
        .tag_keys("team")
        .send()
        .await?;
    let resource_tags = client
        .list_tags_for_resource()
        .resource_arn(&stream_arn)
        .send()
        .await?;
    let keys: Vec<&str> = resource_tags.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, ["owner"]);

    // Stream mode.
    client
        .update_stream_mode()
        .stream_arn(&stream_arn)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()?,
        )
        .send()
        .await?;
    let refused = client
        .update_shard_count()
        .stream_name(stream)
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap_err();
    assert!(
        refused.message().unwrap_or("").contains("On-Demand"),
        "{refused:?}"
    );
    client
        .update_stream_mode()
        .stream_arn(&stream_arn)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::Provisioned)
                .build()?,
        )
        .send()
        .await?;

    // Enhanced fan-out.
    let registered = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("reader")
        .send()
        .await?;
    let consumer_arn = registered.consumer().unwrap().consumer_arn().to_string();
    let described = client
        .describe_stream_consumer()
        .consumer_arn(&consumer_arn)
        .send()
        .await?;
    assert_eq!(
        described.consumer_description().unwrap().consumer_name(),
        "reader"
    );
    let consumers = client
        .list_stream_consumers()
        .stream_arn(&stream_arn)
        .send()
        .await?;
    assert_eq!(consumers.consumers().len(), 1);
    let mut subscription = client
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id(parent.shard_id())
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()?,
        )
        .send()
        .await?;
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let event = tokio::time::timeout(Duration::from_secs(30), subscription.event_stream.recv())
            .await??;
        let Some(SubscribeToShardEventStream::SubscribeToShardEvent(event)) = event else {
            break;
        };
        delivered.extend(
            event
                .records()
                .iter()
                .map(|r| r.sequence_number().to_string()),
        );
        if !event.child_shards().is_empty() {
            break;
        }
    }
    let (expected, _) = read_shard(&client, stream, parent.shard_id()).await?;
    let expected: Vec<String> = expected.into_iter().map(|(seq, _)| seq).collect();
    assert!(!expected.is_empty());
    assert_eq!(delivered, expected);
    drop(subscription);
    client
        .deregister_stream_consumer()
        .consumer_arn(&consumer_arn)
        .send()
        .await?;

    // Errors keep AWS's types.
    let missing = client
        .describe_stream()
        .stream_name("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
    let bad_name = client
        .create_stream()
        .stream_name("bad name")
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad_name.code(), Some("ValidationException"));

    // Delete.
    client.delete_stream().stream_name(stream).send().await?;
    let listed = client.list_streams().send().await?;
    assert!(listed.stream_names().is_empty());
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_creating_stream_and_a_deregistered_consumer_answer_as_kinesis_does() -> TestResult {
    tokio::time::timeout(Duration::from_secs(300), creating_and_deregistered())
        .await
        .expect("the SDK scenario finishes within five minutes")
}

async fn creating_and_deregistered() -> TestResult {
    use broker::engine::{Broker, BrokerConfig};
    use kcl_core::clock::ManualClock;
    use kcl_core::kinesis::EpochMillis;

    let clock = std::sync::Arc::new(ManualClock::new(EpochMillis(1_795_636_815_000)));
    let broker = Broker::new(BrokerConfig {
        create_delay: Duration::from_secs(3),
        ..BrokerConfig::unlimited().with_clock(clock.clone())
    });
    let server = broker::server::spawn(
        broker.clone(),
        ServerOptions::default(),
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let client = server_common::client(&server.endpoint());
    client
        .create_stream()
        .stream_name("slow")
        .shard_count(2)
        .send()
        .await?;

    let listed = client
        .list_shards()
        .stream_name("slow")
        .send()
        .await
        .unwrap_err();
    assert_eq!(listed.code(), Some("ResourceInUseException"));
    assert_eq!(
        listed.message(),
        Some("Stream slow under account 000000000000 not ACTIVE, instead in state CREATING")
    );
    let iterator = client
        .get_shard_iterator()
        .stream_name("slow")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert_eq!(iterator.code(), Some("ResourceNotFoundException"));
    assert_eq!(
        iterator.message(),
        Some("Stream slow under account 000000000000 not found.")
    );
    let described = client.describe_stream().stream_name("slow").send().await?;
    let description = described.stream_description().unwrap();
    assert_eq!(description.stream_status().as_str(), "CREATING");
    assert!(description.shards().is_empty());

    clock.advance(Duration::from_secs(3));
    let listed = client.list_shards().stream_name("slow").send().await?;
    assert_eq!(listed.shards().len(), 2);

    // A deregistered consumer's ARN is unknown to SubscribeToShard; the name registers again
    // under a new ARN.
    let stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/slow";
    let register = || {
        client
            .register_stream_consumer()
            .stream_arn(stream_arn)
            .consumer_name("reader")
            .send()
    };
    let subscribe = |consumer_arn: String| {
        client
            .subscribe_to_shard()
            .consumer_arn(consumer_arn)
            .shard_id("shardId-000000000000")
            .starting_position(
                StartingPosition::builder()
                    .r#type(ShardIteratorType::TrimHorizon)
                    .build()
                    .expect("a starting position"),
            )
            .send()
    };
    let first = register()
        .await?
        .consumer()
        .unwrap()
        .consumer_arn()
        .to_owned();
    drop(subscribe(first.clone()).await?);
    client
        .deregister_stream_consumer()
        .consumer_arn(&first)
        .send()
        .await?;
    let gone = subscribe(first.clone()).await.unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
    assert_eq!(
        gone.message(),
        Some(format!("Consumer {first} under account 000000000000 not found.").as_str())
    );
    let again = register().await?;
    let again = again.consumer().unwrap();
    assert_eq!(again.consumer_status().as_str(), "ACTIVE");
    assert_ne!(again.consumer_arn(), first);
    drop(subscribe(again.consumer_arn().to_owned()).await?);
    let still_gone = subscribe(first.clone()).await.unwrap_err();
    assert_eq!(still_gone.code(), Some("ResourceNotFoundException"));
    Ok(())
}
