//! The kb.db file format, the contract between [`super::build`] (which writes it) and
//! [`super::store`] (which refuses any other version).

/// Bumped whenever the table layout changes; a server refuses files of another version.
pub const SCHEMA_VERSION: &str = "1";

pub const SCHEMA_SQL: &str = "
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
