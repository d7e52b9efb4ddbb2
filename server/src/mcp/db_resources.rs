//! The database resources, registered only when `database.url` (or `url_file`) is set, with the
//! database they read ([`crate::postgres::catalog`] has the queries).
//!
//! URIs use the scheme `postgres-mcp:` — custom, as the spec's "Custom URI Schemes" allows — not
//! `postgres:`, which clients and people read as a connection string. The authority `database` is
//! the one database this server is configured for.
//!
//! Gated on [`DATABASE_TOOLS`]: a credential that may use none of the database tools sees none of
//! these (not listed, and a read is refused naming why).

use std::sync::Arc;

use super::resources::{Described, ResourceTable};
use crate::{auth::scope::DATABASE_TOOLS, postgres::Database};

/// Server version, standby or primary, and the settings that matter.
pub const SERVER: &str = "postgres-mcp://database/server";
/// The database's name, size and encoding.
pub const SIZE: &str = "postgres-mcp://database/size";
/// Installed extensions.
pub const EXTENSIONS: &str = "postgres-mcp://database/extensions";
/// Every readable table with its row estimate and size.
pub const TABLES: &str = "postgres-mcp://database/tables";
/// One table in detail: RFC 6570 template, `{schema}` and `{table}` percent-encoded.
pub const TABLE: &str = "postgres-mcp://database/tables/{schema}/{table}";

/// Registers the database resources over `database`.
pub fn register(table: &mut ResourceTable, database: Arc<Database>) {
    let db = database.clone();
    table.register(
        SERVER,
        Described {
            name: "server",
            title: "PostgreSQL server and settings",
            description: "The server's version, whether it is a standby, and the settings that size memory and \
                          connections, bound time and steer the planner (server_version, max_connections, \
                          shared_buffers, work_mem, effective_cache_size, statement_timeout, …), each with \
                          PostgreSQL's text, the raw value and its unit.",
        },
        DATABASE_TOOLS,
        move || {
            let db = db.clone();
            async move { db.server_info().await }
        },
    );
    let db = database.clone();
    table.register(
        SIZE,
        Described {
            name: "database_size",
            title: "Database size",
            description: "The database's name, size (bytes and PostgreSQL's text), encoding and collation.",
        },
        DATABASE_TOOLS,
        move || {
            let db = db.clone();
            async move { db.database_size().await }
        },
    );
    let db = database.clone();
    table.register(
        EXTENSIONS,
        Described {
            name: "extensions",
            title: "Installed extensions",
            description: "Every installed extension: name, version, schema and the version an update would \
                          install.",
        },
        DATABASE_TOOLS,
        move || {
            let db = db.clone();
            async move { db.extensions().await }
        },
    );
    let db = database.clone();
    table.register(
        TABLES,
        Described {
            name: "tables",
            title: "Tables with row estimates",
            description: "Every table this server's role may read: schema, name, kind, the planner's row \
                          estimate (pg_class.reltuples; null if never analyzed) and total size in bytes. \
                          Capped and flagged `truncated` on very large catalogs.",
        },
        DATABASE_TOOLS,
        move || {
            let db = db.clone();
            async move { db.table_estimates().await }
        },
    );
    table.register_template(
        TABLE,
        Described {
            name: "table",
            title: "One table's size, row estimate and maintenance",
            description: "One table: row estimate, live and dead rows, table/index/total bytes, and when it \
                          was last analyzed and vacuumed. Percent-encode names with reserved characters.",
        },
        DATABASE_TOOLS,
        move |variables| {
            let db = database.clone();
            async move {
                let [schema, name] = <[String; 2]>::try_from(variables).expect("the template has two variables");
                db.table_detail(&schema, &name).await
            }
        },
    );
}
