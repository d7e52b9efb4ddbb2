//! The failed-authentication limiter: per client IP, per instance.
//!
//! Each instance counts failures on its own (no shared store, so no new failure mode), which means an
//! attacker spread over N instances gets N times the budget; the proxy's `limit_req` is the global
//! limit, this one protects each instance's bcrypt budget. A client that fails `failures` times
//! within `window` gets 429 with `Retry-After` for `lockout`.
//!
//! Memory is bounded by `max_clients`: when the table is full, expired entries are swept (at most once
//! a second, so a flood of new addresses cannot make every request pay for a sweep), and if it is
//! still full new addresses are not tracked — the limiter degrades to letting them through rather than
//! growing without bound. The common path (nobody locked out) takes one atomic load and no lock.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::config::RateLimitConfig;

struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

struct Table {
    entries: HashMap<IpAddr, Entry>,
    last_sweep: Instant,
}

pub struct FailedAuthLimiter {
    failures: u32,
    window: Duration,
    lockout: Duration,
    max_clients: usize,
    table: Mutex<Table>,
    /// Clients currently locked out (an upper bound: expiry is noticed lazily).
    locked: AtomicUsize,
}

impl FailedAuthLimiter {
    pub fn new(config: &RateLimitConfig) -> Self {
        FailedAuthLimiter {
            failures: config.failures,
            window: config.window.get(),
            lockout: config.lockout.get(),
            max_clients: config.max_clients,
            table: Mutex::new(Table {
                entries: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            locked: AtomicUsize::new(0),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(retry_after)` while `ip` is locked out.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.locked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut table = self.table();
        let Some(entry) = table.entries.get_mut(&ip) else {
            return Ok(());
        };
        match entry.locked_until {
            Some(until) if until > now => Err(until - now),
            Some(_) => {
                table.entries.remove(&ip);
                self.locked.fetch_sub(1, Ordering::Relaxed);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one failure; returns the lockout if this failure triggered one.
    pub fn record_failure(&self, ip: IpAddr) -> Option<Duration> {
        self.record_failure_at(ip, Instant::now())
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut table = self.table();
        if !table.entries.contains_key(&ip) && table.entries.len() >= self.max_clients {
            self.sweep(&mut table, now);
            if table.entries.len() >= self.max_clients {
                metrics::counter!("pgmcp_rate_limiter_untracked_total").increment(1);
                return None;
            }
        }
        let entry = table.entries.entry(ip).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
        });
        if entry.locked_until.is_some() {
            return None;
        }
        if now.duration_since(entry.window_start) > self.window {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures += 1;
        if entry.failures >= self.failures {
            entry.locked_until = Some(now + self.lockout);
            self.locked.fetch_add(1, Ordering::Relaxed);
            return Some(self.lockout);
        }
        None
    }

    fn sweep(&self, table: &mut Table, now: Instant) {
        if now.duration_since(table.last_sweep) < Duration::from_secs(1) {
            return;
        }
        table.last_sweep = now;
        let before = table.entries.len();
        let mut unlocked = 0;
        table.entries.retain(|_, e| match e.locked_until {
            Some(until) if until <= now => {
                unlocked += 1;
                false
            }
            Some(_) => true,
            None => now.duration_since(e.window_start) <= self.window,
        });
        self.locked.fetch_sub(unlocked, Ordering::Relaxed);
        tracing::debug!(removed = before - table.entries.len(), "swept failed-auth table");
    }

    pub fn tracked_clients(&self) -> usize {
        self.table().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::HumanDuration;

    fn limiter(failures: u32, max_clients: usize) -> FailedAuthLimiter {
        FailedAuthLimiter::new(&RateLimitConfig {
            failures,
            window: HumanDuration(Duration::from_secs(60)),
            lockout: HumanDuration(Duration::from_secs(300)),
            max_clients,
        })
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn locks_out_after_the_configured_failures_and_only_that_client() {
        let limiter = limiter(3, 100);
        let now = Instant::now();
        assert_eq!(limiter.record_failure_at(ip(1), now), None);
        assert_eq!(limiter.record_failure_at(ip(1), now), None);
        assert_eq!(limiter.record_failure_at(ip(1), now), Some(Duration::from_secs(300)));
        assert!(limiter.check_at(ip(1), now + Duration::from_secs(10)).unwrap_err() <= Duration::from_secs(290));
        assert!(limiter.check_at(ip(2), now).is_ok());
        assert!(limiter.check_at(ip(1), now + Duration::from_secs(301)).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let limiter = limiter(2, 100);
        let now = Instant::now();
        limiter.record_failure_at(ip(1), now);
        assert_eq!(limiter.record_failure_at(ip(1), now + Duration::from_secs(61)), None);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let limiter = limiter(5, 1000);
        let now = Instant::now();
        for n in 0..100_000 {
            limiter.record_failure_at(ip(n), now);
        }
        assert_eq!(limiter.tracked_clients(), 1000);
        // Once the window has passed, the sweep makes room again.
        limiter.record_failure_at(ip(200_000), now + Duration::from_secs(120));
        assert_eq!(limiter.tracked_clients(), 1);
    }
}
