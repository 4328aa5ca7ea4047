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
//! Time is the injected monotonic clock's, passed in as `now`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
