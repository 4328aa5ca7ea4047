//! Enhanced fan-out in the in-process engine: consumer registry and `SubscribeToShard`
//! push subscriptions (delivery, shard end, resubscription rules, expiry, budgets, cleanup).
//! Time is tokio's paused clock, so the 5-minute lifetime and budgets run instantly.

mod engine_support;

use broker::engine::{
    Broker, BrokerConfig, ConsumerRef, ListStreamConsumersInput, PutRecordsInput,
    PutRecordsRequestEntry, RegisterStreamConsumerInput, SplitShardInput, StreamRef,
    SubscribeToShardInput, ThroughputLimits,
};
use bytes::Bytes;
use engine_support::*;
use kcl_core::clock::TokioClock;
use kcl_core::kinesis::{KinesisErrorKind, ShardId, StartingPosition, SubscribeToShardEvent};
use kcl_core::stream_client::Subscription;
use std::time::Duration;

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";

fn paused_broker(throughput: ThroughputLimits) -> Broker {
    Broker::new(BrokerConfig {
        throughput,
        ..BrokerConfig::default().with_clock(TokioClock::shared())
    })
}

async fn register(broker: &Broker, name: &str) -> String {
    broker
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.into(),
            consumer_name: name.into(),
        })
        .await
        .expect("register")
        .consumer_arn
}

async fn subscribe(
    broker: &Broker,
    consumer_arn: &str,
    shard: u64,
    position: StartingPosition,
) -> Subscription {
    broker
        .subscribe_to_shard(SubscribeToShardInput {
            consumer_arn: consumer_arn.into(),
            shard_id: ShardId::from_index(shard),
            starting_position: position,
        })
        .await
        .expect("subscribe")
}

async fn next_event(subscription: &mut Subscription) -> SubscribeToShardEvent {
    tokio::time::timeout(Duration::from_secs(60), subscription.next_event())
        .await
        .expect("an event within a minute")
        .expect("subscription open")
        .expect("not an error")
}

/// Collects events until `count` records arrived.
async fn records(subscription: &mut Subscription, count: usize) -> Vec<SubscribeToShardEvent> {
    let mut events = Vec::new();
    let mut seen = 0;
    while seen < count {
        let event = next_event(subscription).await;
        seen += event.records.len();
        events.push(event);
    }
    events
}

#[tokio::test(start_paused = true)]
async fn consumers_are_registered_listed_described_and_deregistered() {
    let broker = paused_broker(ThroughputLimits::off());
    create(&broker, "s", 1).await;
    let arn = register(&broker, "c0").await;
    assert!(arn.starts_with("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c0:"));
    let duplicate = broker
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.into(),
            consumer_name: "c0".into(),
        })
        .await;
    assert_kind(duplicate, KinesisErrorKind::ResourceInUse);
    for i in 1..20 {
        register(&broker, &format!("c{i:02}")).await;
    }
    let over = broker
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: ARN.into(),
            consumer_name: "c20".into(),
        })
        .await;
    assert_kind(over, KinesisErrorKind::LimitExceeded);

    let by_arn = broker
        .describe_stream_consumer(ConsumerRef::by_arn(&arn))
        .await
        .expect("describe");
    let by_name = broker
        .describe_stream_consumer(ConsumerRef::by_name(ARN, "c0"))
        .await
        .expect("describe");
    assert_eq!(by_arn, by_name);
    assert_eq!(by_arn.consumer_status, "ACTIVE");
    assert_eq!(by_arn.stream_arn, ARN);

    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = broker
            .list_stream_consumers(ListStreamConsumersInput {
                stream_arn: ARN.into(),
                next_token: token,
                max_results: Some(6),
                stream_creation_timestamp: None,
            })
            .await
            .expect("list");
        assert!(page.consumers.len() <= 6);
        names.extend(page.consumers.into_iter().map(|c| c.consumer_name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 20);
    let summary = broker
        .describe_stream_summary(StreamRef::name("s"))
        .await
        .expect("summary");
    assert_eq!(summary.consumer_count, 20);

    broker
        .deregister_stream_consumer(ConsumerRef::by_arn(&arn))
        .await
        .expect("deregister");
    let gone = broker
        .describe_stream_consumer(ConsumerRef::by_arn(&arn))
        .await;
    assert_kind(gone, KinesisErrorKind::ResourceNotFound);
    let neither = broker
        .describe_stream_consumer(ConsumerRef {
            stream_arn: None,
            consumer_name: Some("c01".into()),
            consumer_arn: None,
        })
        .await;
    assert_kind(neither, KinesisErrorKind::InvalidArgument);
}

#[tokio::test(start_paused = true)]
async fn subscriptions_push_backlog_then_new_records() {
    let broker = paused_broker(ThroughputLimits::off());
    create(&broker, "s", 1).await;
    let consumer = register(&broker, "c").await;
    put(&broker, "s", "k", "a").await;
    let b = put(&broker, "s", "k", "b").await;
    let mut from_start = subscribe(&broker, &consumer, 0, StartingPosition::TrimHorizon).await;
    let events = records(&mut from_start, 2).await;
    let delivered: Vec<_> = events.iter().flat_map(|e| data_of(&e.records)).collect();
    assert_eq!(delivered, vec!["a", "b"]);
    assert_eq!(
        events.last().and_then(|e| e.continuation_sequence_number),
        Some(b.sequence_number)
    );
    assert_eq!(events.last().map(|e| e.millis_behind_latest), Some(0));

    // New records wake the subscription.
    let c = put(&broker, "s", "k", "c").await;
    let event = records(&mut from_start, 1).await.remove(0);
    assert_eq!(data_of(&event.records), vec!["c"]);
    assert_eq!(event.continuation_sequence_number, Some(c.sequence_number));

    // Idle subscriptions send empty heartbeat events carrying the continuation point.
    let heartbeat = next_event(&mut from_start).await;
    assert!(heartbeat.records.is_empty());
    assert_eq!(
        heartbeat.continuation_sequence_number,
        Some(c.sequence_number)
    );

    // Resubscribing after the continuation sequence number misses nothing.
    let other = register(&broker, "d").await;
    let mut resumed = subscribe(
        &broker,
        &other,
        0,
        StartingPosition::AfterSequenceNumber(b.sequence_number),
    )
    .await;
    assert_eq!(
        data_of(&records(&mut resumed, 1).await[0].records),
        vec!["c"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_shard_ends_with_its_children() {
    let broker = paused_broker(ThroughputLimits::off());
    create(&broker, "s", 1).await;
    let consumer = register(&broker, "c").await;
    let mut subscription = subscribe(&broker, &consumer, 0, StartingPosition::Latest).await;
    put(&broker, "s", "k", "a").await;
    assert_eq!(
        data_of(&records(&mut subscription, 1).await[0].records),
        vec!["a"]
    );
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: ShardId::from_index(0),
            new_starting_hash_key: "1000".into(),
        })
        .await
        .expect("split");
    let end = next_event(&mut subscription).await;
    assert!(end.records.is_empty());
    assert_eq!(end.continuation_sequence_number, None);
    let children: Vec<_> = end
        .child_shards
        .iter()
        .map(|c| c.shard_id.clone())
        .collect();
    assert_eq!(
        children,
        vec![ShardId::from_index(1), ShardId::from_index(2)]
    );
    assert!(
        end.child_shards
            .iter()
            .all(|c| c.parent_shards == vec![ShardId::from_index(0)])
    );
    let after_end = tokio::time::timeout(Duration::from_secs(60), subscription.next_event()).await;
    assert!(
        matches!(after_end, Ok(None)),
        "the subscription closes after the shard end"
    );
}

#[tokio::test(start_paused = true)]
async fn resubscribing_within_five_seconds_is_in_use_and_later_replaces() {
    let broker = paused_broker(ThroughputLimits::off());
    create(&broker, "s", 1).await;
    let consumer = register(&broker, "c").await;
    let mut first = subscribe(&broker, &consumer, 0, StartingPosition::Latest).await;
    let again = broker
        .subscribe_to_shard(SubscribeToShardInput {
            consumer_arn: consumer.clone(),
            shard_id: ShardId::from_index(0),
            starting_position: StartingPosition::Latest,
        })
        .await;
    let error = assert_kind(again, KinesisErrorKind::ResourceInUse);
    assert!(
        error
            .message
            .starts_with("Another active subscription exists for this consumer")
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    let mut second = subscribe(&broker, &consumer, 0, StartingPosition::Latest).await;
    // The first subscription was replaced: it ends (after any heartbeat already queued).
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match first.next_event().await {
                None => break,
                Some(Ok(event)) => assert!(event.records.is_empty()),
                Some(Err(error)) => panic!("unexpected error {error}"),
            }
        }
    })
    .await;
    assert!(ended.is_ok());
    put(&broker, "s", "k", "x").await;
    assert_eq!(
        data_of(&records(&mut second, 1).await.last().expect("event").records),
        vec!["x"]
    );

    // A dropped receiver frees the slot at once: resubscribing is allowed inside 5 seconds.
    drop(second);
    let reopened = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let outcome = broker
                .subscribe_to_shard(SubscribeToShardInput {
                    consumer_arn: consumer.clone(),
                    shard_id: ShardId::from_index(0),
                    starting_position: StartingPosition::Latest,
                })
                .await;
            match outcome {
                Ok(subscription) => break subscription,
                Err(error) => {
                    assert_eq!(error.kind, KinesisErrorKind::ResourceInUse);
                    tokio::task::yield_now().await;
                }
            }
        }
    })
    .await;
    assert!(reopened.is_ok());
}

#[tokio::test(start_paused = true)]
async fn subscriptions_expire_after_five_minutes() {
    let broker = paused_broker(ThroughputLimits::off());
    create(&broker, "s", 1).await;
    let consumer = register(&broker, "c").await;
    let started = tokio::time::Instant::now();
    let mut subscription = subscribe(&broker, &consumer, 0, StartingPosition::Latest).await;
    let ended = tokio::time::timeout(Duration::from_secs(400), async {
        while let Some(event) = subscription.next_event().await {
            event.expect("no error");
        }
    })
    .await;
    assert!(ended.is_ok(), "the subscription ends on its own");
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_secs(300) && lasted < Duration::from_secs(310),
        "{lasted:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_consumer_gets_its_own_two_mib_per_second() {
    let broker = paused_broker(ThroughputLimits {
        write_bytes_per_sec: 100.0 * 1_048_576.0,
        write_records_per_sec: 100_000.0,
        ..ThroughputLimits::default()
    });
    create(&broker, "s", 1).await;
    let record = Bytes::from(vec![7u8; 500_000]);
    for half in 0..2 {
        let input = PutRecordsInput {
            stream: StreamRef::name("s"),
            records: (0..6)
                .map(|i| PutRecordsRequestEntry {
                    data: record.clone(),
                    partition_key: format!("k{half}-{i}"),
                    explicit_hash_key: None,
                })
                .collect(),
        };
        let output = broker.put_records(input).await.expect("put");
        assert_eq!(output.failed_record_count, 0);
    }
    let fast = register(&broker, "fast").await;
    let other = register(&broker, "other").await;
    let started = tokio::time::Instant::now();
    let mut first = subscribe(&broker, &fast, 0, StartingPosition::TrimHorizon).await;
    let mut second = subscribe(&broker, &other, 0, StartingPosition::TrimHorizon).await;
    let opening = next_event(&mut first).await;
    let opening_bytes: usize = opening
        .records
        .iter()
        .map(|r| r.data.len() + r.partition_key.len())
        .sum();
    assert!(opening_bytes <= 2 * 1_048_576 + 500_010, "{opening_bytes}");
    assert!(opening.records.len() < 12);
    let mut delivered = opening.records.len();
    while delivered < 12 {
        delivered += next_event(&mut first).await.records.len();
    }
    // 6 MB at 2 MiB/s: the budget spreads delivery over about two more seconds.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The other consumer had its own budget all along.
    let mut other_delivered = 0;
    while other_delivered < 12 {
        other_delivered += next_event(&mut second).await.records.len();
    }
}

#[tokio::test(start_paused = true)]
async fn deregistering_or_shutting_down_ends_subscriptions() {
    let broker = paused_broker(ThroughputLimits::off());
    create(&broker, "s", 2).await;
    let consumer = register(&broker, "c").await;
    let mut on_zero = subscribe(&broker, &consumer, 0, StartingPosition::Latest).await;
    broker
        .deregister_stream_consumer(ConsumerRef::by_arn(&consumer))
        .await
        .expect("deregister");
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while on_zero.next_event().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok());
    let gone = broker
        .subscribe_to_shard(SubscribeToShardInput {
            consumer_arn: consumer,
            shard_id: ShardId::from_index(0),
            starting_position: StartingPosition::Latest,
        })
        .await;
    assert_kind(gone, KinesisErrorKind::ResourceNotFound);

    let consumer = register(&broker, "d").await;
    let _kept = subscribe(&broker, &consumer, 1, StartingPosition::Latest).await;
    tokio::time::timeout(Duration::from_secs(60), broker.shutdown())
        .await
        .expect("shutdown waits for every subscription task");
}
