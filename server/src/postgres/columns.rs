//! A result's columns as the tools report them (name and PostgreSQL type name), in a module of their
//! own because both the query path ([`super::query`]) and the per-connection statement cache
//! ([`super::statement_cache`], which keeps them for statements it no longer describes) use them.

use std::sync::Arc;

use serde::Serialize;
use tokio_postgres::Statement;

/// One column of a result.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// A statement's columns, shared between the cache and the calls that use them.
pub type Columns = Arc<[Column]>;

/// The column names and types of `statement`.
pub fn columns_of(statement: &Statement) -> Vec<Column> {
    statement
        .columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            type_name: c.type_().name().to_string(),
        })
        .collect()
}
