//! The persistence hook: what a journal is told, durability tickets gating acknowledgements,
//! journal failures surfacing as `InternalFailure`, and restoring a broker from recovered state.

mod engine_support;

use broker::engine::{
    Broker, BrokerSnapshot, CreateStreamInput, DurabilitySender, DurabilityTicket, Journal,
    JournalAppend, JournalError, PutRecordsInput, PutRecordsRequestEntry, RecoveredShard,
    RecoveredState, RegisterStreamConsumerInput, SplitShardInput, StreamRef,
};
use engine_support::*;
use kcl_core::kinesis::{KinesisErrorKind, Record, ShardId, StartingPosition};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps everything it is told; optionally holds tickets until released, or fails them.
#[derive(Debug, Default)]
struct RecordingJournal {
    appends: Mutex<Vec<(u64, ShardId, Vec<Record>)>>,
    snapshots: Mutex<Vec<BrokerSnapshot>>,
    held: Mutex<Vec<DurabilitySender>>,
    hold: bool,
    fail: bool,
}

impl RecordingJournal {
    fn ticket(&self) -> DurabilityTicket {
        if self.fail {
            return DurabilityTicket::failed(JournalError::new("disk full"));
        }
        if !self.hold {
            return DurabilityTicket::ready();
        }
        let (ticket, sender) = DurabilityTicket::pending();
        self.held.lock().expect("lock").push(sender);
        ticket
    }

    fn recovered(&self) -> RecoveredState {
        let mut per_shard: HashMap<(u64, ShardId), Vec<Record>> = HashMap::new();
        for (uid, shard, records) in self.appends.lock().expect("lock").iter() {
            per_shard
                .entry((*uid, shard.clone()))
                .or_default()
                .extend(records.iter().cloned());
        }
        RecoveredState {
            snapshot: self.snapshots.lock().expect("lock").last().cloned(),
            shards: per_shard
                .into_iter()
                .map(|((stream_uid, shard_id), records)| RecoveredShard {
                    stream_uid,
                    shard_id,
                    records,
                })
                .collect(),
        }
    }
}

impl Journal for RecordingJournal {
    fn append(&self, append: JournalAppend<'_>) -> DurabilityTicket {
        self.appends.lock().expect("lock").push((
            append.stream_uid,
            append.shard_id.clone(),
            append.records.to_vec(),
        ));
        self.ticket()
    }

    fn write_metadata(&self, snapshot: &BrokerSnapshot) -> DurabilityTicket {
        self.snapshots.lock().expect("lock").push(snapshot.clone());
        self.ticket()
    }
}

fn batch(keys: std::ops::Range<usize>) -> PutRecordsInput {
    PutRecordsInput {
        stream: StreamRef::name("s"),
        records: keys
            .map(|i| PutRecordsRequestEntry {
                data: format!("r{i}").into(),
                partition_key: format!("key-{i}"),
                explicit_hash_key: None,
            })
            .collect(),
    }
}

#[tokio::test]
async fn the_journal_sees_appends_in_order_and_every_metadata_change() {
    let (_clock, config) = manual_config();
    let journal = Arc::new(RecordingJournal::default());
    let broker = Broker::with_journal(config, journal.clone());
    create(&broker, "s", 2).await;
    let output = broker.put_records(batch(0..50)).await.expect("put");
    assert_eq!(output.failed_record_count, 0);
    let appends = journal.appends.lock().expect("lock").clone();
    assert_eq!(appends.len(), 2, "one append per shard per call");
    let mut journaled: HashMap<_, _> = HashMap::new();
    for (_, shard, records) in &appends {
        assert!(
            records
                .windows(2)
                .all(|w| w[0].sequence_number < w[1].sequence_number)
        );
        for record in records {
            journaled.insert(record.sequence_number, shard.clone());
        }
    }
    for result in &output.records {
        assert_eq!(
            journaled.get(&result.sequence_number.expect("ok")),
            result.shard_id.as_ref()
        );
    }
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: ShardId::from_index(0),
            new_starting_hash_key: "12345".into(),
        })
        .await
        .expect("split");
    let snapshots = journal.snapshots.lock().expect("lock").clone();
    assert_eq!(snapshots.len(), 2, "create and split");
    let last = &snapshots[1].streams[0];
    assert_eq!(last.shards.len(), 4);
    assert_eq!(
        last.shards[0].child_shard_ids,
        vec![ShardId::from_index(2), ShardId::from_index(3)]
    );
    assert!(last.shards[0].ending_sequence_number.is_some());
    assert_eq!(broker.snapshot(), snapshots[1]);
}

#[tokio::test]
async fn puts_are_acknowledged_only_after_the_ticket_resolves() {
    let (_clock, config) = manual_config();
    let journal = Arc::new(RecordingJournal {
        hold: true,
        ..RecordingJournal::default()
    });
    let broker = Broker::with_journal(config, journal.clone());
    let creating = tokio::spawn({
        let broker = broker.clone();
        async move {
            broker
                .create_stream(CreateStreamInput {
                    stream_name: "s".into(),
                    shard_count: Some(1),
                    ..Default::default()
                })
                .await
        }
    });
    release_when_held(&journal, 1).await;
    creating
        .await
        .expect("join")
        .expect("created after the ticket");

    let putting = tokio::spawn({
        let broker = broker.clone();
        async move { broker.put_records(batch(0..3)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!putting.is_finished(), "not acknowledged before durability");
    release_when_held(&journal, 1).await;
    let output = putting.await.expect("join").expect("put");
    assert_eq!(output.failed_record_count, 0);
}

async fn release_when_held(journal: &RecordingJournal, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let senders: Vec<_> = {
            let mut held = journal.held.lock().expect("lock");
            if held.len() >= count {
                held.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        if !senders.is_empty() {
            for sender in senders {
                sender.complete(Ok(()));
            }
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "journal never got the change"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn journal_failures_are_internal_failures() {
    let (_clock, config) = manual_config();
    let working = Broker::new(config.clone());
    create(&working, "s", 1).await;
    let journal = Arc::new(RecordingJournal {
        fail: true,
        ..RecordingJournal::default()
    });
    let broker = Broker::with_journal(config, journal);
    let created = broker
        .create_stream(CreateStreamInput {
            stream_name: "s".into(),
            shard_count: Some(1),
            ..Default::default()
        })
        .await;
    assert_kind(created, KinesisErrorKind::InternalFailure);
    let output = broker
        .put_records(batch(0..3))
        .await
        .expect("request answered");
    assert_eq!(output.failed_record_count, 3);
    assert_eq!(
        output.records[0].error_code.as_deref(),
        Some("InternalFailure")
    );
    assert_kind(
        broker.put_record(put_input("s", "k", "x")).await,
        KinesisErrorKind::InternalFailure,
    );
}

#[tokio::test]
async fn a_restored_broker_has_the_same_streams_records_and_iterators() {
    let (clock, config) = manual_config();
    let journal = Arc::new(RecordingJournal::default());
    let broker = Broker::with_journal(config.clone(), journal.clone());
    create(&broker, "s", 2).await;
    broker.put_records(batch(0..20)).await.expect("put");
    broker
        .split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: ShardId::from_index(1),
            new_starting_hash_key: (3u128 << 126).to_string(),
        })
        .await
        .expect("split");
    broker.put_records(batch(20..40)).await.expect("put");
    broker
        .register_stream_consumer(RegisterStreamConsumerInput {
            stream_arn: broker.stream_arn("s"),
            consumer_name: "c".into(),
        })
        .await
        .expect("register");
    let old_iterator = iterator(
        &broker,
        "s",
        &ShardId::from_index(0),
        StartingPosition::TrimHorizon,
    )
    .await;
    let before = read_everything(&broker).await;

    let restored = Broker::restore(config, journal.clone(), journal.recovered()).expect("restore");
    let original_streams = broker.snapshot().streams;
    let mut restored_streams = restored.snapshot().streams;
    for (restored_stream, original) in restored_streams.iter_mut().zip(&original_streams) {
        // A restore jumps the counter past anything a crashed process could have handed out
        // without persisting, so later records sort after any number a consumer already saw.
        assert!(restored_stream.sequence_counter >= original.sequence_counter + (1 << 40));
        restored_stream.sequence_counter = original.sequence_counter;
    }
    assert_eq!(restored_streams, original_streams);
    assert_eq!(read_everything(&restored).await, before);
    let (records, _) = drain(&restored, old_iterator).await;
    assert_eq!(
        records.len(),
        before[&ShardId::from_index(0)].len(),
        "old iterators stay valid"
    );

    // New records continue the sequence after every recovered one.
    let newest = before
        .values()
        .flatten()
        .map(|r| r.sequence_number)
        .max()
        .expect("records");
    let next = put(&restored, "s", "key-1", "after restart").await;
    assert!(next.sequence_number > newest);
    let consumer = restored
        .describe_stream_consumer(broker::engine::ConsumerRef::by_name(
            restored.stream_arn("s"),
            "c",
        ))
        .await
        .expect("consumer restored");
    assert_eq!(consumer.consumer_name, "c");

    // Records older than retention at restore time are dropped.
    clock.advance(Duration::from_secs(25 * 3600));
    let (_, config) = (clock.clone(), broker.config().clone());
    let aged = Broker::restore(config, journal.clone(), journal.recovered()).expect("restore");
    let everything = read_everything(&aged).await;
    assert!(everything.values().all(Vec::is_empty));
}

async fn read_everything(broker: &Broker) -> HashMap<ShardId, Vec<Record>> {
    let shards = broker
        .list_shards(broker::engine::ListShardsInput {
            stream: Some(StreamRef::name("s")),
            ..Default::default()
        })
        .await
        .expect("list")
        .shards;
    let mut all = HashMap::new();
    for shard in shards {
        let it = iterator(broker, "s", &shard.shard_id, StartingPosition::TrimHorizon).await;
        all.insert(shard.shard_id, drain(broker, it).await.0);
    }
    all
}
