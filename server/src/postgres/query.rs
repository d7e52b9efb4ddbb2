//! `query_database`: one statement, read-only, bounded in time, rows and bytes.
//!
//! Read-only is enforced by PostgreSQL, not by inspecting the SQL text:
//! - every call runs in `START TRANSACTION READ ONLY`, so any write, DDL or `nextval` fails in the
//!   server ("cannot execute … in a read-only transaction"), whatever the spelling or the function
//!   that hides it, and the transaction always ends in `ROLLBACK`;
//! - the statement goes through the extended protocol (`Parse`), which accepts exactly one
//!   statement: `SELECT 1; COMMIT; DELETE …` is refused by the server before anything runs;
//! - before anything is sent, PostgreSQL's own parser checks the text ([`super::sql_check`]): one
//!   statement, a query, calling no function whose effects reach beyond the call (signalling other
//!   backends, server files, WAL, remote connections …: [`super::sql_policy`]);
//! - a statement that describes no result rows is refused before it runs. That is every utility
//!   statement — `COMMIT`, `SET ROLE`, `SET TRANSACTION READ WRITE`, `COPY … TO PROGRAM`, `DO`,
//!   `CALL`, `LISTEN`, `PREPARE` — and plain DML without `RETURNING`. The server tells us the shape
//!   (its RowDescription), so this is a rule about what the statement *is*, not a keyword list;
//! - `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` (session settings
//!   of every pooled connection) bound the time a call can hold a backend, and a client-side timeout
//!   drops a connection that stops answering;
//! - session-level advisory locks are the one thing a `SELECT` can leave behind after `ROLLBACK`;
//!   they are released before the connection goes back to the pool.
//!
//! Values are converted to JSON by PostgreSQL itself where it can (`to_json` of the row, which knows
//! every type, including numerics, arrays, ranges and composites); statements that cannot be a
//! subquery (`EXPLAIN`, `SHOW`) are decoded by [`super::values`].
//!
//! A call's memory is bounded by `database.max_result_size`, not by what the statement returns
//! (issue #13 §C.11: `SELECT repeat('x', 1000000) FROM generate_series(1, 200)` used to be fetched
//! whole — 281 MiB of peak RSS — before its bytes were counted):
//! - rows are read from a portal one at a time as they arrive ([`fetch`]; tokio-postgres applies
//!   back-pressure, so unread rows wait in the socket, not in memory) and counted against the budget
//!   as they come; the first row past it ends the call, truncated and flagged;
//! - the portal is executed in batches: [`FIRST_BATCH`] rows first (most answers fit, so they cost
//!   the same round trips as one Execute), then batches sized from the mean row so far to what is
//!   left of the budget. A call that stops early leaves at most one batch that the server generates
//!   and the client discards, instead of every row of the statement;
//! - a single row is the one thing a batch cannot split, and PostgreSQL values reach 1 GB. So the
//!   server measures each row's JSON text and sends a row larger than [`row_ceiling`] (twice the
//!   budget plus its keys: such a row can never fit) as its length only. One call then holds at most
//!   a few times `max_result_size` (the row's text, its parsed values, the rows kept, the reply),
//!   and an instance at most `database.pool_size` such calls. Statements that cannot be wrapped
//!   (`EXPLAIN`, `SHOW`) return plan and setting text; their rows are not measured server-side.
//!
//! Round trips per call (#17 counts them): BEGIN, the two pipelined Parses, Bind, one Execute per
//! batch, ROLLBACK; a result of up to [`FIRST_BATCH`] rows, or one that fits the budget in its
//! second batch, costs what it did before the budget was enforced while fetching.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client, Statement, Transaction};
use tracing::Instrument;

use super::{call_trace, error::DbError, pool::Database, values};

/// What a query returned, ready to serialize for the model.
#[derive(Debug, Serialize, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<Column>,
    /// Each row as an array in column order (compact: names are in `columns` once).
    pub rows: Vec<Vec<Value>>,
    pub row_count: usize,
    /// Set when rows were left out; says which cap applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Truncation {
    /// More rows than the call's row limit.
    RowLimit { limit: usize },
    /// The serialized rows passed `database.max_result_size`.
    ResultSize { max_bytes: usize },
}

impl Database {
    /// Runs one read-only statement with at most `limit` rows (capped by `database.max_rows`).
    pub async fn query(&self, sql: &str, limit: Option<usize>) -> Result<QueryOutput, DbError> {
        let sql = normalize(sql)?;
        let span = call_trace::query_span(sql);
        let outcome = async {
            super::sql_check::check_off_workers(sql).await?;
            let limit = limit.unwrap_or(self.limits.max_rows).clamp(1, self.limits.max_rows);
            self.on_connection(async |client| self.run(client, sql, limit).await)
                .await
        }
        .instrument(span.clone())
        .await;
        call_trace::record_outcome(&span, &outcome);
        outcome
    }

    async fn run(&self, client: &mut Client, sql: &str, limit: usize) -> Result<QueryOutput, DbError> {
        let max_bytes = self.limits.max_result_bytes;
        let transaction = self.begin(client).await?;
        // Pipelined in one round trip: the statement's own Parse/Describe and the JSON-wrapped form,
        // which sends a row past the ceiling as its length only (the exact count is ours, in `fetch`).
        let wrapped_sql = format!(
            "SELECT CASE WHEN octet_length(j) <= {ceiling} THEN j END, octet_length(j) \
             FROM (SELECT to_json(q)::text AS j FROM (\n{sql}\n) AS q OFFSET 0) AS r",
            ceiling = row_ceiling(max_bytes),
        );
        let (tagged, statement, wrapped) = tokio::join!(
            call_trace::tag(&transaction),
            transaction.prepare(sql),
            transaction.prepare(&wrapped_sql)
        );
        tagged?;
        let statement = statement.map_err(DbError::from_pg)?;
        check_shape(&statement)?;
        let columns = statement
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                type_name: c.type_().name().to_string(),
            })
            .collect();
        match wrapped {
            Ok(wrapped) => fetch(&transaction, &wrapped, limit, max_bytes, columns, json_row).await,
            Err(_) => {
                // Not usable as a subquery (EXPLAIN, SHOW): the failed Parse aborted the
                // transaction, so start again and decode the values ourselves.
                transaction.rollback().await.map_err(DbError::from_pg)?;
                let transaction = self.begin(client).await?;
                let (tagged, statement) = tokio::join!(call_trace::tag(&transaction), transaction.prepare(sql));
                tagged?;
                let statement = statement.map_err(DbError::from_pg)?;
                let row_values = |row: &tokio_postgres::Row| Ok(Some(values::row_values(row)));
                fetch(&transaction, &statement, limit, max_bytes, columns, row_values).await
            }
        }
    }

    /// `START TRANSACTION READ ONLY` (dropping the transaction rolls back). The timeouts are the
    /// connection's session settings (see `pool`), so this is one round trip.
    pub(super) async fn begin<'c>(&self, client: &'c mut Client) -> Result<Transaction<'c>, DbError> {
        client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(DbError::from_pg)
    }
}

/// Trims whitespace and trailing semicolons (so the statement can be wrapped), refuses empty input.
fn normalize(sql: &str) -> Result<&str, DbError> {
    let sql = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if sql.is_empty() {
        return Err(DbError::NotAllowed("sql is empty".into()));
    }
    Ok(sql)
}

/// Only statements that return rows are run; parameters cannot be supplied by this tool.
fn check_shape(statement: &Statement) -> Result<(), DbError> {
    if !statement.params().is_empty() {
        return Err(DbError::NotAllowed(format!(
            "the statement has {} parameter placeholder(s) ($1 …); write the values into the query",
            statement.params().len()
        )));
    }
    if statement.columns().is_empty() {
        return Err(DbError::NotAllowed(
            "only statements that return rows are run (SELECT, WITH … SELECT, VALUES, TABLE, EXPLAIN, SHOW); \
             this one returns none — writes, DDL, transaction control and SET are refused"
                .into(),
        ));
    }
    Ok(())
}

/// Rows asked of the server by the first Execute of a portal. Large enough that most answers come
/// in one round trip, small enough that a call stopped by its budget leaves few rows generated and
/// sent for nothing (each at most [`row_ceiling`]).
pub const FIRST_BATCH: usize = 100;

/// Largest row, in bytes of its JSON object text, that the server sends whole (twice the budget,
/// plus the longest keys PostgreSQL allows: 1664 columns of 63-byte names, quoted, `:`, `,`).
/// Anything longer could never fit in `max_bytes`, so only its length is sent.
pub fn row_ceiling(max_bytes: usize) -> usize {
    const KEYS: usize = 1664 * (63 + 4);
    max_bytes.saturating_mul(2).saturating_add(KEYS)
}

/// Fetches up to `limit` rows through a portal in batches, converting each row as it arrives with
/// `convert` (`None`: the row is past [`row_ceiling`]) and stopping at the first row past the byte
/// budget; the rows not read are discarded with the transaction.
async fn fetch(
    transaction: &Transaction<'_>,
    statement: &Statement,
    limit: usize,
    max_bytes: usize,
    columns: Vec<Column>,
    convert: impl Fn(&tokio_postgres::Row) -> Result<Option<Vec<Value>>, DbError>,
) -> Result<QueryOutput, DbError> {
    let portal = transaction.bind(statement, &[]).await.map_err(DbError::from_pg)?;
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut batch = FIRST_BATCH.min(limit + 1);
    let truncated = 'portal: loop {
        let max_rows = i32::try_from(batch).unwrap_or(i32::MAX);
        let mut stream = std::pin::pin!(
            transaction
                .query_portal_raw(&portal, max_rows)
                .await
                .map_err(DbError::from_pg)?
        );
        while let Some(row) = stream.next().await {
            let row = row.map_err(DbError::from_pg)?;
            if rows.len() == limit {
                break 'portal Some(Truncation::RowLimit { limit });
            }
            let Some(values) = convert(&row)? else {
                break 'portal Some(Truncation::ResultSize { max_bytes });
            };
            bytes += values.iter().map(encoded_len).sum::<usize>() + values.len() + 2;
            if bytes > max_bytes {
                break 'portal Some(Truncation::ResultSize { max_bytes });
            }
            rows.push(values);
        }
        // The portal ran to completion (CommandComplete), or it is suspended with more rows.
        if stream.rows_affected().is_some() {
            break None;
        }
        batch = next_batch(rows.len(), bytes, limit, max_bytes);
    };
    Ok(QueryOutput {
        columns,
        row_count: rows.len(),
        rows,
        truncated,
    })
}

/// The next Execute's row count after `rows` rows of `bytes` (all within the budget): what is left
/// of the budget at the mean row size so far, plus one row to see it overflow; never more than the
/// rows left to the limit (plus one, to see that it is reached).
fn next_batch(rows: usize, bytes: usize, limit: usize, max_bytes: usize) -> usize {
    let mean = bytes.div_ceil(rows.max(1)).max(1);
    let by_budget = max_bytes.saturating_sub(bytes) / mean + 1;
    by_budget.clamp(1, (limit + 1).saturating_sub(rows).max(1))
}

fn encoded_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => s.len() + 2,
        other => serde_json::to_string(other).map(|s| s.len()).unwrap_or(0),
    }
}

/// A row of the wrapped statement: its first column is the row as a JSON object, or NULL when the
/// object was past [`row_ceiling`] (`None`); the values are read by [`values::json_row_values`]
/// (column order and duplicate names kept, exact numerics, deep values as text).
fn json_row(row: &tokio_postgres::Row) -> Result<Option<Vec<Value>>, DbError> {
    let Some(text) = row.try_get::<_, Option<&str>>(0).map_err(DbError::from_pg)? else {
        return Ok(None);
    };
    values::json_row_values(text)
        .map(Some)
        .map_err(|e| DbError::Internal(format!("row is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_semicolons_and_space_are_trimmed_and_empty_is_refused() {
        assert_eq!(normalize("  SELECT 1 ;; \n").unwrap(), "SELECT 1");
        assert!(matches!(normalize(" ; "), Err(DbError::NotAllowed(_))));
    }

    #[test]
    fn batches_fill_the_rest_of_the_budget_and_stop_at_the_limit() {
        // (rows so far, their bytes, limit, budget) → next batch
        let cases = [
            ((100, 1_000, 1000, 262_144), 901),   // small rows: the rest of the limit, plus one
            ((100, 100_000, 1000, 262_144), 163), // 1000-byte rows: the rest of the budget, plus one
            ((1, 200_000, 1000, 262_144), 1),     // one large row: one more row, to see it overflow
            ((100, 262_144, 1000, 262_144), 1),   // budget spent exactly: one row to see overflow
            ((999, 999, 1000, 262_144), 2),       // near the limit: never past limit + 1
            ((1000, 1000, 1000, 262_144), 1),     // at the limit: one row, to see there are more
        ];
        for ((rows, bytes, limit, max_bytes), expected) in cases {
            assert_eq!(
                next_batch(rows, bytes, limit, max_bytes),
                expected,
                "{rows} rows of {bytes} bytes"
            );
        }
    }
}
