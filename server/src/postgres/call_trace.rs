//! How a database call shows outside the server: its span (`db.query`, `db.schema`) with the
//! OpenTelemetry database attributes, and the `application_name` its backend carries while it runs.
//!
//! The span follows the semantic conventions for database client spans: exported as
//! `{db.operation.name}` (`SELECT`, `WITH`, … the statement's first keyword; `postgresql` when it is
//! none of those) or `SELECT pg_catalog` for the schema, with `db.system.name = postgresql`,
//! `db.operation.name`, `db.query.text`, `error.type`. A statement's literals may be
//! anyone's data, so `db.query.text` is PostgreSQL's own normalised form (`pg_query::normalize`:
//! every constant becomes `$n`), recorded only for a span that is exported and for statements up to
//! [`MAX_NORMALISED_BYTES`] (normalising parses the statement again, on the request's thread).
//!
//! The backend is tagged with `SET LOCAL application_name = 'postgres-mcp/<instance> <request id>'`
//! ([`crate::correlation`]): `pg_stat_activity` then ties a running statement to the instance and
//! the request's `X-Request-Id`. `SET LOCAL` ends with the call's transaction (every call rolls
//! back), so the pooled connection goes back to its default, `postgres-mcp/<instance>`. The tag is
//! a simple-protocol message queued with the call's first statement ([`tag`] is joined with it), so
//! it adds no round trip.

use opentelemetry::trace::TraceContextExt;
use tokio_postgres::Transaction;
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::error::DbError;
use crate::correlation::{self, Correlation};

/// Longest statement whose normalised text is recorded on an exported span.
pub const MAX_NORMALISED_BYTES: usize = 8 * 1024;

/// The span of one `query_database` call on `sql`.
pub fn query_span(sql: &str) -> Span {
    let operation = operation(sql);
    let span = tracing::info_span!(
        "db.query",
        otel.name = operation.unwrap_or("postgresql"),
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.query.text = Empty,
        error.type = Empty,
    );
    if sql.len() <= MAX_NORMALISED_BYTES
        && span.context().span().span_context().is_sampled()
        && let Ok(text) = pg_query::normalize(sql)
    {
        span.record("db.query.text", text);
    }
    span
}

/// The span of one `get_schema_info` call.
pub fn schema_span() -> Span {
    tracing::info_span!(
        "db.schema",
        otel.name = "SELECT pg_catalog",
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = "SELECT",
        db.collection.name = "pg_catalog",
        error.type = Empty,
    )
}

/// Records the outcome of a call on its span: `error.type` as the access log and metrics name it
/// ([`DbError::failure`], one classification for all three).
pub fn record_outcome<T>(span: &Span, outcome: &Result<T, DbError>) {
    if let Err(error) = outcome {
        span.record("error.type", error.failure().error_type);
    }
}

/// Tags the backend of `transaction` with the current request (a no-op outside a request). Join it
/// with the call's first statement: both go out in one write.
pub async fn tag(transaction: &Transaction<'_>) -> Result<(), DbError> {
    let Some(statement) = tag_statement() else {
        return Ok(());
    };
    transaction.batch_execute(&statement).await.map_err(DbError::from_pg)
}

/// The `SET LOCAL application_name = …` that tags a backend with the current request, or `None`
/// outside a request; for callers that send it in a batch of their own (`query`'s pipelined path).
pub fn tag_statement() -> Option<String> {
    Some(tag_for(&correlation::current()?))
}

/// The `SET LOCAL application_name = …` of `correlation`'s request.
pub fn tag_for(correlation: &Correlation) -> String {
    // Only `[A-Za-z0-9._:/ -]` (see `correlation`): nothing to escape inside the quotes.
    format!("SET LOCAL application_name = '{}'", correlation.application_name())
}

/// `db.operation.name`: the statement's first keyword, when it is one a query may start with.
fn operation(sql: &str) -> Option<&'static str> {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?;
    ["SELECT", "WITH", "VALUES", "TABLE", "EXPLAIN", "SHOW"]
        .into_iter()
        .find(|keyword| keyword.eq_ignore_ascii_case(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_the_first_keyword_from_a_fixed_set() {
        assert_eq!(operation("  select 1"), Some("SELECT"));
        assert_eq!(operation("(SELECT 1) UNION (SELECT 2)"), Some("SELECT"));
        assert_eq!(operation("With x AS (SELECT 1) TABLE x"), Some("WITH"));
        assert_eq!(operation("explain SELECT 1"), Some("EXPLAIN"));
        assert_eq!(operation("/* c */ SELECT 1"), None);
        assert_eq!(operation("DROP TABLE users"), None);
    }

    #[test]
    fn normalised_text_carries_no_literal() {
        let text = pg_query::normalize("SELECT * FROM users WHERE email = 'alice@example.com' AND id = 42").unwrap();
        assert!(!text.contains("alice") && !text.contains("42"), "{text}");
        assert!(text.contains("$1") && text.contains("$2"), "{text}");
    }
}
