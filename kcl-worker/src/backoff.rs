//! Delays between the worker's own retries (processor calls, shard reads, lease-store writes at
//! shard end, fan-out registration): exponential from `backon`, endless, capped.
//!
//! The loops that use them stay in charge of *when* to stop (a lost lease, a shutdown, a
//! cancelled retriever); this only says how long to wait next.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// Doubling delays from `min` up to `max`, with jitter, never running out.
#[derive(Debug)]
pub(crate) struct Delays {
    min: Duration,
    max: Duration,
    jitter: bool,
    delays: ExponentialBackoff,
}

fn build(min: Duration, max: Duration, jitter: bool) -> ExponentialBackoff {
    let builder = ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .without_max_times();
    if jitter {
        builder.with_jitter().build()
    } else {
        builder.build()
    }
}

impl Delays {
    /// Delays with jitter (concurrent retriers spread out).
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Delays {
            min,
            max,
            jitter: true,
            delays: build(min, max, true),
        }
    }

    /// Delays without jitter (for a single retrier whose timing must be predictable).
    pub(crate) fn exact(min: Duration, max: Duration) -> Self {
        Delays {
            min,
            max,
            jitter: false,
            delays: build(min, max, false),
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// Starts over from `min` (after a success).
    pub(crate) fn reset(&mut self) {
        self.delays = build(self.min, self.max, self.jitter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_start_over_on_reset() {
        let mut delays = Delays::exact(Duration::from_millis(100), Duration::from_millis(500));
        let first: Vec<u64> = (0..5)
            .map(|_| delays.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(first, [100, 200, 400, 500, 500]);
        delays.reset();
        assert_eq!(delays.next_delay(), Duration::from_millis(100));
        let mut jittered = Delays::new(Duration::from_millis(100), Duration::from_millis(500));
        for _ in 0..20 {
            let delay = jittered.next_delay();
            assert!(delay >= Duration::from_millis(100), "{delay:?}");
            assert!(delay <= Duration::from_millis(1_000), "{delay:?}");
        }
    }
}
