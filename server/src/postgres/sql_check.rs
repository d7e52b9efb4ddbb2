//! The check `query_database` runs on a statement before it goes to the database (issue #13 §C.12):
//! one statement, of a kind that is a query, calling none of the functions of [`super::sql_policy`].
//!
//! The statement is parsed by PostgreSQL's own grammar (libpg_query, through the `pg_query` crate),
//! never scanned as text: `pg_catalog.pg_terminate_backend`, `"pg_terminate_backend"`,
//! `PG_CATALOG."pg_cancel_backend"` and a call in a string literal (not a call at all) are told
//! apart exactly as the server tells them apart. The walk does not list node types: it visits every
//! field of every node of the tree (through the tree's `serde::Serialize`), so a call in a subquery, a CTE,
//! `FROM`, `LATERAL`, `CASE`, `ORDER BY`, a `FILTER`, a window, an `EXPLAIN ANALYZE` or a node kind
//! a later grammar adds is seen all the same.
//!
//! What the check cannot see — which is why the role audit ([`super::role_audit`]) and a role that
//! may not execute these functions (README, `deploy/sql/reader-role.sql`) are the real boundary:
//! - calls made *inside* something the statement calls or reads: a user-defined function, a view, a
//!   rule or trigger, a foreign table, a function-backed operator or cast;
//! - a function given by attribute notation (`t.f` for `f(t)`), which PostgreSQL allows only for
//!   functions of one row-typed argument (none of the refused ones).
//!
//! A text the library cannot parse is refused (fail closed) with PostgreSQL's syntax error: the
//! server's grammar is the same one, so it would not have run either.
//!
//! Depth: parsing, decoding and the walk recurse as deep as the text nests, so every entry point
//! runs on a thread of [`super::check_threads`] (a stack of known size), never on the caller's — a
//! tokio worker has 2 MiB — and nesting past prost's decode limit ([`MAX_NESTING`]), libpg_query's
//! stack-depth check or the walk's own bound is refused with [`Refusal::TooDeep`].

use pg_query::protobuf::node::Node;

use std::sync::Arc;

use super::check_threads;
use super::checked_texts::{self, CheckKind};
use super::sql_policy::{self, DeniedFunction};

/// Why a statement was refused before it ran; worded for the model.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// PostgreSQL's grammar rejects the text.
    #[error("{0} (SQLSTATE 42601)")]
    Syntax(String),
    /// Not exactly one statement.
    #[error("exactly one statement is run per call, this text holds {0} (multiple commands are refused)")]
    StatementCount(usize),
    /// A statement that is not a query (`DO`, `COPY`, `SET`, `LISTEN`, `NOTIFY`, `CALL`, DDL …).
    #[error(
        "{kind} statements are not run: query_database runs queries only (SELECT, WITH … SELECT, VALUES, \
         TABLE, EXPLAIN, SHOW)"
    )]
    Statement { kind: String },
    /// `explain_query` of a statement that is not a `SELECT` (`INSERT`, `UPDATE`, `DELETE`, `MERGE`,
    /// `EXPLAIN`, `SHOW`): `EXPLAIN ANALYZE` would run a write, and the others have no plan.
    #[error(
        "{kind} statements are not explained: explain_query plans queries only (SELECT, WITH … SELECT, VALUES, \
         TABLE); pass the statement itself, without EXPLAIN"
    )]
    NotExplainable { kind: String },
    /// A call of a refused function.
    #[error(
        "{called}() is refused before it runs: it {why} ({docs}); query_database runs only statements whose \
         effects stay inside the call"
    )]
    Function {
        /// The name as written (schema-qualified when it was).
        called: String,
        why: &'static str,
        docs: &'static str,
    },
    /// The library parsed the text but its tree could not be read.
    #[error("the statement cannot be checked: {0}")]
    Unreadable(String),
    /// The parse tree nests deeper than the check reads ([`MAX_NESTING`]).
    #[error(
        "the statement is nested deeper than {MAX_NESTING} levels of PostgreSQL's parse tree, which is as deep as \
         it is checked: write long chains of operators, UNION branches or subqueries with less nesting (an IN \
         list, a VALUES list, a CTE, an array or a function such as greatest())"
    )]
    TooDeep,
}

/// How deep a parse tree is read: the decoder's limit (prost's `RECURSION_LIMIT`, 100 nested
/// messages, which pg_query's tree reaches at 48 terms of `1+1+…`, 94 `UNION ALL` branches or 16
/// nested scalar subqueries).
pub const MAX_NESTING: usize = 100;

/// The walk's own bound on nested structs: a message is a few serde structs (the `Node` wrapper, the
/// node, …), so this is never reached within [`MAX_NESTING`] messages; it keeps the walk finite
/// should the library ever decode deeper trees.
const MAX_WALK_DEPTH: usize = 10 * MAX_NESTING;

/// The library's parse, with its errors told apart: PostgreSQL's syntax error, the decoder's nesting
/// limit, anything else.
fn parse(sql: &str) -> Result<pg_query::ParseResult, Refusal> {
    pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|error| match error {
        pg_query::Error::Parse(message)
            // PostgreSQL's C stack check, libpg_query's tree output, the grammar's own stack (bison).
            if ["stack depth limit exceeded", "nested too deeply", "memory exhausted"]
                .iter()
                .any(|limit| message.contains(limit)) =>
        {
            Refusal::TooDeep
        }
        pg_query::Error::Parse(message) => Refusal::Syntax(message),
        pg_query::Error::Decode(decode) if decode.to_string().contains("recursion limit") => Refusal::TooDeep,
        other => Refusal::Unreadable(other.to_string()),
    })
}

/// [`check`] without blocking the async workers. The check's CPU grows with the tree (release
/// build, `cargo run --release -p benchmarks --bin sql-check-cost`: ~15 µs for a primary-key
/// lookup, ~0.1 ms for 450 bytes of CTE and joins, ~1 ms for 4 KB, ~12 ms for 80 KB). A text that
/// passed recently is not parsed again ([`checked_texts`]).
pub async fn check_off_workers(sql: &str) -> Result<(), Refusal> {
    check_remembered(CheckKind::Query, sql).await
}

/// [`check`] for `explain_query`, and off the async workers like [`check_off_workers`]: the
/// statement must also be a `SELECT` (which covers `WITH … SELECT`, `VALUES` and `TABLE`), so
/// `EXPLAIN ANALYZE` of a write is refused here as well as by the read-only transaction.
pub async fn check_explainable_off_workers(sql: &str) -> Result<(), Refusal> {
    check_remembered(CheckKind::Explainable, sql).await
}

/// The `kind` check of `sql`: from [`checked_texts`] when the text passed recently, else on a check
/// thread, in one hand-off that also normalises a text that passes and that the memo keeps (for
/// the audit line, which then finds it there instead of handing the text off again; a longer text
/// is normalised by the audit alone, not twice).
async fn check_remembered(kind: CheckKind, sql: &str) -> Result<(), Refusal> {
    if checked_texts::passed(kind, sql).is_some() {
        return Ok(());
    }
    let text = sql.to_string();
    let normalized = check_threads::run_async(move || {
        match kind {
            CheckKind::Query => check_here(&text),
            CheckKind::Explainable => check_explainable_here(&text),
        }
        .map(|()| {
            (text.len() <= checked_texts::MAX_TEXT_BYTES)
                .then(|| pg_query::normalize(&text).ok().map(Arc::from))
                .flatten()
        })
    })
    .await
    .unwrap_or_else(|lost| Err(Refusal::Unreadable(lost.to_string())))?;
    checked_texts::remember(kind, sql, normalized);
    Ok(())
}

/// `sql` with its constants replaced by `$1`, `$2` … by PostgreSQL's own parser (libpg_query's
/// normalize, as `pg_stat_statements` shows statements), for the audit log: what a model looked
/// for without the values it put in the text. `None` when PostgreSQL's grammar refuses the text.
/// A text the check passed recently has it already ([`checked_texts`]).
pub async fn normalized_off_workers(sql: &str) -> Option<String> {
    if let Some(normalized) = checked_texts::normalized(sql) {
        return normalized.map(|text| text.to_string());
    }
    let sql = sql.to_string();
    check_threads::run_async(move || pg_query::normalize(&sql).ok())
        .await
        .ok()
        .flatten()
}

/// See [`check_explainable_off_workers`]; blocks until a check thread answers.
#[allow(dead_code)] // the unit tests and benchmarks/sql-check-cost
pub fn check_explainable(sql: &str) -> Result<(), Refusal> {
    let sql = sql.to_string();
    check_threads::run(move || check_explainable_here(&sql))
        .unwrap_or_else(|lost| Err(Refusal::Unreadable(lost.to_string())))
}

/// Checks `sql`: `Ok` when it may go to the database. Blocks until a check thread answers (async
/// code uses [`check_off_workers`]).
#[allow(dead_code)] // the unit tests and benchmarks/sql-check-cost
pub fn check(sql: &str) -> Result<(), Refusal> {
    let sql = sql.to_string();
    check_threads::run(move || check_here(&sql)).unwrap_or_else(|lost| Err(Refusal::Unreadable(lost.to_string())))
}

/// [`check_explainable`] on the calling thread, which must be a check thread.
fn check_explainable_here(sql: &str) -> Result<(), Refusal> {
    let parsed = parse(sql)?;
    match check_parsed(&parsed)? {
        Node::SelectStmt(_) => Ok(()),
        other => Err(Refusal::NotExplainable { kind: kind(other) }),
    }
}

/// [`check`] on the calling thread, which must be a check thread.
fn check_here(sql: &str) -> Result<(), Refusal> {
    check_parsed(&parse(sql)?).map(|_| ())
}

/// [`check`] of a parsed text; the one statement when it passes.
fn check_parsed(parsed: &pg_query::ParseResult) -> Result<&Node, Refusal> {
    let statements = &parsed.protobuf.stmts;
    let [statement] = statements.as_slice() else {
        return Err(Refusal::StatementCount(statements.len()));
    };
    let node = statement
        .stmt
        .as_ref()
        .and_then(|stmt| stmt.node.as_ref())
        .ok_or(Refusal::StatementCount(0))?;
    if !is_query(node) {
        return Err(Refusal::Statement { kind: kind(node) });
    }
    match first_denied_call(node)? {
        Some((called, function)) => Err(Refusal::Function {
            called,
            why: function.effect.describe(),
            docs: function.docs,
        }),
        None => Ok(node),
    }
}

/// The statements that produce rows. Writes with `RETURNING` are let through on purpose: the
/// read-only transaction refuses them with PostgreSQL's own message ("cannot execute … in a
/// read-only transaction"), the authority on what writes.
fn is_query(node: &Node) -> bool {
    matches!(
        node,
        Node::SelectStmt(_)
            | Node::ExplainStmt(_)
            | Node::VariableShowStmt(_)
            | Node::InsertStmt(_)
            | Node::UpdateStmt(_)
            | Node::DeleteStmt(_)
            | Node::MergeStmt(_)
    )
}

/// The parse node's name for a statement (`DoStmt` → `Do`), from its serde form `{"DoStmt": {…}}`
/// (a refused statement: the cost of building the value does not matter).
fn kind(node: &Node) -> String {
    let tree = serde_json::to_value(node).unwrap_or_default();
    let name = tree
        .as_object()
        .and_then(|object| object.keys().next())
        .map(String::as_str)
        .unwrap_or("this");
    name.strip_suffix("Stmt").unwrap_or(name).to_string()
}

/// The first refused call anywhere in `node`, with its name as written.
///
/// The parse tree's types derive `serde::Serialize`, which visits every field of every node; the
/// [`CallFinder`] is a serializer that writes nothing and only follows the path of field and variant
/// names, so the walk allocates nothing per node and stops at the first refused call (building a
/// `serde_json::Value` of the tree instead made the whole check 1.7–5× slower).
///
/// `Err(TooDeep)` past [`MAX_WALK_DEPTH`] nested structs (the decoder stops earlier; the bound
/// keeps the walk's recursion finite whatever the library accepts).
fn first_denied_call(node: &Node) -> Result<Option<(String, &'static DeniedFunction)>, Refusal> {
    let mut finder = CallFinder::default();
    match serde::Serialize::serialize(node, &mut finder) {
        Err(Stop::Found) => Ok(finder.found),
        Err(Stop::TooDeep) => Err(Refusal::TooDeep),
        _ => Ok(None),
    }
}

/// Where a name part of a call sits: `{"FuncCall": {"funcname": [{"node": {"String": {"sval": …}}}]}}`.
const NAME_PART: [&str; 5] = ["FuncCall", "funcname", "node", "String", "sval"];

/// Where a relation's name sits: `{"RangeVar": {"relname": …}}` (`FROM pg_prepared_statements`).
const RELATION_NAME: [&str; 2] = ["RangeVar", "relname"];

#[derive(Default)]
struct CallFinder {
    /// Field and variant names from the statement down to the value being visited.
    path: Vec<&'static str>,
    /// Name parts of the `FuncCall` being read (its schema, then its name).
    name: Vec<String>,
    found: Option<(String, &'static DeniedFunction)>,
    /// Structs being walked, outermost first (bounded by [`MAX_WALK_DEPTH`]).
    depth: usize,
}

impl CallFinder {
    /// After a `FuncCall`'s `funcname`: the call's name is complete.
    fn end_of_name(&mut self) -> Result<(), Stop> {
        let parts = std::mem::take(&mut self.name);
        if let Some(function) = parts.last().and_then(|name| sql_policy::denied(name)) {
            self.found = Some((parts.join("."), function));
            return Err(Stop::Found);
        }
        Ok(())
    }

    /// Into a struct: refused past [`MAX_WALK_DEPTH`].
    fn enter(&mut self) -> Result<&mut Self, Stop> {
        if self.depth >= MAX_WALK_DEPTH {
            return Err(Stop::TooDeep);
        }
        self.depth += 1;
        Ok(self)
    }

    fn field<T: serde::Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Stop> {
        self.path.push(key);
        value.serialize(&mut *self)?;
        self.path.pop();
        if key == "funcname" && self.path.last() == Some(&"FuncCall") {
            self.end_of_name()?;
        }
        Ok(())
    }
}

/// Why the walk stopped early.
#[derive(Debug)]
enum Stop {
    Found,
    TooDeep,
    Other(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Found => f.write_str("a refused call"),
            Stop::TooDeep => write!(f, "nested deeper than {MAX_WALK_DEPTH} structs"),
            Stop::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Stop {}

impl serde::ser::Error for Stop {
    fn custom<T: std::fmt::Display>(message: T) -> Stop {
        Stop::Other(message.to_string())
    }
}

/// Scalars end a path; only strings at [`NAME_PART`] are kept.
macro_rules! ignore_scalars {
    ($($method:ident($type:ty)),* $(,)?) => {
        $(fn $method(self, _: $type) -> Result<(), Stop> { Ok(()) })*
    };
}

impl serde::Serializer for &mut CallFinder {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    ignore_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_str(self, value: &str) -> Result<(), Stop> {
        if self.path.ends_with(&NAME_PART) {
            self.name.push(value.to_string());
        } else if self.path.ends_with(&RELATION_NAME)
            && let Some(relation) = sql_policy::denied_relation(value)
        {
            self.found = Some((value.to_string(), relation));
            return Err(Stop::Found);
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_some<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.path.push(variant);
        value.serialize(&mut *self)?;
        self.path.pop();
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Stop> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Stop> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
        Ok(self)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, Stop> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Stop> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
        self.enter()
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, Stop> {
        self.enter()
    }
}

/// Sequences, tuples and maps: every element is walked with the path unchanged.
macro_rules! walk_elements {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl serde::ser::$trait for &mut CallFinder {
            type Ok = ();
            type Error = Stop;
            fn $method<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

walk_elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl serde::ser::SerializeMap for &mut CallFinder {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: serde::Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

/// Structs: each field is walked with its name on the path.
macro_rules! walk_fields {
    ($($trait:ident),*) => {$(
        impl serde::ser::$trait for &mut CallFinder {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: serde::Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Stop> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Stop> {
                self.depth -= 1;
                Ok(())
            }
        }
    )*};
}

walk_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_query_takes_selects_only() {
        for select in [
            "SELECT 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1)",
            "TABLE t",
        ] {
            assert_eq!(check_explainable(select), Ok(()), "{select}");
        }
        for other in [
            "INSERT INTO t VALUES (1) RETURNING *",
            "DELETE FROM t",
            "EXPLAIN SELECT 1",
            "SHOW work_mem",
        ] {
            assert!(
                matches!(check_explainable(other), Err(Refusal::NotExplainable { .. })),
                "{other}"
            );
        }
        assert!(matches!(
            check_explainable("SELECT pg_terminate_backend(1)"),
            Err(Refusal::Function { .. })
        ));
    }

    fn refused_function(sql: &str) -> String {
        match check(sql) {
            Err(Refusal::Function { called, .. }) => called,
            other => panic!("{sql}: expected a refused function, got {other:?}"),
        }
    }

    /// The pooled connection's state, which outlives the call (red-team review): the settings the
    /// call's limits live in, the random seed, and the statement cache that holds other callers'
    /// SQL — as calls and, for the view, as a relation in any position; a user table that shares a
    /// refused function's name is not refused.
    #[test]
    fn the_pooled_connections_state_is_refused_as_call_and_as_relation() {
        for (sql, called) in [
            ("SELECT set_config('statement_timeout', '0', true)", "set_config"),
            ("SELECT setseed(0.42)", "setseed"),
            ("SELECT * FROM pg_prepared_statement()", "pg_prepared_statement"),
            ("SELECT statement FROM pg_prepared_statements", "pg_prepared_statements"),
            (
                "SELECT statement FROM pg_catalog.pg_prepared_statements WHERE statement LIKE '%x%'",
                "pg_prepared_statements",
            ),
            (
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM \"pg_prepared_statements\")",
                "pg_prepared_statements",
            ),
            (
                "WITH s AS (SELECT * FROM pg_prepared_statements) SELECT count(*) FROM s",
                "pg_prepared_statements",
            ),
        ] {
            assert_eq!(refused_function(sql), called, "{sql}");
        }
        for allowed in [
            "SELECT current_setting('work_mem')",
            "SELECT random()",
            "SELECT * FROM dblink_history",
            "SELECT * FROM pg_catalog.pg_settings",
        ] {
            assert!(check(allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn every_spelling_and_position_of_a_refused_call_is_seen() {
        let cases = [
            ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
            ("SELECT PG_TERMINATE_BACKEND(1)", "pg_terminate_backend"),
            ("SELECT Pg_Cancel_Backend(1)", "pg_cancel_backend"),
            ("SELECT \"pg_terminate_backend\"(1)", "pg_terminate_backend"),
            (
                "SELECT pg_catalog.pg_terminate_backend(1)",
                "pg_catalog.pg_terminate_backend",
            ),
            (
                "SELECT PG_CATALOG.\"pg_cancel_backend\"(1)",
                "pg_catalog.pg_cancel_backend",
            ),
            (
                "SELECT \"pg_catalog\".\"pg_reload_conf\"()",
                "pg_catalog.pg_reload_conf",
            ),
            (
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE usename = current_user AND pid <> pg_backend_pid()",
                "pg_terminate_backend",
            ),
            ("SELECT * FROM (SELECT pg_cancel_backend(1)) s", "pg_cancel_backend"),
            ("SELECT (SELECT pg_cancel_backend(1))", "pg_cancel_backend"),
            (
                "WITH k AS (SELECT pg_terminate_backend(1)) SELECT * FROM k",
                "pg_terminate_backend",
            ),
            (
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE pg_reload_conf()) SELECT 1",
                "pg_reload_conf",
            ),
            ("SELECT * FROM pg_terminate_backend(1)", "pg_terminate_backend"),
            (
                "SELECT * FROM ROWS FROM (generate_series(1,2), pg_cancel_backend(1))",
                "pg_cancel_backend",
            ),
            (
                "SELECT * FROM pg_stat_activity a, LATERAL (SELECT pg_cancel_backend(a.pid)) x",
                "pg_cancel_backend",
            ),
            (
                "SELECT CASE WHEN true THEN pg_terminate_backend(1) END",
                "pg_terminate_backend",
            ),
            ("SELECT 1 ORDER BY pg_cancel_backend(1)", "pg_cancel_backend"),
            ("SELECT 1 GROUP BY 1 HAVING pg_cancel_backend(1)", "pg_cancel_backend"),
            ("SELECT pg_cancel_backend(1)::text", "pg_cancel_backend"),
            (
                "SELECT row_number() OVER (ORDER BY pg_cancel_backend(1))",
                "pg_cancel_backend",
            ),
            ("SELECT 1 LIMIT (SELECT pg_cancel_backend(1))::int", "pg_cancel_backend"),
            ("VALUES (pg_cancel_backend(1))", "pg_cancel_backend"),
            ("SELECT 1 UNION SELECT pg_cancel_backend(1)::int", "pg_cancel_backend"),
            ("SELECT coalesce(null, pg_cancel_backend(1))", "pg_cancel_backend"),
            ("SELECT ARRAY[pg_cancel_backend(1)]", "pg_cancel_backend"),
            (
                "SELECT 1 WHERE EXISTS (SELECT pg_cancel_backend(1))",
                "pg_cancel_backend",
            ),
            ("EXPLAIN ANALYZE SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
            (
                "SELECT * FROM generate_series(1, 2) g JOIN pg_stat_activity ON pg_cancel_backend(pid)",
                "pg_cancel_backend",
            ),
            ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
            ("SELECT lo_import('/etc/passwd')", "lo_import"),
            ("SELECT pg_notify('c', 'x')", "pg_notify"),
            ("SELECT public.dblink('host=x', 'select 1')", "public.dblink"),
            (
                "SELECT query_to_xml('select pg_terminate_backend(1)', true, true, '')",
                "query_to_xml",
            ),
            // Red-team bypasses: SQL given as text to ts_rewrite and tablefunc's connectby.
            (
                "SELECT ts_rewrite('a'::tsquery, 'select ''a''::tsquery, pg_cancel_backend(1)::text::tsquery')",
                "ts_rewrite",
            ),
            (
                "SELECT * FROM connectby('(select 1 as k) s', 'k', 'p', '1', 0) AS t(k int, p int, l int)",
                "connectby",
            ),
            ("SELECT pg_switch_wal()", "pg_switch_wal"),
            (
                "SELECT pg_create_logical_replication_slot('s', 'test_decoding')",
                "pg_create_logical_replication_slot",
            ),
            ("UPDATE t SET x = 1 RETURNING pg_cancel_backend(1)", "pg_cancel_backend"),
        ];
        for (sql, called) in cases {
            assert_eq!(refused_function(sql), called, "{sql}");
        }
    }

    #[test]
    fn look_alikes_are_not_refused() {
        let allowed = [
            "SELECT pg_terminate_backend FROM (SELECT 1 AS pg_terminate_backend) t",
            "SELECT 'pg_terminate_backend(1)' AS text",
            "SELECT $$pg_cancel_backend(1)$$",
            "SELECT 1 -- pg_terminate_backend(1)",
            "SELECT /* pg_cancel_backend(1) */ 1",
            "SELECT pg_terminate_backend_audit(1)",
            "SELECT my_pg_cancel_backend(1)",
            "SELECT \"PG_TERMINATE_BACKEND\"(1)",
            "SELECT pg_backend_pid(), pg_sleep(0.1), pg_advisory_lock(1), pg_stat_get_activity(NULL)",
            "SELECT count(*) FROM pg_stat_activity",
            "EXPLAIN SELECT 1",
            "SHOW statement_timeout",
            "TABLE pg_class",
            "INSERT INTO t VALUES (1) RETURNING *",
        ];
        for sql in allowed {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn statements_that_are_not_queries_are_refused_by_kind() {
        let cases = [
            ("DO $$ BEGIN PERFORM pg_terminate_backend(1); END $$", "Do"),
            ("COPY (SELECT 1) TO PROGRAM 'true'", "Copy"),
            ("SET ROLE postgres", "VariableSet"),
            ("RESET ALL", "VariableSet"),
            ("LISTEN channel", "Listen"),
            ("NOTIFY channel", "Notify"),
            ("CALL p()", "Call"),
            ("COMMIT", "Transaction"),
            ("PREPARE p AS SELECT 1", "Prepare"),
            (
                "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
                "CreateFunction",
            ),
            ("LOAD 'plpgsql'", "Load"),
            ("DISCARD ALL", "Discard"),
        ];
        for (sql, kind) in cases {
            assert_eq!(check(sql), Err(Refusal::Statement { kind: kind.into() }), "{sql}");
        }
    }

    #[test]
    fn several_statements_a_syntax_error_and_an_empty_text_are_refused() {
        assert_eq!(check("SELECT 1; SELECT 2"), Err(Refusal::StatementCount(2)));
        assert_eq!(
            check("SELECT 1; COMMIT; DELETE FROM t"),
            Err(Refusal::StatementCount(3))
        );
        assert_eq!(check("-- nothing"), Err(Refusal::StatementCount(0)));
        let Err(Refusal::Syntax(message)) = check("SELEC 1") else {
            panic!("expected a syntax error");
        };
        assert!(message.contains("syntax error"), "{message}");
    }

    #[tokio::test]
    async fn a_long_text_is_checked_off_the_workers_with_the_same_answer() {
        let in_list = (0..2000).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let long = format!("SELECT 1 WHERE 1 IN ({in_list})");
        assert_eq!(check_off_workers(&long).await, Ok(()));
        let refused = format!("SELECT pg_cancel_backend(1) WHERE 1 IN ({in_list})");
        assert!(matches!(
            check_off_workers(&refused).await,
            Err(Refusal::Function { ref called, .. }) if called == "pg_cancel_backend"
        ));
        assert_eq!(
            check_off_workers("SELECT 1; SELECT 2").await,
            Err(Refusal::StatementCount(2))
        );
    }

    /// Red-team texts that nest: `1+1+…`, parentheses, scalar subqueries, `UNION ALL` branches.
    pub(crate) fn nested_texts(levels: usize) -> [String; 4] {
        [
            format!("SELECT {}", vec!["1"; levels].join("+")),
            format!("SELECT {}1{}", "(".repeat(levels), ")".repeat(levels)),
            format!("SELECT {}1{}", "(SELECT ".repeat(levels), ")".repeat(levels)),
            vec!["SELECT 1"; levels].join(" UNION ALL "),
        ]
    }

    #[test]
    fn deep_nesting_is_refused_or_checked_on_a_2_mib_thread() {
        let outcome = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let mut outcomes = Vec::new();
                for levels in [10, 60, 99, 150, 600, 5000] {
                    for (form, sql) in nested_texts(levels).into_iter().enumerate() {
                        let checked = check(&sql);
                        assert_eq!(check_explainable(&sql), checked, "{levels}: {sql:.60}");
                        outcomes.push((levels, form, checked));
                    }
                }
                outcomes
            })
            .unwrap()
            .join()
            .expect("the check must not overflow a 2 MiB stack");
        for (levels, form, checked) in outcome {
            match checked {
                // Parentheses alone leave no trace in the tree: `((…(1)…))` is as flat as `1`.
                Ok(()) if form == 1 => {}
                Ok(()) => assert!(levels < 600, "{levels} levels of form {form} were let through"),
                Err(Refusal::TooDeep) => assert!(levels > 10, "{levels} levels refused"),
                Err(other) => panic!("{levels} levels: {other}"),
            }
        }
        let message = Refusal::TooDeep.to_string();
        assert!(message.contains("nested deeper than 100 levels"), "{message}");
    }

    #[test]
    fn the_refusal_names_the_function_the_effect_and_the_manual_section() {
        let message = check("SELECT pg_catalog.pg_terminate_backend(1)")
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "pg_catalog.pg_terminate_backend() is refused before it runs: it signals other server processes \
             (§9.27.2 Server Signaling Functions); query_database runs only statements whose effects stay \
             inside the call"
        );
    }
}
