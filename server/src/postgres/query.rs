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
//!   (its RowDescription), so this is a rule about what the statement *is*, not a keyword list.
//!   On the pipelined path (below) the statement runs only as a subquery of the wrapper, and
//!   PostgreSQL's grammar admits only a row-returning query there: such a statement fails to parse
//!   and nothing runs, before its own description is even read;
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
//! Round trips (issue #17 counts them). A call's messages are pipelined: tokio-postgres writes
//! every request queued on a client before it reads an answer, and PostgreSQL answers in order, so
//! the transaction start, the statement with its first batch's row limit, the `ROLLBACK` with the
//! advisory-lock release, and the Parse/Describe that names the columns all go out together and a
//! call whose result fits one batch ([`FIRST_BATCH`] rows) costs **one round trip** plus the
//! statement's own time ([`Database::pipelined`]). The row limit of that batch is a `LIMIT` on the
//! wrapper (the same bound a portal's row count gives); the byte budget is counted as rows arrive,
//! as before. Repeated SQL reuses the wrapped statement prepared on the connection
//! ([`super::statement_cache`]): Bind/Execute only, no parse or plan, and from its third call no
//! Parse/Describe of the statement either (the guarded wrapper, see [`wrap`]). A longer result, and a
//! statement that cannot be wrapped (`EXPLAIN`, `SHOW`), take the batched path above (a portal,
//! batches sized to the budget): BEGIN, Parse, Bind, one Execute per batch, ROLLBACK, release. A
//! text that needed it once goes there directly next time on that connection, rather than running
//! its first batch twice.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::{Pin, pin};

use deadpool_postgres::Object;
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement, Transaction};
use tracing::Instrument;

use super::columns::{Column, Columns, columns_of};
use super::pool::{Database, QueryLimits, Reset};
use super::statement_cache::{Cached, ConnectionId, is_stale, is_stale_guard};
use super::{call_trace, error::DbError, values};
use crate::config::DatabaseConfig;
use crate::correlation::Correlation;

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
            let limit = self.limits.rows(limit);
            self.on_connection_reset(async |client| self.run(client, sql, limit).await)
                .await
        }
        .instrument(span.clone())
        .await;
        call_trace::record_outcome(&span, &outcome);
        outcome
    }

    /// One call on its connection: the pipelined path (one round trip, see [`Database::pipelined`]),
    /// retried once without the cache when a cached statement turns out stale; the batched path
    /// for results longer than one batch and statements that cannot be wrapped (`EXPLAIN`, `SHOW`).
    async fn run(&self, client: &mut Object, sql: &str, limit: usize) -> (Result<QueryOutput, DbError>, Reset) {
        let connection: ConnectionId = client.statement_cache.clone();
        let batch = first_batch(limit);
        let cached = self.statements.get(&connection, sql, batch);
        if matches!(cached, Some(Cached::MultiBatch)) {
            return (self.run_in_batches(client, sql, limit).await, Reset::Needed);
        }
        let (mut attempt, mut reset) = self
            .pipelined(client, &connection, sql, limit, cached.as_ref(), false)
            .await;
        if let Err(error) = &attempt
            && reset == Reset::Done
        {
            let code = error.sqlstate();
            let stale = match cached {
                Some(Cached::Guarded { .. }) => is_stale_guard(code),
                _ => is_stale(code),
            };
            if stale {
                self.statements.evict(&connection, sql, batch);
                (attempt, reset) = self
                    .pipelined(client, &connection, sql, limit, None, cached.is_some())
                    .await;
            }
        }
        match attempt {
            Ok(Attempt::Done(output, store)) => {
                match store {
                    Store::Keep => {}
                    Store::Put(entry) => self.statements.put(&connection, sql, batch, entry),
                    Store::Evict => self.statements.evict(&connection, sql, batch),
                }
                (Ok(output), reset)
            }
            Ok(Attempt::MoreRows) => {
                self.statements.put(&connection, sql, batch, Cached::MultiBatch);
                (self.run_in_batches(client, sql, limit).await, Reset::Needed)
            }
            Ok(Attempt::NotWrappable) => (self.run_in_batches(client, sql, limit).await, Reset::Needed),
            Err(error) => (Err(error), reset),
        }
    }

    /// The call in one round trip: every message is queued before any answer is read, and
    /// PostgreSQL answers them in order —
    /// 1. `START TRANSACTION READ ONLY` (and the `SET LOCAL application_name` tag);
    /// 2. unless the cached statement is guarded ([`Cached::Guarded`]), Parse/Describe of the
    ///    statement itself, for its column names and types: inside the transaction and before the
    ///    statement runs, so the locks its analysis takes hold until the rollback and no
    ///    `ALTER TABLE` can come between the description and the rows (a red-team review of issue
    ///    #17 saw types and values disagree about once in 6,500 calls under a loop of `ALTER`s when
    ///    the description came after the rollback). A statement that fails here (syntax, unknown
    ///    table) fails the transaction, and its own error is the call's;
    /// 3. the wrapped statement (one row of JSON per row, see [`wrap`]) with `LIMIT batch + 1`:
    ///    Bind/Execute of the cached statement, or Parse/Bind/Describe/Execute of an unnamed one.
    ///    Only a query that returns rows can be a subquery, so a statement without a result
    ///    description (DML, DDL, `COMMIT`, `SET` …) fails to parse here and nothing runs;
    /// 4. `ROLLBACK; SELECT pg_advisory_unlock_all()`: the connection is clean when the answer ends;
    /// 5. on a cache miss Parse of the wrapped statement, to be cached; on the second call of a
    ///    text whose columns can be guarded, Parse of its guarded form.
    ///
    /// A guarded statement that returns no row is described after the answer (one more round trip):
    /// without a row, a column added under `SELECT *` would go unseen.
    ///
    /// Rows past the byte budget end the call as in the batched path; a first batch that comes
    /// back full means a longer result ([`Attempt::MoreRows`]). The describe statement is closed
    /// by the connection's next call, in its first write ([`super::statement_cache::StatementCache::defer_close`]).
    async fn pipelined(
        &self,
        client: &Client,
        connection: &ConnectionId,
        sql: &str,
        limit: usize,
        cached: Option<&Cached>,
        retried: bool,
    ) -> (Result<Attempt, DbError>, Reset) {
        let max_bytes = self.limits.max_result_bytes;
        let batch = first_batch(limit);
        let (prepared, guarded, to_guard) = match cached {
            Some(Cached::Guarded { statement, columns }) => (Some(statement), Some(columns), None),
            Some(Cached::Prepared { statement, columns }) => {
                (Some(statement), None, guardable(columns).then_some(columns))
            }
            Some(Cached::MultiBatch) | None => (None, None, None),
        };
        // The plain wrapped text, for a statement not prepared on this connection yet.
        let wrapped_sql = match prepared {
            None => wrap(sql, max_bytes, Some(batch + 1), None),
            Some(_) => String::new(),
        };
        let guarded_sql = to_guard.map(|columns| wrap(sql, max_bytes, Some(batch + 1), Some(columns)));
        let begin_sql = begin_message(call_trace::tag_statement());
        // Each future writes its request when first polled (`send_now`), in this order; the answers
        // are then read in the same order.
        let mut begin = pin!(client.batch_execute(&begin_sql));
        let begun = send_now(begin.as_mut());
        // The previous call's describe statement: its Close goes out in this write.
        drop(self.statements.take_deferred(connection));
        let mut describe = pin!(async {
            match guarded {
                Some(_) => None,
                None => Some(client.prepare(sql).await),
            }
        });
        let described = send_now(describe.as_mut());
        let mut rows = pin!(async {
            match prepared {
                Some(statement) => client.query_raw(statement, NO_PARAMS).await,
                None => client.query_typed_raw(&wrapped_sql, NO_TYPED_PARAMS).await,
            }
        });
        let rows_sent = send_now(rows.as_mut());
        let mut end = pin!(client.batch_execute(END_MESSAGE));
        let ended = send_now(end.as_mut());
        let mut keep = pin!(async {
            match (prepared, &guarded_sql) {
                (None, _) => Some(client.prepare(&wrapped_sql).await),
                (Some(_), Some(guarded_sql)) => Some(client.prepare(guarded_sql).await),
                (Some(_), None) => None,
            }
        });
        let kept = send_now(keep.as_mut());

        let begun = answer(begin, begun).await.map_err(DbError::from_pg);
        // A guarded statement's first row must name the cached columns, in order: the guards see
        // types, and names only while each still resolves (two columns swapping names and
        // positions keep every guard's type).
        let first = std::sync::atomic::AtomicBool::new(true);
        let convert = |row: &tokio_postgres::Row| {
            if let Some(columns) = guarded
                && first.swap(false, std::sync::atomic::Ordering::Relaxed)
                && let Some(text) = row.try_get::<_, Option<&str>>(0).map_err(DbError::from_pg)?
            {
                let keys = values::json_row_keys(text)
                    .map_err(|e| DbError::Internal(format!("row is not valid JSON: {e}")))?;
                if !keys
                    .iter()
                    .map(String::as_str)
                    .eq(columns.iter().map(|c| c.name.as_str()))
                {
                    return Err(columns_changed());
                }
            }
            json_row(row)
        };
        // Read together: a describe that must look a type up queues that query behind the rows,
        // which are then read meanwhile instead of blocking the connection.
        let (described, fetched) = tokio::join!(answer(describe, described), async {
            match answer(rows, rows_sent).await {
                Ok(stream) => collect(stream, Collected::new(limit, max_bytes), convert).await,
                Err(error) => Err(DbError::from_pg(error)),
            }
        });
        let described = described.map(|described| described.map_err(DbError::from_pg));
        let ended = answer(end, ended).await;
        if let Some(Ok(statement)) = &described {
            self.statements.defer_close(connection, statement.clone());
        }
        let kept = answer(keep, kept).await.and_then(Result::ok);
        let reset = if ended.is_ok() { Reset::Done } else { Reset::Needed };
        if let Err(error) = begun {
            return (Err(error), reset);
        }

        let collected = match (fetched, guarded) {
            (Ok(collected), _) => collected,
            // A guarded statement's error: stale (retried by `run`) or the statement's own.
            (Err(error), Some(_)) => return (Err(error), reset),
            (Err(error), None) => {
                // The statement's own error (syntax, unknown table) and the shape refusals first:
                // they say more than the wrapper's.
                let attempt = described
                    .expect("described unless guarded")
                    .and_then(|statement| check_shape(&statement))
                    .and_then(|()| {
                        // The wrapper did not parse: a statement that cannot be a subquery
                        // (`EXPLAIN`, `SHOW`: 42601; a data-modifying `WITH`: 0A000). Not after
                        // a stale cached wrapper: that text was wrapped before, and its error is
                        // then the statement's own (a runtime error is never run twice more).
                        let unwrappable = prepared.is_none()
                            && !retried
                            && error.sqlstate().is_some_and(|code| matches!(code, "42601" | "0A000"));
                        if unwrappable {
                            Ok(Attempt::NotWrappable)
                        } else {
                            Err(error)
                        }
                    });
                return (attempt, reset);
            }
        };
        let (columns, store) = match (guarded, described) {
            (Some(columns), _) if !collected.rows.is_empty() => (columns.clone(), Store::Keep),
            // No row to show the columns: describe the statement now, and forget the cached form if
            // they changed.
            (Some(columns), _) => match client.prepare(sql).await {
                Ok(statement) => {
                    let now = columns_of(&statement);
                    self.statements.defer_close(connection, statement);
                    if now[..] == columns[..] {
                        (columns.clone(), Store::Keep)
                    } else {
                        (Columns::from(now), Store::Evict)
                    }
                }
                Err(error) => return (Err(DbError::from_pg(error)), reset),
            },
            (None, described) => {
                let statement = match described.expect("described unless guarded") {
                    Ok(statement) => statement,
                    Err(error) => return (Err(error), reset),
                };
                if let Err(error) = check_shape(&statement) {
                    return (Err(error), reset);
                }
                let columns = Columns::from(columns_of(&statement));
                if let Some(Cached::Prepared {
                    columns: prepared_with, ..
                }) = cached
                    && prepared_with[..] != columns[..]
                {
                    return (Err(columns_changed()), reset);
                }
                let store = next_entry(prepared, to_guard, kept, &columns);
                (columns, store)
            }
        };
        if collected.rows.iter().any(|row| row.len() != columns.len()) {
            // The table changed between the statement and its description.
            return (Err(columns_changed()), reset);
        }
        // All `batch + 1` rows came: the result is longer than one batch.
        if collected.truncated.is_none() && collected.rows.len() > batch {
            return (Ok(Attempt::MoreRows), reset);
        }
        (Ok(Attempt::Done(collected.into_output(columns.to_vec()), store)), reset)
    }

    /// The batched path: one statement through a portal, executed in batches sized to the byte
    /// budget (see the module doc). Used for results past the first batch and for statements
    /// that cannot be wrapped; its connection is reset by [`Database::on_connection_reset`].
    async fn run_in_batches(&self, client: &mut Client, sql: &str, limit: usize) -> Result<QueryOutput, DbError> {
        let max_bytes = self.limits.max_result_bytes;
        let transaction = self.begin(client).await?;
        // Pipelined in one round trip: the statement's own Parse/Describe and the JSON-wrapped form,
        // which sends a row past the ceiling as its length only (the exact count is ours, in `fetch`).
        let wrapped_sql = wrap(sql, max_bytes, None, None);
        let (tagged, statement, wrapped) = tokio::join!(
            call_trace::tag(&transaction),
            transaction.prepare(sql),
            transaction.prepare(&wrapped_sql)
        );
        tagged?;
        let statement = statement.map_err(DbError::from_pg)?;
        check_shape(&statement)?;
        let columns = columns_of(&statement);
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
pub(super) fn normalize(sql: &str) -> Result<&str, DbError> {
    let sql = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if sql.is_empty() {
        return Err(DbError::NotAllowed("sql is empty".into()));
    }
    Ok(sql)
}

/// Only statements that return rows are run; parameters cannot be supplied by this tool.
pub(super) fn check_shape(statement: &Statement) -> Result<(), DbError> {
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

/// What PostgreSQL receives for a call of `sql` (returning `columns`, under `database`'s limits,
/// without a `limit` argument) once its guarded statement is cached on the connection and nothing
/// is left to close (from the text's fourth call; see [`Database::pipelined`]), tagged with
/// `correlation`'s request. For the benchmark (`make bench` §7), which sends it on a bare client to
/// measure what the database alone allows for calls of this shape.
pub fn steady_state_call(
    sql: &str,
    database: &DatabaseConfig,
    columns: &[Column],
    correlation: &Correlation,
) -> SteadyStateCall {
    let limits = QueryLimits::of(database);
    SteadyStateCall {
        begin: begin_message(Some(call_trace::tag_for(correlation))),
        statement: wrap(
            sql,
            limits.max_result_bytes,
            Some(first_batch(limits.rows(None)) + 1),
            Some(columns),
        ),
        end: END_MESSAGE.to_string(),
    }
}

/// A steady-state `query_database` call's messages, in the order they are sent.
pub struct SteadyStateCall {
    /// A simple query: the transaction start and the request's `application_name`.
    pub begin: String,
    /// The guarded wrapper, prepared once per connection; each call is its Bind/Execute/Sync.
    pub statement: String,
    /// A simple query: [`END_MESSAGE`].
    pub end: String,
}

/// The pipelined path's first message (a simple query): `START TRANSACTION READ ONLY`, then the
/// call's `SET LOCAL application_name` (`tag`, from [`call_trace`]) when the call has a correlation.
fn begin_message(tag: Option<String>) -> String {
    const BEGIN: &str = "START TRANSACTION READ ONLY";
    match tag {
        Some(tag) => format!("{BEGIN}; {tag}"),
        None => BEGIN.to_string(),
    }
}

/// The pipelined path's last message (a simple query): the transaction ends, and the session-level
/// advisory locks the statement may have taken go with it.
const END_MESSAGE: &str = "ROLLBACK; SELECT pg_advisory_unlock_all()";

/// The rows the pipelined path asks for first: a call's `limit`, at most [`FIRST_BATCH`].
fn first_batch(limit: usize) -> usize {
    limit.min(FIRST_BATCH)
}

/// `sql` as a subquery whose rows come back as one JSON object text each (`to_json` of the row),
/// with the text's length: a row longer than [`row_ceiling`] comes as its length only (the exact
/// count is ours, in [`Collected::take`]). `OFFSET 0` keeps PostgreSQL from flattening the
/// subquery into the outer one; `limit` (the pipelined path's first batch, plus one) bounds the
/// rows the server produces, as a portal's row count does on the batched path.
///
/// With `guards` (the statement's columns, names unique), one more column per column of the
/// statement: `CASE WHEN false THEN q."name" END`, NULL in every row (the planner folds it to a
/// constant, nothing is computed) but typed as the column is. The wrapper's own result type then
/// follows the statement's columns, so when a table it reads changes PostgreSQL's plan cache
/// refuses the prepared wrapper (`0A000` "cached plan must not change result type", or `42703`
/// for a renamed or dropped column) instead of answering rows whose cached description is stale.
fn wrap(sql: &str, max_bytes: usize, limit: Option<usize>, guards: Option<&[Column]>) -> String {
    let ceiling = row_ceiling(max_bytes);
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let (mut outer, mut inner) = (String::new(), String::new());
    for (index, column) in guards.unwrap_or_default().iter().enumerate() {
        let name = column.name.replace('"', "\"\"");
        let _ = write!(outer, ", g{index}");
        let _ = write!(inner, ", CASE WHEN false THEN q.\"{name}\" END AS g{index}");
    }
    format!(
        "SELECT CASE WHEN octet_length(j) <= {ceiling} THEN j END, octet_length(j){outer} \
         FROM (SELECT to_json(q)::text AS j{inner} FROM (\n{sql}\n) AS q OFFSET 0) AS r{limit}"
    )
}

/// The most columns a guarded wrapper carries (PostgreSQL allows 1664 per result; a statement with
/// more is described on every call instead).
const MAX_GUARDED_COLUMNS: usize = 256;

/// Whether the guarded wrapper can name each of `columns`: unique names, not too many.
fn guardable(columns: &Columns) -> bool {
    let mut names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.len() == columns.len() && columns.len() <= MAX_GUARDED_COLUMNS
}

/// What the cache keeps after a described call: on a miss, the wrapped statement prepared beside
/// it; on the call after, its guarded form, if the columns are still those it was built from and
/// PostgreSQL typed each guard as the column (a domain's guard takes its base type: such a
/// statement stays described).
fn next_entry(
    prepared: Option<&Statement>,
    to_guard: Option<&Columns>,
    kept: Option<Statement>,
    columns: &Columns,
) -> Store {
    match (prepared, to_guard, kept) {
        (None, _, Some(wrapped)) => Store::Put(Cached::Prepared {
            statement: wrapped,
            columns: columns.clone(),
        }),
        (Some(_), Some(built_from), Some(guarded)) => {
            let guard_types = guarded.columns().iter().skip(2).map(|c| c.type_().name());
            if built_from[..] == columns[..] && guard_types.eq(columns.iter().map(|c| c.type_name.as_str())) {
                Store::Put(Cached::Guarded {
                    statement: guarded,
                    columns: columns.clone(),
                })
            } else {
                Store::Evict
            }
        }
        _ => Store::Keep,
    }
}

/// The rows do not have the columns described for them (a table changed between the statement and
/// its description, or under a cached one): `0A000`, which [`Database::run`] answers by running the
/// statement once more, described afresh.
fn columns_changed() -> DbError {
    DbError::Rejected {
        sqlstate: "0A000".into(),
        message: "the statement's columns changed while it ran (a concurrent ALTER TABLE?); run it again".into(),
    }
}

/// What one pipelined attempt came to.
enum Attempt {
    /// The answer, and what the statement cache keeps for the next call.
    Done(QueryOutput, Store),
    /// The first batch came back full: the batched path runs the statement again.
    MoreRows,
    /// The statement returns rows but cannot be a subquery (`EXPLAIN`, `SHOW`).
    NotWrappable,
}

/// The statement cache's entry after an attempt.
enum Store {
    Keep,
    Put(Cached),
    Evict,
}

/// No parameters: this tool never binds any (placeholders are refused).
const NO_PARAMS: std::iter::Empty<&(dyn ToSql + Sync)> = std::iter::empty();
const NO_TYPED_PARAMS: std::iter::Empty<(&(dyn ToSql + Sync), Type)> = std::iter::empty();

/// Polls a request's future once, which writes its messages to the connection now, without
/// waiting for the answer; `Some` only if it somehow completed at once. Pair with [`answer`].
fn send_now<F: Future>(future: Pin<&mut F>) -> Option<F::Output> {
    future.now_or_never()
}

/// The answer of a request started with [`send_now`].
async fn answer<F: Future>(future: Pin<&mut F>, early: Option<F::Output>) -> F::Output {
    match early {
        Some(output) => output,
        None => future.await,
    }
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
pub(super) async fn fetch(
    transaction: &Transaction<'_>,
    statement: &Statement,
    limit: usize,
    max_bytes: usize,
    columns: Vec<Column>,
    convert: impl Fn(&tokio_postgres::Row) -> Result<Option<Vec<Value>>, DbError>,
) -> Result<QueryOutput, DbError> {
    let portal = transaction.bind(statement, &[]).await.map_err(DbError::from_pg)?;
    let mut collected = Collected::new(limit, max_bytes);
    let mut batch = FIRST_BATCH.min(limit + 1);
    loop {
        let max_rows = i32::try_from(batch).unwrap_or(i32::MAX);
        let mut stream = pin!(
            transaction
                .query_portal_raw(&portal, max_rows)
                .await
                .map_err(DbError::from_pg)?
        );
        while let Some(row) = stream.next().await {
            if !collected.take(&row.map_err(DbError::from_pg)?, &convert)? {
                return Ok(collected.into_output(columns));
            }
        }
        // The portal ran to completion (CommandComplete), or it is suspended with more rows.
        if stream.rows_affected().is_some() {
            return Ok(collected.into_output(columns));
        }
        batch = next_batch(collected.rows.len(), collected.bytes, limit, max_bytes);
    }
}

/// Reads `stream` into `collected` until it ends or a row is past a cap (the rest of the stream is
/// discarded by the connection as it arrives).
async fn collect(
    stream: tokio_postgres::RowStream,
    mut collected: Collected,
    convert: impl Fn(&tokio_postgres::Row) -> Result<Option<Vec<Value>>, DbError>,
) -> Result<Collected, DbError> {
    let mut stream = pin!(stream);
    while let Some(row) = stream.next().await {
        if !collected.take(&row.map_err(DbError::from_pg)?, &convert)? {
            break;
        }
    }
    Ok(collected)
}

/// The rows a call keeps, counted against its row limit and byte budget as they arrive.
struct Collected {
    rows: Vec<Vec<Value>>,
    /// The rows' size as the answer will count it (values, separators, brackets).
    bytes: usize,
    limit: usize,
    max_bytes: usize,
    truncated: Option<Truncation>,
}

impl Collected {
    fn new(limit: usize, max_bytes: usize) -> Collected {
        Collected {
            rows: Vec::new(),
            bytes: 0,
            limit,
            max_bytes,
            truncated: None,
        }
    }

    /// Keeps one row converted by `convert`; `false` (and `truncated` set) when the row is past the
    /// row limit or the byte budget, and reading must stop.
    fn take(
        &mut self,
        row: &tokio_postgres::Row,
        convert: &impl Fn(&tokio_postgres::Row) -> Result<Option<Vec<Value>>, DbError>,
    ) -> Result<bool, DbError> {
        if self.rows.len() == self.limit {
            self.truncated = Some(Truncation::RowLimit { limit: self.limit });
            return Ok(false);
        }
        let budget = Truncation::ResultSize {
            max_bytes: self.max_bytes,
        };
        let Some(values) = convert(row)? else {
            self.truncated = Some(budget);
            return Ok(false);
        };
        self.bytes += values.iter().map(encoded_len).sum::<usize>() + values.len() + 2;
        if self.bytes > self.max_bytes {
            self.truncated = Some(budget);
            return Ok(false);
        }
        self.rows.push(values);
        Ok(true)
    }

    fn into_output(self, columns: Vec<Column>) -> QueryOutput {
        QueryOutput {
            columns,
            row_count: self.rows.len(),
            rows: self.rows,
            truncated: self.truncated,
        }
    }
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
