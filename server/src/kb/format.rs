//! The kb.db file format, the contract between [`super::build`] (which writes it) and
//! [`super::store`] (which refuses any other version).
//!
//! Version 2 (issue #16) adds documents with their product and version, so one kb.db can hold
//! several documentation trees and a search can be narrowed to some of them, and groups chunks by
//! document, so a search can return one hit per page. `title` is kept on each chunk as well as on
//! its document because an external-content FTS5 table reads its indexed columns from one table.
//! Product and version compare case-insensitively (`NOCASE`): a model that asks for `postgresql`
//! means `PostgreSQL`. The tokenizer folds case and diacritics (`remove_diacritics 2`, SQLite's
//! FTS5 documentation §4.3.1) and stems English words (`porter`), so `vacuuming` finds `vacuum`.
//!
//! `pages_fts` indexes each whole document (rowid = `documents.id`: title, every heading, all text)
//! for ranking only — contentless (`content = ''`), so it costs index pages and no second copy of
//! the text. A page's score is its best section's plus its own: the section says where the answer
//! is, the page says whether the page as a whole is about the question (see `store.rs`).
//!
//! A server of version 1 (before issue #16) reads `meta.schema_version`, finds `2` and refuses
//! the file with "schema version 2 is not supported (expected 1)", keeping its previous KB.

/// Bumped whenever the table layout changes; a server refuses files of another version.
pub const SCHEMA_VERSION: &str = "2";

macro_rules! tokenizer {
    () => {
        "porter unicode61 remove_diacritics 2"
    };
}

/// The tokenizer of both FTS5 tables, and of the words of a query ([`super::postings`]).
pub const TOKENIZER: &str = tokenizer!();

pub const SCHEMA_SQL: &str = concat!(
    "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    product TEXT NOT NULL COLLATE NOCASE,
    version TEXT NOT NULL COLLATE NOCASE,
    UNIQUE (product, version, source)
);
CREATE INDEX documents_source ON documents (source);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id),
    title TEXT NOT NULL,
    section TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX chunks_document ON chunks (document_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, section, content,
    content = 'chunks', content_rowid = 'id',
    tokenize = '",
    tokenizer!(),
    "'
);
CREATE VIRTUAL TABLE pages_fts USING fts5(
    title, sections, content,
    content = '',
    tokenize = '",
    tokenizer!(),
    "'
);
"
);
