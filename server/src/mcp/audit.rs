//! The audit trail: one line per database tool call (logger `audit`, level info) — who ran which
//! statement, when, from which request, how many rows and bytes came back, how long it took and
//! how it ended (SQLSTATE).
//!
//! Why the statement is normalised by default: a model writes values into its SQL (`WHERE email =
//! 'ann@example.com'`), and logs travel further and live longer than the database they describe.
//! PostgreSQL's own parser replaces every constant with `$1`, `$2` … (what `pg_stat_statements`
//! shows), so the line says what was looked for without the values; `log.audit.statement: full`
//! keeps the text as sent, for deployments whose log store is as protected as the database. A text
//! PostgreSQL's grammar refuses is not written at all in normalised mode (it could be anything,
//! secrets included): its length is.
//!
//! The statement is cut to [`MAX_STATEMENT_BYTES`] (its length logged beside it when cut): a line as
//! long as the request body would be split or dropped by the log pipeline, and would let any caller
//! write a megabyte of log per call.
//!
//! Field names are OpenTelemetry's database conventions (`db.system.name`, `db.query.text`,
//! `db.response.status_code`, `db.response.returned_rows`); the request id, trace id and instance
//! come from the request span the line is written in, so an audit line joins its access line.

use std::time::Duration;

use crate::{
    auth::Principal,
    config::{AuditLogConfig, AuditStatement},
    exchange::Failure,
    log_text::bounded,
    postgres::{DbError, sql_check},
};

/// Longest statement text an audit line carries.
pub const MAX_STATEMENT_BYTES: usize = 4096;

/// How audit lines show statements (`log.audit`).
#[derive(Clone, Copy, Debug)]
pub struct Audit {
    statement: AuditStatement,
}

/// One finished database tool call.
pub struct AuditedCall<'a> {
    pub principal: &'a Principal,
    pub tool: &'static str,
    /// The SQL the model sent (`query_database`), or `None` for a catalog tool.
    pub sql: Option<&'a str>,
    pub duration: Duration,
    pub outcome: Result<Returned, &'a DbError>,
}

/// What a successful call returned.
#[derive(Clone, Copy, Debug)]
pub struct Returned {
    /// Rows returned (`query_database`); `None` for a catalog tool.
    pub rows: Option<usize>,
    /// Bytes of the result as sent to the model (its JSON text).
    pub bytes: usize,
    pub truncated: bool,
}

impl Audit {
    pub fn new(config: &AuditLogConfig) -> Audit {
        Audit {
            statement: config.statement,
        }
    }

    /// Writes `call`'s audit line. Call inside the request's span.
    pub async fn write(&self, call: AuditedCall<'_>) {
        let (text, unparsable_bytes) = match (call.sql, self.statement) {
            (None, _) => (None, None),
            (Some(sql), AuditStatement::Full) => (Some(sql.to_string()), None),
            (Some(sql), AuditStatement::Normalized) => match sql_check::normalized_off_workers(sql).await {
                Some(normalized) => (Some(normalized), None),
                None => (None, Some(sql.len())),
            },
        };
        let statement_bytes = text.as_ref().map(String::len).filter(|len| *len > MAX_STATEMENT_BYTES);
        let text = text.as_deref().map(|text| bounded(text, MAX_STATEMENT_BYTES));
        let (returned, error) = match call.outcome {
            Ok(returned) => (Some(returned), None),
            Err(error) => (None, Some(error)),
        };
        let failure: Option<Failure> = error.map(DbError::failure);
        tracing::event!(
            target: "audit",
            tracing::Level::INFO,
            user.name = &*call.principal.name,
            gen_ai.tool.name = call.tool,
            db.system.name = "postgresql",
            db.query.text = text,
            pgmcp.db.query.text_bytes = statement_bytes,
            pgmcp.db.query.unparsable_bytes = unparsable_bytes,
            db.response.status_code = error.and_then(DbError::sqlstate),
            db.response.returned_rows = returned.and_then(|r| r.rows),
            pgmcp.db.response.bytes = returned.map(|r| r.bytes),
            pgmcp.db.response.truncated = returned.map(|r| r.truncated),
            error.r#type = failure.map(|f| f.error_type),
            pgmcp.outcome = failure.map_or("ok", |f| f.class.as_str()),
            db.client.operation.duration = call.duration.as_secs_f64(),
            "{} by {}",
            call.tool,
            call.principal.name,
        );
    }
}
