//! Prometheus metrics (`GET /metrics`, served by the server and by the `sync` sidecar), per instance
//! by nature: a scrape of each instance (a ServiceMonitor, or a Prometheus job per target) gives the
//! fleet view.
//!
//! Label values are always from small fixed sets (route templates, status codes, failure reasons,
//! file kinds), never from user input, so a flood of odd requests cannot explode cardinality. Every
//! metric is described here (HELP), with its unit in its name (`_seconds`, `_bytes`, `_total`); the
//! README's metrics table lists them all and `tests/metrics_scrape.rs` holds both to a real scrape
//! checked by `promtool check metrics`.
//! (promtool reads `kb` as kilobytes, hence `pgmcp_knowledgebase_*` for the knowledge base.)
//!
//! Most series are set where their event happens. Figures that are state rather than events are read
//! when `/metrics` is scraped: the process metrics ([`crate::process_metrics`]) and whatever registered
//! a sampler with [`sample_at_scrape`] (the database pool's occupancy), so a scrape never shows a
//! figure older than itself.
//!
//! The database pool's series follow OpenTelemetry's semantic conventions for database client
//! connection pools (`db.client.connection.*`), mapped to Prometheus names under our prefix:
//! `count{state=used|idle}` -> `pgmcp_db_pool_connections{state="in_use"|"idle"}`, `max` ->
//! `pgmcp_db_pool_max_connections`, `pending_requests` -> `pgmcp_db_pool_waiters`, `wait_time` ->
//! `pgmcp_db_pool_acquire_duration_seconds`, `timeouts` -> `pgmcp_db_pool_acquire_timeouts_total`.

use std::{
    sync::{Mutex, OnceLock},
    time::Duration,
};

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

/// `GET /metrics`: this process's Prometheus text, with the samplers run first and the process
/// metrics appended.
#[handler]
pub fn metrics_text() -> impl IntoResponse {
    let handle = handle();
    run_samplers();
    let mut text = handle.render();
    crate::process_metrics::render(&mut text);
    text.with_content_type("text/plain; version=0.0.4")
}

/// Sets gauges from live state; returns `false` once the state is gone (the sampler is then dropped).
type Sampler = Box<dyn Fn() -> bool + Send + Sync>;

fn samplers() -> std::sync::MutexGuard<'static, Vec<Sampler>> {
    static SAMPLERS: Mutex<Vec<Sampler>> = Mutex::new(Vec::new());
    SAMPLERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `sample` to run at every scrape of `/metrics`, before the text is rendered, until it
/// returns `false`. For figures that are state, not events (a pool's connections in use): hold a
/// `Weak` to the state and return `false` when it no longer upgrades.
pub fn sample_at_scrape(sample: impl Fn() -> bool + Send + Sync + 'static) {
    samplers().push(Box::new(sample));
}

fn run_samplers() {
    samplers().retain(|sample| sample());
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

/// Shows the server's unlabelled event counters at 0 from start-up, so that `rate()` and
/// `increase()` see their first event and an alert on them can tell "none yet" from "not scraped".
/// Called by the server only (the `sync` sidecar shares the recorder, not these events).
pub fn start_server_counters() {
    for name in [
        "pgmcp_rate_limited_total",
        "pgmcp_rate_limiter_untracked_total",
        "pgmcp_auth_lockouts_total",
        "pgmcp_connections_shed_total",
        "pgmcp_connections_refused_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// The commit the binary was built from: `POSTGRES_MCP_REVISION` at build time (the image builds pass it),
/// else `git rev-parse HEAD` in the source tree (build.rs), else `unknown`.
pub const REVISION: &str = env!("POSTGRES_MCP_REVISION");

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "pgmcp_build_info",
        "Always 1; the version and git revision of the running binary as labels"
    );
    metrics::gauge!("pgmcp_build_info", "version" => env!("CARGO_PKG_VERSION"), "revision" => REVISION).set(1.0);
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
    describe_gauge!(
        "pgmcp_knowledgebase_documents",
        "Source documents in the served knowledge base"
    );
    describe_gauge!(
        "pgmcp_knowledgebase_chunks",
        "Searchable chunks in the served knowledge base"
    );
    describe_gauge!(
        "pgmcp_knowledgebase_built_timestamp_seconds",
        "When the served knowledge base was built (kb build's built_at), Unix seconds"
    );
    describe_counter!(
        "pgmcp_tool_calls_total",
        "MCP tools/call by tool, outcome (ok, caller_error, server_error) and error_type"
    );
    describe_histogram!(
        "pgmcp_tool_call_duration_seconds",
        "MCP tools/call latency by tool (the whole request)"
    );
    describe_counter!(
        "pgmcp_mcp_requests_total",
        "MCP JSON-RPC messages by method, outcome (ok, caller_error, server_error) and error_type"
    );
    describe_histogram!(
        "pgmcp_mcp_request_duration_seconds",
        "MCP JSON-RPC message latency by method"
    );
    describe_counter!(
        "pgmcp_trace_export_batches_total",
        "OTLP span batches sent to trace.otlp_endpoint, by outcome (ok, failed); absent while export is off"
    );
    describe_counter!(
        "pgmcp_trace_spans_exported_total",
        "Spans the OTLP collector accepted; absent while export is off"
    );
    describe_gauge!("pgmcp_draining", "0 while serving, 1 once SIGTERM was received");
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
        "1 while the latest reachability probe (its own connection, SELECT 1) got an answer, 0 while not"
    );
    describe_gauge!(
        "pgmcp_db_pool_connections",
        "Connections of the database pool by state (in_use by a tool call, idle)"
    );
    describe_gauge!(
        "pgmcp_db_pool_max_connections",
        "The database pool's size limit (database.pool_size)"
    );
    describe_gauge!(
        "pgmcp_db_pool_waiters",
        "Tool calls waiting for a pooled database connection now"
    );
    describe_histogram!(
        "pgmcp_db_pool_acquire_duration_seconds",
        "Time a tool call waited for a pooled database connection (connecting included)"
    );
    describe_counter!(
        "pgmcp_db_pool_acquire_timeouts_total",
        "Tool calls refused because every pooled connection stayed busy for database.connect_timeout"
    );
    describe_counter!(
        "pgmcp_auth_lockouts_total",
        "Lockouts started by the failed-auth limiter (one per client address locked out)"
    );
    describe_gauge!(
        "pgmcp_credential_earliest_expiry_timestamp_seconds",
        "The earliest expires_at in the served credential file, Unix seconds (NaN: none expires)"
    );
    describe_counter!(
        "pgmcp_connections_shed_total",
        "Idle connections closed to make room: accept ran out of file descriptors, or http.max_connections was reached"
    );
    describe_counter!(
        "pgmcp_connections_refused_total",
        "Connections answered 503 and closed at http.max_connections with none idle to shed"
    );
}
