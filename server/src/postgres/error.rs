//! Why a database call failed ([`DbError`]), worded for the model and the operator, and why the
//! pool could not be built at start-up ([`OpenError`]).

use crate::exchange::Failure;

/// Why a database call failed, worded for the model (tool errors) and the operator (logs).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had: the database is down, unreachable or refusing us.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Every connection of this instance's pool stayed busy (with other calls, or being opened) for
    /// the whole wait: the instance is saturated, the database may well be fine. Worded so a model
    /// retries later instead of reporting an outage.
    #[error(
        "the database is busy: all {connections} connections of this server's pool are in use and none \
         became free within {waited:?} (database.connect_timeout). The query was not run; this is load, \
         not an error in it: retry the call in a few seconds."
    )]
    Saturated {
        /// The pool's size (`database.pool_size`).
        connections: usize,
        /// How long the call waited for one.
        waited: std::time::Duration,
    },
    /// The call held its connection past `database.statement_timeout + database.connect_timeout`
    /// (the server's own guard, see `Database::on_connection`) with no answer: the statement was
    /// cancelled and the connection closed. PostgreSQL cancels a statement at its
    /// `statement_timeout`, so either something inside the statement lifted that bound (a function
    /// with its own `SET statement_timeout`) or the database stopped answering; the probe
    /// (`reachability`) is asked to tell which, and `/health` reports an outage only if it finds one.
    #[error(
        "the statement did not finish within {waited:?} (database.statement_timeout + \
         database.connect_timeout): it was cancelled and its connection closed. Run a cheaper statement; \
         if the database itself stopped answering, the server's health reports it."
    )]
    Unanswered {
        /// The guard's length.
        waited: std::time::Duration,
    },
    /// PostgreSQL refused the statement (syntax, permissions, read-only violation, timeout ...).
    #[error("{message}")]
    Rejected {
        /// The five-character SQLSTATE (e.g. `42P01`), for logs and the error class.
        sqlstate: String,
        /// Message, SQLSTATE, detail and hint, worded for the model.
        message: String,
    },
    /// The statement is valid SQL but not something this tool runs.
    #[error("{0}")]
    NotAllowed(String),
    /// `database.require_safe_role` is set and the pool's role is unsafe (or not audited yet).
    #[error("{0}")]
    UnsafeRole(String),
    /// We could not read what PostgreSQL sent (a bug of ours, not the query's).
    #[error("{0}")]
    Internal(String),
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
                DbError::Rejected {
                    sqlstate: db.code().code().to_string(),
                    message,
                }
            }
            // Not an answer from the server: the connection broke or could not be made.
            None => DbError::Unavailable(error.to_string()),
        }
    }

    /// True when the failure says the database (not the query) is at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }

    /// True when the database may be down: it is unavailable, or it left a call unanswered past
    /// the server's guard (the probe then looks at once).
    pub fn may_be_an_outage(&self) -> bool {
        matches!(self, DbError::Unavailable(_) | DbError::Unanswered { .. })
    }

    /// The SQLSTATE PostgreSQL answered with, when it answered.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Rejected { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// Whose fault the failure is, and its `error.type` (see `crate::exchange`).
    pub fn failure(&self) -> Failure {
        match self {
            DbError::Unavailable(_) => Failure::server("database_unavailable"),
            DbError::Saturated { .. } => Failure::server("pool_exhausted"),
            DbError::Unanswered { .. } => Failure::server("timeout"),
            DbError::Rejected { sqlstate, .. } => sqlstate_failure(sqlstate),
            DbError::NotAllowed(_) => Failure::caller("statement_refused"),
            DbError::UnsafeRole(_) => Failure::server("unsafe_role"),
            DbError::Internal(_) => Failure::server("internal"),
        }
    }
}

/// Whose fault a statement PostgreSQL refused is, by SQLSTATE class (PostgreSQL manual, Appendix A
/// "PostgreSQL Error Codes"). Most classes say the statement was wrong (`42` syntax or undefined
/// object, `22` data, `25006` a write in our read-only transaction, `42501` a table the role may not
/// read): the caller's. These say we could not serve a valid one:
/// - `57014` query_canceled — `database.statement_timeout` fired: `timeout`;
/// - `08` connection, `57P0x` shutdown/crash, `53` insufficient resources, `58` system, `XX`
///   internal, `28`/`3D` our role or database, `40001`/`40P01` serialization failure/deadlock
///   (transient: a retry may pass): `database_error`.
fn sqlstate_failure(sqlstate: &str) -> Failure {
    match sqlstate {
        "57014" => Failure::server("timeout"),
        "40001" | "40P01" => Failure::server("database_error"),
        _ => match sqlstate.get(..2) {
            Some("08" | "53" | "57" | "58" | "XX" | "28" | "3D") => Failure::server("database_error"),
            _ => Failure::caller("sql_rejected"),
        },
    }
}

/// A statement refused before it ran is a tool error like any refused statement.
impl From<super::sql_check::Refusal> for DbError {
    fn from(refusal: super::sql_check::Refusal) -> DbError {
        DbError::NotAllowed(refusal.to_string())
    }
}

/// Why start-up could not build the pool (nothing connects at start-up, so never "unavailable").
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// `database.url` or `database.ca_file` is unusable.
    #[error("{0}")]
    Settings(String),
    /// `database.url_file` is missing or invalid.
    #[error(transparent)]
    UrlFile(#[from] crate::watch::OpenError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ErrorClass;

    #[test]
    fn bad_sql_is_the_callers_fault_and_an_outage_is_ours() {
        for caller in ["42P01", "42601", "25006", "22012", "42501", "0A000"] {
            assert_eq!(sqlstate_failure(caller), Failure::caller("sql_rejected"), "{caller}");
        }
        assert_eq!(sqlstate_failure("57014"), Failure::server("timeout"));
        for ours in ["08006", "53300", "57P01", "XX000", "28P01", "3D000", "40001"] {
            assert_eq!(sqlstate_failure(ours).class, ErrorClass::Server, "{ours}");
        }
    }

    /// The server's own guard firing is a timeout, ours, and not worded as an outage (a fresh
    /// review saw "the database is unavailable" for a statement that had lifted its own
    /// `statement_timeout`); the probe is still asked to look.
    #[test]
    fn an_unanswered_call_is_a_timeout_not_an_outage() {
        let error = DbError::Unanswered {
            waited: std::time::Duration::from_secs(35),
        };
        assert_eq!(error.failure(), Failure::server("timeout"));
        assert!(!error.is_unavailable());
        assert!(error.may_be_an_outage());
        let text = error.to_string();
        assert!(!text.contains("unavailable"), "{text}");
        assert!(text.contains("35s") && text.contains("statement_timeout"), "{text}");
    }
}
