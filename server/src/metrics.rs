//! Prometheus metrics (`GET /metrics`, served by the server and by the `sync` sidecar), per instance
//! by nature: a scrape of each instance (a ServiceMonitor, or a Prometheus job per target) gives the
//! fleet view.
//!
//! Label values are always from small fixed sets (route templates, status codes, failure reasons,
//! file kinds), never from user input, so a flood of odd requests cannot explode cardinality.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::{IntoResponse, handler};

use crate::shutdown::Shutdown;

/// Latency buckets (seconds) for request histograms: sub-millisecond to the request timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded into their buckets. The exporter keeps every recorded
/// sample until then (or until a scrape renders them): without upkeep, an instance that nobody
/// scrapes grows by 8 bytes per request, without bound.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the exporter's upkeep every [`UPKEEP_EVERY`] until shutdown. `build_recorder` (which lets us
/// serve `/metrics` on our own router) does not start it; `PrometheusBuilder::build` would.
pub fn spawn_upkeep(mut shutdown: Shutdown) {
    let handle = handle();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => handle.run_upkeep(),
                _ = shutdown.recv() => break,
            }
        }
    });
}

/// `GET /metrics`: this process's Prometheus text.
#[handler]
pub fn metrics_text() -> impl IntoResponse {
    handle().render().with_content_type("text/plain; version=0.0.4")
}

/// Installs the process-wide recorder once and returns the handle that renders it. Several servers
/// in one process (as in tests) share it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("pgmcp_http_requests_total", "HTTP requests by route and status code");
    describe_histogram!("pgmcp_http_request_duration_seconds", "HTTP request latency by route");
    describe_gauge!("pgmcp_http_requests_in_flight", "HTTP requests being served now");
    describe_counter!("pgmcp_auth_failures_total", "Refused credentials by reason");
    describe_counter!(
        "pgmcp_rate_limited_total",
        "Requests refused with 429 by the failed-auth limiter"
    );
    describe_counter!(
        "pgmcp_rate_limiter_untracked_total",
        "Failures not tracked because the limiter table was full"
    );
    describe_counter!("pgmcp_logins_total", "POST /api/login attempts by outcome");
    describe_counter!(
        "pgmcp_reloads_total",
        "Reload attempts by file and outcome (swapped, unchanged, rejected)"
    );
    describe_gauge!(
        "pgmcp_reload_error",
        "1 while the file's last reload was rejected (the last good version is served)"
    );
    describe_gauge!(
        "pgmcp_file_generation",
        "Current content generation of each watched file (first 4 bytes of its SHA-256)"
    );
    describe_gauge!(
        "pgmcp_file_loaded_timestamp_seconds",
        "When each watched file's current content was loaded"
    );
    describe_gauge!("pgmcp_kb_documents", "Source documents in the served knowledge base");
    describe_gauge!("pgmcp_kb_chunks", "Searchable chunks in the served knowledge base");
    describe_counter!("pgmcp_tool_calls_total", "MCP tools/call by tool and outcome");
    describe_gauge!("pgmcp_draining", "1 once SIGTERM was received");
    describe_gauge!(
        "pgmcp_database_role_finding",
        "1 while the database role's latest audit has this finding (superuser, signal_backend, ...)"
    );
    describe_gauge!(
        "pgmcp_database_role_safe",
        "1 when the database role's latest audit found nothing beyond a single call"
    );
    describe_gauge!(
        "pgmcp_database_up",
        "1 while the latest database check or tool call reached PostgreSQL, 0 while it did not"
    );
    describe_counter!(
        "pgmcp_connections_shed_total",
        "Idle connections closed to make room when accept ran out of file descriptors"
    );
}
