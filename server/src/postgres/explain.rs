//! `explain_query`: PostgreSQL's plan for one statement, under every guarantee of `query_database`.
//!
//! Assistants reason about slow queries from plans, and `EXPLAIN ANALYZE` *runs* the statement, so
//! it gets nothing `query_database` would not give it: the statement passes the same check
//! ([`super::sql_check`]: one statement, a query, no function whose effects reach beyond the call)
//! and must be a `SELECT` — a write is refused before it is sent, not only by the transaction —
//! and runs in the same `READ ONLY` transaction that always rolls back, under the same
//! `statement_timeout`, row limit and byte budget, with advisory locks released afterwards
//! ([`Database::on_connection`]). A write hidden in a function (`nextval`, a volatile function
//! that inserts) is refused by PostgreSQL's read-only transaction, as in `query_database`.
//!
//! The `EXPLAIN` prefix is ours: the options are booleans and a format from a fixed set, written
//! as keywords, never text from the caller, and the statement follows them in the same `Parse`
//! (which accepts exactly one statement).
//!
//! What comes back: the plan as PostgreSQL prints it in the requested format, from one `EXPLAIN`
//! (the statement is planned, and with `analyze` run, once). `format: json` also parses that plan
//! into the structured answer for programs; `format: text` is the text alone — a second `EXPLAIN
//! (FORMAT JSON)` would plan a costly statement twice and, with `analyze`, run it twice with other
//! timings. A text plan past the budget is cut and flagged `truncated`; a JSON plan past it is
//! refused (a cut JSON document does not parse), naming `format: text` as the way to see it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Transaction;
use tracing::Instrument;

use super::columns::columns_of;
use super::query::{check_shape, fetch, normalize};
use super::{call_trace, error::DbError, pool::Database, values};

/// How the plan is printed (PostgreSQL's `EXPLAIN (FORMAT …)`; XML and YAML are not offered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanFormat {
    /// The indented text `psql` shows.
    #[default]
    Text,
    /// A JSON array with one object per statement (`[{"Plan": {...}}]`).
    Json,
}

/// `EXPLAIN`'s options (PostgreSQL manual, SQL Commands: EXPLAIN).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplainOptions {
    /// Run the statement and show actual times and row counts (read-only, rolled back, timed out).
    pub analyze: bool,
    /// Shared/local/temp buffer usage.
    pub buffers: bool,
    /// Output columns, schema-qualified names, and more per node.
    pub verbose: bool,
    /// Configuration parameters that differ from their defaults and affect planning.
    pub settings: bool,
    pub format: PlanFormat,
}

impl ExplainOptions {
    /// The parenthesised option list for `format`, e.g. `(ANALYZE true, BUFFERS false, VERBOSE
    /// false, SETTINGS false, FORMAT JSON)`.
    fn clause(&self, format: PlanFormat) -> String {
        let format = match format {
            PlanFormat::Text => "TEXT",
            PlanFormat::Json => "JSON",
        };
        format!(
            "(ANALYZE {}, BUFFERS {}, VERBOSE {}, SETTINGS {}, FORMAT {format})",
            self.analyze, self.buffers, self.verbose, self.settings
        )
    }
}

/// A plan, ready for the model.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub format: PlanFormat,
    /// The plan as PostgreSQL prints it in `format` (for JSON, the JSON text).
    pub text: String,
    /// PostgreSQL's JSON plan, for `format: json` only (see the module doc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// The printed plan was longer than `database.max_rows` lines or `database.max_result_size`
    /// bytes and was cut (a JSON plan is never cut: it is refused instead).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Database {
    /// `EXPLAIN (options) sql` under `query_database`'s guarantees (see the module doc).
    /// Errors: the same refusals as [`Database::query`], a statement that is not a `SELECT`
    /// ([`super::sql_check::check_explainable`]), and a JSON plan larger than
    /// `database.max_result_size`.
    pub async fn explain(&self, sql: &str, options: ExplainOptions) -> Result<Plan, DbError> {
        let sql = normalize(sql)?;
        let requested = format!("EXPLAIN {} {sql}", options.clause(options.format));
        let span = call_trace::query_span(&requested);
        let outcome = async {
            super::sql_check::check_explainable_off_workers(sql).await?;
            self.on_connection(async |client| {
                let transaction = self.begin(client).await?;
                let (tagged, printed) =
                    tokio::join!(call_trace::tag(&transaction), self.print(&transaction, &requested));
                tagged?;
                let (text, truncated) = printed?;
                let plan = match options.format {
                    PlanFormat::Json => Some(json_plan(&text, truncated, self.limits.max_result_bytes)?),
                    PlanFormat::Text => None,
                };
                Ok(Plan {
                    format: options.format,
                    text,
                    plan,
                    truncated,
                })
            })
            .await
        }
        .instrument(span.clone())
        .await;
        call_trace::record_outcome(&span, &outcome);
        outcome
    }

    /// Runs one `EXPLAIN` and joins its lines; whether the lines were cut at a cap.
    async fn print(&self, transaction: &Transaction<'_>, explain: &str) -> Result<(String, bool), DbError> {
        let statement = transaction.prepare(explain).await.map_err(DbError::from_pg)?;
        check_shape(&statement)?;
        let row_values = |row: &tokio_postgres::Row| Ok(Some(values::row_values(row)));
        let output = fetch(
            transaction,
            &statement,
            self.limits.max_rows,
            self.limits.max_result_bytes,
            columns_of(&statement),
            row_values,
        )
        .await?;
        let lines: Vec<String> = output
            .rows
            .iter()
            .filter_map(|row| match row.first() {
                Some(Value::String(line)) => Some(line.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            })
            .collect();
        Ok((lines.join("\n"), output.truncated.is_some()))
    }
}

/// The JSON plan from `EXPLAIN (FORMAT JSON)`'s one value; a cut one is refused rather than
/// returned broken.
fn json_plan(text: &str, truncated: bool, max_bytes: usize) -> Result<Value, DbError> {
    if truncated || text.is_empty() {
        return Err(DbError::NotAllowed(format!(
            "the JSON plan is larger than database.max_result_size ({max_bytes} bytes); ask for format text, \
             which is cut at the budget instead"
        )));
    }
    serde_json::from_str(text).map_err(|e| DbError::Internal(format!("EXPLAIN's JSON plan does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_clause_is_keywords_only() {
        let options = ExplainOptions {
            analyze: true,
            buffers: true,
            format: PlanFormat::Json,
            ..ExplainOptions::default()
        };
        assert_eq!(
            options.clause(options.format),
            "(ANALYZE true, BUFFERS true, VERBOSE false, SETTINGS false, FORMAT JSON)"
        );
    }

    #[test]
    fn a_cut_json_plan_is_refused_and_a_whole_one_parses() {
        assert!(json_plan(r#"[{"Plan": {}}]"#, false, 10).is_ok());
        assert!(matches!(
            json_plan(r#"[{"Plan""#, true, 10),
            Err(DbError::NotAllowed(_))
        ));
    }
}
