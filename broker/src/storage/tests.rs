//! Tests of the durable journal: round trips, group commit, torn tails, retention.

use super::*;
use crate::engine::journal::{ShardSnapshot, StreamSnapshot};
use bytes::Bytes;
use kcl_core::kinesis::{EpochMillis, Record};
use std::collections::BTreeMap;
use std::sync::Arc;

fn record(seq: u128, key: &str, data: &str) -> Record {
    Record {
        sequence_number: SequenceNumber::from_u128(seq),
        approximate_arrival_timestamp: EpochMillis(1_700_000_000_000 + seq as i64),
        data: Bytes::copy_from_slice(data.as_bytes()),
        partition_key: key.into(),
        explicit_hash_key: None,
    }
}

fn snapshot(shards: &[&str]) -> BrokerSnapshot {
    BrokerSnapshot {
        version: 1,
        token_key: [7; 32],
        next_stream_uid: 2,
        streams: vec![StreamSnapshot {
            stream_name: "s".into(),
            stream_uid: 1,
            created_at_millis: 1,
            deleting_since_millis: None,
            retention_period_hours: 24,
            on_demand: false,
            tags: BTreeMap::new(),
            consumers: Vec::new(),
            shards: shards
                .iter()
                .map(|id| ShardSnapshot {
                    shard_id: ShardId::new(*id),
                    parent_shard_id: None,
                    adjacent_parent_shard_id: None,
                    starting_hash_key: "0".into(),
                    ending_hash_key: u128::MAX.to_string(),
                    starting_sequence_number: SequenceNumber::ZERO,
                    ending_sequence_number: None,
                    created_at_millis: 1,
                    closed_at_millis: None,
                    child_shard_ids: Vec::new(),
                })
                .collect(),
            next_shard_index: shards.len() as u64,
            sequence_counter: 0,
            scaling_history_millis: Vec::new(),
            encryption_key_id: None,
            shard_level_metrics: Vec::new(),
            resource_policy: None,
            max_record_size_kib: None,
            warm_throughput_mibps: None,
        }],
        billing_commitment: None,
    }
}

async fn append(journal: &DiskJournal, shard: &str, records: &[Record]) {
    let shard_id = ShardId::new(shard);
    journal
        .append(JournalAppend {
            stream_name: "s",
            stream_uid: 1,
            shard_id: &shard_id,
            records,
        })
        .await
        .unwrap();
}

fn reopen(dir: &Path, policy: FsyncPolicy) -> Opened {
    open(StorageConfig::new(dir, policy)).unwrap()
}

#[tokio::test]
async fn records_and_metadata_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let sub = dir.path().join(format!("{policy:?}"));
        let opened = reopen(&sub, policy);
        assert_eq!(opened.report.records, 0);
        assert!(opened.state.snapshot.is_none());
        opened
            .journal
            .write_metadata(&snapshot(&["a", "b"]))
            .await
            .unwrap();
        append(
            &opened.journal,
            "a",
            &[record(1, "k", "one"), record(2, "k", "two")],
        )
        .await;
        append(&opened.journal, "b", &[record(3, "k", "three")]).await;
        append(&opened.journal, "a", &[record(4, "k", "four")]).await;
        drop(opened);

        let opened = reopen(&sub, policy);
        assert_eq!(opened.report.records, 4);
        assert!(opened.report.truncations.is_empty());
        assert_eq!(opened.state.snapshot, Some(snapshot(&["a", "b"])));
        let shard_a = opened
            .state
            .shards
            .iter()
            .find(|shard| shard.shard_id.as_str() == "a")
            .unwrap();
        let data: Vec<&[u8]> = shard_a.records.iter().map(|r| r.data.as_ref()).collect();
        assert_eq!(data, [b"one".as_slice(), b"two", b"four"]);
        assert_eq!(shard_a.records[2], record(4, "k", "four"));
    }
}

#[tokio::test]
async fn concurrent_appends_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let opened = reopen(dir.path(), FsyncPolicy::Always);
    let journal = Arc::clone(&opened.journal);
    let mut tasks = Vec::new();
    for writer in 0..16u128 {
        let journal = Arc::clone(&journal);
        tasks.push(tokio::spawn(async move {
            for i in 0..20u128 {
                let shard = format!("shard-{writer}");
                append(&journal, &shard, &[record(i, "k", "x")]).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    drop(journal);
    drop(opened);
    let opened = reopen(dir.path(), FsyncPolicy::Always);
    assert_eq!(opened.report.records, 16 * 20);
    assert_eq!(opened.state.shards.len(), 16);
    for shard in &opened.state.shards {
        let sequence: Vec<u128> = shard
            .records
            .iter()
            .map(|r| r.sequence_number.to_u128().unwrap())
            .collect();
        assert_eq!(sequence, (0..20).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_torn_or_corrupt_tail_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let opened = reopen(dir.path(), FsyncPolicy::Always);
    append(&opened.journal, "a", &[record(1, "k", "kept")]).await;
    append(&opened.journal, "a", &[record(2, "k", "lost")]).await;
    drop(opened);

    let segment_file = segment::segment_path(&dir.path().join("log"), 1);
    let full = std::fs::read(&segment_file).unwrap();
    // Tear the last frame: drop its final 3 bytes.
    std::fs::write(&segment_file, &full[..full.len() - 3]).unwrap();
    let opened = reopen(dir.path(), FsyncPolicy::Always);
    assert_eq!(opened.report.records, 1);
    let [truncation] = opened.report.truncations.as_slice() else {
        panic!("expected one truncation: {:?}", opened.report);
    };
    let first_frame_len = (full.len() - 3) as u64 - truncation.dropped_bytes;
    assert_eq!(truncation.offset, first_frame_len);
    assert!(truncation.reason.contains("torn"), "{truncation:?}");
    // The log continues after the cut: a new append lands right after the kept frame.
    append(&opened.journal, "a", &[record(3, "k", "new")]).await;
    drop(opened);

    // Flip a byte inside the last frame: a checksum mismatch.
    let mut bytes = std::fs::read(&segment_file).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0xff;
    std::fs::write(&segment_file, &bytes).unwrap();
    let opened = reopen(dir.path(), FsyncPolicy::Always);
    let data: Vec<&[u8]> = opened.state.shards[0]
        .records
        .iter()
        .map(|r| r.data.as_ref())
        .collect();
    assert_eq!(data, [b"kept".as_slice()]);
    assert_eq!(opened.report.truncations.len(), 1);
    assert!(opened.report.truncations[0].reason.contains("corrupt"));
    assert_eq!(
        std::fs::metadata(&segment_file).unwrap().len(),
        opened.report.truncations[0].offset
    );
}

#[tokio::test]
async fn retention_deletes_whole_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path(), FsyncPolicy::Always);
    config.segment_bytes = 1; // every group starts a new segment
    let opened = open(config.clone()).unwrap();
    opened
        .journal
        .write_metadata(&snapshot(&["a"]))
        .await
        .unwrap();
    for seq in 1..=4 {
        append(&opened.journal, "a", &[record(seq, "k", "x")]).await;
    }
    let log_dir = dir.path().join("log");
    assert_eq!(segment::list_segments(&log_dir).unwrap().len(), 5);

    // Records below 3 expired: the segments holding 1 and 2 go, the rest stay.
    opened
        .journal
        .trimmed(1, &ShardId::new("a"), SequenceNumber::from_u128(3));
    opened.journal.sync().await.unwrap();
    let remaining = segment::list_segments(&log_dir).unwrap();
    assert_eq!(remaining, vec![3, 4, 5]);

    // A stream dropped from the metadata makes all its segments garbage.
    let mut empty = snapshot(&[]);
    empty.streams.clear();
    opened.journal.write_metadata(&empty).await.unwrap();
    opened.journal.sync().await.unwrap();
    assert_eq!(segment::list_segments(&log_dir).unwrap(), vec![5]);
    drop(opened);

    let opened = open(config).unwrap();
    assert_eq!(opened.report.records, 0);
}
