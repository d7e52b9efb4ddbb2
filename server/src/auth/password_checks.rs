//! A bound on how many password checks (bcrypt) run at once, shared by every way of logging in
//! with a password: `POST /api/login` today, the built-in OAuth login page when it comes.
//!
//! One bcrypt check at the default cost is ~0.28 s of one core, by design. Unbounded, sixteen
//! clients logging in at once — with valid passwords, so the failed-auth limiter never engages —
//! kept both cores busy and took authenticated `ping` from another client from 15.7k to 1.85k req/s,
//! p99 1.4 → 15.9 ms (issue #13 §B.10). So checks take a slot first: at most
//! `auth.password_checks.concurrency` at once (default half the cores, at least one), the rest wait
//! up to `auth.password_checks.wait` and are then refused with 503 and `Retry-After`, which costs
//! nothing. The slot travels into the blocking task with the check, so a client that disconnects
//! mid-check does not free a slot while its bcrypt still runs. The command-line `user` commands
//! hash on their own, outside any server, and are not bounded here.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;

use super::principal::AuthFailure;
use crate::config::PasswordChecksConfig;

/// The slots password checks run in; cheap to clone (one semaphore shared by the clones).
#[derive(Clone, Debug)]
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    /// How long a check may wait for a slot.
    wait: Duration,
}

impl PasswordChecks {
    pub fn new(config: &PasswordChecksConfig) -> PasswordChecks {
        PasswordChecks {
            slots: Arc::new(Semaphore::new(config.slots())),
            wait: config.wait.get(),
        }
    }

    /// Runs `check` (blocking: bcrypt) on the blocking pool once a slot is free. Errors:
    /// [`AuthFailure::Busy`] when no slot freed within the wait; [`AuthFailure::BadCredentials`]
    /// if the check panicked (refusing is the safe answer); else what `check` returned.
    pub async fn run<T, F>(&self, check: F) -> Result<T, AuthFailure>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, AuthFailure> + Send + 'static,
    {
        let slot = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AuthFailure::Busy)?
            .map_err(|_| AuthFailure::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            check()
        })
        .await
        .map_err(|_| AuthFailure::BadCredentials)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::HumanDuration;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn checks(concurrency: usize, wait: Duration) -> PasswordChecks {
        PasswordChecks::new(&PasswordChecksConfig {
            concurrency: Some(concurrency),
            wait: HumanDuration(wait),
        })
    }

    #[tokio::test]
    async fn no_more_than_the_bound_run_and_the_rest_are_busy_after_the_wait() {
        let checks = checks(2, Duration::from_millis(100));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let attempts = (0..6).map(|_| {
            let (checks, running, most) = (checks.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                checks
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(400));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            })
        });
        let mut outcomes = Vec::new();
        for attempt in attempts.collect::<Vec<_>>() {
            outcomes.push(attempt.await.unwrap());
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(AuthFailure::Busy))));
    }

    #[tokio::test]
    async fn a_check_that_is_abandoned_keeps_its_slot_until_it_ends() {
        let checks = checks(1, Duration::from_millis(50));
        let abandoned = tokio::spawn({
            let checks = checks.clone();
            async move {
                checks
                    .run(|| {
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        abandoned.abort();
        assert_eq!(checks.run(|| Ok(())).await, Err(AuthFailure::Busy));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(checks.run(|| Ok(())).await, Ok(()));
    }
}
