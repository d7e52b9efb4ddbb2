//! PostgreSQL: a connection pool, read-only queries and schema introspection for the MCP tools.
//!
//! The database is optional: without `database.url` the Postgres tools are not offered and the server
//! is a knowledge-base server. When it is configured, an outage must never take the instance out of
//! the load balancer — the knowledge base still works — so `/health` stays 200 and reports
//! `database.status: unavailable`, tools answer a clear tool error, and the pool reconnects by itself
//! when the database is back (deadpool creates connections on demand; broken ones are discarded).
//!
//! - [`pool`]: URL (or a watched `url_file`, for credential rotation without restarts), TLS per
//!   `sslmode`, timeouts, pool size; the [`Database`] handle and its status;
//! - [`query`]: one statement in a `READ ONLY` transaction with timeouts and caps;
//! - [`values`]: PostgreSQL values as JSON where the server cannot do it for us;
//! - [`schema`]: tables, columns, keys and indexes, compact enough for a model's context.

pub mod pool;
pub mod query;
pub mod schema;
pub mod values;

pub use pool::{Database, DatabaseStatus};

/// Why a database call failed, worded for the model (tool errors) and the operator (logs).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had: the database is down, unreachable or refusing us.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL refused the statement (syntax, permissions, read-only violation, timeout ...).
    #[error("{0}")]
    Rejected(String),
    /// The statement is valid SQL but not something this tool runs.
    #[error("{0}")]
    NotAllowed(String),
}

impl DbError {
    /// A PostgreSQL error with its SQLSTATE and, when the server gave them, detail and hint: what a
    /// model needs to fix its query.
    pub(crate) fn from_pg(error: tokio_postgres::Error) -> DbError {
        match error.as_db_error() {
            Some(db) => {
                let mut message = format!("{} (SQLSTATE {})", db.message(), db.code().code());
                if let Some(detail) = db.detail() {
                    message.push_str(&format!("; detail: {detail}"));
                }
                if let Some(hint) = db.hint() {
                    message.push_str(&format!("; hint: {hint}"));
                }
                DbError::Rejected(message)
            }
            // Not an answer from the server: the connection broke or could not be made.
            None => DbError::Unavailable(error.to_string()),
        }
    }

    /// True when the failure says the database (not the query) is at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}
