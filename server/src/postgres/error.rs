//! Why a database call failed ([`DbError`]), worded for the model and the operator, and why the
//! pool could not be built at start-up ([`OpenError`]).

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
    /// PostgreSQL refused the statement (syntax, permissions, read-only violation, timeout ...).
    #[error("{0}")]
    Rejected(String),
    /// The statement is valid SQL but not something this tool runs.
    #[error("{0}")]
    NotAllowed(String),
    /// `database.require_safe_role` is set and the pool's role is unsafe (or not audited yet).
    #[error("{0}")]
    UnsafeRole(String),
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
