//! The connection pool and what `/health` says about the database.
//!
//! `/health` must stay free of I/O, so it never asks the database itself: a background task checks
//! the pool every `database.health_interval`, and every tool call records its outcome too. The status
//! is a small value behind a lock held for a copy, never across an await.
//!
//! TLS follows `sslmode` in the URL: `disable` is plain TCP; `prefer` and `require` use rustls and
//! verify the server certificate against the Mozilla roots or `database.ca_file` (for a private CA such
//! as the RDS bundle). We verify even for `require`, where libpq would not: a read-only tool still
//! sends data a model should not get from an impostor.

use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde::Serialize;
use tokio_postgres::config::SslMode;

use super::checkout::{CancelTransport, Checkout};
use super::error::{DbError, OpenError};
use super::role_audit::{RoleStatus, RoleWatch};
use crate::config::DatabaseConfig;
use crate::watch::{FileStatus, Loaded, Loader, Reloadable, Served, TextLoader, Watched};

/// The database as the tools see it: a pool plus the limits every query runs under.
pub struct Database {
    pool: PoolSource,
    pub limits: QueryLimits,
    status: Mutex<DatabaseStatus>,
    health_interval: Duration,
    /// The audit of the pool's role, refreshed by every new connection and every health check.
    role: Arc<RoleWatch>,
    /// How an abandoned call's statement is cancelled (see `checkout`).
    cancel: CancelTransport,
}

/// Per-call limits from `database.*`.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub statement_timeout: Duration,
    pub max_rows: usize,
    pub max_result_bytes: usize,
    pub acquire_timeout: Duration,
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
            (Some(url), _) => PoolSource::Fixed(
                build_pool(url.expose(), config, &role, application_name).map_err(OpenError::Settings)?,
            ),
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
        let connect_timeout = config.connect_timeout.get();
        Ok(Some(Arc::new(Database {
            pool,
            limits: QueryLimits {
                statement_timeout: config.statement_timeout.get(),
                max_rows: config.max_rows,
                max_result_bytes: config.max_result_size.bytes() as usize,
                acquire_timeout: connect_timeout,
            },
            status: Mutex::new(DatabaseStatus {
                status: "unknown",
                last_error: None,
                checked_at: None,
                url_file: None,
                role: None,
            }),
            health_interval: config.health_interval.get(),
            role,
            cancel: match tls_connector(config.ca_file.as_deref()) {
                Ok(tls) => CancelTransport::Rustls(tls),
                Err(_) => CancelTransport::Plain,
            },
        })))
    }

    /// `url_file` for the reload engine, when the URL comes from one.
    pub fn watched_file(&self) -> Option<Arc<dyn Reloadable>> {
        match &self.pool {
            PoolSource::Fixed(_) => None,
            PoolSource::File(file) => Some(file.clone()),
        }
    }

    /// A connection from the pool, or `Unavailable` naming why.
    pub async fn connection(&self) -> Result<Object, DbError> {
        let pool = match &self.pool {
            PoolSource::Fixed(pool) => pool.clone(),
            PoolSource::File(file) => Pool::clone(&file.current()),
        };
        let outcome = pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(error) => DbError::from_pg(error),
            deadpool_postgres::PoolError::Timeout(_) => DbError::Unavailable(format!(
                "no connection within {:?} (database down or pool exhausted)",
                self.limits.acquire_timeout
            )),
            other => DbError::Unavailable(other.to_string()),
        });
        if let Err(error) = &outcome {
            self.record(Err(error));
        }
        outcome
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
        work: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut call = Checkout::new(self.connection().await?, self.cancel.clone());
        // After the checkout: a new connection has been audited by then.
        if let Some(refusal) = self.role.refusal() {
            call.finish();
            return Err(refusal);
        }
        let deadline = self.limits.statement_timeout + self.limits.acquire_timeout;
        let outcome = tokio::time::timeout(deadline, work(call.client())).await;
        let Ok(outcome) = outcome else {
            drop(call);
            let error = DbError::Unavailable(format!("no answer from the database within {deadline:?}"));
            self.record(Err(&error));
            return Err(error);
        };
        let cleanup = call
            .client()
            .batch_execute("SELECT pg_advisory_unlock_all()")
            .await
            .map_err(DbError::from_pg);
        match cleanup {
            Ok(()) => call.finish(),
            Err(_) => drop(call),
        }
        match (&outcome, &cleanup) {
            (Err(error), _) | (Ok(_), Err(error)) => self.record(Err(error)),
            (Ok(_), Ok(())) => self.record(Ok(())),
        }
        outcome
    }

    /// Records the outcome of a call: a server-side rejection still proves the database is up.
    pub fn record(&self, outcome: Result<(), &DbError>) {
        let next = match outcome {
            Err(error) if error.is_unavailable() => DatabaseStatus {
                status: "unavailable",
                last_error: Some(error.to_string()),
                checked_at: Some(Utc::now()),
                url_file: None,
                role: None,
            },
            _ => DatabaseStatus {
                status: "ok",
                last_error: None,
                checked_at: Some(Utc::now()),
                url_file: None,
                role: None,
            },
        };
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.status != next.status {
            match &next.last_error {
                Some(error) => tracing::error!(%error, "database unavailable"),
                None => tracing::info!("database reachable"),
            }
            let up = if next.status == "ok" { 1.0 } else { 0.0 };
            metrics::gauge!("pgmcp_database_up").set(up);
        }
        *status = next;
    }

    pub fn status(&self) -> DatabaseStatus {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let PoolSource::File(file) = &self.pool {
            status.url_file = Some(file.status());
        }
        status.role = Some(self.role.status());
        status
    }

    /// One liveness check: a connection and `SELECT 1`, then the role audit again — a privilege
    /// granted or revoked while the pool's connections live must show in `/health` and metrics
    /// within one interval, not when a connection happens to be replaced.
    pub async fn check(&self) {
        let outcome = async {
            let client = self.connection().await?;
            client.simple_query("SELECT 1").await.map_err(DbError::from_pg)?;
            self.role.audit_connection(&client).await;
            Ok::<_, DbError>(())
        };
        let outcome = match tokio::time::timeout(self.limits.acquire_timeout * 2, outcome).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DbError::Unavailable("health check timed out".into())),
        };
        self.record(outcome.as_ref().map(|_| ()));
    }

    /// Checks the database every `health_interval` until the shutdown signal.
    pub fn spawn_health_checks(self: &Arc<Self>, mut shutdown: crate::shutdown::Shutdown) {
        let database = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(database.health_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => database.check().await,
                    _ = shutdown.recv() => break,
                }
            }
        });
    }
}

/// A pool for `url` (nothing connects until the first call). Each new connection audits the role
/// into `role` before it is handed out.
fn build_pool(
    url: &str,
    config: &DatabaseConfig,
    role: &Arc<RoleWatch>,
    application_name: &str,
) -> Result<Pool, String> {
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
    let manager = match pg.get_ssl_mode() {
        SslMode::Disable => Manager::from_config(pg, tokio_postgres::NoTls, manager_config),
        _ => {
            let tls = tls_connector(config.ca_file.as_deref())?;
            Manager::from_config(pg, tls, manager_config)
        }
    };
    let role = role.clone();
    Pool::builder(manager)
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
        .map_err(|e| format!("database pool: {e}"))
}

/// Where the pool comes from: a URL fixed in the config, or a watched `url_file`.
enum PoolSource {
    Fixed(Pool),
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
    type Value = Pool;

    fn load(&self, path: &Path) -> Result<Loaded<Pool>, String> {
        let url = self.text.load(path)?;
        Ok(Loaded {
            value: build_pool(&url.value, &self.config, &self.role, &self.application_name)?,
            served: url.served,
        })
    }

    /// An unchanged URL keeps the current pool (and its connections).
    fn reload(&self, path: &Path, served: &Served) -> Result<Option<Loaded<Pool>>, String> {
        let Some(url) = self.text.reload(path, served)? else {
            return Ok(None);
        };
        Ok(Some(Loaded {
            value: build_pool(&url.value, &self.config, &self.role, &self.application_name)?,
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
