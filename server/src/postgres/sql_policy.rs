//! Which functions `query_database` refuses to call: those whose effects reach beyond the call
//! (issue #13 §C.12).
//!
//! Every credential shares one database role, and the read-only transaction every call runs in
//! stops writes, not everything: PostgreSQL lets a role signal its own backends — one caller's
//! `pg_terminate_backend` kills another caller's query (SQLSTATE 57P01) — and some functions act on
//! the server, its files, its WAL or other databases whatever the transaction does. This is the
//! list, one entry per function with the reason given to the model and the PostgreSQL 15 manual
//! section the function is documented in. The walk that finds calls is [`super::sql_check`].
//!
//! The pooled connection itself is shared state too: it outlives the call and serves other callers
//! next. So `set_config` is refused (with `is_local` it lifts the call's own `statement_timeout` for
//! the batches fetched after the first; the `ROLLBACK` undoes it only after the call), `setseed`
//! (the seed survives `ROLLBACK`: the next caller's `random()` becomes predictable), and
//! `pg_prepared_statements` (the connection's statement cache holds other callers' SQL, literals
//! included) — these names are also refused as relations (`FROM pg_prepared_statements`), found
//! by a red-team review.
//!
//! What is *not* here, on purpose: `pg_sleep` (bounded by `statement_timeout` like any slow query),
//! advisory locks (session-level ones are released after every call, see `pool`), and writes
//! (refused by the read-only transaction).
//!
//! Names are matched in any schema (`pg_catalog.x`, `public.x`, `"x"`): extensions such as dblink
//! live in whatever schema they were installed in, and a false refusal of a user function that
//! reuses one of these names is cheaper than an argument about `search_path`.

/// Why a function is refused: the kind of effect, which also decides whether the role audit
/// ([`super::role_audit`]) checks the role's `EXECUTE` privilege on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Signals other server processes (cancel, terminate, reload, rotate logs).
    Signal,
    /// Changes server-wide state: WAL, backups, recovery, statistics counters, indexes' summaries.
    Server,
    /// Reads or writes the server's file system.
    Files,
    /// Maintains an index outside the transaction (PostgreSQL lets only the index's owner).
    IndexMaintenance,
    /// Creates, drops or consumes replication slots and origins: state that outlives the call.
    Replication,
    /// Large objects: server-side file import/export and objects that outlive the call.
    LargeObject,
    /// Sends a notification to other sessions.
    Notify,
    /// Connects to another server or database (dblink, postgres_fdw).
    Remote,
    /// Runs SQL given as a text argument, which this check cannot inspect.
    DynamicSql,
    /// Reads or changes the pooled connection's state, which other callers share: its settings,
    /// its random seed, its prepared statements.
    SessionState,
}

impl Effect {
    /// The phrase the refusal uses.
    pub fn describe(self) -> &'static str {
        match self {
            Effect::Signal => "signals other server processes",
            Effect::Server => "changes server-wide state",
            Effect::Files => "accesses the server's file system",
            Effect::IndexMaintenance => "maintains an index outside the transaction",
            Effect::Replication => "creates or consumes replication state that outlives the call",
            Effect::LargeObject => "works on large objects, which outlive the call or touch server files",
            Effect::Notify => "notifies other sessions",
            Effect::Remote => "connects to another server or database",
            Effect::DynamicSql => "runs SQL given as text, which cannot be checked before it runs",
            Effect::SessionState => {
                "reads or changes the pooled connection's state (settings, random seed, other callers' prepared statements)"
            }
        }
    }

    /// True for the effects the role audit reports a role for when it may `EXECUTE` such a function,
    /// in any schema: the ones PostgreSQL restricts by privilege, and remote connections (dblink's
    /// functions are open to `PUBLIC` once the extension exists, and reach any host the caller
    /// names). The others are harmless inside a read-only transaction that rolls back, or depend on
    /// what the audit reads directly, such as `REPLICATION`, or on ownership of the object they act on.
    pub fn audited(self) -> bool {
        matches!(self, Effect::Signal | Effect::Server | Effect::Files | Effect::Remote)
    }
}

/// One refused function.
#[derive(Debug, PartialEq, Eq)]
pub struct DeniedFunction {
    /// The function's name as PostgreSQL stores it (lower case).
    pub name: &'static str,
    pub effect: Effect,
    /// Where PostgreSQL 15's manual documents it.
    pub docs: &'static str,
}

const SIGNALING: &str = "§9.27.2 Server Signaling Functions";
const BACKUP: &str = "§9.27.3 Backup Control Functions";
const RECOVERY: &str = "§9.27.4 Recovery Control Functions";
const REPLICATION: &str = "§9.27.6 Replication Management Functions";
const INDEX: &str = "§9.27.8 Index Maintenance Functions";
const FILES: &str = "§9.27.9 Generic File Access Functions";
const STATS: &str = "§28.2 The Cumulative Statistics System (statistics functions)";
const LARGE_OBJECTS: &str = "§35.4 Server-Side Functions (large objects)";
const NOTIFY: &str = "SQL commands: NOTIFY (pg_notify)";
const XML: &str = "§9.15.4 Mapping Tables to XML";
const TEXT_SEARCH: &str = "§9.13 Text Search Functions and Operators (ts_stat, ts_rewrite)";
const DBLINK: &str = "Appendix F: dblink";
const POSTGRES_FDW: &str = "Appendix F: postgres_fdw";
const ADMINPACK: &str = "Appendix F: adminpack";
const TABLEFUNC: &str = "Appendix F: tablefunc (crosstab, connectby)";
const PG_STAT_STATEMENTS: &str = "Appendix F: pg_stat_statements";
const SESSION: &str = "§9.27.1 Configuration Settings Functions (set_config), §9.3 Mathematical Functions (setseed), §54.16 pg_prepared_statements";

macro_rules! denied {
    ($($effect:ident $docs:ident [$($name:literal),+ $(,)?]),+ $(,)?) => {
        &[$($(DeniedFunction { name: $name, effect: Effect::$effect, docs: $docs },)+)+]
    };
}

/// Every refused function. Sorted by section, not by name: [`denied`] scans it (a hundred short
/// string comparisons per call, nothing next to a round trip).
pub const DENIED: &[DeniedFunction] = denied![
    Signal SIGNALING ["pg_cancel_backend", "pg_terminate_backend", "pg_reload_conf", "pg_rotate_logfile",
        "pg_log_backend_memory_contexts"],
    Server BACKUP ["pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup", "pg_switch_wal",
        "pg_create_restore_point"],
    Server RECOVERY ["pg_promote", "pg_wal_replay_pause", "pg_wal_replay_resume"],
    Replication REPLICATION ["pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
        "pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot", "pg_drop_replication_slot",
        "pg_replication_slot_advance", "pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes",
        "pg_logical_slot_peek_changes", "pg_logical_slot_peek_binary_changes", "pg_logical_emit_message",
        "pg_replication_origin_create", "pg_replication_origin_drop", "pg_replication_origin_advance",
        "pg_replication_origin_session_setup", "pg_replication_origin_session_reset",
        "pg_replication_origin_xact_setup", "pg_replication_origin_xact_reset"],
    IndexMaintenance INDEX ["brin_summarize_new_values", "brin_summarize_range", "brin_desummarize_range",
        "gin_clean_pending_list"],
    Files FILES ["pg_ls_dir", "pg_ls_logdir", "pg_ls_waldir", "pg_ls_logicalmapdir", "pg_ls_logicalsnapdir",
        "pg_ls_replslotdir", "pg_ls_archive_statusdir", "pg_ls_tmpdir", "pg_read_file", "pg_read_binary_file",
        "pg_stat_file"],
    Server STATS ["pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
        "pg_stat_reset_single_function_counters", "pg_stat_reset_slru", "pg_stat_reset_replication_slot",
        "pg_stat_reset_subscription_stats"],
    Files LARGE_OBJECTS ["lo_import", "lo_export"],
    LargeObject LARGE_OBJECTS ["lo_create", "lo_creat", "lo_unlink", "lo_put", "lo_from_bytea", "lo_open",
        "lowrite", "lo_truncate", "lo_truncate64"],
    Notify NOTIFY ["pg_notify"],
    DynamicSql XML ["query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema"],
    // ts_rewrite's two-argument form runs its second argument as a query; the name covers both
    // forms (the three-argument one is refused too: a false refusal, never a bypass).
    DynamicSql TEXT_SEARCH ["ts_stat", "ts_rewrite"],
    // connectby pastes its relation argument into the SQL it runs (found by a red-team review).
    DynamicSql TABLEFUNC ["crosstab", "crosstab2", "crosstab3", "crosstab4", "connectby"],
    Remote DBLINK ["dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_disconnect",
        "dblink_open", "dblink_fetch", "dblink_close", "dblink_send_query", "dblink_get_result",
        "dblink_cancel_query", "dblink_get_notify"],
    Remote POSTGRES_FDW ["postgres_fdw_disconnect", "postgres_fdw_disconnect_all"],
    Files ADMINPACK ["pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls"],
    Server PG_STAT_STATEMENTS ["pg_stat_statements_reset"],
    SessionState SESSION ["set_config", "setseed", "pg_prepared_statement", "pg_prepared_statements"],
];

/// The entry for a function named `name` (its last name component, as PostgreSQL stores it).
pub fn denied(name: &str) -> Option<&'static DeniedFunction> {
    DENIED.iter().find(|f| f.name == name)
}

/// The entry for a relation named `name` (its last name component): only [`Effect::SessionState`]
/// names are relations too (the `pg_prepared_statements` view), so a user table that shares a
/// function's name is not refused.
pub fn denied_relation(name: &str) -> Option<&'static DeniedFunction> {
    denied(name).filter(|f| f.effect == Effect::SessionState)
}

/// The names of the functions the role audit checks `EXECUTE` on.
pub fn audited_names() -> Vec<&'static str> {
    DENIED.iter().filter(|f| f.effect.audited()).map(|f| f.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_lower_case_and_listed_once() {
        for (i, f) in DENIED.iter().enumerate() {
            assert_eq!(f.name, f.name.to_lowercase(), "{}", f.name);
            assert!(DENIED[..i].iter().all(|g| g.name != f.name), "{} listed twice", f.name);
        }
    }

    #[test]
    fn the_signalling_functions_are_audited_and_notify_is_not() {
        assert!(audited_names().contains(&"pg_terminate_backend"));
        assert!(audited_names().contains(&"pg_read_file"));
        assert!(!audited_names().contains(&"pg_notify"));
        assert_eq!(denied("pg_cancel_backend").unwrap().docs, SIGNALING);
        assert!(denied("pg_sleep").is_none());
    }
}
