//! `get_schema_info`: what a model needs to write correct SQL — tables, columns with types,
//! nullability and defaults, primary and foreign keys, indexes, row estimates — and nothing else.
//!
//! Read from `pg_catalog` (not `information_schema`, which hides objects the role does not own and
//! is several times slower on large catalogs) in the same read-only, time-bounded transaction as
//! queries. Only relations the connecting role may `SELECT` from are listed: a model should not be
//! shown tables it cannot query. Output is capped at [`MAX_TABLES`] tables with a flag, so a database
//! with thousands of tables cannot flood a context window; narrowing by schema or table lifts it.

use std::collections::BTreeMap;

use serde::Serialize;

use tracing::Instrument;

use super::{call_trace, error::DbError, pool::Database};

/// Most tables described in one answer.
pub const MAX_TABLES: usize = 200;

#[derive(Debug, Default, Serialize)]
pub struct SchemaInfo {
    pub schemas: Vec<SchemaEntry>,
    /// True when more tables matched than [`MAX_TABLES`].
    pub truncated: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct SchemaEntry {
    pub name: String,
    pub tables: Vec<Table>,
}

#[derive(Debug, Default, Serialize)]
pub struct Table {
    pub name: String,
    /// table, view, materialized_view, foreign_table, partitioned_table.
    pub kind: &'static str,
    /// The planner's estimate; null when the table was never analyzed.
    pub rows_estimate: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub columns: Vec<TableColumn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// `(col) REFERENCES other(col)`, as PostgreSQL prints them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TableColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Relations matching the filters, visible to the role; `$1` schema, `$2` table (null: any).
const TABLES: &str = "
SELECT c.oid, n.nspname, c.relname, c.relkind::text,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
       obj_description(c.oid, 'pg_class')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND NOT c.relispartition
  AND ($1::text IS NULL OR n.nspname = $1) AND ($2::text IS NULL OR c.relname = $2)
  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname
LIMIT $3";

const COLUMNS: &str = "
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const CONSTRAINTS: &str = "
SELECT con.conrelid, con.contype::text, pg_get_constraintdef(con.oid),
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord)
FROM pg_constraint con
WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'f', 'u')
ORDER BY con.conrelid, con.contype, con.conname";

const INDEXES: &str = "
SELECT x.indrelid, pg_get_indexdef(x.indexrelid)
FROM pg_index x
WHERE x.indrelid = ANY($1) AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid AND con.contype = 'u')
ORDER BY x.indrelid, x.indexrelid";

impl Database {
    /// Describes the tables of `schema` (or every non-system schema), or the one `table`.
    pub async fn schema_info(&self, schema: Option<&str>, table: Option<&str>) -> Result<SchemaInfo, DbError> {
        let span = call_trace::schema_span();
        let outcome = self
            .on_connection(async |client| self.introspect(client, schema, table).await)
            .instrument(span.clone())
            .await;
        call_trace::record_outcome(&span, &outcome);
        outcome
    }

    async fn introspect(
        &self,
        client: &mut tokio_postgres::Client,
        schema: Option<&str>,
        table: Option<&str>,
    ) -> Result<SchemaInfo, DbError> {
        let transaction = self.begin(client).await?;
        let pg = DbError::from_pg;
        let limit = MAX_TABLES as i64 + 1;
        let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&schema, &table, &limit];
        let (tagged, relations) = tokio::join!(call_trace::tag(&transaction), transaction.query(TABLES, &parameters));
        tagged?;
        let relations = relations.map_err(pg)?;
        let truncated = relations.len() > MAX_TABLES;
        let mut tables: BTreeMap<u32, (String, Table)> = BTreeMap::new();
        for row in relations.iter().take(MAX_TABLES) {
            let oid: u32 = row.get(0);
            let kind: String = row.get(3);
            tables.insert(
                oid,
                (
                    row.get(1),
                    Table {
                        name: row.get(2),
                        kind: relation_kind(&kind),
                        rows_estimate: row.get(4),
                        comment: row.get(5),
                        ..Table::default()
                    },
                ),
            );
        }
        let oids: Vec<u32> = tables.keys().copied().collect();
        let by_oids: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&oids];
        // Pipelined: three queries, one round trip.
        let (columns, constraints, indexes) = tokio::join!(
            transaction.query(COLUMNS, &by_oids),
            transaction.query(CONSTRAINTS, &by_oids),
            transaction.query(INDEXES, &by_oids),
        );
        for row in columns.map_err(pg)? {
            if let Some((_, table)) = tables.get_mut(&row.get::<_, u32>(0)) {
                table.columns.push(TableColumn {
                    name: row.get(1),
                    type_name: row.get(2),
                    nullable: row.get(3),
                    default: row.get(4),
                });
            }
        }
        for row in constraints.map_err(pg)? {
            if let Some((_, table)) = tables.get_mut(&row.get::<_, u32>(0)) {
                let kind: String = row.get(1);
                match kind.as_str() {
                    "p" => table.primary_key = row.get(3),
                    "f" => table.foreign_keys.push(row.get(2)),
                    _ => table.unique.push(row.get(2)),
                }
            }
        }
        for row in indexes.map_err(pg)? {
            if let Some((_, table)) = tables.get_mut(&row.get::<_, u32>(0)) {
                table.indexes.push(row.get(1));
            }
        }
        let mut info = SchemaInfo {
            truncated,
            ..SchemaInfo::default()
        };
        let mut ordered: Vec<(String, Table)> = tables.into_values().collect();
        ordered.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        for (schema_name, table) in ordered {
            match info.schemas.last_mut() {
                Some(entry) if entry.name == schema_name => entry.tables.push(table),
                _ => info.schemas.push(SchemaEntry {
                    name: schema_name,
                    tables: vec![table],
                }),
            }
        }
        Ok(info)
    }
}

fn relation_kind(relkind: &str) -> &'static str {
    match relkind {
        "r" => "table",
        "v" => "view",
        "m" => "materialized_view",
        "f" => "foreign_table",
        "p" => "partitioned_table",
        _ => "other",
    }
}
