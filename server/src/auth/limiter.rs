//! The failed-authentication limiter: per client IP, per instance.
//!
//! The rule (DESIGN.md, "Auth formats"): it slows failing attempts and password logins per client
//! IP; it never refuses a valid API or session token. Hence the order its callers follow:
//!
//! - **Bearer tokens are checked first** (a SHA-256 and a map lookup, or one HMAC: a fraction of a
//!   microsecond) and only a *failed* check reaches the limiter. API tokens carry 256 random
//!   bits and session tokens are signed, so refusing a valid one protects nothing — it only hurts
//!   whoever shares the address: every client behind a proxy whose address is not in
//!   `auth.trusted_proxies`, or a client that presented a rotated token before the reload reached
//!   this instance. A client's failures are counted; after `failures` within `window` it is locked
//!   out for `lockout`, which means its *failing* attempts get 429 with `Retry-After` instead of 401.
//! - **Password logins are checked after the limiter** ([`FailedAuthLimiter::begin_login`]):
//!   passwords can be guessed, and bcrypt costs ~0.3 s of CPU, so a locked-out client is refused
//!   before bcrypt runs. A login in flight holds one unit of the client's budget until it ends, so a
//!   burst of concurrent guesses cannot run more bcrypts than the budget allows. A successful login
//!   gives its unit back and counts nothing; it does not reset the count either, or anyone who knows
//!   one password could launder guesses at the others between two of their own logins.
//!
//! Each instance counts on its own (no shared store, so no new failure mode and nothing for a load
//! balancer to keep sticky): an attacker spread over N instances gets N times the budget. The
//! proxy's `limit_req` is the global limit; this one protects each instance's bcrypt budget.
//!
//! Memory is bounded: the table never holds more than `max_clients` entries of under 100 bytes
//! (~9 MB at the default 100,000). When it is full, expired entries are swept (at most once a
//! second, so a flood of new addresses cannot make every failure pay for a sweep), and if it is
//! still full new addresses are not tracked — the limiter degrades to letting them through (counted
//! in `pgmcp_rate_limiter_untracked_total`) rather than growing. Only failures and logins in flight
//! create entries; a successful login that leaves nothing to remember removes its entry, and valid
//! bearer tokens never touch the table or its lock.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::config::RateLimitConfig;

/// The address a client is counted under. An IPv6 client is counted by its /64: a single host or
/// customer is routinely given a whole /64 (RFC 6177, SLAAC), so per-address counting would let one
/// attacker rotate through 2^64 addresses, each with a fresh budget, and fill the table. IPv4-mapped
/// IPv6 addresses count as the IPv4 address they carry.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
    }
}

/// How long a client whose budget is held by logins in flight (not by failures) should wait: about
/// one bcrypt.
const BUDGET_BUSY_RETRY: Duration = Duration::from_secs(1);

/// What the limiter says about a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; answer 401.
    Unauthorized,
    /// Counted, and it used up the client's budget: answer 401, the next failing attempt gets 429.
    LockoutStarts,
    /// The client is locked out: answer 429 with this `Retry-After`.
    TooManyAttempts { retry_after: Duration },
}

struct Entry {
    window_start: Instant,
    failures: u32,
    /// Password logins whose bcrypt is running: they hold budget until they end.
    logins_in_flight: u32,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            window_start: now,
            failures: 0,
            logins_in_flight: 0,
            locked_until: None,
        }
    }

    /// Brings the entry up to `now`: an ended lockout or an elapsed window starts a fresh count.
    fn refresh(&mut self, now: Instant, window: Duration) {
        match self.locked_until {
            Some(until) if until <= now => {
                self.locked_until = None;
                self.failures = 0;
                self.window_start = now;
            }
            Some(_) => {}
            None if now.duration_since(self.window_start) > window => {
                self.failures = 0;
                self.window_start = now;
            }
            None => {}
        }
    }

    fn retry_after(&self, now: Instant) -> Option<Duration> {
        self.locked_until.filter(|until| *until > now).map(|until| until - now)
    }

    /// Nothing left to remember: the entry may go.
    fn is_idle(&self, now: Instant, window: Duration) -> bool {
        self.logins_in_flight == 0
            && match self.locked_until {
                Some(until) => until <= now,
                None => self.failures == 0 || now.duration_since(self.window_start) > window,
            }
    }
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
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one failed attempt by `ip` (a refused bearer token) and says how to answer it.
    pub fn record_failure(&self, ip: IpAddr) -> Verdict {
        self.record_failure_at(ip, Instant::now())
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) -> Verdict {
        let mut table = self.table();
        let Some(entry) = self.entry(&mut table, ip, now) else {
            return Verdict::Unauthorized;
        };
        self.count_failure(entry, now)
    }

    /// Admits a password login by `ip` — it then holds one unit of the client's budget until the
    /// returned [`LoginAttempt`] ends — or refuses it with the time to wait, before any bcrypt runs.
    pub fn begin_login(&self, ip: IpAddr) -> Result<LoginAttempt<'_>, Duration> {
        self.begin_login_at(ip, Instant::now())
    }

    fn begin_login_at(&self, ip: IpAddr, now: Instant) -> Result<LoginAttempt<'_>, Duration> {
        let mut table = self.table();
        let held = match self.entry(&mut table, ip, now) {
            None => false,
            Some(entry) => {
                if let Some(retry_after) = entry.retry_after(now) {
                    return Err(retry_after);
                }
                if entry.failures + entry.logins_in_flight >= self.failures {
                    return Err(BUDGET_BUSY_RETRY);
                }
                entry.logins_in_flight += 1;
                true
            }
        };
        Ok(LoginAttempt {
            limiter: self,
            ip,
            held,
            ended: false,
        })
    }

    /// The entry for `ip`, brought up to `now`; created if there is room, `None` if there is not.
    fn entry<'t>(&self, table: &'t mut Table, ip: IpAddr, now: Instant) -> Option<&'t mut Entry> {
        let ip = client_key(ip);
        if !table.entries.contains_key(&ip) && table.entries.len() >= self.max_clients {
            self.sweep(table, now);
            if table.entries.len() >= self.max_clients {
                metrics::counter!("pgmcp_rate_limiter_untracked_total").increment(1);
                return None;
            }
        }
        let entry = table.entries.entry(ip).or_insert_with(|| Entry::new(now));
        entry.refresh(now, self.window);
        Some(entry)
    }

    fn count_failure(&self, entry: &mut Entry, now: Instant) -> Verdict {
        if let Some(retry_after) = entry.retry_after(now) {
            // A lockout is not extended by the attempts it refuses: its end stays predictable.
            return Verdict::TooManyAttempts { retry_after };
        }
        entry.failures += 1;
        if entry.failures >= self.failures {
            entry.locked_until = Some(now + self.lockout);
            // Counted once per lockout, when it starts; the attempts it refuses are counted by
            // `pgmcp_rate_limited_total`.
            metrics::counter!("pgmcp_auth_lockouts_total").increment(1);
            return Verdict::LockoutStarts;
        }
        Verdict::Unauthorized
    }

    /// Ends a login: gives back its unit, and counts a failure (`Some(verdict)`) if it failed.
    fn end_login(&self, ip: IpAddr, held: bool, failed: bool, now: Instant) -> Option<Verdict> {
        let mut table = self.table();
        let ip = client_key(ip);
        if held && let Some(entry) = table.entries.get_mut(&ip) {
            // Entries holding logins in flight are never swept, so the unit is still there.
            entry.logins_in_flight = entry.logins_in_flight.saturating_sub(1);
        }
        if failed {
            let verdict = match self.entry(&mut table, ip, now) {
                Some(entry) => self.count_failure(entry, now),
                None => Verdict::Unauthorized,
            };
            return Some(verdict);
        }
        if table.entries.get(&ip).is_some_and(|e| e.is_idle(now, self.window)) {
            table.entries.remove(&ip);
        }
        None
    }

    fn sweep(&self, table: &mut Table, now: Instant) {
        if now.duration_since(table.last_sweep) < Duration::from_secs(1) {
            return;
        }
        table.last_sweep = now;
        let before = table.entries.len();
        table.entries.retain(|_, e| !e.is_idle(now, self.window));
        tracing::debug!(removed = before - table.entries.len(), "swept failed-auth table");
    }

    /// Client addresses currently remembered (failures, lockouts or logins in flight).
    pub fn tracked_clients(&self) -> usize {
        self.table().entries.len()
    }
}

/// A password login in progress, holding one unit of its client's budget. End it with
/// [`passed`](Self::passed) or [`failed`](Self::failed); one dropped without either (the client went
/// away while bcrypt ran) counts as failed, since the bcrypt it started was paid for.
#[must_use = "a login attempt must be ended with passed() or failed()"]
pub struct LoginAttempt<'a> {
    limiter: &'a FailedAuthLimiter,
    ip: IpAddr,
    /// False when the table was full: nothing was reserved.
    held: bool,
    ended: bool,
}

impl LoginAttempt<'_> {
    /// The password was right (or the attempt was no guess): the unit is given back, nothing counts.
    pub fn passed(mut self) {
        self.ended = true;
        self.limiter.end_login(self.ip, self.held, false, Instant::now());
    }

    /// The password was wrong: the unit becomes a counted failure.
    pub fn failed(mut self) -> Verdict {
        self.ended = true;
        self.limiter
            .end_login(self.ip, self.held, true, Instant::now())
            .unwrap_or(Verdict::Unauthorized)
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.limiter.end_login(self.ip, self.held, true, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
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

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_failure_that_uses_up_the_budget_is_answered_401_and_later_ones_429() {
        let limiter = limiter(3, 100);
        let now = Instant::now();
        assert_eq!(limiter.record_failure_at(ip(1), now), Verdict::Unauthorized);
        assert_eq!(limiter.record_failure_at(ip(1), now), Verdict::Unauthorized);
        assert_eq!(limiter.record_failure_at(ip(1), now), Verdict::LockoutStarts);
        assert_eq!(
            limiter.record_failure_at(ip(1), now + secs(10)),
            Verdict::TooManyAttempts { retry_after: secs(290) }
        );
    }

    #[test]
    fn a_lockout_concerns_only_that_client_and_ends_after_lockout() {
        let limiter = limiter(2, 100);
        let now = Instant::now();
        limiter.record_failure_at(ip(1), now);
        limiter.record_failure_at(ip(1), now);
        assert_eq!(limiter.record_failure_at(ip(2), now), Verdict::Unauthorized);
        // Refused attempts do not extend it ...
        assert!(matches!(
            limiter.record_failure_at(ip(1), now + secs(299)),
            Verdict::TooManyAttempts { .. }
        ));
        // ... and once it is over the client starts with a fresh budget.
        assert_eq!(limiter.record_failure_at(ip(1), now + secs(301)), Verdict::Unauthorized);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let limiter = limiter(2, 100);
        let now = Instant::now();
        limiter.record_failure_at(ip(1), now);
        assert_eq!(limiter.record_failure_at(ip(1), now + secs(61)), Verdict::Unauthorized);
    }

    #[test]
    fn a_locked_out_client_is_refused_a_login_before_it_starts() {
        let limiter = limiter(2, 100);
        let now = Instant::now();
        limiter.record_failure_at(ip(1), now);
        limiter.record_failure_at(ip(1), now);
        assert_eq!(limiter.begin_login_at(ip(1), now + secs(100)).err(), Some(secs(200)));
        assert!(limiter.begin_login_at(ip(2), now).is_ok());
    }

    #[test]
    fn wrong_passwords_count_like_bad_tokens() {
        let limiter = limiter(2, 100);
        let now = Instant::now();
        let attempt = limiter.begin_login_at(ip(1), now).unwrap();
        assert_eq!(attempt.failed(), Verdict::Unauthorized);
        let attempt = limiter.begin_login_at(ip(1), now).unwrap();
        assert_eq!(attempt.failed(), Verdict::LockoutStarts);
        assert!(limiter.begin_login_at(ip(1), now).is_err());
    }

    #[test]
    fn logins_in_flight_hold_the_budget_so_a_burst_cannot_run_more_bcrypts_than_it() {
        let limiter = limiter(3, 100);
        let now = Instant::now();
        let burst: Vec<_> = (0..3).map(|_| limiter.begin_login_at(ip(1), now).unwrap()).collect();
        assert_eq!(limiter.begin_login_at(ip(1), now).err(), Some(BUDGET_BUSY_RETRY));
        // Another client is not affected.
        assert!(limiter.begin_login_at(ip(2), now).is_ok());
        drop(burst);
    }

    #[test]
    fn a_successful_login_counts_nothing_and_leaves_nothing_behind() {
        let limiter = limiter(2, 100);
        for _ in 0..10 {
            limiter.begin_login(ip(1)).unwrap().passed();
        }
        assert_eq!(limiter.tracked_clients(), 0);
        assert!(limiter.begin_login(ip(1)).is_ok());
    }

    #[test]
    fn a_successful_login_does_not_reset_earlier_failures() {
        let limiter = limiter(3, 100);
        let now = Instant::now();
        limiter.record_failure_at(ip(1), now);
        limiter.record_failure_at(ip(1), now);
        limiter.begin_login(ip(1)).unwrap().passed();
        assert_eq!(limiter.record_failure_at(ip(1), now), Verdict::LockoutStarts);
    }

    #[test]
    fn an_abandoned_login_counts_as_failed() {
        let limiter = limiter(1, 100);
        let now = Instant::now();
        drop(limiter.begin_login_at(ip(1), now).unwrap());
        assert!(limiter.begin_login_at(ip(1), now).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let limiter = limiter(5, 1000);
        let now = Instant::now();
        for n in 0..100_000 {
            limiter.record_failure_at(ip(n), now);
        }
        assert_eq!(limiter.tracked_clients(), 1000);
        // Untracked addresses are let through, not refused.
        assert!(limiter.begin_login_at(ip(500_000), now).is_ok());
        // Once the window has passed, the sweep makes room again.
        limiter.record_failure_at(ip(200_000), now + secs(120));
        assert_eq!(limiter.tracked_clients(), 1);
    }

    #[test]
    fn an_entry_fits_the_documented_memory_bound() {
        // Key and value as the hash map stores them, plus its control byte and load factor (7/8).
        let slot = std::mem::size_of::<(IpAddr, Entry)>() + 1;
        assert!(slot * 8 / 7 < 100, "{slot} bytes per entry");
    }

    #[test]
    fn the_sweep_keeps_lockouts_and_logins_in_flight() {
        let limiter = limiter(1, 2);
        let now = Instant::now();
        limiter.record_failure_at(ip(1), now); // locked out for 300 s
        let attempt = limiter.begin_login_at(ip(2), now).unwrap();
        assert_eq!(limiter.record_failure_at(ip(3), now + secs(120)), Verdict::Unauthorized);
        assert_eq!(limiter.tracked_clients(), 2, "neither entry may be swept");
        assert!(limiter.begin_login_at(ip(1), now + secs(120)).is_err());
        assert_eq!(attempt.failed(), Verdict::LockoutStarts);
    }
}
