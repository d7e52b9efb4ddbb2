//! `GET /livez` and `GET /readyz`: the orchestrator's two questions, answered the way Kubernetes'
//! own API server answers them — no auth, no I/O, `200 ok` or `503` listing each check.
//!
//! - `/livez`, "should this process be restarted?": fails only when the runtime has stopped turning.
//!   A [`Heartbeat`] task ticks every [`Heartbeat::INTERVAL`] on the runtime; when its last tick is
//!   older than [`Heartbeat::STALE_AFTER`] the runtime is starved or blocked (a worker stuck in
//!   blocking code, a lock held across a hang), and only a restart helps. It never fails because the
//!   instance drains: a liveness failure mid-drain would make the kubelet kill the requests the
//!   drain exists to finish.
//! - `/readyz`, "should this instance get traffic?": fails from the moment SIGTERM arrives
//!   (`draining`), when the runtime is stalled (`heartbeat`), and when no auth file is loaded
//!   (`auth`; start-up loads them before the listener opens, so an instance that answers has them —
//!   the check says so in the verbose list and keeps holding if loading ever moves after the bind).
//!
//! What deliberately does **not** make an instance unready: a kb.db that failed to reload, a
//! tokens/users file that became unreadable or invalid at a reload (the last good content keeps
//! serving in both cases), and a database that is down. All three are shared by every instance: the
//! same bad file or the same dead database would turn every instance unready at once, and a balancer
//! with no ready target has nothing to send even the requests that would have worked (login, the
//! knowledge base, every token that was valid a minute ago). The tools report a database outage in
//! their own answer; `/health/details` shows each file's `last_error` and `database` status for
//! operators and alerts. Readiness is for what is wrong with *this* instance only.
//!
//! `/health` (status only) and `/health/details` stay as they were for load balancers and
//! compatibility: 200 in all the cases above (details with `last_error` set), 503 only while
//! draining.
//!
//! The body format is kube-apiserver's: `ok` on success; with `?verbose`, or on any failure, one
//! line per check — `[+]name ok` or `[-]name failed: reason` — then `<endpoint> check passed|failed`.
//! The reasons are shown (kube-apiserver withholds them) because none here carries anything secret.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use poem::{
    IntoResponse, Request, Response,
    http::{StatusCode, header},
};

use crate::{auth::Authenticator, shutdown::Draining};

/// Proof that the runtime keeps turning: the time of the last tick of a task that ticks every
/// [`Heartbeat::INTERVAL`]. Cloneable; every clone reads the same tick. The task ends by itself once
/// the last clone is dropped (it holds only a weak reference), so it lives exactly as long as the
/// routes that read it.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds from `origin` to the last tick.
    last_tick_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    /// How often the task ticks.
    pub const INTERVAL: Duration = Duration::from_secs(1);
    /// A last tick older than this fails `heartbeat`: ten missed ticks, far beyond any pause a
    /// healthy runtime takes (a busy worker yields within milliseconds), short enough that the
    /// kubelet's own `periodSeconds x failureThreshold` dominates the time to restart.
    pub const STALE_AFTER: Duration = Duration::from_secs(10);

    /// A heartbeat that ticked now, and its task spawned on the current tokio runtime (panics
    /// outside one, like `tokio::spawn`).
    pub fn start() -> Heartbeat {
        Heartbeat::spawn().0
    }

    /// [`Heartbeat::start`], with the task's handle for the tests to see it end.
    fn spawn() -> (Heartbeat, tokio::task::JoinHandle<()>) {
        let heartbeat = Heartbeat::ticked_at(Instant::now());
        let task = tokio::spawn(tick(heartbeat.origin, Arc::downgrade(&heartbeat.last_tick_ms)));
        (heartbeat, task)
    }

    /// A heartbeat whose last tick was at `origin`, with no task: the clock is the caller's.
    fn ticked_at(origin: Instant) -> Heartbeat {
        Heartbeat {
            origin,
            last_tick_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How long before `now` the last tick was (zero if it was after `now`).
    fn age_at(&self, now: Instant) -> Duration {
        let last = self.origin + Duration::from_millis(self.last_tick_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    /// The `heartbeat` check at `now`: `Err(reason)` once the last tick is older than `stale_after`.
    fn check_at(&self, now: Instant, stale_after: Duration) -> Result<(), String> {
        let age = self.age_at(now);
        if age > stale_after {
            Err(format!(
                "last tick {:.1}s ago (limit {}s): the runtime is stalled",
                age.as_secs_f64(),
                stale_after.as_secs()
            ))
        } else {
            Ok(())
        }
    }
}

fn store_tick(last_tick_ms: &AtomicU64, origin: Instant, now: Instant) {
    let ms = u64::try_from(now.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX);
    last_tick_ms.store(ms, Ordering::Relaxed);
}

/// The heartbeat task. `Delay`: after a stall, tick once and resume the rhythm instead of bursting
/// the missed ticks, which would hide how late the runtime was.
async fn tick(origin: Instant, last_tick_ms: Weak<AtomicU64>) {
    let mut interval = tokio::time::interval(Heartbeat::INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(last_tick_ms) = last_tick_ms.upgrade() else {
            return;
        };
        store_tick(&last_tick_ms, origin, Instant::now());
    }
}

/// One named check and its outcome.
struct Check {
    name: &'static str,
    outcome: Result<(), String>,
}

/// `GET /livez`: restart me only if the runtime stopped turning.
#[derive(Clone)]
pub struct Livez {
    pub heartbeat: Heartbeat,
}

/// `GET /readyz`: route traffic here unless this instance drains, stalls or has no credentials.
#[derive(Clone)]
pub struct Readyz {
    pub heartbeat: Heartbeat,
    pub draining: Draining,
    pub auth: Arc<Authenticator>,
}

impl Livez {
    fn checks(&self, now: Instant) -> Vec<Check> {
        vec![Check {
            name: "heartbeat",
            outcome: self.heartbeat.check_at(now, Heartbeat::STALE_AFTER),
        }]
    }
}

impl Readyz {
    fn checks(&self, now: Instant) -> Vec<Check> {
        let auth = if self.auth.health().loaded_at.is_some() {
            Ok(())
        } else {
            Err("no auth file loaded".to_string())
        };
        let draining = if self.draining.is_draining() {
            Err("SIGTERM received: finishing in-flight requests before exit".to_string())
        } else {
            Ok(())
        };
        vec![
            Check {
                name: "heartbeat",
                outcome: self.heartbeat.check_at(now, Heartbeat::STALE_AFTER),
            },
            Check {
                name: "auth",
                outcome: auth,
            },
            Check {
                name: "draining",
                outcome: draining,
            },
        ]
    }
}

impl poem::Endpoint for Livez {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        Ok(answer("livez", &self.checks(Instant::now()), is_verbose(&request)))
    }
}

impl poem::Endpoint for Readyz {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        Ok(answer("readyz", &self.checks(Instant::now()), is_verbose(&request)))
    }
}

/// `?verbose` present, with or without a value (kube-apiserver's rule).
fn is_verbose(request: &Request) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair.split('=').next() == Some("verbose")))
}

/// 200 `ok` (or the list when `verbose`) if every check passed, else 503 with the list.
fn answer(endpoint: &str, checks: &[Check], verbose: bool) -> Response {
    let (status, body) = render(endpoint, checks, verbose);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .into_response()
}

fn render(endpoint: &str, checks: &[Check], verbose: bool) -> (StatusCode, String) {
    let passed = checks.iter().all(|check| check.outcome.is_ok());
    if passed && !verbose {
        return (StatusCode::OK, "ok".to_string());
    }
    let mut body = String::new();
    for check in checks {
        match &check.outcome {
            Ok(()) => body.push_str(&format!("[+]{} ok\n", check.name)),
            Err(reason) => body.push_str(&format!("[-]{} failed: {reason}\n", check.name)),
        }
    }
    if passed {
        body.push_str(&format!("{endpoint} check passed\n"));
        (StatusCode::OK, body)
    } else {
        body.push_str(&format!("{endpoint} check failed\n"));
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_fresh_up_to_the_limit_and_stale_beyond_it() {
        let start = Instant::now();
        let heartbeat = Heartbeat::ticked_at(start);
        let limit = Duration::from_secs(10);
        assert_eq!(heartbeat.check_at(start + Duration::from_secs(10), limit), Ok(()));
        let reason = heartbeat
            .check_at(start + Duration::from_millis(10_500), limit)
            .unwrap_err();
        assert!(reason.contains("10.5s ago") && reason.contains("limit 10s"), "{reason}");
    }

    #[test]
    fn a_new_tick_makes_a_stale_heartbeat_fresh_again() {
        let start = Instant::now();
        let heartbeat = Heartbeat::ticked_at(start);
        let limit = Duration::from_secs(10);
        let later = start + Duration::from_secs(60);
        assert!(heartbeat.check_at(later, limit).is_err());
        store_tick(&heartbeat.last_tick_ms, start, later - Duration::from_secs(1));
        assert_eq!(heartbeat.check_at(later, limit), Ok(()));
        assert_eq!(heartbeat.age_at(later), Duration::from_secs(1));
    }

    #[test]
    fn a_tick_after_the_probe_reads_as_age_zero() {
        let start = Instant::now();
        let heartbeat = Heartbeat::ticked_at(start);
        store_tick(&heartbeat.last_tick_ms, start, start + Duration::from_secs(5));
        assert_eq!(heartbeat.age_at(start + Duration::from_secs(2)), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_task_keeps_ticking_and_ends_with_the_last_handle() {
        let (heartbeat, task) = Heartbeat::spawn();
        // Ticks at 0 s and 1 s; real time, as the probe reads std's clock.
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        assert!(heartbeat.last_tick_ms.load(Ordering::Relaxed) >= 1_000);
        assert!(!task.is_finished());
        drop(heartbeat);
        let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
        assert!(matches!(ended, Ok(Ok(()))), "the task outlived every handle: {ended:?}");
    }

    fn check(name: &'static str, outcome: Result<(), &str>) -> Check {
        Check {
            name,
            outcome: outcome.map_err(str::to_string),
        }
    }

    #[test]
    fn all_passing_is_ok_or_the_list_when_verbose() {
        let checks = [check("heartbeat", Ok(())), check("draining", Ok(()))];
        assert_eq!(render("readyz", &checks, false), (StatusCode::OK, "ok".to_string()));
        assert_eq!(
            render("readyz", &checks, true),
            (
                StatusCode::OK,
                "[+]heartbeat ok\n[+]draining ok\nreadyz check passed\n".to_string()
            )
        );
    }

    #[test]
    fn a_failing_check_is_a_503_naming_it_with_its_reason() {
        let checks = [check("heartbeat", Ok(())), check("draining", Err("SIGTERM received"))];
        let (status, body) = render("readyz", &checks, false);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "[+]heartbeat ok\n[-]draining failed: SIGTERM received\nreadyz check failed\n"
        );
    }
}
