//! Table-driven tests of lease assignment, mirroring the Java KCL's lease-taker tests.

use kcl_core::assignment::{LeaseObservations, TakePlan, fair_shares, plan_takes};
use kcl_core::config::LeaseConfig;
use kcl_core::kinesis::ShardId;
use kcl_core::lease::{ExtendedSequenceNumber, Lease};
use std::collections::BTreeMap;
use std::time::Duration;

const ME: &str = "foo";

fn lease(index: u64, owner: Option<&str>) -> Lease {
    let mut lease = Lease::new(
        ShardId::from_index(index),
        ExtendedSequenceNumber::TRIM_HORIZON,
    );
    lease.lease_owner = owner.map(str::to_owned);
    lease
}

/// A lease table the tests mutate between scans, with a local clock.
struct Harness {
    leases: BTreeMap<u64, Lease>,
    observations: LeaseObservations,
    now: Duration,
    config: LeaseConfig,
}

impl Harness {
    fn new(owners: &[Option<&str>], config: LeaseConfig) -> Self {
        Harness {
            leases: owners
                .iter()
                .enumerate()
                .map(|(index, owner)| (index as u64, lease(index as u64, *owner)))
                .collect(),
            observations: LeaseObservations::new(),
            // Monotonic clocks start anywhere; start well past zero.
            now: Duration::from_secs(1_000),
            config,
        }
    }

    fn with_default(owners: &[Option<&str>]) -> Self {
        Harness::new(owners, LeaseConfig::default())
    }

    fn pass_time(&mut self, by: Duration) {
        self.now += by;
    }

    fn failover_plus_one(&self) -> Duration {
        self.config.failover_time() + Duration::from_millis(1)
    }

    /// Owners renew: every owned lease's counter moves (except those of `silent` owners).
    fn renew_all_except(&mut self, silent: &[&str]) {
        for lease in self.leases.values_mut() {
            let Some(owner) = &lease.lease_owner else {
                continue;
            };
            if !silent.contains(&owner.as_str()) {
                lease.lease_counter += 1;
            }
        }
    }

    fn scan_and_plan(&mut self, worker: &str, seed: u64) -> TakePlan {
        self.observations
            .observe_scan(self.leases.values().cloned(), self.now);
        plan_takes(&self.observations, worker, self.now, &self.config, seed)
    }

    /// Applies a plan as the store would (counter check always passes here: single taker).
    fn apply(&mut self, plan: &TakePlan, worker: &str) {
        for take in plan.all() {
            let index = take.lease_key.index().expect("kinesis-style id");
            let lease = self.leases.get_mut(&index).expect("planned lease exists");
            assert_eq!(lease.lease_counter, take.expected_counter);
            lease.lease_counter += 1;
            lease.lease_owner = Some(worker.to_owned());
        }
    }

    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for lease in self.leases.values() {
            if let Some(owner) = &lease.lease_owner {
                *counts.entry(owner.clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn keys(plan: &TakePlan) -> Vec<u64> {
    let mut keys: Vec<u64> = plan
        .all()
        .map(|take| take.lease_key.index().expect("index"))
        .collect();
    keys.sort_unstable();
    keys
}

fn no_very_old() -> LeaseConfig {
    // As the Java test: an unusually high multiplier disables very-old priority.
    LeaseConfig::builder()
        .very_old_lease_multiplier(5_000_000)
        .build()
        .expect("valid")
}

#[test]
fn simple_take() {
    let mut harness = Harness::with_default(&[None]);
    let plan = harness.scan_and_plan(ME, 1);
    assert_eq!(keys(&plan), vec![0]);
    assert!(plan.steal.is_empty());
}

#[test]
fn does_not_take_a_recently_renewed_lease() {
    let mut harness = Harness::with_default(&[Some("bar")]);
    assert!(harness.scan_and_plan(ME, 1).is_empty());
    harness.pass_time(harness.failover_plus_one());
    harness.renew_all_except(&[]);
    // The counter moved since the last scan: bar is alive.
    assert!(harness.scan_and_plan(ME, 2).is_empty());
}

#[test]
fn does_not_take_a_newly_seen_owned_lease_until_failover_passes() {
    let mut harness = Harness::with_default(&[Some("bar")]);
    assert!(harness.scan_and_plan(ME, 1).is_empty());
    harness.pass_time(harness.config.failover_time());
    assert!(
        harness.scan_and_plan(ME, 2).is_empty(),
        "exactly the failover time is not yet expired"
    );
    harness.pass_time(Duration::from_millis(1));
    assert_eq!(keys(&harness.scan_and_plan(ME, 3)), vec![0]);
}

#[test]
fn takes_its_own_lease_only_once_expired() {
    let mut harness = Harness::with_default(&[Some(ME)]);
    assert!(harness.scan_and_plan(ME, 1).is_empty());
    harness.pass_time(harness.failover_plus_one());
    assert_eq!(keys(&harness.scan_and_plan(ME, 2)), vec![0]);
}

#[test]
fn takes_an_evicted_lease_at_once() {
    let mut harness = Harness::with_default(&[Some("bar")]);
    assert!(harness.scan_and_plan(ME, 1).is_empty());
    let evicted = harness.leases.get_mut(&0).expect("lease");
    evicted.lease_owner = None;
    evicted.lease_counter += 1;
    assert_eq!(keys(&harness.scan_and_plan(ME, 2)), vec![0]);
}

#[test]
fn non_greedy_take_four_leases_two_workers() {
    let mut harness = Harness::new(&[None, None, None, Some("bar")], no_very_old());
    let plan = harness.scan_and_plan(ME, 1);
    assert_eq!(plan.target, 2);
    assert_eq!(plan.take.len(), 2);
    assert!(plan.steal.is_empty());
}

fn java_rule() -> LeaseConfig {
    LeaseConfig::builder()
        .parallel_stealing(false)
        .build()
        .expect("valid")
}

#[test]
fn java_rule_takes_never_changed_leases_as_very_old_ignoring_the_target() {
    let mut harness = Harness::new(&[None, None, None, Some("bar")], java_rule());
    let plan = harness.scan_and_plan(ME, 1);
    assert_eq!(keys(&plan), vec![0, 1, 2]);
}

#[test]
fn fair_share_takes_never_changed_leases_up_to_its_share() {
    // The monotonic clock is far past the very-old age, but this worker has only just seen
    // the leases: they are free, not very old, and the share (2 of 4) applies.
    let mut harness = Harness::with_default(&[None, None, None, Some("bar")]);
    let plan = harness.scan_and_plan(ME, 1);
    assert_eq!((plan.target, plan.take.len()), (2, 2));
}

#[test]
fn fair_share_takes_leases_seen_free_for_the_very_old_age_ignoring_the_share() {
    let mut harness = Harness::with_default(&[None, None, None, Some("bar")]);
    harness.scan_and_plan(ME, 1);
    for _ in 0..3 {
        harness.pass_time(harness.config.failover_time());
        harness.renew_all_except(&[]);
        harness.scan_and_plan(ME, 1);
    }
    harness.pass_time(Duration::from_millis(1));
    harness.renew_all_except(&[]);
    // Nobody took them for over 3 × failover: take them all, share or not.
    assert_eq!(keys(&harness.scan_and_plan(ME, 1)), vec![0, 1, 2]);
}

#[test]
fn very_old_takes_respect_max_leases_for_worker() {
    let config = LeaseConfig::builder()
        .max_leases_for_worker(2)
        .build()
        .expect("valid");
    let mut harness = Harness::new(&[None, None, None, None], config);
    assert_eq!(harness.scan_and_plan(ME, 1).take.len(), 2);
}

#[test]
fn leases_unchanged_for_the_very_old_age_are_taken_first() {
    // bar stops renewing; after 3 × failover its leases are very old and all taken at once
    // even though the target is smaller (baz is alive with one lease).
    let mut harness = Harness::with_default(&[Some("bar"), Some("bar"), Some("bar"), Some("baz")]);
    harness.scan_and_plan(ME, 1);
    for _ in 0..4 {
        harness.pass_time(harness.config.failover_time());
        harness.renew_all_except(&["bar"]);
    }
    let plan = harness.scan_and_plan(ME, 2);
    assert_eq!(keys(&plan), vec![0, 1, 2]);
}

#[test]
fn no_steal_when_off_by_one() {
    let owners = [Some("bar"), Some("bar"), Some("baz"), Some("baz"), Some(ME)];
    for parallel in [false, true] {
        let config = LeaseConfig::builder()
            .parallel_stealing(parallel)
            .build()
            .expect("valid");
        let mut harness = Harness::new(&owners, config);
        harness.scan_and_plan(ME, 1);
        harness.pass_time(Duration::from_secs(1));
        harness.renew_all_except(&[]);
        let plan = harness.scan_and_plan(ME, 2);
        // The Java target is ceil(5 / 3); the fair share of the least loaded worker is 1.
        let target = if parallel { 1 } else { 2 };
        assert_eq!(plan.target, target, "parallel={parallel}");
        assert!(plan.is_empty(), "parallel={parallel}: {plan:?}");
    }
}

#[test]
fn steals_from_an_overloaded_worker() {
    // 1 vs 5: the Java rule steals one lease per run; the fair-share plan steals the whole
    // deficit (2) unless told to respect max_leases_to_steal_at_one_time per victim.
    let owners = [
        Some(ME),
        Some("bar"),
        Some("bar"),
        Some("bar"),
        Some("bar"),
        Some("bar"),
    ];
    let cases = [(false, true, 1), (true, true, 2), (true, false, 1)];
    for (parallel, whole_deficit, expected) in cases {
        let config = LeaseConfig::builder()
            .parallel_stealing(parallel)
            .steal_whole_deficit(whole_deficit)
            .build()
            .expect("valid");
        let mut harness = Harness::new(&owners, config);
        harness.scan_and_plan(ME, 1);
        harness.pass_time(Duration::from_secs(1));
        harness.renew_all_except(&[]);
        let plan = harness.scan_and_plan(ME, 2);
        let label = format!("parallel={parallel}, whole deficit={whole_deficit}");
        assert_eq!(plan.target, 3, "{label}");
        assert!(plan.take.is_empty(), "{label}");
        assert_eq!(plan.steal.len(), expected, "{label}");
        for stolen in &plan.steal {
            assert_eq!(stolen.previous_owner.as_deref(), Some("bar"));
            let seen = &harness.leases[&stolen.lease_key.index().expect("index")];
            assert_eq!(stolen.expected_counter, seen.lease_counter);
        }
    }
}

#[test]
fn does_not_steal_while_expired_leases_exist() {
    // bar holds 4 live leases; zed's single lease expires. The expired one is taken, nothing
    // is stolen even though this worker is below target.
    let owners = [
        Some("bar"),
        Some("bar"),
        Some("bar"),
        Some("bar"),
        Some("zed"),
    ];
    let mut harness = Harness::new(&owners, no_very_old());
    harness.scan_and_plan(ME, 1);
    harness.pass_time(harness.failover_plus_one());
    harness.renew_all_except(&["zed"]);
    let plan = harness.scan_and_plan(ME, 2);
    assert_eq!(keys(&plan), vec![4]);
    assert!(plan.steal.is_empty());
}

#[test]
fn finished_leases_are_neither_counted_nor_taken() {
    let mut harness = Harness::with_default(&[None, None]);
    harness.leases.get_mut(&0).expect("lease").checkpoint = ExtendedSequenceNumber::SHARD_END;
    let plan = harness.scan_and_plan(ME, 1);
    assert_eq!(plan.lease_count, 1);
    assert_eq!(keys(&plan), vec![1]);
}

#[test]
fn java_plans_are_deterministic_for_a_seed() {
    let owners = vec![None; 10];
    let config = LeaseConfig::builder()
        .parallel_stealing(false)
        .very_old_lease_multiplier(5_000_000)
        .build()
        .expect("valid");
    let plan = |seed| {
        let mut harness = Harness::new(&owners, config.clone());
        // Two other live workers make the target 4 of 10.
        harness.leases.insert(10, lease(10, Some("bar")));
        harness.leases.insert(11, lease(11, Some("baz")));
        harness.scan_and_plan(ME, seed)
    };
    assert_eq!(plan(42), plan(42));
    let different = (0..20).any(|seed| keys(&plan(seed)) != keys(&plan(42)));
    assert!(different, "the seed should change which leases are picked");
}

#[test]
fn fair_share_plans_do_not_depend_on_the_seed() {
    let owners = vec![None; 10];
    let plan = |seed| {
        let mut harness = Harness::with_default(&owners);
        harness.leases.insert(10, lease(10, Some("bar")));
        harness.leases.insert(11, lease(11, Some("baz")));
        harness.scan_and_plan(ME, seed)
    };
    let reference = plan(0);
    assert_eq!(reference.target, 4);
    assert_eq!(reference.take.len(), 4);
    assert!((1..20).all(|seed| plan(seed) == reference));
}

/// Rounds until a new worker joining `workers` × `per_worker` stops planning steals.
fn rounds_for_a_new_worker(
    workers: usize,
    per_worker: usize,
    config: LeaseConfig,
) -> (usize, Harness) {
    let owners: Vec<String> = (0..workers).map(|w| format!("worker-{w}")).collect();
    let assignment: Vec<Option<&str>> = owners
        .iter()
        .flat_map(|owner| std::iter::repeat_n(Some(owner.as_str()), per_worker))
        .collect();
    let mut harness = Harness::new(&assignment, config);
    harness.scan_and_plan(ME, 0);
    for (rounds, round) in (1..=50).enumerate() {
        harness.pass_time(harness.config.take_interval());
        harness.renew_all_except(&[]);
        let plan = harness.scan_and_plan(ME, round);
        if plan.is_empty() {
            return (rounds, harness);
        }
        assert!(plan.take.is_empty(), "nothing is free, only steals");
        harness.apply(&plan, ME);
    }
    panic!("did not converge in 50 rounds");
}

fn is_balanced(counts: &BTreeMap<String, usize>) -> bool {
    let max = counts.values().max().copied().unwrap_or(0);
    let min = counts.values().min().copied().unwrap_or(0);
    max - min <= 1
}

#[test]
fn parallel_stealing_converges_a_new_worker_in_at_most_two_rounds() {
    struct Case {
        workers: usize,
        per_worker: usize,
        max_steal: usize,
    }
    let cases = [
        Case {
            workers: 4,
            per_worker: 5,
            max_steal: 1,
        },
        Case {
            workers: 8,
            per_worker: 3,
            max_steal: 1,
        },
        Case {
            workers: 2,
            per_worker: 10,
            max_steal: 3,
        },
        Case {
            workers: 3,
            per_worker: 7,
            max_steal: 2,
        },
        Case {
            workers: 1,
            per_worker: 4,
            max_steal: 2,
        },
    ];
    for case in cases {
        let config = LeaseConfig::builder()
            .max_leases_to_steal_at_one_time(case.max_steal)
            .build()
            .expect("valid");
        let (rounds, harness) = rounds_for_a_new_worker(case.workers, case.per_worker, config);
        let label = format!(
            "{} workers × {} leases, max steal {}",
            case.workers, case.per_worker, case.max_steal
        );
        assert!(rounds <= 2, "{label}: {rounds} rounds");
        assert!(
            is_balanced(&harness.counts()),
            "{label}: {:?}",
            harness.counts()
        );
    }
}

#[test]
fn java_style_stealing_needs_one_round_per_lease() {
    let config = LeaseConfig::builder()
        .parallel_stealing(false)
        .build()
        .expect("valid");
    let (rounds, harness) = rounds_for_a_new_worker(4, 5, config);
    assert_eq!(
        rounds, 4,
        "one steal per round from the single most loaded worker"
    );
    assert!(is_balanced(&harness.counts()));
}

#[test]
fn fair_shares_give_the_extra_leases_to_the_busiest_workers() {
    struct Case {
        counts: &'static [(&'static str, usize)],
        leases: usize,
        cap: usize,
        shares: &'static [(&'static str, usize)],
    }
    let cases = [
        // 10 over 3: one extra, to the busiest.
        Case {
            counts: &[("a", 0), ("b", 7), ("c", 3)],
            leases: 10,
            cap: usize::MAX,
            shares: &[("a", 3), ("b", 4), ("c", 3)],
        },
        // Balanced already: the shares are the counts.
        Case {
            counts: &[("a", 3), ("b", 2), ("c", 3)],
            leases: 8,
            cap: usize::MAX,
            shares: &[("a", 3), ("b", 2), ("c", 3)],
        },
        // More workers than leases: the holders keep one each.
        Case {
            counts: &[("a", 1), ("b", 1), ("c", 0)],
            leases: 2,
            cap: usize::MAX,
            shares: &[("a", 1), ("b", 1), ("c", 0)],
        },
        // The per-worker cap binds.
        Case {
            counts: &[("a", 0), ("b", 0)],
            leases: 9,
            cap: 3,
            shares: &[("a", 3), ("b", 3)],
        },
        // No leases at all.
        Case {
            counts: &[("a", 0)],
            leases: 0,
            cap: usize::MAX,
            shares: &[("a", 0)],
        },
    ];
    for case in cases {
        let config = LeaseConfig::builder()
            .max_leases_for_worker(case.cap)
            .build()
            .expect("valid");
        let counts: BTreeMap<String, usize> = case
            .counts
            .iter()
            .map(|(worker, count)| ((*worker).to_owned(), *count))
            .collect();
        let shares = fair_shares(&counts, case.leases, &config);
        let expected: BTreeMap<String, usize> = case
            .shares
            .iter()
            .map(|(worker, share)| ((*worker).to_owned(), *share))
            .collect();
        assert_eq!(shares, expected, "counts {:?}", case.counts);
    }
}

/// A table every worker scans at the same moment (after two scans, so owned leases are live),
/// and the plans each worker makes from it.
fn plans_from_one_scan(
    owners: &[Option<&str>],
    free_after_failover: &[&str],
    workers: &[&str],
    config: &LeaseConfig,
) -> (BTreeMap<u64, Lease>, BTreeMap<String, TakePlan>) {
    let mut harness = Harness::new(owners, config.clone());
    harness.scan_and_plan(ME, 0);
    harness.pass_time(harness.failover_plus_one());
    harness.renew_all_except(free_after_failover);
    let mut plans = BTreeMap::new();
    for worker in workers {
        // Same history, same scan: clone the observations each worker would have.
        let mut observations = harness.observations.clone();
        observations.observe_scan(harness.leases.values().cloned(), harness.now);
        let plan = plan_takes(&observations, worker, harness.now, config, 0);
        plans.insert((*worker).to_owned(), plan);
    }
    (harness.leases, plans)
}

#[test]
fn concurrent_workers_plan_disjoint_takes_that_balance_the_fleet() {
    struct Case {
        name: &'static str,
        /// Leases per worker, in order; `-` means free.
        holders: &'static [(&'static str, usize)],
        /// Workers that stopped renewing (their leases expire).
        dead: &'static [&'static str],
        /// Everyone that plans (live workers).
        planners: &'static [&'static str],
        steals: bool,
    }
    let cases = [
        Case {
            name: "one worker holds everything",
            holders: &[("a", 12), ("b", 1), ("c", 1)],
            dead: &[],
            planners: &["a", "b", "c"],
            steals: true,
        },
        Case {
            name: "two loaded, two light",
            holders: &[("a", 9), ("b", 9), ("c", 1), ("d", 1)],
            dead: &[],
            planners: &["a", "b", "c", "d"],
            steals: true,
        },
        Case {
            name: "uneven cold start",
            holders: &[("a", 30), ("b", 2), ("c", 1), ("d", 1), ("e", 1)],
            dead: &[],
            planners: &["a", "b", "c", "d", "e"],
            steals: true,
        },
        Case {
            name: "a quarter died",
            holders: &[("a", 4), ("b", 4), ("c", 4), ("d", 4)],
            dead: &["d"],
            planners: &["a", "b", "c"],
            steals: false,
        },
        Case {
            name: "free leases and uneven holders",
            holders: &[("-", 5), ("a", 6), ("b", 1)],
            dead: &[],
            planners: &["a", "b"],
            steals: false,
        },
    ];
    for case in cases {
        let owners: Vec<Option<&str>> = case
            .holders
            .iter()
            .flat_map(|(worker, count)| {
                std::iter::repeat_n((*worker != "-").then_some(*worker), *count)
            })
            .collect();
        let (mut leases, plans) =
            plans_from_one_scan(&owners, case.dead, case.planners, &LeaseConfig::default());
        let mut planned = BTreeMap::new();
        for (worker, plan) in &plans {
            assert_eq!(
                !plan.steal.is_empty() && plan.take.is_empty(),
                case.steals && !plan.is_empty(),
                "{}: {worker}: {plan:?}",
                case.name
            );
            for take in plan.all() {
                let index = take.lease_key.index().expect("index");
                if let Some(other) = planned.insert(index, worker.clone()) {
                    panic!("{}: {other} and {worker} both plan {index}", case.name);
                }
            }
        }
        for (index, worker) in planned {
            let lease = leases.get_mut(&index).expect("lease");
            lease.lease_owner = Some(worker);
        }
        let mut counts: BTreeMap<&str, usize> = case.planners.iter().map(|w| (*w, 0)).collect();
        for lease in leases.values() {
            let owner = lease.lease_owner.as_deref().expect("every lease owned");
            *counts
                .get_mut(owner)
                .unwrap_or_else(|| panic!("{}: dead {owner} still owns", case.name)) += 1;
        }
        let max = counts.values().max().copied().unwrap_or(0);
        let min = counts.values().min().copied().unwrap_or(0);
        assert!(max - min <= 1, "{}: {counts:?}", case.name);
    }
}

#[test]
fn without_whole_deficit_each_victim_loses_at_most_the_steal_limit_per_run() {
    let owners: Vec<Option<&str>> = std::iter::repeat_n(Some("a"), 12)
        .chain([Some("b"), Some("c")])
        .collect();
    let config = LeaseConfig::builder()
        .steal_whole_deficit(false)
        .max_leases_to_steal_at_one_time(2)
        .build()
        .expect("valid");
    let (_, plans) = plans_from_one_scan(&owners, &[], &["a", "b", "c"], &config);
    let stolen: usize = plans.values().map(|plan| plan.steal.len()).sum();
    assert_eq!(stolen, 2, "{plans:?}");
    assert!(plans["a"].is_empty());
}

#[test]
fn newcomers_steal_half_their_deficit_from_the_same_surplus() {
    // Five newcomers that cannot see each other: each sees a share of 4 of 12 and steals half
    // its deficit, 2, from the same 4 given-up leases: together they aim at 4 leases, not 20.
    let owners: Vec<Option<&str>> = std::iter::repeat_n(Some("a"), 6)
        .chain(std::iter::repeat_n(Some("b"), 6))
        .collect();
    let newcomers = ["new-1", "new-2", "new-3", "new-4", "new-5"];
    let (_, plans) = plans_from_one_scan(&owners, &[], &newcomers, &LeaseConfig::default());
    let mut aimed_at = std::collections::BTreeSet::new();
    for newcomer in newcomers {
        assert_eq!(plans[newcomer].target, 4);
        assert_eq!(plans[newcomer].steal.len(), 2, "{newcomer}");
        aimed_at.extend(keys(&plans[newcomer]));
    }
    assert!(aimed_at.len() <= 4, "{aimed_at:?}");
}
