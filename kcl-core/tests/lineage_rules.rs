//! Table-driven tests of lease creation from the shard graph, parent-before-child order and
//! cleanup, mirroring the Java KCL's `HierarchicalShardSyncer` tests (graphs A, B and C).

use kcl_core::kinesis::{
    ChildShard, EpochMillis, HashKeyRange, SequenceNumber, SequenceNumberRange, Shard, ShardId,
    StartingPosition,
};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lineage::{
    InitialPosition, LineageError, child_leases_at_shard_end, cleanup_candidates,
    is_ready_to_process, leases_to_create,
};
use std::collections::BTreeMap;

fn id(index: u64) -> ShardId {
    ShardId::from_index(index)
}

fn shard(index: u64, parents: &[u64], start: u128, end: Option<u128>) -> Shard {
    Shard {
        shard_id: id(index),
        parent_shard_id: parents.first().map(|p| id(*p)),
        adjacent_parent_shard_id: parents.get(1).map(|p| id(*p)),
        hash_key_range: HashKeyRange::FULL,
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: SequenceNumber::from_u128(start),
            ending_sequence_number: end.map(SequenceNumber::from_u128),
        },
    }
}

/// ```text
/// 0 1 2 3 4   5   - shards till epoch 102
/// \ / \ / |   |
///  6   7  4   5   - shards from epoch 103 - 205
///   \ /   |  / \
///    8    4 9  10 - shards from epoch 206 (open - no ending sequence number)
/// ```
fn graph_a() -> Vec<Shard> {
    vec![
        shard(0, &[], 11, Some(102)),
        shard(1, &[], 11, Some(102)),
        shard(2, &[], 11, Some(102)),
        shard(3, &[], 11, Some(102)),
        shard(4, &[], 11, None),
        shard(5, &[], 11, Some(205)),
        shard(6, &[0, 1], 103, Some(205)),
        shard(7, &[2, 3], 103, Some(205)),
        shard(8, &[6, 7], 206, None),
        shard(9, &[5], 206, None),
        shard(10, &[5], 206, None),
    ]
}

/// ```text
/// 0  3   6   9      (x-axis is epochs)
/// \ / \ / \ /
///  2   5   8
/// / \ / \ / \
/// 1  4   7  10
/// ```
fn graph_b() -> Vec<Shard> {
    vec![
        shard(0, &[], 1, Some(100)),
        shard(1, &[], 1, Some(100)),
        shard(2, &[0, 1], 101, Some(200)),
        shard(3, &[2], 201, Some(300)),
        shard(4, &[2], 201, Some(300)),
        shard(5, &[3, 4], 301, Some(400)),
        shard(6, &[5], 401, Some(500)),
        shard(7, &[5], 401, Some(500)),
        shard(8, &[6, 7], 501, Some(600)),
        shard(9, &[8], 601, None),
        shard(10, &[8], 601, None),
    ]
}

/// ```text
///     0      1  2  3   - shards till epoch 102
///   /   \    |  \ /
///  4     5   1   6     - shards from epoch 103 - 205
/// / \   / \  |   |
/// 7   8 9  10 1   6    - shards from epoch 206 (open)
/// ```
fn graph_c() -> Vec<Shard> {
    vec![
        shard(0, &[], 11, Some(102)),
        shard(1, &[], 11, None),
        shard(2, &[], 11, Some(102)),
        shard(3, &[], 11, Some(102)),
        shard(4, &[0], 103, Some(205)),
        shard(5, &[0], 103, Some(205)),
        shard(6, &[2, 3], 103, None),
        shard(7, &[4], 206, None),
        shard(8, &[4], 206, None),
        shard(9, &[5], 206, None),
        shard(10, &[5], 206, None),
    ]
}

fn leases_on(indices: &[u64]) -> Vec<Lease> {
    indices
        .iter()
        .map(|index| Lease::new(id(*index), ExtendedSequenceNumber::TRIM_HORIZON))
        .collect()
}

const AT_TIMESTAMP: InitialPosition = InitialPosition::AtTimestamp(EpochMillis(1_000));

struct Case {
    name: &'static str,
    graph: fn() -> Vec<Shard>,
    existing: &'static [u64],
    initial: InitialPosition,
    expected: &'static [u64],
}

fn case(
    name: &'static str,
    graph: fn() -> Vec<Shard>,
    existing: &'static [u64],
    initial: InitialPosition,
    expected: &'static [u64],
) -> Case {
    Case {
        name,
        graph,
        existing,
        initial,
        expected,
    }
}

#[test]
fn leases_are_created_at_the_first_ancestor_level_that_needs_processing() {
    use InitialPosition::{Latest, TrimHorizon};
    let cases = [
        // The javadoc's worked example.
        case("A {4,5,7} LATEST", graph_a, &[4, 5, 7], Latest, &[6]),
        case(
            "A {4,5,7} TRIM_HORIZON",
            graph_a,
            &[4, 5, 7],
            TrimHorizon,
            &[0, 1],
        ),
        case(
            "A {4,5,7} AT_TIMESTAMP",
            graph_a,
            &[4, 5, 7],
            AT_TIMESTAMP,
            &[0, 1],
        ),
        // Graph A, partial hash ranges.
        case("A {3,4,5} LATEST", graph_a, &[3, 4, 5], Latest, &[2, 6]),
        case("A {2,6} LATEST", graph_a, &[2, 6], Latest, &[3, 4, 9, 10]),
        case("A {4,9,10} LATEST", graph_a, &[4, 9, 10], Latest, &[8]),
        case(
            "A {3,4,5} TRIM_HORIZON",
            graph_a,
            &[3, 4, 5],
            TrimHorizon,
            &[0, 1, 2],
        ),
        case(
            "A {2,6} TRIM_HORIZON",
            graph_a,
            &[2, 6],
            TrimHorizon,
            &[3, 4, 5],
        ),
        case(
            "A {4,9,10} TRIM_HORIZON",
            graph_a,
            &[4, 9, 10],
            TrimHorizon,
            &[0, 1, 2, 3],
        ),
        case(
            "A {3,4,5} AT_TIMESTAMP",
            graph_a,
            &[3, 4, 5],
            AT_TIMESTAMP,
            &[0, 1, 2],
        ),
        case(
            "A {2,6} AT_TIMESTAMP",
            graph_a,
            &[2, 6],
            AT_TIMESTAMP,
            &[3, 4, 5],
        ),
        case(
            "A {4,9,10} AT_TIMESTAMP",
            graph_a,
            &[4, 9, 10],
            AT_TIMESTAMP,
            &[0, 1, 2, 3],
        ),
        // Graph A, complete hash ranges: nothing to create.
        case("A {4,5,6,7} LATEST", graph_a, &[4, 5, 6, 7], Latest, &[]),
        case(
            "A {4,5,6,7} TRIM_HORIZON",
            graph_a,
            &[4, 5, 6, 7],
            TrimHorizon,
            &[],
        ),
        case(
            "A {0..7} LATEST",
            graph_a,
            &[0, 1, 2, 3, 4, 5, 6, 7],
            Latest,
            &[],
        ),
        case(
            "A {0..7} TRIM_HORIZON",
            graph_a,
            &[0, 1, 2, 3, 4, 5, 6, 7],
            TrimHorizon,
            &[],
        ),
        case(
            "A across epochs LATEST",
            graph_a,
            &[0, 1, 4, 7, 9, 10],
            Latest,
            &[],
        ),
        case(
            "A across epochs TRIM_HORIZON",
            graph_a,
            &[0, 1, 4, 7, 9, 10],
            TrimHorizon,
            &[],
        ),
        // Empty tables: the shards at the initial position.
        case("A empty LATEST", graph_a, &[], Latest, &[4, 8, 9, 10]),
        case(
            "A empty TRIM_HORIZON",
            graph_a,
            &[],
            TrimHorizon,
            &[0, 1, 2, 3, 4, 5],
        ),
        case(
            "A empty AT_TIMESTAMP",
            graph_a,
            &[],
            AT_TIMESTAMP,
            &[0, 1, 2, 3, 4, 5],
        ),
        // Graph B: chains of splits and merges.
        case("B {6} LATEST", graph_b, &[6], Latest, &[7]),
        case("B {5} LATEST", graph_b, &[5], Latest, &[]),
        case("B {5} TRIM_HORIZON", graph_b, &[5], TrimHorizon, &[]),
        case("B {0..5} LATEST", graph_b, &[0, 1, 2, 3, 4, 5], Latest, &[]),
        case(
            "B {0..5} TRIM_HORIZON",
            graph_b,
            &[0, 1, 2, 3, 4, 5],
            TrimHorizon,
            &[],
        ),
        case("B empty LATEST", graph_b, &[], Latest, &[9, 10]),
        case("B empty TRIM_HORIZON", graph_b, &[], TrimHorizon, &[0, 1]),
        case("B empty AT_TIMESTAMP", graph_b, &[], AT_TIMESTAMP, &[0, 1]),
        // Graph C: a split of a split next to an unsplit shard and a merge.
        case("C {9,10} LATEST", graph_c, &[9, 10], Latest, &[1, 6, 7, 8]),
        case(
            "C {9,10} TRIM_HORIZON",
            graph_c,
            &[9, 10],
            TrimHorizon,
            &[0, 1, 2, 3],
        ),
        case("C empty LATEST", graph_c, &[], Latest, &[1, 6, 7, 8, 9, 10]),
        case(
            "C empty TRIM_HORIZON",
            graph_c,
            &[],
            TrimHorizon,
            &[0, 1, 2, 3],
        ),
        case("C {4,5,1,6} LATEST", graph_c, &[1, 4, 5, 6], Latest, &[]),
    ];
    for case in cases {
        let shards = (case.graph)();
        let created = leases_to_create(&shards, &leases_on(case.existing), case.initial);
        let mut keys: Vec<u64> = created
            .iter()
            .map(|lease| lease.lease_key.index().expect("index"))
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, case.expected, "{}", case.name);
        for lease in &created {
            // Every lease starts at the initial position's sentinel (a created ancestor of a
            // leased shard under TRIM_HORIZON is TRIM_HORIZON, which is the same sentinel).
            assert_eq!(lease.checkpoint, case.initial.checkpoint(), "{}", case.name);
            let shard = shards
                .iter()
                .find(|shard| shard.shard_id == lease.lease_key)
                .expect("lease for a listed shard");
            let parents: Vec<ShardId> = shard.parent_shard_ids().cloned().collect();
            assert_eq!(lease.parent_shard_ids, parents, "{}", case.name);
            assert_eq!(lease.hash_key_range, Some(shard.hash_key_range));
            assert_eq!(lease.lease_owner, None);
        }
    }
}

#[test]
fn closed_shards_without_descendants_get_no_lease() {
    let shards = vec![
        shard(0, &[], 303, Some(404)),
        shard(1, &[], 405, None),
        shard(2, &[], 202, Some(302)),
    ];
    let created = leases_to_create(&shards, &leases_on(&[2]), InitialPosition::Latest);
    let keys: Vec<&ShardId> = created.iter().map(|lease| &lease.lease_key).collect();
    assert_eq!(keys, vec![&id(1)]);
}

#[test]
fn created_leases_are_sorted_by_starting_sequence_number() {
    let created = leases_to_create(&graph_b(), &[], InitialPosition::Latest);
    let keys: Vec<u64> = created
        .iter()
        .map(|lease| lease.lease_key.index().expect("index"))
        .collect();
    assert_eq!(keys, vec![9, 10]);
    // Graph A under TRIM_HORIZON: all at sequence 11, then ordered by shard id.
    let created = leases_to_create(&graph_a(), &[], InitialPosition::TrimHorizon);
    let keys: Vec<u64> = created
        .iter()
        .map(|lease| lease.lease_key.index().expect("index"))
        .collect();
    assert_eq!(keys, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn existing_leases_are_never_recreated() {
    for initial in [
        InitialPosition::Latest,
        InitialPosition::TrimHorizon,
        AT_TIMESTAMP,
    ] {
        for graph in [graph_a, graph_b, graph_c] {
            let shards = graph();
            let first = leases_to_create(&shards, &[], initial);
            let second = leases_to_create(&shards, &first, initial);
            assert!(second.is_empty(), "{initial:?}: {second:?}");
        }
    }
}

fn child(index: u64, parents: &[u64]) -> ChildShard {
    ChildShard {
        shard_id: id(index),
        parent_shards: parents.iter().map(|p| id(*p)).collect(),
        hash_key_range: HashKeyRange::FULL,
    }
}

#[test]
fn child_leases_at_shard_end_for_splits_and_merges() {
    let split =
        child_leases_at_shard_end(&id(0), &[child(1, &[0]), child(2, &[0])]).expect("valid split");
    assert_eq!(split.len(), 2);
    for lease in &split {
        assert_eq!(lease.checkpoint, ExtendedSequenceNumber::TRIM_HORIZON);
        assert_eq!(lease.parent_shard_ids, vec![id(0)]);
        assert_eq!(lease.lease_owner, None);
        assert_eq!(lease.hash_key_range, Some(HashKeyRange::FULL));
    }
    let merge = child_leases_at_shard_end(&id(4), &[child(6, &[3, 4])]).expect("valid merge");
    assert_eq!(merge[0].parent_shard_ids, vec![id(3), id(4)]);

    assert_eq!(
        child_leases_at_shard_end(&id(5), &[child(6, &[3, 4])]),
        Err(LineageError::NotAChildOf {
            child: id(6),
            parent: id(5)
        })
    );
    assert_eq!(
        child_leases_at_shard_end(&id(1), &[child(6, &[1, 2, 3])]),
        Err(LineageError::WrongParentCount {
            child: id(6),
            count: 3
        })
    );
}

fn lease_with(index: u64, parents: &[u64], checkpoint: ExtendedSequenceNumber) -> Lease {
    let mut lease = Lease::new(id(index), checkpoint);
    lease.parent_shard_ids = parents.iter().map(|p| id(*p)).collect();
    lease
}

fn sequence(n: u128) -> ExtendedSequenceNumber {
    ExtendedSequenceNumber::new(SequenceNumber::from_u128(n), 0)
}

#[test]
fn children_wait_for_every_parent_to_finish() {
    let end = ExtendedSequenceNumber::SHARD_END;
    let trim = ExtendedSequenceNumber::TRIM_HORIZON;
    // (parent leases in the table, child's parents, ready?)
    let cases: Vec<(&str, Vec<Lease>, &[u64], bool)> = vec![
        ("no parents", vec![], &[], true),
        ("split parent absent", vec![], &[0], true),
        (
            "split parent processing",
            vec![lease_with(0, &[], sequence(5))],
            &[0],
            false,
        ),
        (
            "split parent not started",
            vec![lease_with(0, &[], trim)],
            &[0],
            false,
        ),
        (
            "split parent finished",
            vec![lease_with(0, &[], end)],
            &[0],
            true,
        ),
        (
            "merge, one parent finished",
            vec![lease_with(0, &[], end), lease_with(1, &[], sequence(9))],
            &[0, 1],
            false,
        ),
        (
            "merge, both finished",
            vec![lease_with(0, &[], end), lease_with(1, &[], end)],
            &[0, 1],
            true,
        ),
        (
            "merge, one finished one cleaned up",
            vec![lease_with(1, &[], end)],
            &[0, 1],
            true,
        ),
    ];
    for (name, mut table, parents, ready) in cases {
        let child = lease_with(9, parents, trim);
        table.push(child.clone());
        assert_eq!(is_ready_to_process(&child, &table), ready, "{name}");
    }
}

#[test]
fn finished_leases_are_cleaned_up_only_after_children_started_and_parents_are_gone() {
    let end = ExtendedSequenceNumber::SHARD_END;
    let trim = ExtendedSequenceNumber::TRIM_HORIZON;
    let finished_parent = |children: &[u64], parents: &[u64]| {
        let mut lease = lease_with(1, parents, end);
        lease.child_shard_ids = children.iter().map(|c| id(*c)).collect();
        lease
    };
    let cases: Vec<(&str, Vec<Lease>, Vec<u64>)> = vec![
        (
            "children started",
            vec![
                finished_parent(&[2, 3], &[]),
                lease_with(2, &[1], sequence(3)),
                lease_with(3, &[1], end),
            ],
            vec![1],
        ),
        (
            "a child still at TRIM_HORIZON",
            vec![
                finished_parent(&[2, 3], &[]),
                lease_with(2, &[1], sequence(3)),
                lease_with(3, &[1], trim),
            ],
            vec![],
        ),
        (
            "a child at AT_TIMESTAMP",
            vec![
                finished_parent(&[2], &[]),
                lease_with(2, &[1], ExtendedSequenceNumber::AT_TIMESTAMP),
            ],
            vec![],
        ),
        (
            "a child lease missing",
            vec![
                finished_parent(&[2, 3], &[]),
                lease_with(2, &[1], sequence(3)),
            ],
            vec![],
        ),
        (
            "own parent still present",
            vec![
                lease_with(0, &[], end),
                finished_parent(&[2], &[0]),
                lease_with(2, &[1], sequence(3)),
            ],
            vec![],
        ),
        (
            "own parent gone",
            vec![
                finished_parent(&[2], &[0]),
                lease_with(2, &[1], sequence(3)),
            ],
            vec![1],
        ),
        ("children unknown", vec![finished_parent(&[], &[])], vec![]),
        (
            "not finished",
            vec![
                {
                    let mut lease = finished_parent(&[2], &[]);
                    lease.checkpoint = sequence(7);
                    lease
                },
                lease_with(2, &[1], sequence(3)),
            ],
            vec![],
        ),
    ];
    for (name, table, expected) in cases {
        let candidates: Vec<u64> = cleanup_candidates(&table)
            .iter()
            .map(|key| key.index().expect("index"))
            .collect();
        assert_eq!(candidates, expected, "{name}");
    }
}

#[test]
fn checkpoints_map_to_starting_positions() {
    let at = EpochMillis(5_000);
    let seq = SequenceNumber::from_u128(77);
    let cases: BTreeMap<
        &str,
        (
            InitialPosition,
            ExtendedSequenceNumber,
            Option<StartingPosition>,
        ),
    > = BTreeMap::from([
        (
            "trim",
            (
                InitialPosition::Latest,
                ExtendedSequenceNumber::TRIM_HORIZON,
                Some(StartingPosition::TrimHorizon),
            ),
        ),
        (
            "latest",
            (
                InitialPosition::TrimHorizon,
                ExtendedSequenceNumber::LATEST,
                Some(StartingPosition::Latest),
            ),
        ),
        (
            "timestamp",
            (
                InitialPosition::AtTimestamp(at),
                ExtendedSequenceNumber::AT_TIMESTAMP,
                Some(StartingPosition::AtTimestamp(at)),
            ),
        ),
        (
            "sequence",
            (
                InitialPosition::Latest,
                ExtendedSequenceNumber::new(seq, 0),
                // Re-read the checkpointed record: it may be an aggregate whose later user
                // records are still to be processed; the reader drops (seq, 0) itself.
                Some(StartingPosition::AtSequenceNumber(seq)),
            ),
        ),
        (
            "sub-sequence",
            (
                InitialPosition::Latest,
                ExtendedSequenceNumber::new(seq, 3),
                Some(StartingPosition::AtSequenceNumber(seq)),
            ),
        ),
        (
            "shard end",
            (
                InitialPosition::Latest,
                ExtendedSequenceNumber::SHARD_END,
                None,
            ),
        ),
    ]);
    for (name, (initial, checkpoint, expected)) in cases {
        assert_eq!(initial.starting_position(&checkpoint), expected, "{name}");
    }
}
