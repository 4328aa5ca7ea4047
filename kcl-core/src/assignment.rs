//! Lease assignment as pure functions: which leases this worker should take or steal.
//!
//! A worker keeps one [`LeaseObservations`] and feeds it every full scan of the lease table
//! with the local monotonic time of the scan. Expiry is judged only by how long the *local*
//! clock has seen a lease's counter unchanged — clocks of different hosts are never compared.
//! [`plan_takes`] then decides, as a pure function of the observations and `now`.
//!
//! # The fair-share plan (default, `parallel_stealing` on)
//!
//! Every worker computes the same *global* plan from its scan and carries out only its own
//! part, so concurrent workers that saw the same table pick disjoint leases and the fleet is
//! balanced after one round in which every worker is known:
//!
//! 1. **Workers** are those holding unexpired leases, plus this one (a worker holding nothing
//!    is invisible to the others, as in the Java KCL).
//! 2. **Fair shares**: with `L` unfinished leases and `W` workers, every worker's share is
//!    `L / W`, and the `L % W` workers holding the most (ties broken by a hash of the worker
//!    id) get one more, each capped by `max_leases_for_worker`. The shares add up to `L`, so
//!    once everyone holds its share, max − min ≤ 1. This worker's share is the plan's
//!    [`target`](TakePlan::target) (the Java `ceil(L / W)` for the busiest workers).
//! 3. **Very old leases** — available and seen unchanged for `very_old_lease_multiplier` ×
//!    failover *by this worker* (since the last change, or since first seen for a lease never
//!    seen changing) — are taken first, ignoring the share (up to `max_leases_for_worker`), as in
//!    the Java KCL: nobody has processed them for long. Unlike the Java KCL, an unowned lease is
//!    not very old merely because the monotonic clock is past the very-old age, so workers
//!    starting together do not each grab everything ignoring the share.
//! 4. **Free and expired leases** go to the workers below their share: every (worker, lease)
//!    pair is weighed by a hash of both (rendezvous hashing); pairs are granted heaviest first
//!    while the lease is unassigned and the worker still short. This worker takes what it was
//!    granted. A worker that knows no other takes everything, in its own hash order, so
//!    workers starting together mostly try different leases first.
//! 5. **Steals**, only when nothing is free or expired (as in the Java KCL): every worker above
//!    its share gives up exactly its surplus: the leases it has been seen holding longest, ties
//!    (the usual case) broken first by the fewest owner switches since the last checkpoint (a
//!    lease that just moved stays put) and then by the lowest hash of the lease key, so that everyone computing
//!    the plan picks the same ones and a lease that just moved does not move again; with `steal_whole_deficit` off, at most
//!    `max_leases_to_steal_at_one_time` per victim. The given-up leases are granted to the
//!    workers below their share as in 4, so each steals its whole deficit in one run, no victim
//!    falls below its share and each lease moves at most once (no steal storms).
//! 6. **Newcomers** holding nothing are invisible to the others, and to each other: several
//!    joining together each see themselves as the only one. They all aim at the same given-up
//!    leases, each in its own hash order, so together they never move more than the surplus;
//!    and each steals at most half its deficit (rounded up) in that first run, so that none
//!    ends above the share it will have once all are visible. The next round, everyone now
//!    visible, finishes the balance: a newcomer converges in two rounds.
//!
//! `seed` is not used by this plan: it must be the same for everyone who saw the same table.
//!
//! # The Java KCL rule (`parallel_stealing` off)
//!
//! Very old leases (an unowned lease never seen changing counts as changed at monotonic time
//! zero) are taken first, at random, ignoring the target. Otherwise the target is
//! `ceil(leases / workers)` (1 if there are more workers than leases); free or expired leases
//! are taken at random up to it; only when none are available, at most
//! `max_leases_to_steal_at_one_time` leases are stolen from the single most loaded worker —
//! one lease even from a worker at target when this one is short by more than one. Random
//! choices are seeded by `seed`.
//!
//! Finished leases (checkpoint `SHARD_END`) need no processing: they are neither counted nor
//! taken; cleanup deletes them once their children have started.
//!
//! ```
//! use kcl_core::assignment::{LeaseObservations, plan_takes};
//! use kcl_core::config::LeaseConfig;
//! use kcl_core::kinesis::ShardId;
//! use kcl_core::lease::{ExtendedSequenceNumber, Lease};
//! use std::time::Duration;
//!
//! let mut leases: Vec<Lease> = (0..6)
//!     .map(|i| Lease::new(ShardId::from_index(i), ExtendedSequenceNumber::TRIM_HORIZON))
//!     .collect();
//! let mut observations = LeaseObservations::new();
//! observations.observe_scan(leases.clone(), Duration::from_secs(100));
//! let config = LeaseConfig::default();
//! let plan = plan_takes(&observations, "worker-a", Duration::from_secs(100), &config, 0);
//! // A lone worker takes everything.
//! assert_eq!(plan.take.len(), 6);
//!
//! // worker-b holds all six; worker-a's fair share is three. Holding nothing, it steals two
//! // (half its deficit, rounded up) in this run, and the last one in the next.
//! for lease in &mut leases {
//!     lease.lease_owner = Some("worker-b".to_owned());
//!     lease.lease_counter = 1;
//! }
//! observations.observe_scan(leases, Duration::from_secs(103));
//! let plan = plan_takes(&observations, "worker-a", Duration::from_secs(103), &config, 0);
//! assert_eq!((plan.target, plan.steal.len()), (3, 2));
//! ```

use crate::config::LeaseConfig;
use crate::kinesis::ShardId;
use crate::lease::Lease;
use std::collections::BTreeMap;
use std::time::Duration;

/// A lease as last scanned, with the local time its counter was last seen changing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLease {
    /// The lease as of the last scan (or this worker's last successful write).
    pub lease: Lease,
    /// Local monotonic time the counter was last seen changing; `None` means "never": an
    /// unowned lease seen for the first time, available at once.
    pub last_counter_change: Option<Duration>,
    /// Local monotonic time this worker first saw the lease.
    pub first_seen: Duration,
    /// Local monotonic time this worker first saw the lease's current owner (or lack of one).
    pub owner_seen_since: Duration,
}

impl ObservedLease {
    /// How long the counter has been unchanged as of `now`. A lease never seen changing counts
    /// as changed at monotonic time zero (the Java KCL's `lastCounterIncrementNanos = 0`).
    pub fn unchanged_for(&self, now: Duration) -> Duration {
        now.saturating_sub(self.last_counter_change.unwrap_or(Duration::ZERO))
    }

    /// How long this worker has itself seen the counter unchanged as of `now`: since the last
    /// change, or since the lease was first seen if it was never seen changing.
    pub fn seen_unchanged_for(&self, now: Duration) -> Duration {
        now.saturating_sub(self.last_counter_change.unwrap_or(self.first_seen))
    }

    /// Whether the lease is expired: never seen changing, or unchanged for more than the
    /// failover time.
    pub fn is_expired(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.last_counter_change.is_none() || self.unchanged_for(now) > config.failover_time()
    }

    /// Whether anyone may take the lease: unowned, or expired.
    pub fn is_available(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.lease.lease_owner.is_none() || self.is_expired(now, config)
    }

    /// Whether the lease is very old as the Java KCL judges it: unchanged for more than the
    /// very-old age (see [`ObservedLease::unchanged_for`] for leases never seen changing).
    pub fn is_very_old(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.unchanged_for(now) > config.very_old_lease_age()
    }

    /// Whether this worker has itself seen the lease unchanged for more than the very-old age
    /// (see [`ObservedLease::seen_unchanged_for`]): the fair-share plan's very-old rule.
    pub fn is_seen_very_old(&self, now: Duration, config: &LeaseConfig) -> bool {
        self.seen_unchanged_for(now) > config.very_old_lease_age()
    }
}

/// What one worker has seen of the lease table across successive scans.
#[derive(Debug, Clone, Default)]
pub struct LeaseObservations {
    leases: BTreeMap<ShardId, ObservedLease>,
}

impl LeaseObservations {
    /// No observations yet.
    pub fn new() -> Self {
        LeaseObservations::default()
    }

    /// Records a full scan. `now` is the local monotonic time read AFTER `list_leases`
    /// returned: every change the scan shows happened no later, so expiry is never judged early
    /// (reading it before the scan would let a write landing during the scan look older than it
    /// is). Leases absent from the scan are forgotten. A lease whose counter (or owner) changed gets `now` as its last change; a
    /// lease seen for the first time gets `None` if unowned (free at once) and `now` if owned
    /// (its owner gets a full failover time to show it is alive).
    pub fn observe_scan(&mut self, scan: impl IntoIterator<Item = Lease>, now: Duration) {
        let mut previous = std::mem::take(&mut self.leases);
        for lease in scan {
            let seen = previous.remove(&lease.lease_key);
            let first_seen = seen.as_ref().map_or(now, |seen| seen.first_seen);
            let owner_seen_since = seen
                .as_ref()
                .filter(|seen| seen.lease.lease_owner == lease.lease_owner)
                .map_or(now, |seen| seen.owner_seen_since);
            let last_counter_change = match seen {
                Some(seen)
                    if seen.lease.lease_counter == lease.lease_counter
                        && seen.lease.lease_owner == lease.lease_owner =>
                {
                    seen.last_counter_change
                }
                Some(_) => Some(now),
                None if lease.lease_owner.is_none() => None,
                None => Some(now),
            };
            self.leases.insert(
                lease.lease_key.clone(),
                ObservedLease {
                    lease,
                    last_counter_change,
                    first_seen,
                    owner_seen_since,
                },
            );
        }
    }

    /// Records a lease this worker just wrote (took, renewed, checkpointed) at `now`, so the
    /// next plan counts it without waiting for a scan.
    pub fn record_write(&mut self, lease: Lease, now: Duration) {
        let seen = self.leases.get(&lease.lease_key);
        let first_seen = seen.map_or(now, |seen| seen.first_seen.min(now));
        let owner_seen_since = seen
            .filter(|seen| seen.lease.lease_owner == lease.lease_owner)
            .map_or(now, |seen| seen.owner_seen_since.min(now));
        self.leases.insert(
            lease.lease_key.clone(),
            ObservedLease {
                lease,
                last_counter_change: Some(now),
                first_seen,
                owner_seen_since,
            },
        );
    }

    /// The observation of one lease.
    pub fn get(&self, lease_key: &ShardId) -> Option<&ObservedLease> {
        self.leases.get(lease_key)
    }

    /// Every observation, sorted by lease key.
    pub fn iter(&self) -> impl Iterator<Item = &ObservedLease> {
        self.leases.values()
    }

    /// How many leases were observed.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Unexpired, unfinished leases per owner as of `now`.
    pub fn lease_counts(&self, now: Duration, config: &LeaseConfig) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for observed in self.assignable() {
            let Some(owner) = &observed.lease.lease_owner else {
                continue;
            };
            if !observed.is_expired(now, config) {
                *counts.entry(owner.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn assignable(&self) -> impl Iterator<Item = &ObservedLease> {
        self.leases
            .values()
            .filter(|observed| !observed.lease.is_finished())
    }
}

/// One conditional take the worker should attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTake {
    /// The lease to take.
    pub lease_key: ShardId,
    /// The counter seen in the scan: pass it to
    /// [`LeaseStore::take_lease`](crate::lease_store::LeaseStore::take_lease).
    pub expected_counter: u64,
    /// The owner as seen in the scan (`None` for a free lease).
    pub previous_owner: Option<String>,
}

/// The outcome of one planning run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TakePlan {
    /// Free, expired or very old leases to take.
    pub take: Vec<PlannedTake>,
    /// Leases to steal from other, over-loaded workers.
    pub steal: Vec<PlannedTake>,
    /// The number of leases this worker aims to hold.
    pub target: usize,
    /// Workers counted (holders of unexpired leases, plus this one).
    pub worker_count: usize,
    /// Unfinished leases counted.
    pub lease_count: usize,
}

impl TakePlan {
    /// Every planned take, free ones first, then steals.
    pub fn all(&self) -> impl Iterator<Item = &PlannedTake> {
        self.take.iter().chain(self.steal.iter())
    }

    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.take.is_empty() && self.steal.is_empty()
    }
}

/// A small deterministic generator (SplitMix64): shuffles must be reproducible from a seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn planned(observed: &ObservedLease) -> PlannedTake {
    PlannedTake {
        lease_key: observed.lease.lease_key.clone(),
        expected_counter: observed.lease.lease_counter,
        previous_owner: observed.lease.lease_owner.clone(),
    }
}

/// Decides which leases `worker_id` should take or steal as of local monotonic time `now`.
///
/// Pure and deterministic. With `parallel_stealing` (the default) it follows the fair-share
/// plan of the [module docs](self) and ignores `seed`, so that every worker that saw the same
/// table computes the same global plan. With `parallel_stealing` off it follows the Java KCL's
/// rule, whose random choices are seeded by `seed` (vary it per run, e.g. from the run count).
pub fn plan_takes(
    observations: &LeaseObservations,
    worker_id: &str,
    now: Duration,
    config: &LeaseConfig,
    seed: u64,
) -> TakePlan {
    if config.parallel_stealing() {
        fair_share_plan(observations, worker_id, now, config)
    } else {
        java_plan(observations, worker_id, now, config, seed)
    }
}

/// Each counted worker's fair share of `lease_count` leases: `lease_count / workers`, plus one
/// for the `lease_count % workers` workers holding the most (ties broken by a hash of the
/// worker id, then the id), each capped by `max_leases_for_worker`.
///
/// `counts` are unexpired leases per worker, as [`LeaseObservations::lease_counts`] gives
/// them, with the planning worker added (with 0 if it holds nothing). The shares add up to
/// `lease_count` unless the cap binds.
pub fn fair_shares(
    counts: &BTreeMap<String, usize>,
    lease_count: usize,
    config: &LeaseConfig,
) -> BTreeMap<String, usize> {
    let Some(base) = lease_count.checked_div(counts.len()) else {
        return BTreeMap::new();
    };
    let extra = lease_count % counts.len();
    let mut ranked: Vec<(&String, usize)> = counts
        .iter()
        .map(|(worker, count)| (worker, *count))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| hash_str(a.0).cmp(&hash_str(b.0)))
            .then_with(|| a.0.cmp(b.0))
    });
    ranked
        .into_iter()
        .enumerate()
        .map(|(rank, (worker, _))| {
            let share = if rank < extra { base + 1 } else { base };
            (worker.clone(), share.min(config.max_leases_for_worker()))
        })
        .collect()
}

fn fair_share_plan(
    observations: &LeaseObservations,
    worker_id: &str,
    now: Duration,
    config: &LeaseConfig,
) -> TakePlan {
    let mut counts = observations.lease_counts(now, config);
    counts.entry(worker_id.to_owned()).or_insert(0);
    let mine = counts[worker_id];
    let lease_count = observations.assignable().count();
    let shares = fair_shares(&counts, lease_count, config);
    let target = shares.get(worker_id).copied().unwrap_or(0);
    let mut plan = TakePlan {
        target,
        worker_count: counts.len(),
        lease_count,
        ..TakePlan::default()
    };
    let available: Vec<&ObservedLease> = observations
        .assignable()
        .filter(|observed| observed.is_available(now, config))
        .collect();

    // 3. Very old leases first, ignoring the share but never exceeding the per-worker cap.
    let mut very_old: Vec<&ObservedLease> = available
        .iter()
        .copied()
        .filter(|observed| observed.is_seen_very_old(now, config))
        .collect();
    if !very_old.is_empty() {
        very_old.sort_by_key(|observed| std::cmp::Reverse(weight(worker_id, observed)));
        let room = config.max_leases_for_worker().saturating_sub(mine);
        plan.take = very_old.into_iter().take(room).map(planned).collect();
        if !plan.take.is_empty() {
            return plan;
        }
    }
    if mine >= target {
        return plan;
    }

    // How far each worker is below its share.
    let deficits: BTreeMap<&str, usize> = shares
        .iter()
        .filter_map(|(worker, share)| {
            let held = counts.get(worker).copied().unwrap_or(0);
            (*share > held).then(|| (worker.as_str(), share - held))
        })
        .collect();

    // 4. Free or expired leases, granted to the workers below their share.
    if !available.is_empty() {
        plan.take = granted(&available, &deficits, worker_id)
            .into_iter()
            .map(planned)
            .collect();
        return plan;
    }

    // 5. Nothing available: every worker above its share gives up its surplus.
    let per_victim_cap = if config.steal_whole_deficit() {
        usize::MAX
    } else {
        config.max_leases_to_steal_at_one_time()
    };
    let mut given_up: Vec<&ObservedLease> = Vec::new();
    for (victim, count) in &counts {
        let share = shares.get(victim).copied().unwrap_or(0);
        if *count <= share || victim == worker_id {
            continue;
        }
        let mut theirs: Vec<&ObservedLease> = observations
            .assignable()
            .filter(|observed| observed.lease.is_owned_by(victim))
            .filter(|observed| !observed.is_expired(now, config))
            .collect();
        // Longest held first; among leases that look equally old to this worker (a newcomer
        // sees them all for the first time), the ones that have not changed hands since their
        // last checkpoint, so a lease that just moved is not the one that moves again.
        theirs.sort_by_key(|observed| {
            (
                observed.owner_seen_since,
                observed.lease.owner_switches_since_checkpoint,
                hash_str(key(observed)),
                key(observed),
            )
        });
        given_up.extend(theirs.into_iter().take((count - share).min(per_victim_cap)));
    }
    let mut steal = granted(&given_up, &deficits, worker_id);
    if mine == 0 {
        // Holding nothing, this worker is invisible: other newcomers may be planning the same
        // steals. Take at most half the deficit (rounded up) now; the next round, when every
        // newcomer is visible, finishes the balance and no lease has to move twice.
        steal.truncate(steal.len().min((target - mine).div_ceil(2)));
    }
    plan.steal = steal.into_iter().map(planned).collect();
    plan
}

/// Grants `leases` to the workers short of their share (`deficits`) by capacity-bounded
/// rendezvous hashing: all (worker, lease) pairs, heaviest first, each granted while the lease
/// is unassigned and the worker still short. Returns what `worker_id` was granted, heaviest
/// (its preferred attempt order) first.
fn granted<'a>(
    leases: &[&'a ObservedLease],
    deficits: &BTreeMap<&str, usize>,
    worker_id: &str,
) -> Vec<&'a ObservedLease> {
    let my_deficit = deficits.get(worker_id).copied().unwrap_or(0);
    if my_deficit == 0 || leases.is_empty() {
        return Vec::new();
    }
    let mut pairs: Vec<(u64, &str, usize)> = Vec::with_capacity(leases.len() * deficits.len());
    for (worker, _) in deficits.iter() {
        for (index, observed) in leases.iter().enumerate() {
            pairs.push((weight(worker, observed), worker, index));
        }
    }
    // Heaviest first; ties (astronomically rare) by worker id, then lease key, for determinism.
    pairs.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.cmp(b.1))
            .then_with(|| key(leases[a.2]).cmp(key(leases[b.2])))
    });
    let mut remaining = deficits.clone();
    let mut assigned = vec![false; leases.len()];
    let mut mine = Vec::new();
    for (_, worker, index) in pairs {
        if assigned[index] {
            continue;
        }
        let Some(left) = remaining.get_mut(worker).filter(|left| **left > 0) else {
            continue;
        };
        *left -= 1;
        assigned[index] = true;
        if worker == worker_id {
            mine.push(leases[index]);
            if mine.len() == my_deficit {
                break;
            }
        }
    }
    mine
}

fn key(observed: &ObservedLease) -> &str {
    observed.lease.lease_key.as_str()
}

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finaliser): the same in every process.
fn hash_bytes(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for byte in *part {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash = (hash ^ 0xff).wrapping_mul(0x100_0000_01b3);
    }
    SplitMix64(hash).next()
}

fn hash_str(text: &str) -> u64 {
    hash_bytes(&[text.as_bytes()])
}

/// The rendezvous weight of `worker_id` for a lease.
fn weight(worker_id: &str, observed: &ObservedLease) -> u64 {
    hash_bytes(&[worker_id.as_bytes(), key(observed).as_bytes()])
}

/// The Java KCL's rule (see the module docs).
fn java_plan(
    observations: &LeaseObservations,
    worker_id: &str,
    now: Duration,
    config: &LeaseConfig,
    seed: u64,
) -> TakePlan {
    let mut rng = SplitMix64(seed);
    let mut counts = observations.lease_counts(now, config);
    counts.entry(worker_id.to_owned()).or_insert(0);
    let mine = counts[worker_id];
    let lease_count = observations.assignable().count();
    let worker_count = counts.len();
    let target = if worker_count >= lease_count {
        1
    } else {
        lease_count.div_ceil(worker_count)
    }
    .min(config.max_leases_for_worker());
    let mut plan = TakePlan {
        target,
        worker_count,
        lease_count,
        ..TakePlan::default()
    };
    // An expired lease of this worker's own is available too: it was not renewed in time.
    let is_candidate = |observed: &&ObservedLease| observed.is_available(now, config);

    // Very old leases first, ignoring the target but never exceeding the per-worker cap.
    let mut very_old: Vec<&ObservedLease> = observations
        .assignable()
        .filter(is_candidate)
        .filter(|observed| observed.is_very_old(now, config))
        .collect();
    if !very_old.is_empty() {
        rng.shuffle(&mut very_old);
        let room = config.max_leases_for_worker().saturating_sub(mine);
        plan.take = very_old.into_iter().take(room).map(planned).collect();
        if !plan.take.is_empty() {
            return plan;
        }
    }

    let needed = target.saturating_sub(mine);
    if needed == 0 {
        return plan;
    }

    // Free or expired leases, at random, up to the target.
    let mut available: Vec<&ObservedLease> =
        observations.assignable().filter(is_candidate).collect();
    if !available.is_empty() {
        rng.shuffle(&mut available);
        plan.take = available.into_iter().take(needed).map(planned).collect();
        return plan;
    }

    // Nothing available: steal from the single most loaded worker.
    let Some((victim, how_many)) = java_steal(&counts, worker_id, target, needed, config) else {
        return plan;
    };
    let mut theirs: Vec<&ObservedLease> = observations
        .assignable()
        .filter(|observed| observed.lease.is_owned_by(&victim))
        .filter(|observed| !observed.is_expired(now, config))
        .collect();
    rng.shuffle(&mut theirs);
    plan.steal = theirs.into_iter().take(how_many).map(planned).collect();
    plan
}

/// The Java KCL's victim and steal count: only the single most loaded worker, and one lease
/// even when it is exactly at target if this worker is short by more than one.
fn java_steal(
    counts: &BTreeMap<String, usize>,
    worker_id: &str,
    target: usize,
    needed: usize,
    config: &LeaseConfig,
) -> Option<(String, usize)> {
    // Most loaded first; ties broken by worker id so the plan is deterministic.
    let (most_loaded, most_count) = counts
        .iter()
        .filter(|(worker, _)| worker.as_str() != worker_id)
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
    if *most_count < target {
        return None;
    }
    let mut steal = needed.min(most_count - target);
    if steal == 0 && needed > 1 {
        steal = 1;
    }
    let steal = steal.min(config.max_leases_to_steal_at_one_time());
    (steal > 0).then(|| (most_loaded.clone(), steal))
}
