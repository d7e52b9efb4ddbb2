//! What the interval-mode sidecar reports on `GET /health` and in `pgmcp_sync_stale`: per
//! destination, when it was last confirmed current and the last error, and whether any is stale.
//!
//! The answer is 200 as long as every item's loop is turning (each round ends within its deadline,
//! so a loop that has not turned for `deadline + interval + slack` is wedged, and only then 503):
//! the kits use it as the container health check, and a store outage must not make the
//! orchestrator restart a sidecar that is correctly retrying and whose destinations still hold
//! good files. Staleness is reported, not enforced: `"status": "stale"` and the gauge say an item's
//! last success is older than `--stale-after`, for alerts and dashboards.
//!
//! Errors shown are `SyncError` texts, which never carry credentials or pre-signed query strings.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{
    error::SyncError,
    manifest::{Item, Kind},
};

/// Extra time past `deadline + interval` before a loop counts as wedged (scheduling, jitter).
const WEDGED_SLACK: Duration = Duration::from_secs(30);

/// Shared by the item loops (which record) and the `/health` handler (which reads).
#[derive(Clone, Debug)]
pub struct SyncHealth {
    items: Arc<Mutex<Vec<ItemHealth>>>,
    stale_after: Duration,
    wedged_after: Duration,
    started: Instant,
}

#[derive(Clone, Debug)]
struct ItemHealth {
    dest: String,
    kind: Kind,
    last_success: Option<(DateTime<Utc>, Instant)>,
    last_error: Option<String>,
    /// When the loop last started or finished a round.
    turned: Instant,
}

/// The `/health` body.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HealthReport {
    /// `ok`, `stale` (some item's last success is older than `--stale-after`, or it never
    /// succeeded and the sidecar has been up longer than that) or `wedged` (answered with 503).
    pub status: &'static str,
    pub items: Vec<ItemReport>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ItemReport {
    pub dest: String,
    /// RFC 3339, `null` until the first success.
    pub last_success: Option<String>,
    /// The last round's error, `null` after a success.
    pub last_error: Option<String>,
    /// Seconds since the last success (`null` until the first).
    pub age_seconds: Option<u64>,
}

impl HealthReport {
    /// 503 only when a loop is wedged; stale is still 200 (see the module doc).
    pub fn http_status(&self) -> u16 {
        if self.status == "wedged" { 503 } else { 200 }
    }
}

impl SyncHealth {
    /// `stale_after`: an item is stale when its last success is older; `deadline` and `interval`:
    /// the longest a healthy loop goes without turning is their sum.
    pub fn new(items: &[Item], stale_after: Duration, deadline: Duration, interval: Duration) -> SyncHealth {
        let now = Instant::now();
        SyncHealth {
            items: Arc::new(Mutex::new(
                items
                    .iter()
                    .map(|item| ItemHealth {
                        dest: item.dest_label(),
                        kind: item.kind,
                        last_success: None,
                        last_error: None,
                        turned: now,
                    })
                    .collect(),
            )),
            stale_after,
            wedged_after: deadline
                .saturating_add(interval.mul_f64(1.1))
                .saturating_add(WEDGED_SLACK),
            started: now,
        }
    }

    /// The loop of item `index` (its position in the items given to [`SyncHealth::new`]) starts
    /// a round.
    pub fn round_started(&self, index: usize) {
        if let Some(item) = self.lock().get_mut(index) {
            item.turned = Instant::now();
        }
    }

    /// Item `index`'s round succeeded: the destination is current.
    pub fn succeeded(&self, index: usize) {
        if let Some(item) = self.lock().get_mut(index) {
            let now = Instant::now();
            item.turned = now;
            item.last_success = Some((Utc::now(), now));
            item.last_error = None;
        }
    }

    /// Item `index`'s round failed with `error`.
    pub fn failed(&self, index: usize, error: &SyncError) {
        if let Some(item) = self.lock().get_mut(index) {
            item.turned = Instant::now();
            item.last_error = Some(error.to_string());
        }
    }

    pub fn report(&self) -> HealthReport {
        let now = Instant::now();
        let items = self.lock();
        let wedged = items.iter().any(|i| now.duration_since(i.turned) > self.wedged_after);
        let stale = items.iter().any(|i| self.is_stale(i, now));
        HealthReport {
            status: if wedged {
                "wedged"
            } else if stale {
                "stale"
            } else {
                "ok"
            },
            items: items
                .iter()
                .map(|item| ItemReport {
                    dest: item.dest.clone(),
                    last_success: item
                        .last_success
                        .map(|(at, _)| at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    last_error: item.last_error.clone(),
                    age_seconds: item.last_success.map(|(_, at)| now.duration_since(at).as_secs()),
                })
                .collect(),
        }
    }

    /// Sets `pgmcp_sync_stale{kind}` (1 when any destination of that kind is stale) at every
    /// scrape, for as long as this health record exists.
    pub fn sample_stale_gauge_at_scrape(&self) {
        let weak = Arc::downgrade(&self.items);
        let (stale_after, started) = (self.stale_after, self.started);
        crate::metrics::sample_at_scrape(move || {
            let Some(items) = weak.upgrade() else {
                return false;
            };
            let health = SyncHealth {
                items,
                stale_after,
                wedged_after: Duration::MAX,
                started,
            };
            let now = Instant::now();
            let items = health.lock();
            let mut kinds: Vec<Kind> = items.iter().map(|i| i.kind).collect();
            kinds.dedup();
            for kind in kinds {
                let stale = items.iter().any(|i| i.kind == kind && health.is_stale(i, now));
                metrics::gauge!("pgmcp_sync_stale", "kind" => kind.label()).set(if stale { 1.0 } else { 0.0 });
            }
            true
        });
    }

    fn is_stale(&self, item: &ItemHealth, now: Instant) -> bool {
        let since = item.last_success.map_or(self.started, |(_, at)| at);
        now.duration_since(since) > self.stale_after
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ItemHealth>> {
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Item> {
        vec![
            Item::new("s3://b/tokens.yaml", "/c/tokens.yaml".into(), None, None).unwrap(),
            Item::new("s3://b/kb.db", "/d/kb.db".into(), None, None).unwrap(),
        ]
    }

    #[test]
    fn an_item_is_stale_when_its_last_success_is_older_than_the_limit() {
        let health = SyncHealth::new(
            &items(),
            Duration::from_millis(100),
            Duration::from_secs(60),
            Duration::from_secs(1),
        );
        let report = health.report();
        assert_eq!(report.status, "ok", "{report:?}");
        assert_eq!(report.items[0].last_success, None);
        health.succeeded(0);
        health.failed(1, &SyncError::Client("store down".into()));
        let report = health.report();
        assert!(report.items[0].last_success.is_some() && report.items[0].age_seconds == Some(0));
        assert_eq!(
            report.items[1].last_error.as_deref(),
            Some("cannot create the HTTP client: store down")
        );
        std::thread::sleep(Duration::from_millis(150));
        let report = health.report();
        assert_eq!((report.status, report.http_status()), ("stale", 200), "{report:?}");
        health.succeeded(0);
        health.succeeded(1);
        assert_eq!(health.report().status, "ok");
        assert_eq!(health.report().items[1].last_error, None);
    }

    #[test]
    fn a_loop_that_stops_turning_is_wedged_and_answers_503() {
        let health = SyncHealth::new(&items(), Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        let mut health = health;
        health.wedged_after = Duration::from_millis(50);
        health.round_started(0);
        health.round_started(1);
        assert_eq!(health.report().http_status(), 200);
        std::thread::sleep(Duration::from_millis(80));
        let report = health.report();
        assert_eq!((report.status, report.http_status()), ("wedged", 503));
    }
}
