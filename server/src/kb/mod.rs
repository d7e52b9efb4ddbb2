//! The knowledge base: HTML, Markdown and text documents in a SQLite FTS5 file (`kb.db`).
//!
//! [`build`] turns documentation trees into a kb.db (offline, by the CLI), reading each file with
//! [`html`] or [`markdown`] into a [`document::Document`]; [`store`] opens one read-only, validates
//! it, and searches it, narrowed by a [`filter::SearchFilter`]: each word's posting lists read once
//! ([`postings`]) and ranked in Rust with FTS5's bm25 ([`ranking`]), FTS5 itself only for snippets;
//! [`sources`] lists the products and versions it holds. The file format ([`format`]) is the contract between the two: tables `meta`,
//! `documents`, `chunks` and the FTS5 index `chunks_fts`, versioned by `meta.schema_version`.
//! [`local_copies`] is where a server keeps its private copies of the served file. A search's cost
//! is bounded twice (issue #13 §B.9): [`terms`] refuses queries past the measured limits before they
//! run, and [`cancel`] stops SQLite work whose request is gone.

pub mod build;
pub mod cancel;
pub mod document;
pub mod filter;
mod format;
pub mod html;
pub mod local_copies;
pub mod markdown;
pub mod postings;
pub mod ranking;
pub mod sources;
pub mod store;
pub mod terms;
pub mod word_rows;

pub use store::{KbFile, KbLoader, KnowledgeBase};
