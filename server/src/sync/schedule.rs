//! When an item's next round starts: the interval after a success, a growing backoff after
//! failures.
//!
//! After a success the pause is the interval ±10 % (replicas spread their requests). After `n`
//! consecutive failed rounds it is `interval / 16 × 2^(n-1)`, capped at the interval, with "equal
//! jitter" (a uniform pick in the upper half): a store that comes back is noticed within seconds,
//! not a full interval later, while a store that stays down is asked no more often than
//! 16 times per interval at first and once per interval after five failures. Retries *within* a
//! round (transient errors of one fetch) are `fetch::RetryPolicy`'s, and a round's length is
//! bounded by the per-item deadline, so this schedule alone decides the gaps between rounds.

use std::time::Duration;

use rand::Rng;

/// The first backoff after a failed round is the interval divided by this.
const FIRST_BACKOFF_DIVISOR: u32 = 16;

/// One item's schedule of rounds.
#[derive(Clone, Debug)]
pub struct RoundSchedule {
    interval: Duration,
    consecutive_failures: u32,
}

impl RoundSchedule {
    /// `interval` must be more than zero (the command line refuses 0s).
    pub fn new(interval: Duration) -> RoundSchedule {
        RoundSchedule {
            interval,
            consecutive_failures: 0,
        }
    }

    /// Consecutive failed rounds so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The pause before the next round, given whether this round succeeded.
    pub fn after_round(&mut self, succeeded: bool) -> Duration {
        if succeeded {
            self.consecutive_failures = 0;
            return self.interval.mul_f64(rand::rng().random_range(0.9..=1.1));
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let ceiling = self
            .interval
            .checked_div(FIRST_BACKOFF_DIVISOR)
            .unwrap_or_default()
            .saturating_mul(2u32.saturating_pow(self.consecutive_failures - 1))
            .min(self.interval);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_rounds_back_off_exponentially_up_to_the_interval_and_a_success_resets() {
        let interval = Duration::from_secs(64);
        for _ in 0..50 {
            let mut schedule = RoundSchedule::new(interval);
            let pauses: Vec<Duration> = (0..7).map(|_| schedule.after_round(false)).collect();
            for (n, pause) in pauses.iter().enumerate() {
                let ceiling = Duration::from_secs(4 << n).min(interval);
                assert!(
                    *pause >= ceiling / 2 && *pause <= ceiling,
                    "failure {}: {pause:?} not in [{:?}, {ceiling:?}]",
                    n + 1,
                    ceiling / 2
                );
            }
            assert_eq!(schedule.consecutive_failures(), 7);
            let after_success = schedule.after_round(true);
            assert!(after_success >= interval.mul_f64(0.9) && after_success <= interval.mul_f64(1.1));
            assert_eq!(schedule.consecutive_failures(), 0);
            let first_again = schedule.after_round(false);
            assert!(first_again <= Duration::from_secs(4), "{first_again:?}");
        }
    }
}
