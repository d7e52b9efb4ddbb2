//! Whether PostgreSQL answers: a probe on a connection of its own, outside the pool.
//!
//! Why not through the pool: a pool whose connections are all busy with long queries says nothing
//! about the database, yet a probe that waits for a pooled connection times out exactly then — with
//! a pool of two, two `pg_sleep(8)` calls used to turn `pgmcp_database_up` to 0 and log "database
//! unavailable" while PostgreSQL answered every other client. So reachability and saturation are
//! measured apart: this probe says whether the database answers (`/health`'s `database.status`,
//! `pgmcp_database_up`, the one "database unavailable" log line per outage), and the pool's own
//! figures say how busy this instance is (`pgmcp_db_pool_*`, see `pool`). A tool call never decides
//! the status; one that could not reach the database only asks for a probe now ([`Reachability::suspect`]),
//! so an outage shows within a round trip instead of at the next interval.
//!
//! Every `database.health_interval` the probe connects if it has no connection (same settings and
//! TLS as the pool's, so what it proves holds for them), runs `SELECT 1` within
//! `database.connect_timeout`, and audits the role on it (see `role_audit`); a failure drops the
//! connection, and the next round reconnects. The probe holds one connection per instance besides
//! the pool's `database.pool_size`.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::error::DbError;

/// The probe's latest verdict, as `/health` shows it.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// `unknown` until the first probe, then `ok` or `unavailable`.
    pub status: &'static str,
    pub last_error: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
}

/// The probe's verdict and the bell that asks for the next probe early.
pub struct Reachability {
    verdict: Mutex<Verdict>,
    wake: Notify,
}

impl Reachability {
    pub fn new() -> Reachability {
        Reachability {
            verdict: Mutex::new(Verdict {
                status: "unknown",
                last_error: None,
                checked_at: None,
            }),
            wake: Notify::new(),
        }
    }

    /// The latest verdict (a copy; the lock is held for the copy only).
    pub fn verdict(&self) -> Verdict {
        self.lock().clone()
    }

    /// Records one probe's outcome: sets `pgmcp_database_up` (1 answered, 0 not) every time, and logs
    /// the transitions only — one error line when the database stops answering, one info line when
    /// it answers again.
    pub fn record(&self, outcome: Result<(), &DbError>) {
        let next = Verdict {
            status: if outcome.is_ok() { "ok" } else { "unavailable" },
            last_error: outcome.err().map(ToString::to_string),
            checked_at: Some(Utc::now()),
        };
        metrics::gauge!("pgmcp_database_up").set(if outcome.is_ok() { 1.0 } else { 0.0 });
        let mut verdict = self.lock();
        if verdict.status != next.status {
            match &next.last_error {
                Some(error) => tracing::error!(%error, "database unavailable"),
                None => tracing::info!("database reachable"),
            }
        }
        *verdict = next;
    }

    /// A tool call could not reach the database: probe now rather than at the next interval. Calls
    /// arriving together ring once (a [`Notify`] keeps one permit), so an outage under load costs
    /// one extra probe, not one per call.
    pub fn suspect(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`suspect`](Self::suspect) was called since the last time it resolved.
    pub async fn suspected(&self) {
        self.wake.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Verdict> {
        self.verdict.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_is_unknown_until_a_probe_then_follows_each_probe() {
        let reachability = Reachability::new();
        assert_eq!(reachability.verdict().status, "unknown");
        reachability.record(Err(&DbError::Unavailable("connection refused".into())));
        let verdict = reachability.verdict();
        assert_eq!(verdict.status, "unavailable");
        assert!(verdict.last_error.unwrap().contains("connection refused"));
        reachability.record(Ok(()));
        let verdict = reachability.verdict();
        assert_eq!((verdict.status, verdict.last_error), ("ok", None));
    }

    #[tokio::test]
    async fn suspicions_ring_once_however_many_calls_raise_them() {
        let reachability = Reachability::new();
        for _ in 0..3 {
            reachability.suspect();
        }
        reachability.suspected().await;
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), reachability.suspected()).await;
        assert!(again.is_err(), "three suspicions before a probe must wake it once");
    }
}
