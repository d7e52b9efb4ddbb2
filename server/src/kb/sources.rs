//! `search_knowledgebase`'s `list_sources` mode: which products and versions a kb.db holds, with
//! how many documents each, so a model can learn the values its filters take before using them.

use rusqlite::Connection;
use serde::Serialize;

/// Documents of one product and version (empty strings: documents built without them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceCount {
    pub product: String,
    pub version: String,
    pub documents: u64,
}

/// Every product/version pair of the kb.db, sorted by product then version (case ignored).
pub fn list_sources(db: &Connection) -> Result<Vec<SourceCount>, rusqlite::Error> {
    let mut statement = db.prepare_cached(
        "SELECT product, version, count(*) FROM documents GROUP BY product, version ORDER BY product, version",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(SourceCount {
            product: row.get(0)?,
            version: row.get(1)?,
            documents: row.get::<_, i64>(2)?.try_into().unwrap_or(0),
        })
    })?;
    rows.collect()
}
