//! Property tests of the pure rules: lease assignment plans and lease creation from random
//! shard graphs.

use kcl_core::assignment::{LeaseObservations, TakePlan, fair_shares, plan_takes};
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::{HashKeyRange, SequenceNumber, SequenceNumberRange, Shard, ShardId};
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use kcl_core::lineage::{InitialPosition, leases_to_create};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

const ME: &str = "worker-0";

/// A lease table: (owner index or none, counter changed in the second scan?, finished?).
fn table() -> impl Strategy<Value = Vec<(Option<u8>, bool, bool)>> {
    prop::collection::vec(
        (
            prop::option::of(0u8..5),
            any::<bool>(),
            prop::bool::weighted(0.1),
        ),
        0..40,
    )
}

fn leases(spec: &[(Option<u8>, bool, bool)], second_scan: bool) -> Vec<Lease> {
    spec.iter()
        .enumerate()
        .map(|(index, (owner, changes, finished))| {
            let mut lease = Lease::new(
                ShardId::from_index(index as u64),
                if *finished {
                    ExtendedSequenceNumber::SHARD_END
                } else {
                    ExtendedSequenceNumber::TRIM_HORIZON
                },
            );
            lease.lease_owner = owner.map(|o| format!("worker-{o}"));
            lease.lease_counter = if second_scan && *changes { 2 } else { 1 };
            lease
        })
        .collect()
}

proptest! {
    #[test]
    fn plans_respect_the_assignment_rules(
        spec in table(),
        gap_ms in 0u64..40_000,
        max_steal in 1usize..4,
        max_leases in 1usize..50,
        parallel in any::<bool>(),
        whole_deficit in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let config = LeaseConfig::builder()
            .max_leases_to_steal_at_one_time(max_steal)
            .max_leases_for_worker(max_leases)
            .parallel_stealing(parallel)
            .steal_whole_deficit(whole_deficit)
            .build()
            .expect("valid");
        let first = Duration::from_secs(100);
        let now = first + Duration::from_millis(gap_ms);
        let mut observations = LeaseObservations::new();
        observations.observe_scan(leases(&spec, false), first);
        observations.observe_scan(leases(&spec, true), now);
        let plan = plan_takes(&observations, ME, now, &config, seed);
        prop_assert_eq!(&plan, &plan_takes(&observations, ME, now, &config, seed));

        let counts = observations.lease_counts(now, &config);
        let mine = counts.get(ME).copied().unwrap_or(0);
        let mut seen = BTreeSet::new();
        for take in plan.all() {
            prop_assert!(seen.insert(take.lease_key.clone()), "planned twice");
            let observed = observations.get(&take.lease_key).expect("observed");
            prop_assert_eq!(take.expected_counter, observed.lease.lease_counter);
            prop_assert!(!observed.lease.is_finished(), "finished leases are never taken");
        }
        for take in &plan.take {
            let observed = observations.get(&take.lease_key).expect("observed");
            prop_assert!(observed.is_available(now, &config), "took an unavailable lease");
        }
        prop_assert!(mine + plan.take.len() + plan.steal.len() <= config.max_leases_for_worker().max(mine));
        if !plan.steal.is_empty() {
            prop_assert!(plan.take.is_empty());
            let any_available = observations
                .iter()
                .filter(|observed| !observed.lease.is_finished())
                .any(|observed| observed.is_available(now, &config));
            prop_assert!(!any_available, "stole while leases were available");
            prop_assert!(mine + plan.steal.len() <= plan.target);
            let mut per_victim: HashMap<&str, usize> = HashMap::new();
            for steal in &plan.steal {
                let victim = steal.previous_owner.as_deref().expect("stolen from someone");
                prop_assert_ne!(victim, ME);
                *per_victim.entry(victim).or_default() += 1;
            }
            if !parallel || !whole_deficit {
                prop_assert!(per_victim.values().all(|count| *count <= max_steal));
            }
            if !parallel {
                prop_assert_eq!(per_victim.len(), 1, "the Java rule steals from one worker");
            }
            let mut all_counts = counts.clone();
            all_counts.entry(ME.to_owned()).or_insert(0);
            let shares = fair_shares(&all_counts, plan.lease_count, &config);
            for (victim, stolen) in per_victim {
                let had = counts.get(victim).copied().unwrap_or(0);
                // Never leaves a victim below target - 1.
                prop_assert!(had - stolen + 1 >= plan.target, "{victim} had {had}, lost {stolen}");
                if parallel {
                    // The fair-share plan never takes a victim below its own share.
                    prop_assert!(had - stolen >= shares[victim], "{victim} had {had}, lost {stolen}");
                }
            }
        }
    }
}

/// A table of `free` unowned leases and `held[w]` leases owned by `worker-w`, scanned twice by
/// every worker (the second scan after everyone renewed), and each worker's fair-share plan.
fn fleet_plans(free: usize, held: &[usize]) -> (Vec<Lease>, Vec<(String, TakePlan)>) {
    let mut table = Vec::new();
    for _ in 0..free {
        table.push(None);
    }
    for (worker, count) in held.iter().enumerate() {
        for _ in 0..*count {
            table.push(Some(format!("worker-{worker}")));
        }
    }
    let leases = |counter: u64| -> Vec<Lease> {
        table
            .iter()
            .enumerate()
            .map(|(index, owner)| {
                let mut lease = Lease::new(
                    ShardId::from_index(index as u64),
                    ExtendedSequenceNumber::TRIM_HORIZON,
                );
                lease.lease_owner = owner.clone();
                lease.lease_counter = if owner.is_some() { counter } else { 0 };
                lease
            })
            .collect()
    };
    let first = Duration::from_secs(100);
    let second = first + Duration::from_secs(1);
    let config = LeaseConfig::default();
    let plans = (0..held.len())
        .map(|worker| {
            let id = format!("worker-{worker}");
            let mut observations = LeaseObservations::new();
            observations.observe_scan(leases(1), first);
            observations.observe_scan(leases(2), second);
            let plan = plan_takes(&observations, &id, second, &config, worker as u64);
            (id, plan)
        })
        .collect();
    (leases(2), plans)
}

proptest! {
    /// Workers that all hold leases and plan from the same scan plan disjoint takes, each from
    /// the owner the scan showed; carried out (free leases first, then, from a scan of the
    /// result, steals) they take every free lease and balance the fleet.
    #[test]
    fn fair_share_plans_from_one_scan_are_disjoint_and_balance(
        free in 0usize..40,
        held in prop::collection::vec(1usize..40, 1..10),
    ) {
        let worker_index = |id: &str| -> usize {
            id.trim_start_matches("worker-").parse().expect("worker index")
        };
        let mut counts = held.clone();
        for free in [free, 0] {
            let (table, plans) = fleet_plans(free, &counts);
            let mut planned = BTreeSet::new();
            for (worker, plan) in &plans {
                for take in plan.all() {
                    let index = take.lease_key.index().expect("index");
                    prop_assert!(planned.insert(index), "{} planned twice", index);
                    let lease = &table[index as usize];
                    prop_assert_eq!(lease.lease_counter, take.expected_counter);
                    prop_assert_eq!(&lease.lease_owner, &take.previous_owner);
                    if let Some(victim) = &take.previous_owner {
                        counts[worker_index(victim)] -= 1;
                    }
                    counts[worker_index(worker)] += 1;
                }
            }
        }
        prop_assert_eq!(counts.iter().sum::<usize>(), free + held.iter().sum::<usize>(), "all free leases taken");
        let max = counts.iter().max().copied().unwrap_or(0);
        let min = counts.iter().min().copied().unwrap_or(0);
        prop_assert!(max - min <= 1, "{:?} + {} free -> {:?}", held, free, counts);
    }
}

/// Builds a random shard graph: `roots` shards, then splits and merges of open shards.
fn graph(roots: u64, operations: &[(bool, usize, usize)]) -> Vec<Shard> {
    let mut parents: BTreeMap<u64, Vec<u64>> = (0..roots).map(|id| (id, Vec::new())).collect();
    let mut closed = BTreeSet::new();
    let mut next = roots;
    for (split, a, b) in operations {
        let open: Vec<u64> = parents
            .keys()
            .filter(|id| !closed.contains(*id))
            .copied()
            .collect();
        if open.is_empty() {
            break;
        }
        let first = open[a % open.len()];
        if *split {
            closed.insert(first);
            for _ in 0..2 {
                parents.insert(next, vec![first]);
                next += 1;
            }
        } else {
            let second = open[b % open.len()];
            if first == second {
                continue;
            }
            closed.insert(first);
            closed.insert(second);
            parents.insert(next, vec![first, second]);
            next += 1;
        }
    }
    parents
        .into_iter()
        .map(|(id, parents)| Shard {
            shard_id: ShardId::from_index(id),
            parent_shard_id: parents.first().map(|p| ShardId::from_index(*p)),
            adjacent_parent_shard_id: parents.get(1).map(|p| ShardId::from_index(*p)),
            hash_key_range: HashKeyRange::FULL,
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: SequenceNumber::from_u128(u128::from(id)),
                ending_sequence_number: closed
                    .contains(&id)
                    .then(|| SequenceNumber::from_u128(u128::MAX)),
            },
        })
        .collect()
}

fn initial_position() -> impl Strategy<Value = InitialPosition> {
    prop_oneof![
        Just(InitialPosition::Latest),
        Just(InitialPosition::TrimHorizon),
        Just(InitialPosition::AtTimestamp(
            kcl_core::kinesis::EpochMillis(1_000)
        )),
    ]
}

proptest! {
    #[test]
    fn lease_creation_covers_every_open_shard_once(
        roots in 1u64..5,
        operations in prop::collection::vec((any::<bool>(), any::<usize>(), any::<usize>()), 0..12),
        leased_mask in any::<u64>(),
        initial in initial_position(),
    ) {
        let shards = graph(roots, &operations);
        let existing: Vec<Lease> = shards
            .iter()
            .enumerate()
            .filter(|(position, _)| leased_mask & (1 << (position % 64)) != 0)
            .map(|(_, shard)| Lease::new(shard.shard_id.clone(), ExtendedSequenceNumber::TRIM_HORIZON))
            .collect();
        let created = leases_to_create(&shards, &existing, initial);

        let existing_keys: BTreeSet<&ShardId> = existing.iter().map(|lease| &lease.lease_key).collect();
        let mut created_keys = BTreeSet::new();
        for lease in &created {
            prop_assert!(!existing_keys.contains(&lease.lease_key), "recreated {}", lease.lease_key);
            prop_assert!(created_keys.insert(lease.lease_key.clone()), "created twice");
            prop_assert!(shards.iter().any(|shard| shard.shard_id == lease.lease_key));
        }
        // Idempotent: a second sync creates nothing.
        let mut all = existing.clone();
        all.extend(created.iter().cloned());
        prop_assert!(leases_to_create(&shards, &all, initial).is_empty());
        // Coverage: every open shard has a lease or an ancestor with one.
        let by_id: HashMap<&ShardId, &Shard> = shards.iter().map(|shard| (&shard.shard_id, shard)).collect();
        let leased: BTreeSet<&ShardId> = all.iter().map(|lease| &lease.lease_key).collect();
        for shard in shards.iter().filter(|shard| !shard.is_closed()) {
            let mut frontier = vec![&shard.shard_id];
            let mut covered = false;
            while let Some(id) = frontier.pop() {
                if leased.contains(id) {
                    covered = true;
                    break;
                }
                frontier.extend(by_id[id].parent_shard_ids());
            }
            prop_assert!(covered, "open shard {} is not covered", shard.shard_id);
        }
    }
}
