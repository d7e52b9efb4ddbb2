//! `postgres-mcp sync`: arguments, logging, the metrics listener and exit codes around
//! [`crate::sync::Syncer`].
//!
//! Exit codes: 0 when every item is in place and verified (`--once`; with `--keep-local` a failed
//! item whose destination already holds a file that verifies counts as in place) or after SIGTERM
//! (interval mode); 1 when an item failed (`--once`); 2 for invalid arguments or manifest. Interval
//! mode keeps running through failures: each is logged and counted, the destination keeps its last
//! good file, and `GET /health` on the metrics listener reports each item's last success and error.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Args;

use crate::{
    config::{
        AccessLogConfig, AccessLogMode, AuditLogConfig, AuditStatement, LogConfig, LogFileConfig, LogFormat,
        LogRotation,
    },
    connections,
    instance::InstanceId,
    metrics,
    shutdown::{Shutdown, ShutdownTrigger, termination_signal},
    sync::{Item, Kind, RetryPolicy, Syncer, health::SyncHealth, manifest},
    telemetry,
    units::HumanDuration,
};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["source", "manifest"])))]
pub struct SyncArgs {
    /// What to fetch: https://… (pre-signed URLs too), http://… or s3://bucket/key.
    #[arg(long, requires = "dest", conflicts_with = "manifest")]
    pub source: Option<String>,
    /// Where to put it; replaced atomically, only by a complete and verified download.
    #[arg(long, requires = "source")]
    pub dest: Option<PathBuf>,
    /// Expected SHA-256 of the content (64 hex digits); anything else is refused.
    #[arg(long, requires = "source")]
    pub sha256: Option<String>,
    /// How to validate the file; by default inferred from --dest (*.db: kb, *token*.yaml: tokens,
    /// *user*.yaml: users, *session*.key: session-key, else raw).
    #[arg(long, value_enum, requires = "source")]
    pub kind: Option<Kind>,
    /// YAML manifest `items: [{source, dest, sha256?, kind?}]` for several files.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Sync once and exit: 0 if every item is in place and verified, 1 otherwise.
    #[arg(long, conflicts_with = "interval")]
    pub once: bool,
    /// Time between rounds when not --once.
    #[arg(long, default_value = "60s")]
    pub interval: HumanDuration,
    /// Attempts per item and round for transient failures (network errors, 5xx, 429, short bodies).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: u32,
    /// text or json.
    #[arg(long, value_enum, env = "PGMCP_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// A tracing filter (info, debug, postgres_mcp=debug, …).
    #[arg(long, env = "PGMCP_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Serve Prometheus metrics on http://ADDR/metrics and the sync's health on http://ADDR/health
    /// (interval mode only; the kits use 0.0.0.0:9464).
    #[arg(long, conflicts_with = "once")]
    pub metrics_listen: Option<SocketAddr>,
    /// With --once: an item that cannot be synced (store down, timeout, 403, missing or refused
    /// object) but whose destination already holds a file that verifies counts as in place (exit 0,
    /// with a warning). Interval mode always keeps serving the local copy.
    #[arg(long)]
    pub keep_local: bool,
    /// Allow a tokens or users file with no entries to replace one with entries (refused by
    /// default: it locks everyone out). Per manifest item: `allow_empty: true`.
    #[arg(long)]
    pub allow_empty_tokens: bool,
    /// Create a destination directory that does not exist (refused by default: it is usually a
    /// volume that did not mount, or a typo).
    #[arg(long)]
    pub create_dest_dirs: bool,
    /// Deadline of one item's round, retries included; a round that takes longer is abandoned
    /// (the destination untouched) and the item tries again after its backoff.
    #[arg(long, default_value = "10m")]
    pub item_timeout: HumanDuration,
    /// Interval mode: an item whose last success is older than this is reported stale on /health
    /// and in pgmcp_sync_stale (default: 3 × --interval).
    #[arg(long, conflicts_with = "once")]
    pub stale_after: Option<HumanDuration>,
}

impl SyncArgs {
    fn items(&self) -> anyhow::Result<Vec<Item>> {
        let items = match (&self.manifest, &self.source, &self.dest) {
            (Some(path), _, _) => manifest::load(path)?,
            (None, Some(source), Some(dest)) => {
                vec![Item::new(source, dest.clone(), self.sha256.as_deref(), self.kind)?]
            }
            _ => anyhow::bail!("give --source and --dest, or --manifest"),
        };
        Ok(items
            .into_iter()
            .map(|item| {
                let allow_empty = item.allow_empty || self.allow_empty_tokens;
                item.allowing_empty(allow_empty)
            })
            .collect())
    }
}

/// Runs `postgres-mcp sync`.
pub fn run(args: SyncArgs) -> ExitCode {
    let items = match args.items() {
        Ok(items) => items,
        Err(error) => {
            eprintln!("invalid sync arguments: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        eprintln!("invalid --log-level `{}`: {error}", args.log_level);
        return ExitCode::from(2);
    }
    let log = LogConfig {
        format: args.log_format,
        level: args.log_level.clone(),
        // The sidecar serves no requests and runs no database tools.
        access: AccessLogConfig {
            mode: AccessLogMode::Off,
            sample_ratio: 0.0,
        },
        audit: AuditLogConfig {
            statement: AuditStatement::Normalized,
        },
        file: LogFileConfig {
            dir: None,
            rotation: LogRotation::Never,
            prefix: "postgres-mcp-sync.log".into(),
            max_files: 0,
        },
    };
    let instance = InstanceId::resolve(None, std::env::var("HOSTNAME").ok());
    let _log_guard = match telemetry::init(&log, instance.as_str()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("cannot start logging: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let retry = RetryPolicy {
        attempts: args.attempts,
        ..RetryPolicy::default()
    };
    let item_timeout = args.item_timeout.get();
    if item_timeout.is_zero() {
        eprintln!("invalid sync arguments: --item-timeout must be more than 0s");
        return ExitCode::from(2);
    }
    runtime.block_on(async move {
        let syncer = match Syncer::new(&env, retry) {
            Ok(syncer) => syncer
                .with_create_dest_dirs(args.create_dest_dirs)
                .with_item_timeout(item_timeout),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        if args.once {
            return once(&syncer, &items, args.keep_local).await;
        }
        let interval = args.interval.get();
        if interval.is_zero() {
            eprintln!("invalid sync arguments: --interval must be more than 0s");
            return ExitCode::from(2);
        }
        let stale_after = args.stale_after.map_or(interval.saturating_mul(3), HumanDuration::get);
        let health = SyncHealth::new(&items, stale_after, item_timeout, interval);
        let (stop_metrics, metrics_stopped) = ShutdownTrigger::new();
        if let Some(addr) = args.metrics_listen {
            // Installs the recorder now: the sync metrics recorded before the first scrape count.
            metrics::handle();
            crate::sync::describe_metrics();
            health.sample_stale_gauge_at_scrape();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    let addr = listener.local_addr().unwrap_or(addr);
                    tracing::info!(%addr, "serving sync metrics on /metrics");
                    tokio::spawn(serve_metrics(listener, health.clone(), metrics_stopped));
                }
                Err(error) => {
                    eprintln!("cannot listen on {addr} for metrics: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        tracing::info!(
            items = items.len(),
            interval_s = interval.as_secs_f64(),
            item_timeout_s = item_timeout.as_secs_f64(),
            stale_after_s = stale_after.as_secs_f64(),
            "sync started; replacing destinations atomically after verification"
        );
        syncer.run_every(&items, interval, &health, termination_signal()).await;
        stop_metrics.trigger();
        tracing::info!("termination signal received; sync stopped");
        ExitCode::SUCCESS
    })
}

async fn once(syncer: &Syncer, items: &[Item], keep_local: bool) -> ExitCode {
    let results = syncer.sync_all(items).await;
    let mut failures = Vec::new();
    for (item, result) in items.iter().zip(&results) {
        let Err(error) = result else { continue };
        if !keep_local {
            failures.push(format!("  {}: {error}", item.dest.display()));
            continue;
        }
        match syncer.verify_local(item).await {
            Ok(local) => {
                tracing::warn!(
                    dest = %item.dest_label(),
                    kind = item.kind.label(),
                    error = %error,
                    local = %local.detail,
                    "sync failed; serving the local copy (--keep-local)"
                );
                eprintln!(
                    "warning: {}: {error}; serving the local copy ({})",
                    item.dest.display(),
                    local.detail
                );
            }
            Err(local) => failures.push(format!("  {}: {error} (and {local})", item.dest.display())),
        }
    }
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "sync failed for {} of {} item(s); their destinations were left as they were:\n{}",
        failures.len(),
        items.len(),
        failures.join("\n")
    );
    ExitCode::FAILURE
}

/// A scrape in flight when the sync loop ends may finish within this.
const METRICS_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The metrics listener's connection limits: a scraper keeps its connection between scrapes
/// (Prometheus: every 15-60 s), a scrape's head is one short line, and a few scrapers at most
/// connect.
const METRICS_LIMITS: connections::Limits = connections::Limits {
    idle: std::time::Duration::from_secs(75),
    head: std::time::Duration::from_secs(10),
    max_open: 64,
};

/// `GET /metrics` and `GET /health` on a plain TCP listener (the sidecar has nothing else to
/// serve), with the same metrics handler and connection handling as the server, until the sync
/// loop ends.
async fn serve_metrics(listener: tokio::net::TcpListener, health: SyncHealth, stop: Shutdown) {
    use poem::{EndpointExt, Route, get};

    let app = Route::new()
        .at("/metrics", get(metrics::metrics_text))
        .at("/health", get(health_report))
        .data(health);
    if let Err(error) = connections::serve(listener, app, stop, METRICS_GRACE, METRICS_LIMITS).await {
        tracing::error!(error = %error, "metrics listener stopped");
    }
}

/// `GET /health`: the [`SyncHealth`] report as JSON; 200 while every item's loop is turning (stale
/// or not), 503 when one is wedged.
#[poem::handler]
fn health_report(poem::web::Data(health): poem::web::Data<&SyncHealth>) -> poem::Response {
    use poem::IntoResponse;
    let report = health.report();
    let status =
        poem::http::StatusCode::from_u16(report.http_status()).unwrap_or(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
    poem::web::Json(report).with_status(status).into_response()
}
