//! The knowledge base: Markdown and text documents in a SQLite FTS5 file (`kb.db`).
//!
//! [`build`] turns a folder of documents into a kb.db (offline, by the CLI); [`store`] opens one
//! read-only, validates it, and searches it. The file format is the contract between the two:
//! tables `meta`, `chunks` and the FTS5 index `chunks_fts`, versioned by `meta.schema_version`.

pub mod build;
pub mod local_copies;
pub mod store;

/// Bumped whenever the table layout changes; a server refuses files of another version.
pub const SCHEMA_VERSION: &str = "1";

pub(crate) const SCHEMA_SQL: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    section TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, section, content,
    content = 'chunks', content_rowid = 'id',
    tokenize = 'porter unicode61'
);
";
