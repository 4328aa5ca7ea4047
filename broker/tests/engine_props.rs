//! Property tests of the engine's invariants under random puts, splits and merges:
//! (a) every hash key is covered by exactly one open shard;
//! (b) walking from TRIM_HORIZON through every shard and its children returns every
//!     acknowledged record exactly once, and per partition key in put order.

mod engine_support;

use broker::engine::{
    Broker, BrokerConfig, ListShardsInput, MergeShardsInput, PutRecordsInput,
    PutRecordsRequestEntry, SplitShardInput, StreamRef,
};
use engine_support::*;
use kcl_core::kinesis::{Shard, ShardFilter, ShardId, StartingPosition};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
enum Op {
    /// Records with partition keys `k<n>`, routed by MD5.
    Put(Vec<u8>),
    /// One record with an explicit hash key.
    PutExplicit(u128),
    /// Split the `pick`-th open shard at a point chosen by `fraction`.
    Split { pick: usize, fraction: u128 },
    /// Merge the `pick`-th open shard (by hash order) with its right neighbour.
    Merge { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0u8..24, 1..30).prop_map(Op::Put),
        1 => any::<u128>().prop_map(Op::PutExplicit),
        2 => (any::<usize>(), any::<u128>()).prop_map(|(pick, fraction)| Op::Split { pick, fraction }),
        2 => any::<usize>().prop_map(|pick| Op::Merge { pick }),
    ]
}

async fn shards(broker: &Broker, filter: Option<ShardFilter>) -> Vec<Shard> {
    broker
        .list_shards(ListShardsInput {
            stream: Some(StreamRef::name("s")),
            shard_filter: filter,
            ..Default::default()
        })
        .await
        .expect("list shards")
        .shards
}

async fn open_by_hash(broker: &Broker) -> Vec<Shard> {
    let mut open = shards(broker, Some(ShardFilter::AtLatest)).await;
    open.sort_by_key(|shard| shard.hash_key_range.starting_hash_key);
    open
}

async fn apply(
    broker: &Broker,
    op: &Op,
    serial: &mut u64,
    acked: &mut HashMap<String, Vec<String>>,
) {
    match op {
        Op::Put(keys) => {
            let records: Vec<_> = keys
                .iter()
                .map(|key| {
                    *serial += 1;
                    (format!("k{key}"), format!("k{key}:{serial}"))
                })
                .collect();
            let input = PutRecordsInput {
                stream: StreamRef::name("s"),
                records: records
                    .iter()
                    .map(|(key, data)| PutRecordsRequestEntry {
                        data: data.clone().into(),
                        partition_key: key.clone(),
                        explicit_hash_key: None,
                    })
                    .collect(),
            };
            let output = broker.put_records(input).await.expect("put records");
            assert_eq!(output.failed_record_count, 0);
            for (key, data) in records {
                acked.entry(key).or_default().push(data);
            }
        }
        Op::PutExplicit(hash_key) => {
            *serial += 1;
            let key = format!("explicit-{serial}");
            let mut input = put_input("s", &key, &key);
            input.explicit_hash_key = Some(hash_key.to_string());
            broker.put_record(input).await.expect("put record");
            acked.entry(key.clone()).or_default().push(key);
        }
        Op::Split { pick, fraction } => {
            let open = open_by_hash(broker).await;
            let target = &open[pick % open.len()];
            let range = target.hash_key_range;
            let width = range.ending_hash_key - range.starting_hash_key;
            if width == 0 {
                return;
            }
            let new_start = range.starting_hash_key + 1 + fraction % width;
            broker
                .split_shard(SplitShardInput {
                    stream: StreamRef::name("s"),
                    shard_to_split: target.shard_id.clone(),
                    new_starting_hash_key: new_start.to_string(),
                })
                .await
                .expect("split");
        }
        Op::Merge { pick } => {
            let open = open_by_hash(broker).await;
            if open.len() < 2 {
                return;
            }
            let index = pick % (open.len() - 1);
            broker
                .merge_shards(MergeShardsInput {
                    stream: StreamRef::name("s"),
                    shard_to_merge: open[index].shard_id.clone(),
                    adjacent_shard_to_merge: open[index + 1].shard_id.clone(),
                })
                .await
                .expect("merge");
        }
    }
}

fn covering(open: &[Shard], key: u128) -> usize {
    open.iter()
        .filter(|shard| shard.hash_key_range.contains(key))
        .count()
}

async fn check_coverage(broker: &Broker, probes: &[u128]) {
    let open = open_by_hash(broker).await;
    assert_eq!(open[0].hash_key_range.starting_hash_key, 0);
    assert_eq!(
        open[open.len() - 1].hash_key_range.ending_hash_key,
        u128::MAX
    );
    let mut keys: Vec<u128> = probes.to_vec();
    for shard in &open {
        let range = shard.hash_key_range;
        keys.extend([range.starting_hash_key, range.ending_hash_key]);
        keys.extend(range.starting_hash_key.checked_sub(1));
        keys.extend(range.ending_hash_key.checked_add(1));
    }
    for key in keys {
        assert_eq!(
            covering(&open, key),
            1,
            "hash key {key} must be in exactly one open shard"
        );
    }
}

/// Reads every shard once, parents before children, from TRIM_HORIZON.
async fn walk(broker: &Broker) -> HashMap<String, Vec<String>> {
    let all = shards(broker, Some(ShardFilter::FromTrimHorizon)).await;
    let parents: HashMap<ShardId, Vec<ShardId>> = all
        .iter()
        .map(|shard| {
            (
                shard.shard_id.clone(),
                shard.parent_shard_ids().cloned().collect(),
            )
        })
        .collect();
    let mut finished: HashSet<ShardId> = HashSet::new();
    let mut ready: Vec<ShardId> = all
        .iter()
        .filter(|shard| shard.parent_shard_id.is_none())
        .map(|shard| shard.shard_id.clone())
        .collect();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(shard_id) = ready.pop() {
        if !finished.insert(shard_id.clone()) {
            continue;
        }
        let it = iterator(broker, "s", &shard_id, StartingPosition::TrimHorizon).await;
        let (records, children) = drain(broker, it).await;
        for record in records {
            seen.entry(record.partition_key.to_string())
                .or_default()
                .push(String::from_utf8_lossy(&record.data).into_owned());
        }
        for child in children {
            let all_parents_done = parents
                .get(&child.shard_id)
                .is_some_and(|ps| ps.iter().all(|p| finished.contains(p)));
            if all_parents_done {
                ready.push(child.shard_id);
            }
        }
    }
    assert_eq!(
        finished.len(),
        all.len(),
        "every shard is reached through the lineage"
    );
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reshards_keep_coverage_and_every_record_once_in_order(
        initial_shards in 1u32..5,
        ops in prop::collection::vec(op(), 1..40),
        probes in prop::collection::vec(any::<u128>(), 16),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let broker = Broker::new(BrokerConfig::unlimited());
            create(&broker, "s", initial_shards).await;
            let mut acked = HashMap::new();
            let mut serial = 0;
            for op in &ops {
                apply(&broker, op, &mut serial, &mut acked).await;
                check_coverage(&broker, &probes).await;
            }
            let seen = walk(&broker).await;
            assert_eq!(seen, acked);
        });
    }
}
