//! The worker's health as its lease store shows it.
//!
//! Every lease-store call of the worker's background tasks (renewer, taker, shard sync,
//! cleanup) reports its outcome here. A store that has kept failing for half the failover time
//! makes the worker **unhealthy** (its leases are about to expire locally, so it processes
//! nothing); one that has kept failing with errors no retry fixes (disk full, a corrupt or
//! read-only file, a foreign table) for the configured time makes the worker **give up**: the
//! scheduler shuts down and [`Scheduler::run`](crate::scheduler::Scheduler::run) returns
//! [`WorkerError::LeaseStoreUnavailable`](crate::error::WorkerError::LeaseStoreUnavailable), so
//! an orchestrator restarts or alerts instead of a fleet silently making no progress.
//!
//! [`probe`] adds what an orchestrator's health check needs on top: held leases that have not
//! been renewed for half the failover time, and a shard whose processor call has been running
//! past its limit (a stuck shard).
//!
//! Time is the injected monotonic clock's, passed in as `now`.

use kcl_core::kinesis::ShardId;
use kcl_core::lease_store::LeaseStoreError;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Whether a worker is doing its job, as [`SchedulerHandle::health`](crate::scheduler::SchedulerHandle::health) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerHealth {
    /// The lease store answers (or has failed for less than half the failover time).
    Healthy,
    /// The lease store has been failing for `failing_for`; `reason` is its last error.
    Unhealthy {
        /// Why, in words: the last lease-store error.
        reason: String,
        /// How long the store has been failing without a success in between.
        failing_for: Duration,
    },
}

impl WorkerHealth {
    /// Whether this is [`WorkerHealth::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, WorkerHealth::Healthy)
    }
}

/// A run of failures without a success in between.
#[derive(Debug, Clone)]
struct FailureRun {
    since: Duration,
    last_error: String,
    /// Whether every failure of the run was one that no retry fixes.
    persistent: bool,
}

/// Tracks lease-store outcomes over time.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    unhealthy_after: Duration,
    give_up_after: Option<Duration>,
    failing: Mutex<Option<FailureRun>>,
    gave_up: CancellationToken,
}

/// Whether `error` is one no retry fixes: the store must be repaired by an operator.
fn is_persistent(error: &LeaseStoreError) -> bool {
    !error.is_retryable() && !error.is_condition_failed()
}

impl StoreHealth {
    /// Unhealthy after `unhealthy_after` of failures; gives up after `give_up_after` of
    /// persistent failures (`None`: never).
    pub(crate) fn new(unhealthy_after: Duration, give_up_after: Option<Duration>) -> Self {
        StoreHealth {
            unhealthy_after,
            give_up_after,
            failing: Mutex::new(None),
            gave_up: CancellationToken::new(),
        }
    }

    fn failing(&self) -> std::sync::MutexGuard<'_, Option<FailureRun>> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A lease-store call succeeded.
    pub(crate) fn succeeded(&self) {
        let recovered = self.failing().take();
        if let Some(run) = recovered {
            tracing::info!(last_error = %run.last_error, "the lease store answers again");
        }
    }

    /// A lease-store call failed at `now` (a failed condition is an answer, not a failure:
    /// don't report it).
    pub(crate) fn failed(&self, error: &LeaseStoreError, now: Duration) {
        let persistent = is_persistent(error);
        let mut failing = self.failing();
        let run = failing.get_or_insert_with(|| FailureRun {
            since: now,
            last_error: String::new(),
            persistent: true,
        });
        run.last_error = error.to_string();
        run.persistent &= persistent;
        let failing_for = now.saturating_sub(run.since);
        if let Some(limit) = self.give_up_after
            && run.persistent
            && failing_for >= limit
            && !self.gave_up.is_cancelled()
        {
            tracing::error!(
                error = %run.last_error,
                failing_for_ms = failing_for.as_millis() as u64,
                "the lease store keeps failing with errors no retry fixes; the worker stops"
            );
            self.gave_up.cancel();
        }
    }

    /// The health at `now`.
    pub(crate) fn health(&self, now: Duration) -> WorkerHealth {
        match self.failing().as_ref() {
            Some(run) if now.saturating_sub(run.since) >= self.unhealthy_after => {
                WorkerHealth::Unhealthy {
                    reason: run.last_error.clone(),
                    failing_for: now.saturating_sub(run.since),
                }
            }
            _ => WorkerHealth::Healthy,
        }
    }

    /// How long the store may fail before the worker is unhealthy.
    pub(crate) fn unhealthy_after(&self) -> Duration {
        self.unhealthy_after
    }

    /// Fires once the worker gave up on the store.
    pub(crate) fn gave_up(&self) -> &CancellationToken {
        &self.gave_up
    }

    /// The last error and how long the store has been failing, at `now`.
    pub(crate) fn failure(&self, now: Duration) -> Option<(String, Duration)> {
        self.failing()
            .as_ref()
            .map(|run| (run.last_error.clone(), now.saturating_sub(run.since)))
    }
}

/// What [`probe`] looks at, gathered at one moment.
#[derive(Debug, Clone)]
pub(crate) struct ProbeInputs {
    /// The lease store's health.
    pub(crate) store: WorkerHealth,
    /// Leases held now.
    pub(crate) leases_held: u64,
    /// Since the last successful lease write (a take or a whole renewal run).
    pub(crate) since_last_lease_write: Duration,
    /// Half the failover time: how long held leases may go unrenewed.
    pub(crate) unhealthy_after: Duration,
    /// Shards whose processor call has been running for at least the stuck limit, longest first.
    pub(crate) stuck: Vec<(ShardId, Duration)>,
    /// The stuck limit.
    pub(crate) stuck_after: Duration,
}

/// The worker's health for a probe: the store's verdict first, then unrenewed leases, then
/// the longest-stuck shard.
pub(crate) fn probe(inputs: ProbeInputs) -> WorkerHealth {
    if !inputs.store.is_healthy() {
        return inputs.store;
    }
    if inputs.leases_held > 0 && inputs.since_last_lease_write >= inputs.unhealthy_after {
        return WorkerHealth::Unhealthy {
            reason: format!(
                "{} held leases not renewed for {} ms (limit {} ms, half the failover time)",
                inputs.leases_held,
                inputs.since_last_lease_write.as_millis(),
                inputs.unhealthy_after.as_millis()
            ),
            failing_for: inputs.since_last_lease_write,
        };
    }
    if let Some((shard_id, running_for)) = inputs.stuck.first() {
        return WorkerHealth::Unhealthy {
            reason: format!(
                "shard {shard_id} stuck: its record processor has been running for {} ms (limit {} ms)",
                running_for.as_millis(),
                inputs.stuck_after.as_millis()
            ),
            failing_for: *running_for,
        };
    }
    WorkerHealth::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_the_first_problem() {
        let store_down = WorkerHealth::Unhealthy {
            reason: "sqlite is busy".to_owned(),
            failing_for: at(6),
        };
        let stuck = vec![(ShardId::from_index(1), at(90))];
        // (name, store, held, since last write, stuck, expected reason fragment or None)
        type Case = (
            &'static str,
            WorkerHealth,
            u64,
            u64,
            Vec<(ShardId, Duration)>,
            Option<&'static str>,
        );
        let cases: [Case; 6] = [
            ("all well", WorkerHealth::Healthy, 2, 1, vec![], None),
            (
                "store down",
                store_down.clone(),
                2,
                1,
                vec![],
                Some("sqlite is busy"),
            ),
            (
                "store first",
                store_down,
                2,
                9,
                stuck.clone(),
                Some("sqlite is busy"),
            ),
            (
                "unrenewed",
                WorkerHealth::Healthy,
                2,
                5,
                vec![],
                Some("not renewed"),
            ),
            ("nothing held", WorkerHealth::Healthy, 0, 50, vec![], None),
            (
                "stuck",
                WorkerHealth::Healthy,
                1,
                1,
                stuck,
                Some("shardId-000000000001 stuck"),
            ),
        ];
        for (name, store, leases_held, since, stuck, expected) in cases {
            let health = probe(ProbeInputs {
                store,
                leases_held,
                since_last_lease_write: at(since),
                unhealthy_after: at(5),
                stuck,
                stuck_after: at(60),
            });
            match (expected, health) {
                (None, WorkerHealth::Healthy) => {}
                (Some(fragment), WorkerHealth::Unhealthy { reason, .. }) => {
                    assert!(reason.contains(fragment), "{name}: {reason}");
                }
                (expected, health) => panic!("{name}: expected {expected:?}, got {health:?}"),
            }
        }
    }

    fn throttled() -> LeaseStoreError {
        LeaseStoreError::Throttled("sqlite is busy".to_owned())
    }

    fn corrupt() -> LeaseStoreError {
        LeaseStoreError::InvalidStore("not a kcl-rs lease table".to_owned())
    }

    fn at(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn health_follows_runs_of_failures() {
        // (outcomes as (time, error or success), health at the end, gave up)
        type Outcome = (u64, Option<fn() -> LeaseStoreError>);
        let cases: [(&str, Vec<Outcome>, u64, bool, bool); 6] = [
            ("no failure", vec![(1, None)], 100, true, false),
            (
                "short failure",
                vec![(1, Some(throttled)), (3, Some(throttled))],
                4,
                true,
                false,
            ),
            (
                "long transient failure",
                vec![(1, Some(throttled)), (9, Some(throttled))],
                9,
                false,
                false,
            ),
            (
                "recovered",
                vec![(1, Some(corrupt)), (9, Some(corrupt)), (10, None)],
                200,
                true,
                false,
            ),
            (
                "persistent past the limit",
                vec![(1, Some(corrupt)), (62, Some(corrupt))],
                62,
                false,
                true,
            ),
            (
                "mixed run never gives up",
                vec![(1, Some(throttled)), (62, Some(corrupt))],
                62,
                false,
                false,
            ),
        ];
        for (name, outcomes, now, healthy, gave_up) in cases {
            let health = StoreHealth::new(at(5), Some(at(60)));
            for (time, outcome) in outcomes {
                match outcome {
                    None => health.succeeded(),
                    Some(error) => health.failed(&error(), at(time)),
                }
            }
            assert_eq!(health.health(at(now)).is_healthy(), healthy, "{name}");
            assert_eq!(health.gave_up().is_cancelled(), gave_up, "{name}");
        }
    }
}
