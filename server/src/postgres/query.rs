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
//! subquery (`EXPLAIN`, `SHOW`) are decoded by [`super::values`]. Rows are fetched through a portal
//! `max_rows + 1` at a time, so a huge result is never sent whole.

use serde::Deserialize;
use serde::Serialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use tokio_postgres::{Client, Statement, Transaction};

use super::{error::DbError, pool::Database, values};

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
        super::sql_check::check_off_workers(sql).await?;
        let limit = limit.unwrap_or(self.limits.max_rows).clamp(1, self.limits.max_rows);
        self.on_connection(async |client| self.run(client, sql, limit).await)
            .await
    }

    async fn run(&self, client: &mut Client, sql: &str, limit: usize) -> Result<QueryOutput, DbError> {
        let max_bytes = self.limits.max_result_bytes;
        let transaction = self.begin(client).await?;
        let wrapped_sql = format!("SELECT to_json(q)::text FROM (\n{sql}\n) AS q");
        // Pipelined in one round trip: the statement's own Parse/Describe and the JSON-wrapped form.
        let (statement, wrapped) = tokio::join!(transaction.prepare(sql), transaction.prepare(&wrapped_sql));
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
                let statement = transaction.prepare(sql).await.map_err(DbError::from_pg)?;
                let row_values = |row: &tokio_postgres::Row| Ok(values::row_values(row));
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

/// Fetches up to `limit` rows through a portal, converting each with `convert`, stopping early at
/// the byte cap.
async fn fetch(
    transaction: &Transaction<'_>,
    statement: &Statement,
    limit: usize,
    max_bytes: usize,
    columns: Vec<Column>,
    convert: impl Fn(&tokio_postgres::Row) -> Result<Vec<Value>, DbError>,
) -> Result<QueryOutput, DbError> {
    let portal = transaction.bind(statement, &[]).await.map_err(DbError::from_pg)?;
    let max_rows = i32::try_from(limit + 1).unwrap_or(i32::MAX);
    let fetched = transaction
        .query_portal(&portal, max_rows)
        .await
        .map_err(DbError::from_pg)?;
    let mut rows = Vec::with_capacity(fetched.len().min(limit));
    let mut bytes = 0usize;
    let mut truncated = None;
    for row in fetched.iter() {
        if rows.len() == limit {
            truncated = Some(Truncation::RowLimit { limit });
            break;
        }
        let values = convert(row)?;
        bytes += values.iter().map(encoded_len).sum::<usize>() + values.len() + 2;
        if bytes > max_bytes {
            truncated = Some(Truncation::ResultSize { max_bytes });
            break;
        }
        rows.push(values);
    }
    Ok(QueryOutput {
        columns,
        row_count: rows.len(),
        rows,
        truncated,
    })
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

/// A row of the wrapped statement: its one text column is the row as a JSON object; the values are
/// taken in column order, duplicates kept (`SELECT 1 AS a, 2 AS a` has two columns).
fn json_row(row: &tokio_postgres::Row) -> Result<Vec<Value>, DbError> {
    let text: &str = row.try_get(0).map_err(DbError::from_pg)?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    OrderedValues::deserialize(&mut deserializer)
        .map(|values| values.0)
        .map_err(|e| DbError::Rejected(format!("row is not valid JSON: {e}")))
}

/// A JSON object's values in document order, keeping duplicate keys.
struct OrderedValues(Vec<Value>);

impl<'de> serde::Deserialize<'de> for OrderedValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValuesVisitor;
        impl<'de> Visitor<'de> for ValuesVisitor {
            type Value = OrderedValues;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedValues, A::Error> {
                let mut values = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((_, value)) = map.next_entry::<serde::de::IgnoredAny, Value>()? {
                    values.push(value);
                }
                Ok(OrderedValues(values))
            }
        }
        deserializer.deserialize_map(ValuesVisitor)
    }
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
    fn json_rows_keep_column_order_and_duplicate_names() {
        let mut d = serde_json::Deserializer::from_str(r#"{"b":1,"a":"x","a":null}"#);
        let values = OrderedValues::deserialize(&mut d).unwrap().0;
        assert_eq!(values, vec![Value::from(1), Value::from("x"), Value::Null]);
    }
}
