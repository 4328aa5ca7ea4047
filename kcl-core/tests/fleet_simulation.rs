//! A proptest state machine over a simulated fleet of workers sharing one lease table.
//!
//! Random sequences of joins, crashes, pauses, resumes, splits, merges and clock advances are
//! applied to a fleet whose workers renew, take, process and checkpoint on the schedule a real
//! worker follows (with a fast failover time). After every tick the invariants are checked:
//!
//! 1. at most one (running) worker believes it holds an unexpired lease on a shard for longer
//!    than one renew interval (a steal is noticed by the old holder at its next renewal or
//!    checkpoint), and a lease taken as expired is never still believed held by anyone, even a
//!    paused worker;
//! 2. no checkpoint from a non-holder is ever stored;
//! 3. stored checkpoints never go backwards;
//! 4. no child shard is processed before all its parents have finished;
//! 5. once the fleet is stable (everyone resumed, no more changes), every shard that needs
//!    processing is owned and the fleet is balanced (max − min ≤ 1).

use kcl_core::assignment::{LeaseObservations, plan_takes};
use kcl_core::checkpoint::Checkpointer;
use kcl_core::clock::{Clock, ManualClock, SharedClock};
use kcl_core::config::LeaseConfig;
use kcl_core::held_lease::{HeldLease, renew_leases};
use kcl_core::kinesis::{
    ChildShard, EpochMillis, HashKeyRange, SequenceNumber, SequenceNumberRange, Shard, ShardId,
};
use kcl_core::lease::{CheckpointValue, ExtendedSequenceNumber, Lease};
use kcl_core::lease_store::LeaseStore;
use kcl_core::lineage::{
    InitialPosition, LineageError, child_leases_to_create, cleanup_candidates, is_ready_to_process,
    leases_to_create,
};
use kcl_core::memory::InMemoryLeaseStore;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(250);
const MAX_WORKERS: usize = 5;
const MAX_OPEN_SHARDS: usize = 10;
const RECORDS_PER_TICK: usize = 3;

fn config() -> LeaseConfig {
    LeaseConfig::builder()
        .failover_time(Duration::from_millis(3_000))
        .shard_sync_interval(Duration::from_millis(5_000))
        .build()
        .expect("valid config")
}

/// The stream: shards, their records (sequence numbers) and lineage.
struct Stream {
    shards: BTreeMap<ShardId, SimShard>,
    next_shard: u64,
    next_sequence: u128,
}

struct SimShard {
    parents: Vec<ShardId>,
    records: Vec<SequenceNumber>,
    closed: bool,
    children: Vec<ShardId>,
}

impl Stream {
    fn new(shards: u64) -> Self {
        let mut stream = Stream {
            shards: BTreeMap::new(),
            next_shard: 0,
            next_sequence: 1,
        };
        for _ in 0..shards {
            stream.add_shard(Vec::new());
        }
        stream
    }

    fn add_shard(&mut self, parents: Vec<ShardId>) -> ShardId {
        let id = ShardId::from_index(self.next_shard);
        self.next_shard += 1;
        self.shards.insert(
            id.clone(),
            SimShard {
                parents,
                records: Vec::new(),
                closed: false,
                children: Vec::new(),
            },
        );
        id
    }

    fn open_shards(&self) -> Vec<ShardId> {
        self.shards
            .iter()
            .filter(|(_, shard)| !shard.closed)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn put_records(&mut self) {
        for shard in self.shards.values_mut().filter(|shard| !shard.closed) {
            shard
                .records
                .push(SequenceNumber::from_u128(self.next_sequence));
            self.next_sequence += 1;
        }
    }

    fn split(&mut self, pick: usize) {
        let open = self.open_shards();
        if open.is_empty() || open.len() >= MAX_OPEN_SHARDS {
            return;
        }
        let parent = open[pick % open.len()].clone();
        let children = vec![
            self.add_shard(vec![parent.clone()]),
            self.add_shard(vec![parent.clone()]),
        ];
        let shard = self.shards.get_mut(&parent).expect("parent");
        shard.closed = true;
        shard.children = children;
    }

    fn merge(&mut self, first: usize, second: usize) {
        let open = self.open_shards();
        if open.len() < 2 {
            return;
        }
        let a = open[first % open.len()].clone();
        let b = open[second % open.len()].clone();
        if a == b {
            return;
        }
        let child = self.add_shard(vec![a.clone(), b.clone()]);
        for parent in [a, b] {
            let shard = self.shards.get_mut(&parent).expect("parent");
            shard.closed = true;
            shard.children = vec![child.clone()];
        }
    }

    /// The shard list as `ListShards` describes it.
    fn describe(&self) -> Vec<Shard> {
        self.shards
            .iter()
            .map(|(id, shard)| Shard {
                shard_id: id.clone(),
                parent_shard_id: shard.parents.first().cloned(),
                adjacent_parent_shard_id: shard.parents.get(1).cloned(),
                hash_key_range: HashKeyRange::FULL,
                sequence_number_range: SequenceNumberRange {
                    starting_sequence_number: SequenceNumber::from_u128(
                        u128::from(id.index().expect("index")) + 1,
                    ),
                    ending_sequence_number: shard
                        .closed
                        .then(|| SequenceNumber::from_u128(u128::MAX)),
                },
            })
            .collect()
    }

    fn child_shards(&self, parent: &ShardId) -> Vec<ChildShard> {
        self.shards[parent]
            .children
            .iter()
            .map(|child| ChildShard {
                shard_id: child.clone(),
                parent_shards: self.shards[child].parents.clone(),
                hash_key_range: HashKeyRange::FULL,
            })
            .collect()
    }
}

/// A lease a simulated worker holds, with its consumer's read position.
struct Consumer {
    held: Arc<HeldLease>,
    checkpointer: Checkpointer,
    next_record: usize,
}

struct Worker {
    id: String,
    paused: bool,
    observations: LeaseObservations,
    held: BTreeMap<ShardId, Consumer>,
    next_renew: Duration,
    next_take: Duration,
    next_sync: Duration,
    take_runs: u64,
}

/// Ground truth kept by the simulation, independently of the workers' beliefs.
#[derive(Default)]
struct Truth {
    /// Who last took each lease successfully (removed on eviction).
    holder: HashMap<ShardId, String>,
    /// Shards whose SHARD_END checkpoint was stored.
    finished: BTreeSet<ShardId>,
    /// The last stored checkpoint seen per lease.
    checkpoints: HashMap<ShardId, ExtendedSequenceNumber>,
    /// Since when two or more running workers believe they hold a shard.
    overlap_since: HashMap<ShardId, Duration>,
}

struct Fleet {
    clock: Arc<ManualClock>,
    shared_clock: SharedClock,
    store: Arc<InMemoryLeaseStore>,
    config: LeaseConfig,
    stream: Stream,
    workers: Vec<Worker>,
    next_worker: usize,
    truth: Truth,
}

#[derive(Debug, Clone)]
enum Action {
    Join,
    Crash(usize),
    Pause(usize),
    Resume(usize),
    Advance(u32),
    Split(usize),
    Merge(usize, usize),
    /// A worker runs its taker now, off its schedule (scans may happen at any time).
    Scan(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => Just(Action::Join),
        1 => any::<usize>().prop_map(Action::Crash),
        1 => any::<usize>().prop_map(Action::Pause),
        1 => any::<usize>().prop_map(Action::Resume),
        5 => (1u32..40).prop_map(Action::Advance),
        1 => any::<usize>().prop_map(Action::Split),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Action::Merge(a, b)),
        2 => any::<usize>().prop_map(Action::Scan),
    ]
}

impl Fleet {
    fn new(shards: u64) -> Self {
        let clock = Arc::new(ManualClock::new(EpochMillis(1_700_000_000_000)));
        let shared_clock: SharedClock = clock.clone();
        Fleet {
            clock,
            shared_clock,
            store: Arc::new(InMemoryLeaseStore::new()),
            config: config(),
            stream: Stream::new(shards),
            workers: Vec::new(),
            next_worker: 0,
            truth: Truth::default(),
        }
    }

    fn now(&self) -> Duration {
        self.clock.monotonic()
    }

    fn join(&mut self) {
        if self.workers.len() >= MAX_WORKERS {
            return;
        }
        let now = self.now();
        self.workers.push(Worker {
            id: format!("worker-{}", self.next_worker),
            paused: false,
            observations: LeaseObservations::new(),
            held: BTreeMap::new(),
            next_renew: now + self.config.renew_interval(),
            next_take: now,
            next_sync: now,
            take_runs: 0,
        });
        self.next_worker += 1;
    }

    async fn apply(&mut self, action: &Action) {
        match action {
            Action::Join => self.join(),
            Action::Crash(pick) if !self.workers.is_empty() => {
                let index = pick % self.workers.len();
                self.workers.remove(index);
            }
            Action::Pause(pick) if !self.workers.is_empty() => {
                let index = pick % self.workers.len();
                self.workers[index].paused = true;
            }
            Action::Resume(pick) if !self.workers.is_empty() => {
                let index = pick % self.workers.len();
                self.workers[index].paused = false;
            }
            Action::Advance(ticks) => {
                for _ in 0..*ticks {
                    self.tick().await;
                }
            }
            Action::Scan(pick) if !self.workers.is_empty() => {
                let index = pick % self.workers.len();
                if !self.workers[index].paused {
                    self.workers[index].next_take = self.now();
                    self.take_if_due(index).await;
                    self.check_invariants().await;
                }
            }
            Action::Split(pick) => self.stream.split(*pick),
            Action::Merge(a, b) => self.stream.merge(*a, *b),
            _ => {}
        }
    }

    /// One step of time: records arrive, every running worker does what is due, invariants hold.
    async fn tick(&mut self) {
        self.clock.advance(TICK);
        self.stream.put_records();
        for index in 0..self.workers.len() {
            if self.workers[index].paused {
                continue;
            }
            self.process(index).await;
            self.renew_if_due(index).await;
            self.sync_if_due(index).await;
            self.take_if_due(index).await;
        }
        self.check_invariants().await;
    }

    async fn process(&mut self, index: usize) {
        let leases = self.store.list_leases().await.expect("list");
        let shards: Vec<ShardId> = self.workers[index].held.keys().cloned().collect();
        for shard_id in shards {
            self.process_shard(index, &shard_id, &leases).await;
        }
    }

    async fn process_shard(&mut self, index: usize, shard_id: &ShardId, leases: &[Lease]) {
        let now = self.now();
        let worker_id = self.workers[index].id.clone();
        let Some(consumer) = self.workers[index].held.get_mut(shard_id) else {
            return;
        };
        if !consumer.held.is_held(now) {
            // The consumer stops; the lease is gone for this worker.
            self.workers[index].held.remove(shard_id);
            return;
        }
        let Some(lease) = leases.iter().find(|lease| &lease.lease_key == shard_id) else {
            return;
        };
        if !is_ready_to_process(lease, leases) {
            return;
        }
        let shard = &self.stream.shards[shard_id];
        // Invariant 4: every parent has finished before a child record is delivered.
        for parent in &shard.parents {
            assert!(
                self.truth.finished.contains(parent),
                "{worker_id} processes {shard_id} before its parent {parent} finished"
            );
        }
        let end = (consumer.next_record + RECORDS_PER_TICK).min(shard.records.len());
        for record in &shard.records[consumer.next_record..end] {
            consumer
                .checkpointer
                .record_delivered(ExtendedSequenceNumber::new(*record, 0));
        }
        let delivered_any = end > consumer.next_record;
        consumer.next_record = end;
        let checkpointer = consumer.checkpointer.clone();
        let held = consumer.held.clone();
        let mut at_end = shard.closed && end == shard.records.len();
        if at_end {
            // As the Java KCL's shutdown task: child leases first (a merge child only once both
            // parents have leases), lineage on the parent, then SHARD_END.
            let children = self.stream.child_shards(shard_id);
            match child_leases_to_create(shard_id, &children, leases) {
                Ok(child_leases) => {
                    for child in &child_leases {
                        self.store
                            .create_lease_if_absent(child)
                            .await
                            .expect("create child");
                    }
                    let child_ids: Vec<ShardId> =
                        children.iter().map(|c| c.shard_id.clone()).collect();
                    self.store
                        .update_lineage(shard_id, &child_ids, None)
                        .await
                        .expect("lineage");
                    checkpointer.mark_shard_end();
                }
                Err(LineageError::ParentLeaseMissing { .. }) => at_end = false,
                Err(error) => panic!("invalid children: {error}"),
            }
        }
        if !delivered_any && !at_end {
            return;
        }
        match checkpointer.checkpoint().await {
            Ok(()) => {
                // Invariant 2: the checkpoint was stored by the true holder.
                assert_eq!(
                    self.truth.holder.get(shard_id),
                    Some(&worker_id),
                    "checkpoint on {shard_id} stored by a non-holder"
                );
            }
            Err(error) if error.is_lease_lost() => {
                self.workers[index].held.remove(shard_id);
                return;
            }
            Err(error) => panic!("unexpected checkpoint error: {error}"),
        }
        if at_end {
            self.truth.finished.insert(shard_id.clone());
            if held.evict(self.store.as_ref()).await.is_ok() {
                self.truth.holder.remove(shard_id);
            }
            self.workers[index].held.remove(shard_id);
        }
    }

    async fn renew_if_due(&mut self, index: usize) {
        let now = self.now();
        if now < self.workers[index].next_renew {
            return;
        }
        let worker = &mut self.workers[index];
        worker.next_renew = now + self.config.renew_interval();
        let held: Vec<Arc<HeldLease>> = worker.held.values().map(|c| c.held.clone()).collect();
        let report = renew_leases(self.store.as_ref(), &held, self.clock.as_ref())
            .await
            .expect("renew");
        for lost in report.lost {
            worker.held.remove(&lost.shard_id);
        }
    }

    async fn sync_if_due(&mut self, index: usize) {
        let now = self.now();
        if now < self.workers[index].next_sync {
            return;
        }
        self.workers[index].next_sync = now + self.config.shard_sync_interval();
        let leases = self.store.list_leases().await.expect("list");
        let shards = self.stream.describe();
        for lease in leases_to_create(&shards, &leases, InitialPosition::TrimHorizon) {
            self.store
                .create_lease_if_absent(&lease)
                .await
                .expect("create");
        }
        let leases = self.store.list_leases().await.expect("list");
        for shard_id in cleanup_candidates(&leases) {
            self.store.delete_lease(&shard_id).await.expect("delete");
        }
    }

    async fn take_if_due(&mut self, index: usize) {
        let now = self.now();
        if now < self.workers[index].next_take {
            return;
        }
        let scan = self.store.list_leases().await.expect("scan");
        let worker = &mut self.workers[index];
        worker.next_take = now + self.config.take_interval();
        worker.take_runs += 1;
        worker.observations.observe_scan(scan, now);
        let seed = worker.take_runs * 7919 + index as u64;
        let plan = plan_takes(&worker.observations, &worker.id, now, &self.config, seed);
        let stolen: BTreeSet<ShardId> = plan.steal.iter().map(|t| t.lease_key.clone()).collect();
        let mut taken = Vec::new();
        for take in plan.all() {
            let result = self
                .store
                .take_lease(&take.lease_key, take.expected_counter, &worker.id)
                .await;
            let Ok(lease) = result else {
                continue;
            };
            taken.push(lease.lease_key.clone());
            self.truth
                .holder
                .insert(lease.lease_key.clone(), worker.id.clone());
            let next_record = match lease.checkpoint.value {
                CheckpointValue::Sequence(sequence) => self.stream.shards[&lease.lease_key]
                    .records
                    .partition_point(|record| *record <= sequence),
                _ => 0,
            };
            worker.observations.record_write(lease.clone(), now);
            let held = HeldLease::new(lease, worker.id.clone(), now, &self.config);
            let checkpointer =
                Checkpointer::new(held.clone(), self.store.clone(), self.shared_clock.clone());
            let replaced = worker.held.insert(
                held.shard_id().clone(),
                Consumer {
                    held,
                    checkpointer,
                    next_record,
                },
            );
            if let Some(old) = replaced {
                old.held.mark_lost();
            }
        }
        // Invariant 1, strict form: a lease taken as free or expired (not stolen) is never
        // still believed held by anyone else, paused or not.
        let taker = self.workers[index].id.clone();
        for shard_id in taken.iter().filter(|shard| !stolen.contains(*shard)) {
            for other in self.workers.iter().filter(|other| other.id != taker) {
                if let Some(consumer) = other.held.get(shard_id) {
                    assert!(
                        !consumer.held.is_held(now),
                        "{taker} took {shard_id} as expired while {} still holds it",
                        other.id
                    );
                }
            }
        }
    }

    fn believers(&self, now: Duration) -> BTreeMap<ShardId, Vec<String>> {
        let mut believers: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
        for worker in self.workers.iter().filter(|worker| !worker.paused) {
            for (shard_id, consumer) in &worker.held {
                if consumer.held.is_held(now) {
                    believers
                        .entry(shard_id.clone())
                        .or_default()
                        .push(worker.id.clone());
                }
            }
        }
        believers
    }

    async fn check_invariants(&mut self) {
        let now = self.now();
        // Invariant 1: overlapping beliefs end within one renew interval (plus a tick).
        let believers = self.believers(now);
        let overlapping: BTreeSet<ShardId> = believers
            .iter()
            .filter(|(_, workers)| workers.len() > 1)
            .map(|(shard, _)| shard.clone())
            .collect();
        self.truth
            .overlap_since
            .retain(|shard, _| overlapping.contains(shard));
        for shard in overlapping {
            let since = *self.truth.overlap_since.entry(shard.clone()).or_insert(now);
            let limit = self.config.renew_interval() + TICK;
            assert!(
                now - since <= limit,
                "{:?} believe they hold {shard} for {:?} (> {limit:?})",
                believers[&shard],
                now - since
            );
        }
        // Invariant 3: stored checkpoints never go backwards.
        for lease in self.store.snapshot() {
            let previous = self
                .truth
                .checkpoints
                .insert(lease.lease_key.clone(), lease.checkpoint);
            if let Some(previous) = previous {
                assert!(
                    lease.checkpoint >= previous,
                    "checkpoint of {} went back from {previous} to {}",
                    lease.lease_key,
                    lease.checkpoint
                );
            }
        }
    }

    /// Whether every unfinished lease is owned by a running worker that believes it holds it,
    /// and the fleet is balanced.
    fn is_stable_and_balanced(&self) -> Result<(), String> {
        let now = self.now();
        let believers = self.believers(now);
        let mut counts: BTreeMap<&str, usize> = self
            .workers
            .iter()
            .map(|worker| (worker.id.as_str(), 0))
            .collect();
        for lease in self
            .store
            .snapshot()
            .iter()
            .filter(|lease| !lease.is_finished())
        {
            let owner = lease
                .lease_owner
                .as_deref()
                .ok_or_else(|| format!("{} is not owned", lease.lease_key))?;
            let believed = believers
                .get(&lease.lease_key)
                .is_some_and(|workers| workers.len() == 1 && workers[0] == owner);
            if !believed {
                return Err(format!(
                    "{} owned by {owner} without belief",
                    lease.lease_key
                ));
            }
            *counts.get_mut(owner).ok_or("owner is not a live worker")? += 1;
        }
        let max = counts.values().max().copied().unwrap_or(0);
        let min = counts.values().min().copied().unwrap_or(0);
        if max - min > 1 {
            return Err(format!("unbalanced: {counts:?}"));
        }
        Ok(())
    }

    async fn stabilize(&mut self) {
        for worker in &mut self.workers {
            worker.paused = false;
        }
        if self.workers.is_empty() {
            self.join();
        }
        let take_interval_ticks =
            (self.config.take_interval().as_millis() / TICK.as_millis()) as usize + 1;
        let mut last_error = String::new();
        for _ in 0..40 {
            for _ in 0..take_interval_ticks {
                self.tick().await;
            }
            match self.is_stable_and_balanced() {
                Ok(()) => return,
                Err(error) => last_error = error,
            }
        }
        panic!("the fleet never became stable and balanced: {last_error}");
    }
}

fn run(actions: &[Action], shards: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut fleet = Fleet::new(shards);
        fleet.join();
        for action in actions {
            fleet.apply(action).await;
        }
        fleet.stabilize().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fleet_invariants_hold(actions in prop::collection::vec(action(), 1..60), shards in 1u64..6) {
        run(&actions, shards);
    }
}

#[test]
fn a_paused_worker_cannot_checkpoint_after_its_lease_moved() {
    // A deterministic scenario: worker-0 holds everything, pauses past the failover time,
    // worker-1 takes over, worker-0 resumes and must not write.
    let actions = [
        Action::Advance(8),
        Action::Join,
        Action::Advance(40),
        Action::Pause(0),
        Action::Advance(60),
        Action::Resume(0),
        Action::Advance(4),
        Action::Split(0),
        Action::Merge(1, 2),
        Action::Advance(80),
    ];
    run(&actions, 4);
}

#[test]
fn a_lease_is_not_taken_as_expired_while_its_paused_holder_still_believes_in_it() {
    // worker-1 scans right after worker-0's renewals, worker-0 pauses, worker-1 scans again
    // less than one failover time later: nothing may be taken as expired yet.
    let actions = [
        Action::Advance(8),
        Action::Join,
        Action::Advance(60),
        Action::Scan(1),
        Action::Pause(0),
        Action::Advance(7),
        Action::Scan(1),
        Action::Advance(3),
        Action::Scan(1),
        Action::Advance(20),
        Action::Resume(0),
    ];
    run(&actions, 5);
}

// ---------------------------------------------------------------------------------------------
// Taker rounds: how many rounds a fleet needs to balance.
//
// A second, coarser simulation: time moves in taker rounds (the taker loop's interval while
// other workers hold leases, failover + 2 × epsilon). In every round each live worker renews
// what it still owns, then all live workers scan the SAME table (they run concurrently), plan,
// and write: their conditional takes interleave one at a time (round-robin in a rotating order,
// or in a seeded random order), and a take fails when another worker took the lease first in
// that round (its counter moved). Dead workers stop renewing; their leases expire in the
// survivors' eyes after the failover time.
//
// Checked after every round: no lease is believed held by two workers once renewals ran (a
// robbed owner learns at its next renewal); and per event: the fleet is balanced (every lease
// owned by a live worker, max − min ≤ 1 among live workers) within two rounds of the event
// settling, a lease changes hands (owner to another owner) at most once per event, and nothing
// moves any more once balanced.
// ---------------------------------------------------------------------------------------------

/// How the conditional writes of concurrent workers interleave within one round.
#[derive(Debug, Clone, Copy)]
enum Interleave {
    /// One take per worker in turn, the starting worker rotating every round.
    RoundRobin,
    /// The next writer drawn at random (seeded) among workers with takes left.
    Random(u64),
}

/// A SplitMix64 step: the simulation's own deterministic randomness.
fn mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed base the taker loop derives from the worker id (FNV-1a).
fn seed_base(worker_id: &str) -> u64 {
    worker_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        })
}

struct RoundWorker {
    observations: LeaseObservations,
    /// Leases this worker believes it holds (until a renewal fails).
    held: BTreeSet<ShardId>,
    runs: u64,
}

struct RoundSim {
    config: LeaseConfig,
    table: BTreeMap<ShardId, Lease>,
    live: BTreeMap<String, RoundWorker>,
    now: Duration,
    round: u64,
    interleave: Interleave,
    /// Owner-to-owner changes per lease since the last event.
    changes: BTreeMap<ShardId, usize>,
}

/// What happened after one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventOutcome {
    /// Rounds from the event settling until balanced (the round that balanced included);
    /// `None` if not balanced within the round limit.
    rounds_to_balance: Option<usize>,
    /// The most owner-to-owner changes of one lease during the event.
    max_changes_per_lease: usize,
    /// The round (counted as `rounds_to_balance`) after which every live worker held a lease
    /// (`None` if that never happened, e.g. with fewer leases than workers). A worker that got
    /// nothing in its first round stays invisible to the others, as if it joined a round later.
    all_visible_after: Option<usize>,
}

const ROUND_LIMIT: usize = 60;

impl RoundSim {
    fn new(shards: u64, interleave: Interleave) -> Self {
        RoundSim {
            config: config(),
            table: (0..shards)
                .map(|index| {
                    let id = ShardId::from_index(index);
                    (
                        id.clone(),
                        Lease::new(id, ExtendedSequenceNumber::TRIM_HORIZON),
                    )
                })
                .collect(),
            live: BTreeMap::new(),
            // Monotonic clocks start anywhere; well past the very-old age here.
            now: Duration::from_secs(1_000),
            round: 0,
            interleave,
            changes: BTreeMap::new(),
        }
    }

    fn round_interval(&self) -> Duration {
        self.config.failover_time() + self.config.epsilon() * 2
    }

    fn join(&mut self, worker_id: &str) {
        self.live.insert(
            worker_id.to_owned(),
            RoundWorker {
                observations: LeaseObservations::new(),
                held: BTreeSet::new(),
                runs: 0,
            },
        );
    }

    /// A fleet already balanced: leases dealt round-robin to `workers`, each believing it
    /// holds its own; one quiet round lets everyone observe the table.
    fn balanced(shards: u64, workers: &[String], interleave: Interleave) -> Self {
        let mut sim = RoundSim::new(shards, interleave);
        for worker in workers {
            sim.join(worker);
        }
        for (position, lease) in sim.table.values_mut().enumerate() {
            let owner = &workers[position % workers.len()];
            lease.lease_owner = Some(owner.clone());
            lease.lease_counter = 1;
            sim.live
                .get_mut(owner)
                .expect("live")
                .held
                .insert(lease.lease_key.clone());
        }
        sim.run_round();
        assert!(
            sim.changes.is_empty(),
            "a balanced fleet moved leases: {:?}",
            sim.changes
        );
        sim
    }

    /// One taker round of every live worker.
    fn run_round(&mut self) {
        self.now += self.round_interval();
        self.round += 1;
        // Renewals: what a worker still owns is renewed; what it lost, it learns about.
        for (worker_id, worker) in &mut self.live {
            worker.held.retain(|shard| {
                let lease = self.table.get_mut(shard).expect("lease");
                let still_mine = lease.is_owned_by(worker_id);
                if still_mine {
                    lease.lease_counter += 1;
                }
                still_mine
            });
        }
        self.check_single_believer();
        // Everyone scans the same table, then plans.
        let scan: Vec<Lease> = self.table.values().cloned().collect();
        let mut queues: Vec<(String, std::collections::VecDeque<(ShardId, u64)>)> = Vec::new();
        for (worker_id, worker) in &mut self.live {
            worker.observations.observe_scan(scan.clone(), self.now);
            let seed = seed_base(worker_id) ^ worker.runs;
            worker.runs += 1;
            let plan = plan_takes(
                &worker.observations,
                worker_id,
                self.now,
                &self.config,
                seed,
            );
            let queue = plan
                .all()
                .map(|take| (take.lease_key.clone(), take.expected_counter))
                .collect();
            queues.push((worker_id.clone(), queue));
        }
        // Conditional writes, interleaved.
        let mut rng = match self.interleave {
            Interleave::RoundRobin => 0,
            Interleave::Random(seed) => seed ^ self.round.wrapping_mul(0x9E37),
        };
        let mut turn = self.round as usize;
        loop {
            let pending: Vec<usize> = (0..queues.len())
                .filter(|index| !queues[*index].1.is_empty())
                .collect();
            if pending.is_empty() {
                break;
            }
            let pick = match self.interleave {
                Interleave::RoundRobin => {
                    turn += 1;
                    pending[turn % pending.len()]
                }
                Interleave::Random(_) => pending[(mix(&mut rng) % pending.len() as u64) as usize],
            };
            let (worker_id, queue) = &mut queues[pick];
            let (shard, expected) = queue.pop_front().expect("pending");
            let lease = self.table.get_mut(&shard).expect("planned lease exists");
            if lease.lease_counter != expected {
                continue;
            }
            if let Some(previous) = &lease.lease_owner
                && previous != worker_id
            {
                *self.changes.entry(shard.clone()).or_insert(0) += 1;
            }
            lease.lease_owner = Some(worker_id.clone());
            lease.lease_counter += 1;
            let taken = lease.clone();
            let worker = self.live.get_mut(worker_id.as_str()).expect("live");
            worker.observations.record_write(taken, self.now);
            worker.held.insert(shard);
        }
    }

    /// Once renewals ran, no two live workers believe they hold the same lease.
    fn check_single_believer(&self) {
        let mut believers: BTreeMap<&ShardId, &str> = BTreeMap::new();
        for (worker_id, worker) in &self.live {
            for shard in &worker.held {
                if let Some(other) = believers.insert(shard, worker_id) {
                    panic!("{other} and {worker_id} both believe they hold {shard}");
                }
            }
        }
    }

    /// Lease counts per live worker, or why the fleet is not balanced.
    fn balance(&self) -> Result<BTreeMap<&str, usize>, String> {
        let mut counts: BTreeMap<&str, usize> = self
            .live
            .keys()
            .map(|worker| (worker.as_str(), 0))
            .collect();
        let mut unowned = 0;
        for lease in self.table.values() {
            match lease
                .lease_owner
                .as_deref()
                .and_then(|owner| counts.get_mut(owner))
            {
                Some(count) => *count += 1,
                None => unowned += 1,
            }
        }
        let max = counts.values().max().copied().unwrap_or(0);
        let min = counts.values().min().copied().unwrap_or(0);
        if unowned > 0 || max - min > 1 {
            return Err(format!("{unowned} not owned by live workers, {counts:?}"));
        }
        Ok(counts)
    }

    /// Runs rounds from an event that has settled (the next round is the first one to count)
    /// until balanced, then a few more to see that nothing moves any more.
    fn settle(&mut self) -> EventOutcome {
        let mut rounds_to_balance = None;
        let mut all_visible_after = None;
        for rounds in 1..=ROUND_LIMIT {
            self.run_round();
            if all_visible_after.is_none() && self.all_visible() {
                all_visible_after = Some(rounds);
            }
            if self.balance().is_ok() {
                rounds_to_balance = Some(rounds);
                break;
            }
        }
        let max_changes_per_lease = self.changes.values().max().copied().unwrap_or(0);
        if rounds_to_balance.is_some() {
            let before = self.changes.clone();
            for _ in 0..3 {
                self.run_round();
            }
            assert_eq!(before, self.changes, "leases moved in a balanced fleet");
            assert!(self.balance().is_ok(), "balance lost: {:?}", self.balance());
        }
        self.changes.clear();
        EventOutcome {
            rounds_to_balance,
            max_changes_per_lease,
            all_visible_after,
        }
    }

    /// Whether every live worker owns at least one lease (and so is counted by the others).
    fn all_visible(&self) -> bool {
        self.live
            .keys()
            .all(|worker| self.table.values().any(|lease| lease.is_owned_by(worker)))
    }

    /// Kills `victims`: they stop renewing and taking. Runs the rounds in which their leases
    /// still look alive to everyone else, so that the next round is the first one to count.
    fn kill(&mut self, victims: &[String]) {
        for victim in victims {
            self.live.remove(victim);
        }
        // The survivors last saw the victims' counters move in the previous round's scan.
        let last_seen = self.now;
        while self.now + self.round_interval() <= last_seen + self.config.failover_time() {
            self.run_round();
        }
    }
}

fn worker_ids(count: usize, salt: u64) -> Vec<String> {
    (0..count)
        .map(|index| {
            if salt == 0 {
                format!("worker-{index}")
            } else {
                let mut state = salt ^ index as u64;
                format!("w-{:08x}", mix(&mut state) as u32)
            }
        })
        .collect()
}

/// All workers start together on unowned leases.
fn cold_start(shards: u64, workers: usize, interleave: Interleave, salt: u64) -> EventOutcome {
    let mut sim = RoundSim::new(shards, interleave);
    for worker in worker_ids(workers, salt) {
        sim.join(&worker);
    }
    sim.settle()
}

/// One worker joins a balanced fleet of `workers - 1`.
fn one_joins(shards: u64, workers: usize, interleave: Interleave, salt: u64) -> EventOutcome {
    let ids = worker_ids(workers, salt);
    let mut sim = RoundSim::balanced(shards, &ids[..workers - 1], interleave);
    sim.join(&ids[workers - 1]);
    sim.settle()
}

/// A quarter of a balanced fleet dies (at least one worker, never all).
fn quarter_dies(shards: u64, workers: usize, interleave: Interleave, salt: u64) -> EventOutcome {
    let ids = worker_ids(workers, salt);
    let mut sim = RoundSim::balanced(shards, &ids, interleave);
    let dead = (workers / 4).clamp(1, workers - 1);
    let victims: Vec<String> = ids
        .iter()
        .step_by(workers / dead)
        .take(dead)
        .cloned()
        .collect();
    sim.kill(&victims);
    sim.settle()
}

type Scenario = fn(u64, usize, Interleave, u64) -> EventOutcome;

const SCENARIOS: [(&str, Scenario); 3] = [
    ("all start together", cold_start),
    ("one joins", one_joins),
    ("a quarter dies", quarter_dies),
];

const FLEETS: [(u64, usize); 4] = [(8, 2), (64, 4), (256, 8), (1024, 16)];

#[test]
fn fleets_balance_within_two_rounds_of_an_event() {
    let mut failures = Vec::new();
    for interleave in [
        Interleave::RoundRobin,
        Interleave::Random(1),
        Interleave::Random(2),
    ] {
        for (name, scenario) in SCENARIOS {
            for (shards, workers) in FLEETS {
                let outcome = scenario(shards, workers, interleave, 0);
                eprintln!(
                    "{name:>18}, {shards:>4} shards × {workers:>2} workers, {interleave:?}: \
                     {outcome:?}"
                );
                let ok = outcome.rounds_to_balance.is_some_and(|rounds| rounds <= 2)
                    && outcome.max_changes_per_lease <= 1;
                if !ok {
                    failures.push(format!(
                        "{name}, {shards} × {workers}, {interleave:?}: {outcome:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The invariants of one event. With at least as many leases as workers, and every worker
/// visible (holding a lease) after the event's first round: balance within two rounds, and each
/// lease changes hands at most once. A joiner that got nothing in its first round (its
/// concurrent takes all lost the race) stays invisible and in effect joins a round later: then
/// balance within two rounds of everyone being visible, and at most two changes per lease (one
/// per effective join). With fewer leases than workers the idle workers are never visible:
/// balance eventually, at most two changes per lease.
fn check_outcome(outcome: &EventOutcome, shards: u64, workers: usize, label: &str) {
    let Some(rounds) = outcome.rounds_to_balance else {
        panic!("{label}: never balanced: {outcome:?}");
    };
    match outcome.all_visible_after {
        Some(1) if shards >= workers as u64 => {
            assert!(rounds <= 2, "{label}: {outcome:?}");
            assert!(outcome.max_changes_per_lease <= 1, "{label}: {outcome:?}");
        }
        Some(visible) if shards >= workers as u64 => {
            assert!(rounds <= visible + 1, "{label}: {outcome:?}");
            assert!(outcome.max_changes_per_lease <= 2, "{label}: {outcome:?}");
        }
        _ => assert!(outcome.max_changes_per_lease <= 2, "{label}: {outcome:?}"),
    }
}

/// A fleet built by random joins: a first group starts together on unowned leases, the others
/// join in groups of `group_sizes` (each event left to settle), then a quarter dies.
fn random_fleet(shards: u64, first: usize, group_sizes: &[usize], salt: u64, seed: u64) {
    let interleave = if seed.is_multiple_of(3) {
        Interleave::RoundRobin
    } else {
        Interleave::Random(seed)
    };
    let total = first + group_sizes.iter().sum::<usize>();
    let ids = worker_ids(total, salt | 1);
    let mut sim = RoundSim::new(shards, interleave);
    let mut joined = 0;
    for size in std::iter::once(first).chain(group_sizes.iter().copied()) {
        for id in &ids[joined..joined + size] {
            sim.join(id);
        }
        joined += size;
        let outcome = sim.settle();
        let label = format!("{shards} shards, {joined} workers after a group of {size}");
        check_outcome(&outcome, shards, joined, &label);
    }
    if total >= 2 {
        let dead = (total / 4).clamp(1, total - 1);
        let mut state = seed;
        let mut victims: Vec<String> = ids.clone();
        for i in (1..victims.len()).rev() {
            victims.swap(i, (mix(&mut state) % (i as u64 + 1)) as usize);
        }
        victims.truncate(dead);
        sim.kill(&victims);
        let outcome = sim.settle();
        let label = format!("{shards} shards, {dead} of {total} died");
        check_outcome(&outcome, shards, total - dead, &label);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        max_shrink_iters: 100,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_fleets_balance_within_two_rounds(
        shards in 1u64..=300,
        first in 1usize..=12,
        groups in prop::collection::vec(1usize..=3, 0..6),
        salt in any::<u64>(),
        seed in any::<u64>(),
    ) {
        // At most 12 workers in all.
        let mut room = 12 - first;
        let groups: Vec<usize> = groups
            .into_iter()
            .map(|size| {
                let size = size.min(room);
                room -= size;
                size
            })
            .filter(|size| *size > 0)
            .collect();
        random_fleet(shards, first, &groups, salt, seed);
    }
}
