//! `query_database`, `explain_query` and `get_schema_info`: the Postgres tools, registered only when
//! `database.url` (or `url_file`) is set, with the database they query.
//!
//! Both answer a tool error (`isError: true`) naming what went wrong — the model can fix a query or
//! tell its user that the database is down — and never fail the JSON-RPC call for a database problem.
//! Each call leaves an audit line ([`super::audit`]).

use std::{sync::Arc, time::Instant};

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    arguments::Bounded,
    audit::{Audit, AuditedCall, Returned},
    tools::{ToolFailure, ToolHints, ToolReturn, ToolTable},
};
use crate::{
    auth::Principal,
    postgres::{
        Database, DbError,
        explain::{ExplainOptions, PlanFormat},
    },
};

/// Arguments of `query_database`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    /// One read-only SQL statement (SELECT, WITH … SELECT, VALUES, TABLE, EXPLAIN, SHOW).
    pub sql: String,
    /// Most rows to return, at least 1 (default and maximum: the server's `database.max_rows`).
    #[serde(default)]
    pub limit: Option<Bounded<1, { u32::MAX }>>,
}

/// Arguments of `explain_query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainArgs {
    /// One read-only SQL statement (SELECT, WITH … SELECT, VALUES, TABLE), without EXPLAIN.
    pub sql: String,
    /// Run the statement and report actual times and row counts (default false). It runs in a
    /// read-only transaction that is rolled back and cancelled at the server's statement timeout.
    #[serde(default)]
    pub analyze: bool,
    /// Report buffer usage (default false).
    #[serde(default)]
    pub buffers: bool,
    /// Report output columns and schema-qualified names (default false).
    #[serde(default)]
    pub verbose: bool,
    /// Report configuration settings that differ from their defaults and affect the plan (default false).
    #[serde(default)]
    pub settings: bool,
    /// `text` (default, as psql prints it) or `json`.
    #[serde(default)]
    pub format: PlanFormat,
}

/// Arguments of `get_schema_info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaArgs {
    /// Only this schema (e.g. `public`); default: every non-system schema.
    #[serde(default)]
    pub schema: Option<String>,
    /// Only this table or view.
    #[serde(default)]
    pub table: Option<String>,
}

/// Registers `query_database`, `explain_query` and `get_schema_info` over `database`, each call
/// audited by `audit`.
pub fn register(table: &mut ToolTable, database: Arc<Database>, audit: Audit) {
    table.register(
        "query_database",
        "Run one read-only SQL statement against the PostgreSQL database and return the rows as JSON \
         (columns with names and types, rows as arrays). Writes, DDL and transaction control are refused \
         by the database; functions that act beyond the call (signalling other sessions, server files, \
         remote connections) are refused before it runs; long queries are cancelled; large results are \
         truncated and flagged.",
        ToolHints::read_only("Query PostgreSQL (read-only)"),
        {
            let database = database.clone();
            move |principal, args| query(database.clone(), audit, principal, args)
        },
    );
    table.register(
        "explain_query",
        "Show PostgreSQL's plan for one read-only SQL statement (EXPLAIN), to find why a query is slow: \
         scans, joins, estimated and (with analyze) actual rows and times. Options: analyze (runs the \
         statement, read-only and rolled back, cancelled at the server's timeout), buffers, verbose, \
         settings, format text or json. The plan comes as text in the requested format; with format json \
         the structured content holds PostgreSQL's JSON plan as well. The same statements are refused as in \
         query_database; analyze needs query_database in the credential's scope too.",
        ToolHints::read_only("Explain a PostgreSQL query plan"),
        {
            let database = database.clone();
            move |principal, args| explain(database.clone(), audit, principal, args)
        },
    );
    table.register(
        "get_schema_info",
        "Describe the database: schemas, tables and views with their columns (type, nullability, \
         default), primary keys, foreign keys, unique constraints, indexes and estimated row counts. \
         Narrow it with `schema` and `table`.",
        ToolHints::read_only("Describe the database schema"),
        move |principal, args| schema_info(database.clone(), audit, principal, args),
    );
}

async fn query(database: Arc<Database>, audit: Audit, principal: Principal, args: QueryArgs) -> ToolReturn {
    let started = Instant::now();
    let outcome = database
        .query(&args.sql, args.limit.map(|l| l.get() as usize))
        .await
        .map(|output| {
            let (rows, truncated) = (output.row_count, output.truncated.is_some());
            let (result, bytes) = structured(output);
            let returned = Returned {
                rows: Some(rows),
                bytes,
                truncated,
            };
            (result, returned)
        });
    let call = AuditedCall {
        principal: &principal,
        tool: "query_database",
        sql: Some(&args.sql),
        duration: started.elapsed(),
        outcome: outcome.as_ref().map(|(_, returned)| *returned),
    };
    audit.write(call).await;
    answer(outcome, "query")
}

/// Why `analyze: true` needs `query_database` in the scope as well: `EXPLAIN ANALYZE` runs the
/// statement, and what it computes leaks through the answer — an error message quotes a value
/// (`SELECT secret::int …` → `invalid input syntax for type integer: "…"`) and actual row counts
/// answer any `WHERE` — so it reads data exactly as `query_database` does.
pub const ANALYZE_NEEDS_QUERY: &str = "analyze: true runs the statement, and what it reads shows through the plan \
     (row counts, error messages quoting values), so it needs query_database in this credential's tool scope \
     as well; this credential may only plan statements (analyze: false)";

async fn explain(database: Arc<Database>, audit: Audit, principal: Principal, args: ExplainArgs) -> ToolReturn {
    let started = Instant::now();
    if args.analyze && !principal.tools.permits("query_database") {
        let refused = DbError::NotAllowed(ANALYZE_NEEDS_QUERY.to_string());
        let call = AuditedCall {
            principal: &principal,
            tool: "explain_query",
            sql: Some(&args.sql),
            duration: started.elapsed(),
            outcome: Err(&refused),
        };
        audit.write(call).await;
        return answer(Err(refused), "explain");
    }
    let options = ExplainOptions {
        analyze: args.analyze,
        buffers: args.buffers,
        verbose: args.verbose,
        settings: args.settings,
        format: args.format,
    };
    let outcome = database.explain(&args.sql, options).await.map(|plan| {
        let truncated = plan.truncated;
        let bytes = plan.text.len();
        let mut result = CallToolResult::success(vec![ContentBlock::text(plan.text.clone())]);
        result.structured_content = Some(serde_json::to_value(&plan).expect("a plan serializes"));
        let returned = Returned {
            rows: None,
            bytes,
            truncated,
        };
        (result, returned)
    });
    let call = AuditedCall {
        principal: &principal,
        tool: "explain_query",
        sql: Some(&args.sql),
        duration: started.elapsed(),
        outcome: outcome.as_ref().map(|(_, returned)| *returned),
    };
    audit.write(call).await;
    answer(outcome, "explain")
}

async fn schema_info(database: Arc<Database>, audit: Audit, principal: Principal, args: SchemaArgs) -> ToolReturn {
    let started = Instant::now();
    let outcome = database
        .schema_info(args.schema.as_deref(), args.table.as_deref())
        .await
        .map(|info| {
            let (result, bytes) = structured(info);
            let returned = Returned {
                rows: None,
                bytes,
                truncated: false,
            };
            (result, returned)
        });
    let call = AuditedCall {
        principal: &principal,
        tool: "get_schema_info",
        sql: None,
        duration: started.elapsed(),
        outcome: outcome.as_ref().map(|(_, returned)| *returned),
    };
    audit.write(call).await;
    answer(outcome, "schema introspection")
}

/// A value as compact JSON text plus `structuredContent`, and the text's length in bytes.
fn structured<T: Serialize>(value: T) -> (CallToolResult, usize) {
    let value = serde_json::to_value(value).expect("tool output serializes");
    let text = value.to_string();
    let bytes = text.len();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    (result, bytes)
}

/// The tool's answer: the result, or the error as a tool error with whose fault it was.
fn answer(outcome: Result<(CallToolResult, Returned), DbError>, what: &str) -> ToolReturn {
    match outcome {
        Ok((result, _)) => Ok(result),
        Err(error) => {
            if error.may_be_an_outage() {
                tracing::warn!(%error, "{what} failed: database unavailable or not answering");
            }
            Err(ToolFailure::new(error.failure(), error.to_string()))
        }
    }
}
