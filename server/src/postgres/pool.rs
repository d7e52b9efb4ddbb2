//! The connection pool and what `/health` says about the database.
//!
//! `/health` must stay free of I/O, so it never asks the database itself: a background probe on a
//! connection of its own checks it every `database.health_interval` ([`super::reachability`]); the
//! status is a small value behind a lock held for a copy, never across an await. A tool call that
//! finds every pooled connection busy is *saturation* ([`DbError::Saturated`]), not an outage: it
//! counts in `pgmcp_db_pool_acquire_timeouts_total` and leaves the status alone. The pool's occupancy
//! (`pgmcp_db_pool_connections{state}`, `_max_connections`, `_waiters`) is read from deadpool's
//! status when `/metrics` is scraped ([`Database::record_pool_metrics`]), and every checkout's wait
//! goes into `pgmcp_db_pool_acquire_duration_seconds`.
//!
//! TLS follows `sslmode` in the URL: `disable` is plain TCP; `prefer` and `require` use rustls and
//! verify the server certificate against the Mozilla roots or `database.ca_file` (for a private CA such
//! as the RDS bundle). We verify even for `require`, where libpq would not: a read-only tool still
//! sends data a model should not get from an impostor.

use std::{
    path::Path,
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType};
use serde::Serialize;
use tokio_postgres::config::SslMode;

use super::checkout::{CancelTransport, Checkout};
use super::error::{DbError, OpenError};
use super::reachability::Reachability;
use super::role_audit::{RoleStatus, RoleWatch};
use super::statement_cache::StatementCache;
use crate::config::DatabaseConfig;
use crate::watch::{FileStatus, Loaded, Loader, Reloadable, Served, TextLoader, Watched};

/// The database as the tools see it: a pool plus the limits every query runs under.
pub struct Database {
    pool: PoolSource,
    pub limits: QueryLimits,
    /// The probe's verdict: the only source of `/health`'s `database.status` and `pgmcp_database_up`.
    reachability: Reachability,
    health_interval: Duration,
    /// The audit of the pool's role, refreshed by every new connection and every health check.
    role: Arc<RoleWatch>,
    /// How an abandoned call's statement is cancelled (see `checkout`).
    cancel: CancelTransport,
    /// Prepared statements per pooled connection (see `statement_cache`).
    pub(super) statements: StatementCache,
}

/// Whether a call's work left its connection clean: transaction ended and session-level advisory
/// locks released (see [`Database::on_connection_reset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// `ROLLBACK` and `pg_advisory_unlock_all()` both succeeded as part of the work.
    Done,
    /// The release is still to be done (or the work could not tell).
    Needed,
}

/// Per-call limits from `database.*`.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub statement_timeout: Duration,
    pub max_rows: usize,
    pub max_result_bytes: usize,
    pub acquire_timeout: Duration,
}

impl QueryLimits {
    /// The limits `config` sets (the pool's wait for a connection is `connect_timeout`).
    pub fn of(config: &DatabaseConfig) -> QueryLimits {
        QueryLimits {
            statement_timeout: config.statement_timeout.get(),
            max_rows: config.max_rows,
            max_result_bytes: config.max_result_size.bytes() as usize,
            acquire_timeout: config.connect_timeout.get(),
        }
    }

    /// The rows a call returns at most: its `limit` argument (`requested`), within 1 and
    /// `database.max_rows`.
    pub fn rows(&self, requested: Option<usize>) -> usize {
        requested.unwrap_or(self.max_rows).clamp(1, self.max_rows)
    }
}

/// What `/health` reports under `database`.
#[derive(Clone, Debug, Serialize)]
pub struct DatabaseStatus {
    /// `unknown` until the first check, then `ok` or `unavailable`.
    pub status: &'static str,
    pub last_error: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    /// Generation and last error of `database.url_file`, when the URL comes from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<FileStatus>,
    /// The latest audit of the pool's role (see `role_audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleStatus>,
}

impl Database {
    /// Builds the pool without connecting: a database that is down at start-up must not stop the
    /// instance from serving the knowledge base. The URL is never logged (it may hold a password).
    /// With `url_file`, the file is watched like the auth files: a rotated password or a moved
    /// database takes effect at the next reload, without a restart.
    pub fn open(config: &DatabaseConfig) -> Result<Option<Arc<Database>>, OpenError> {
        Database::open_named(config, "postgres-mcp")
    }

    /// [`Database::open`] whose connections carry `application_name` (unless the URL sets one),
    /// e.g. `postgres-mcp/<instance>` from [`crate::correlation::pool_application_name`].
    pub fn open_named(config: &DatabaseConfig, application_name: &str) -> Result<Option<Arc<Database>>, OpenError> {
        let role = Arc::new(RoleWatch::new(config.require_safe_role));
        let pool = match (&config.url, &config.url_file) {
            (Some(url), _) => PoolSource::Fixed(Arc::new(
                build_target(url.expose(), config, &role, application_name).map_err(OpenError::Settings)?,
            )),
            (None, Some(path)) => PoolSource::File(Watched::open(
                "database_url",
                path,
                PoolLoader {
                    text: TextLoader::new(|text| Ok(text.trim().to_string())),
                    config: config.clone(),
                    role: role.clone(),
                    application_name: application_name.to_string(),
                },
            )?),
            (None, None) => return Ok(None),
        };
        Ok(Some(Arc::new(Database {
            pool,
            limits: QueryLimits::of(config),
            reachability: Reachability::new(),
            health_interval: config.health_interval.get(),
            role,
            cancel: match tls_connector(config.ca_file.as_deref()) {
                Ok(tls) => CancelTransport::Rustls(tls),
                Err(_) => CancelTransport::Plain,
            },
            statements: StatementCache::default(),
        })))
    }

    /// `url_file` for the reload engine, when the URL comes from one.
    pub fn watched_file(&self) -> Option<Arc<dyn Reloadable>> {
        match &self.pool {
            PoolSource::Fixed(_) => None,
            PoolSource::File(file) => Some(file.clone()),
        }
    }

    /// The pool (and probe connector) for the current URL.
    fn target(&self) -> Arc<Target> {
        match &self.pool {
            PoolSource::Fixed(target) => target.clone(),
            PoolSource::File(file) => file.current(),
        }
    }

    /// A connection from the pool, waiting at most `database.connect_timeout` for one to be free:
    /// [`DbError::Saturated`] when none became free (counted in
    /// `pgmcp_db_pool_acquire_timeouts_total`), `Unavailable` when a new one could not be opened.
    /// The wait, either way, goes into `pgmcp_db_pool_acquire_duration_seconds`.
    pub async fn connection(&self) -> Result<Object, DbError> {
        let target = self.target();
        let started = Instant::now();
        let outcome = target.pool.get().await;
        metrics::histogram!("pgmcp_db_pool_acquire_duration_seconds").record(started.elapsed().as_secs_f64());
        outcome.map_err(|e| {
            let error = match e {
                PoolError::Timeout(TimeoutType::Wait) => {
                    metrics::counter!("pgmcp_db_pool_acquire_timeouts_total").increment(1);
                    DbError::Saturated {
                        connections: target.pool.status().max_size,
                        waited: self.limits.acquire_timeout,
                    }
                }
                PoolError::Backend(error) => DbError::from_pg(error),
                PoolError::Timeout(_) => DbError::Unavailable(format!(
                    "no new connection within {:?} (database.connect_timeout)",
                    self.limits.acquire_timeout
                )),
                other => DbError::Unavailable(other.to_string()),
            };
            self.suspect(&error);
            error
        })
    }

    /// A call that could not reach the database asks the probe to look now (see `reachability`).
    fn suspect(&self, error: &DbError) {
        if error.may_be_an_outage() {
            self.reachability.suspect();
        }
    }

    /// Sets the pool's occupancy gauges from deadpool's status: `pgmcp_db_pool_connections{state}`
    /// (`in_use` lent to calls, `idle` open and free), `pgmcp_db_pool_max_connections` and
    /// `pgmcp_db_pool_waiters` (calls waiting for a connection). Run at every scrape.
    pub fn record_pool_metrics(&self) {
        let status = self.target().pool.status();
        let idle = status.available.min(status.size);
        metrics::gauge!("pgmcp_db_pool_connections", "state" => "in_use").set((status.size - idle) as f64);
        metrics::gauge!("pgmcp_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("pgmcp_db_pool_max_connections").set(status.max_size as f64);
        metrics::gauge!("pgmcp_db_pool_waiters").set(status.waiting as f64);
    }

    /// Runs one tool call's `work` on a pooled connection, and is the one place that decides what
    /// happens to that connection afterwards. Past `statement_timeout + connect_timeout` something is
    /// wrong with the connection itself (the server would have cancelled the statement): the caller
    /// gets an error, and the statement is cancelled and the connection closed. After the work,
    /// session-level advisory locks — the one thing a `SELECT` can leave behind after the
    /// transaction's ROLLBACK, which the dropped transaction has already queued — are released; a
    /// connection that cannot be reset is closed rather than handed to the next caller. A call whose
    /// future is dropped (request timeout, client gone) never gets that far: its [`Checkout`]
    /// cancels and closes the connection instead.
    pub(super) async fn on_connection<T>(
        &self,
        work: impl AsyncFnOnce(&mut Object) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.on_connection_reset(async |client| (work(client).await, Reset::Needed))
            .await
    }

    /// [`Database::on_connection`] for work that may end its transaction and release the advisory
    /// locks itself, in the same round trip as its statement (`query`'s pipelined path): it says
    /// so with [`Reset::Done`] and the separate release is skipped.
    pub(super) async fn on_connection_reset<T>(
        &self,
        work: impl AsyncFnOnce(&mut Object) -> (Result<T, DbError>, Reset),
    ) -> Result<T, DbError> {
        let mut call = Checkout::new(self.connection().await?, self.cancel.clone());
        // After the checkout: a new connection has been audited by then.
        if let Some(refusal) = self.role.refusal() {
            call.finish();
            return Err(refusal);
        }
        let deadline = self.limits.statement_timeout + self.limits.acquire_timeout;
        let outcome = tokio::time::timeout(deadline, work(call.client())).await;
        let Ok((outcome, reset)) = outcome else {
            drop(call);
            let error = DbError::Unanswered { waited: deadline };
            self.suspect(&error);
            return Err(error);
        };
        let cleanup = match reset {
            Reset::Done => Ok(()),
            Reset::Needed => call
                .client()
                .batch_execute("SELECT pg_advisory_unlock_all()")
                .await
                .map_err(DbError::from_pg),
        };
        match cleanup {
            Ok(()) => call.finish(),
            Err(_) => drop(call),
        }
        if let (Err(error), _) | (Ok(_), Err(error)) = (&outcome, &cleanup) {
            self.suspect(error);
        }
        outcome
    }

    /// What `/health` reports under `database`: the probe's verdict, the URL file and the role audit.
    pub fn status(&self) -> DatabaseStatus {
        let verdict = self.reachability.verdict();
        DatabaseStatus {
            status: verdict.status,
            last_error: verdict.last_error,
            checked_at: verdict.checked_at,
            url_file: match &self.pool {
                PoolSource::Fixed(_) => None,
                PoolSource::File(file) => Some(file.status()),
            },
            role: Some(self.role.status()),
        }
    }

    /// One probe on the probe's own connection (see `reachability`): (re)connect when there is none,
    /// when it broke or when the URL changed, then `SELECT 1`, then the role audit again — a privilege
    /// granted or revoked while the pool's connections live must show in `/health` and metrics
    /// within one interval, not when a connection happens to be replaced. Any failure drops the
    /// connection, and the database counts as unavailable: a server that refuses our login is as
    /// useless to the tools as one that is down.
    async fn probe(&self, held: &mut Option<(Arc<Target>, tokio_postgres::Client)>) {
        let target = self.target();
        if held
            .as_ref()
            .is_some_and(|(on, client)| !Arc::ptr_eq(on, &target) || client.is_closed())
        {
            *held = None;
        }
        let limit = self.limits.acquire_timeout * 2;
        let attempt = async {
            if held.is_none() {
                *held = Some((target.clone(), target.connector.connect().await?));
            }
            let Some((_, client)) = held.as_ref() else {
                unreachable!("connected just above")
            };
            client.simple_query("SELECT 1").await.map_err(DbError::from_pg)?;
            self.role.audit_connection(client).await;
            Ok::<_, DbError>(())
        };
        let outcome = match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DbError::Unavailable(format!("no answer to SELECT 1 within {limit:?}"))),
        };
        if outcome.is_err() {
            *held = None;
        }
        self.reachability.record(outcome.as_ref().map(|_| ()));
    }

    /// Probes the database every `health_interval`, and at once when a call suspects an outage,
    /// until the shutdown signal; registers the pool's gauges to be sampled at every scrape.
    pub fn spawn_health_checks(self: &Arc<Self>, mut shutdown: crate::shutdown::Shutdown) {
        let database = self.clone();
        tokio::spawn(async move {
            let mut held = None;
            let mut ticks = tokio::time::interval(database.health_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = database.reachability.suspected() => {}
                    _ = shutdown.recv() => break,
                }
                database.probe(&mut held).await;
            }
        });
    }
}

/// One URL's pool, and how to open a connection with the same settings outside it (the probe's).
struct Target {
    pool: Pool,
    connector: Connector,
}

/// The pool's connection settings and TLS, for the probe's own connection.
struct Connector {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Connector {
    async fn connect(&self) -> Result<tokio_postgres::Client, DbError> {
        // The connection task ends when the client is dropped (or the server goes away).
        let client = match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(DbError::from_pg)?;
                tokio::spawn(async move { drop(connection.await) });
                client
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(DbError::from_pg)?;
                tokio::spawn(async move { drop(connection.await) });
                client
            }
        };
        Ok(client)
    }
}

/// A pool for `url` (nothing connects until the first call) and the probe's connector with the same
/// settings. Each new pooled connection audits the role into `role` before it is handed out.
fn build_target(
    url: &str,
    config: &DatabaseConfig,
    role: &Arc<RoleWatch>,
    application_name: &str,
) -> Result<Target, String> {
    let mut pg = tokio_postgres::Config::from_str(url.trim())
        .map_err(|e| format!("database.url is not a valid PostgreSQL URL: {e}"))?;
    let connect_timeout = config.connect_timeout.get();
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name(application_name);
    }
    // The per-call limits as session settings, sent once per connection in the startup packet
    // rather than as a SET round trip per call. A statement that changes them with set_config()
    // changes them inside its own transaction only: the ROLLBACK that ends every call restores them.
    let timeout_ms = config.statement_timeout.get().as_millis().max(1);
    let idle_ms = (config.statement_timeout.get() + Duration::from_secs(5)).as_millis();
    // The two lexer settings are pinned to what `sql_check`'s parser (libpg_query) assumes: with
    // `standard_conforming_strings = off` (settable per database or role) PostgreSQL reads `'\'` as
    // an unterminated string where the parser sees a whole one, so text the check passed as a comment
    // would run as a call. Startup options take precedence over database and role settings; a
    // set_config() inside a call is undone by its ROLLBACK.
    let limits = format!(
        "-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} \
         -c idle_in_transaction_session_timeout={idle_ms} -c default_transaction_read_only=on \
         -c standard_conforming_strings=on -c backslash_quote=safe_encoding"
    );
    let options = match pg.get_options() {
        Some(user) if !user.trim().is_empty() => format!("{user} {limits}"),
        _ => limits,
    };
    pg.options(&options);
    let manager_config = ManagerConfig {
        // Every call ends with ROLLBACK and releases advisory locks itself (see `query`), so
        // a returned connection is clean; Fast skips a round trip per checkout.
        recycling_method: RecyclingMethod::Fast,
    };
    let (manager, connector) = match pg.get_ssl_mode() {
        SslMode::Disable => (
            Manager::from_config(pg.clone(), tokio_postgres::NoTls, manager_config),
            Connector { config: pg, tls: None },
        ),
        _ => {
            let tls = tls_connector(config.ca_file.as_deref())?;
            (
                Manager::from_config(pg.clone(), tls.clone(), manager_config),
                Connector {
                    config: pg,
                    tls: Some(tls),
                },
            )
        }
    };
    let role = role.clone();
    let pool = Pool::builder(manager)
        .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
            let role = role.clone();
            Box::pin(async move {
                role.audit_connection(client).await;
                Ok(())
            })
        }))
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(connect_timeout))
        .create_timeout(Some(connect_timeout))
        .recycle_timeout(Some(connect_timeout))
        .build()
        .map_err(|e| format!("database pool: {e}"))?;
    Ok(Target { pool, connector })
}

/// Where the pool comes from: a URL fixed in the config, or a watched `url_file`.
enum PoolSource {
    Fixed(Arc<Target>),
    File(Arc<Watched<PoolLoader>>),
}

/// Loads `url_file` into a new pool. Calls that hold a connection of the previous pool finish on it;
/// the previous pool's connections close when the last of them is returned.
struct PoolLoader {
    text: TextLoader<String>,
    config: DatabaseConfig,
    role: Arc<RoleWatch>,
    application_name: String,
}

impl Loader for PoolLoader {
    type Value = Target;

    fn load(&self, path: &Path) -> Result<Loaded<Target>, String> {
        let url = self.text.load(path)?;
        Ok(Loaded {
            value: build_target(&url.value, &self.config, &self.role, &self.application_name)?,
            served: url.served,
        })
    }

    /// An unchanged URL keeps the current pool (and its connections).
    fn reload(&self, path: &Path, served: &Served) -> Result<Option<Loaded<Target>>, String> {
        let Some(url) = self.text.reload(path, served)? else {
            return Ok(None);
        };
        Ok(Some(Loaded {
            value: build_target(&url.value, &self.config, &self.role, &self.application_name)?,
            served: url.served,
        }))
    }
}

/// rustls with the Mozilla roots, plus the certificates of `ca_file` when given.
fn tls_connector(ca_file: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    crate::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("database.ca_file {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("database.ca_file {}: {e}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!("database.ca_file {}: no PEM certificate in it", path.display()));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| format!("database.ca_file {}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
