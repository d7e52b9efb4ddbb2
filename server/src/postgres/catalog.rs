//! What the MCP resources read from the database: the server's version and the settings that
//! matter for query performance, the database's size, installed extensions, and row estimates per
//! table (issue #17).
//!
//! Each is one catalog query in the same read-only, time-bounded transaction as the tools (the
//! pool's session `statement_timeout`, the checkout's deadline, `ROLLBACK`), and answers fit
//! `database.max_result_size` like a tool's: the table list stops at the budget (or at
//! [`MAX_TABLES`]) and says so. Only tables the connecting role may `SELECT` from are shown, as in
//! `get_schema_info`. Values a model compares (sizes, counts) are numbers; settings keep PostgreSQL's
//! own text next to the raw value and unit, since `128MB` is what a person reads and
//! `16384 × 8kB` what a program computes with.

use deadpool_postgres::Object;
use serde::Serialize;
use tokio_postgres::{Client, types::ToSql};
use tracing::Instrument;

use super::{call_trace, error::DbError, pool::Database};

/// Settings shown by the server resource: those that size memory and connections, bound time, and
/// steer the planner — what an assistant needs to reason about a slow query or a full pool.
pub const SETTINGS: &[&str] = &[
    "server_version",
    "server_version_num",
    "max_connections",
    "superuser_reserved_connections",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "temp_buffers",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_read_only",
    "default_transaction_isolation",
    "random_page_cost",
    "seq_page_cost",
    "effective_io_concurrency",
    "default_statistics_target",
    "max_parallel_workers_per_gather",
    "max_parallel_workers",
    "max_worker_processes",
    "jit",
    "autovacuum",
    "track_io_timing",
    "wal_level",
    "max_wal_size",
    "checkpoint_timeout",
    "shared_preload_libraries",
    "server_encoding",
    "TimeZone",
    "block_size",
];

/// Most tables in the table list (the byte budget may stop it earlier).
pub const MAX_TABLES: usize = 1000;

/// The server resource.
#[derive(Debug, Serialize)]
pub struct ServerInfo {
    /// `version()`: the full version string (build, platform).
    pub version: String,
    /// `server_version_num`, e.g. 170002.
    pub version_num: i32,
    /// Whether this server is a standby (`pg_is_in_recovery()`).
    pub in_recovery: bool,
    /// The settings of [`SETTINGS`] this role may read, in that order (superuser-only ones may be
    /// missing), as this server's connections see them.
    pub settings: Vec<Setting>,
}

/// One row of `pg_settings`.
#[derive(Debug, Serialize)]
pub struct Setting {
    pub name: String,
    /// `current_setting(name)`: as PostgreSQL prints it (`128MB`, `30s`).
    pub value: String,
    /// `pg_settings.setting`, in `unit` (`16384` of `8kB`).
    pub setting: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub description: String,
}

/// The database resource.
#[derive(Debug, Serialize)]
pub struct DatabaseSize {
    pub name: String,
    /// `pg_database_size`, in bytes.
    pub size_bytes: i64,
    /// The same, as PostgreSQL prints it (`pg_size_pretty`).
    pub size: String,
    pub encoding: String,
    pub collation: String,
}

/// One installed extension.
#[derive(Debug, Serialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
    pub schema: String,
    /// The version `ALTER EXTENSION … UPDATE` would install, when the server has the extension's
    /// files (null otherwise).
    pub default_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The extensions resource.
#[derive(Debug, Serialize)]
pub struct Extensions {
    pub extensions: Vec<Extension>,
}

/// One table's size and row estimate.
#[derive(Debug, Serialize)]
pub struct TableEstimate {
    pub schema: String,
    pub name: String,
    /// table, partitioned_table, materialized_view, foreign_table.
    pub kind: &'static str,
    /// The planner's estimate (`pg_class.reltuples`); null when the table was never analyzed or
    /// vacuumed.
    pub rows_estimate: Option<i64>,
    /// Table, indexes and TOAST, in bytes (`pg_total_relation_size`).
    pub total_bytes: i64,
}

/// The table list resource.
#[derive(Debug, Serialize)]
pub struct TableEstimates {
    pub tables: Vec<TableEstimate>,
    /// Set when tables were left out: more than [`MAX_TABLES`], or past `database.max_result_size`.
    pub truncated: bool,
}

/// One table in detail (the table template).
#[derive(Debug, Serialize)]
pub struct TableDetail {
    #[serde(flatten)]
    pub table: TableEstimate,
    /// Table alone, without indexes and TOAST, in bytes.
    pub table_bytes: i64,
    pub index_bytes: i64,
    /// The statistics collector's counts (`pg_stat_all_tables`), null where it has none.
    pub live_rows: Option<i64>,
    pub dead_rows: Option<i64>,
    pub last_analyze: Option<String>,
    pub last_autoanalyze: Option<String>,
    pub last_vacuum: Option<String>,
    pub last_autovacuum: Option<String>,
}

const SERVER: &str = "
SELECT version(), current_setting('server_version_num')::int4, pg_is_in_recovery()";

const SETTINGS_SQL: &str = "
SELECT s.name, current_setting(s.name), s.setting, s.unit, s.short_desc
FROM pg_settings s JOIN unnest($1::text[]) WITH ORDINALITY AS wanted(name, ord) ON wanted.name = s.name
ORDER BY wanted.ord";

const DATABASE: &str = "
SELECT d.datname::text, pg_database_size(d.oid), pg_size_pretty(pg_database_size(d.oid)),
       pg_encoding_to_char(d.encoding)::text, d.datcollate::text
FROM pg_database d WHERE d.datname = current_database()";

const EXTENSIONS: &str = "
SELECT e.extname::text, e.extversion, n.nspname::text, a.default_version, obj_description(e.oid, 'pg_extension')
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
LEFT JOIN pg_available_extensions a ON a.name = e.extname
ORDER BY e.extname";

/// Tables (not views: they have no rows of their own) visible to the role; `$1` schema and `$2`
/// name (null: any), `$3` the most rows.
const TABLES: &str = "
SELECT n.nspname::text, c.relname::text, c.relkind::text,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
       pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid),
       s.n_live_tup, s.n_dead_tup, s.last_analyze::text, s.last_autoanalyze::text,
       s.last_vacuum::text, s.last_autovacuum::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm', 'f', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND NOT c.relispartition
  AND ($1::text IS NULL OR n.nspname = $1) AND ($2::text IS NULL OR c.relname = $2)
  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname
LIMIT $3";

impl Database {
    /// The server's version, role (primary or standby) and [`SETTINGS`].
    pub async fn server_info(&self) -> Result<ServerInfo, DbError> {
        self.catalog(async |client| {
            let transaction = self.begin(client).await?;
            let names: Vec<&str> = SETTINGS.to_vec();
            let parameters: [&(dyn ToSql + Sync); 1] = [&names];
            // Pipelined: the tag and both queries in one round trip.
            let (tagged, server, settings) = tokio::join!(
                call_trace::tag(&transaction),
                transaction.query_one(SERVER, &[]),
                transaction.query(SETTINGS_SQL, &parameters),
            );
            tagged?;
            let server = server.map_err(DbError::from_pg)?;
            let settings = settings.map_err(DbError::from_pg)?;
            Ok(ServerInfo {
                version: server.get(0),
                version_num: server.get(1),
                in_recovery: server.get(2),
                settings: settings
                    .iter()
                    .map(|row| Setting {
                        name: row.get(0),
                        value: row.get(1),
                        setting: row.get(2),
                        unit: row.get(3),
                        description: row.get(4),
                    })
                    .collect(),
            })
        })
        .await
    }

    /// The current database's name, size and encoding.
    pub async fn database_size(&self) -> Result<DatabaseSize, DbError> {
        self.catalog(async |client| {
            let transaction = self.begin(client).await?;
            let (tagged, row) = tokio::join!(call_trace::tag(&transaction), transaction.query_one(DATABASE, &[]));
            tagged?;
            let row = row.map_err(DbError::from_pg)?;
            Ok(DatabaseSize {
                name: row.get(0),
                size_bytes: row.get(1),
                size: row.get(2),
                encoding: row.get(3),
                collation: row.get(4),
            })
        })
        .await
    }

    /// The installed extensions.
    pub async fn extensions(&self) -> Result<Extensions, DbError> {
        self.catalog(async |client| {
            let transaction = self.begin(client).await?;
            let (tagged, rows) = tokio::join!(call_trace::tag(&transaction), transaction.query(EXTENSIONS, &[]));
            tagged?;
            let extensions = rows
                .map_err(DbError::from_pg)?
                .iter()
                .map(|row| Extension {
                    name: row.get(0),
                    version: row.get(1),
                    schema: row.get(2),
                    default_version: row.get(3),
                    description: row.get(4),
                })
                .collect();
            Ok(Extensions { extensions })
        })
        .await
    }

    /// Every table the role may read, with its row estimate and size, up to [`MAX_TABLES`] and the
    /// byte budget.
    pub async fn table_estimates(&self) -> Result<TableEstimates, DbError> {
        let budget = self.limits.max_result_bytes;
        self.catalog(async |client| {
            let rows = tables(self, client, None, None, MAX_TABLES + 1).await?;
            let mut truncated = rows.len() > MAX_TABLES;
            let mut tables = Vec::new();
            // `{"tables":[` … `],"truncated":false}`
            let mut bytes = 32;
            for detail in rows.into_iter().take(MAX_TABLES) {
                let entry = detail.table;
                bytes += serde_json::to_string(&entry).map_or(0, |text| text.len() + 1);
                if bytes > budget {
                    truncated = true;
                    break;
                }
                tables.push(entry);
            }
            Ok(TableEstimates { tables, truncated })
        })
        .await
    }

    /// One table by schema and name, or `None` when there is no such table the role may read.
    pub async fn table_detail(&self, schema: &str, name: &str) -> Result<Option<TableDetail>, DbError> {
        self.catalog(async |client| Ok(tables(self, client, Some(schema), Some(name), 1).await?.pop()))
            .await
    }

    /// Runs `work` on a pooled connection inside a catalog span, and holds its answer to
    /// `database.max_result_size` like a tool's: the table list trims itself to fit; anything else
    /// past it (a budget set below a few KiB) is an error naming the setting, never a cut-off JSON.
    async fn catalog<T: Serialize>(
        &self,
        work: impl AsyncFnOnce(&mut Object) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let span = call_trace::schema_span();
        let outcome = self
            .on_connection(work)
            .instrument(span.clone())
            .await
            .and_then(|value| {
                let budget = self.limits.max_result_bytes;
                let bytes = serde_json::to_string(&value).map_or(0, |text| text.len());
                if bytes > budget {
                    return Err(DbError::Internal(format!(
                        "the resource is {bytes} bytes, more than database.max_result_size ({budget} bytes)"
                    )));
                }
                Ok(value)
            });
        call_trace::record_outcome(&span, &outcome);
        outcome
    }
}

async fn tables(
    database: &Database,
    client: &mut Client,
    schema: Option<&str>,
    name: Option<&str>,
    limit: usize,
) -> Result<Vec<TableDetail>, DbError> {
    let transaction = database.begin(client).await?;
    let limit = limit as i64;
    let parameters: [&(dyn ToSql + Sync); 3] = [&schema, &name, &limit];
    let (tagged, rows) = tokio::join!(call_trace::tag(&transaction), transaction.query(TABLES, &parameters));
    tagged?;
    Ok(rows
        .map_err(DbError::from_pg)?
        .iter()
        .map(|row| {
            let kind: String = row.get(2);
            TableDetail {
                table: TableEstimate {
                    schema: row.get(0),
                    name: row.get(1),
                    kind: match kind.as_str() {
                        "r" => "table",
                        "m" => "materialized_view",
                        "f" => "foreign_table",
                        "p" => "partitioned_table",
                        _ => "other",
                    },
                    rows_estimate: row.get(3),
                    total_bytes: row.get(4),
                },
                table_bytes: row.get(5),
                index_bytes: row.get(6),
                live_rows: row.get(7),
                dead_rows: row.get(8),
                last_analyze: row.get(9),
                last_autoanalyze: row.get(10),
                last_vacuum: row.get(11),
                last_autovacuum: row.get(12),
            }
        })
        .collect())
}
