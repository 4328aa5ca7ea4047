//! Time, injected: a monotonic clock for lease expiry and a wall clock for timestamps.
//!
//! Lease and retention logic never reads the system time itself; it asks a [`Clock`]. Tests use
//! [`ManualClock`] (moved by hand) or [`TokioClock`] under `#[tokio::test(start_paused = true)]`.

use crate::kinesis::EpochMillis;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time since an origin fixed for this clock. Never goes backwards.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time, for timestamps shown to people or stored in records.
    fn wall(&self) -> EpochMillis;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

fn system_wall() -> EpochMillis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    EpochMillis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

/// The real clocks of the machine.
#[derive(Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: std::time::Instant::now(),
        }
    }

    /// A system clock as a shared handle.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> EpochMillis {
        system_wall()
    }
}

/// A clock that follows tokio's time, so `tokio::time::pause`/`advance` move it.
///
/// The wall clock is the system's wall time at creation plus tokio's elapsed time.
#[derive(Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    wall_origin: EpochMillis,
}

impl TokioClock {
    /// A clock starting now, in tokio's time.
    pub fn new() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
            wall_origin: system_wall(),
        }
    }

    /// A tokio clock as a shared handle.
    pub fn shared() -> SharedClock {
        Arc::new(TokioClock::new())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn monotonic(&self) -> Duration {
        tokio::time::Instant::now().duration_since(self.origin)
    }

    fn wall(&self) -> EpochMillis {
        let elapsed = i64::try_from(self.monotonic().as_millis()).unwrap_or(i64::MAX);
        EpochMillis(self.wall_origin.0.saturating_add(elapsed))
    }
}

/// A clock moved only by [`ManualClock::advance`]; both clocks move together.
#[derive(Debug)]
pub struct ManualClock {
    monotonic_nanos: AtomicU64,
    wall_millis: AtomicI64,
}

impl ManualClock {
    /// A manual clock at monotonic zero and the given wall time.
    pub fn new(wall: EpochMillis) -> Self {
        ManualClock {
            monotonic_nanos: AtomicU64::new(0),
            wall_millis: AtomicI64::new(wall.0),
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.monotonic_nanos.fetch_add(nanos, Ordering::SeqCst);
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.wall_millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.monotonic_nanos.load(Ordering::SeqCst))
    }

    fn wall(&self) -> EpochMillis {
        EpochMillis(self.wall_millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(EpochMillis(1_000));
        assert_eq!(clock.monotonic(), Duration::ZERO);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.monotonic(), Duration::from_millis(1_500));
        assert_eq!(clock.wall(), EpochMillis(2_500));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(clock.monotonic(), Duration::from_secs(5));
    }
}
