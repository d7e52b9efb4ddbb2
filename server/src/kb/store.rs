//! Serving a kb.db: open read-only, prove it is sound before use, search with bm25.
//!
//! A knowledge base is replaced underneath running servers (by `kb build`, by `sync`, by an operator
//! copying a file), so a new file is only served after `PRAGMA quick_check`, the schema version check
//! and a probe of the FTS index pass; a truncated or foreign file is rejected and the previous
//! [`KnowledgeBase`] keeps serving. Each loaded file is one `KnowledgeBase` value with its own small
//! connection pool: requests that started on the old file finish on it, and its connections close
//! when the last of them drops the snapshot.
//!
//! By default (`kb.copy_to_local: true`) each version is first copied to local disk (the hash is taken
//! from the same bytes) and the copy is opened `immutable=1`: a writer that overwrites kb.db in place
//! (`cp`, `rsync --inplace`, an interrupted download) would otherwise corrupt the pages a running query
//! reads, SQLite's locking is unreliable over NFS, and a private copy cannot change underneath anyone.
//! `false` opens the file in place, for huge knowledge bases that are only ever replaced by rename.
//!
//! Every SQLite query on the request path goes through [`KnowledgeBase::run`] (issue #13 §B.9): at
//! most [`search_concurrency`] at a time, on the blocking pool, holding its slot until the SQLite
//! work itself ends (not until its caller leaves), and cancelled inside SQLite when its caller's
//! future is dropped (see [`super::cancel`]). A query's own cost is bounded before it runs, by
//! [`super::terms`], which also drops a question's commonest words (counted once per file by
//! [`super::word_rows`]) so that its cost stays bounded by the rows it scores.

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::cancel::{CancelOnDrop, is_interrupted};
use super::filter::SearchFilter;
use super::format::SCHEMA_VERSION;
use super::postings::{PostingCache, prepare_connection};
use super::ranking::{RankingIndex, fts5_candidates, fuse};
use super::terms::{SearchTerms, TermsError, fts_expression};
use super::word_rows::WordRows;
use crate::watch::{Loaded, Loader, Served, Watched};

/// A served kb.db: the current [`KnowledgeBase`], swapped by the reload engine when the file changes.
pub type KbFile = Watched<KbLoader>;

/// Searches running at once per loaded file, and the connections kept for them. Queries are CPU
/// bound: more of them than cores only adds threads and connections (each new connection parses the
/// schema and re-prepares statements). Callers beyond this wait, without a thread, for a permit.
/// Read once: `available_parallelism` reads the cgroup's CPU quota files on every call, which cost
/// more than a small search.
pub fn search_concurrency() -> usize {
    static CONCURRENCY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CONCURRENCY.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()) * 2)
}

/// One search result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchHit {
    pub source: String,
    pub title: String,
    /// The document's product and version (empty when it was built without them).
    pub product: String,
    pub version: String,
    pub section: String,
    pub snippet: String,
    /// Relevance, higher is better: the reciprocal rank fusion of the section's and the page's bm25
    /// ranks ([`fuse`]), at most 2 / ([`super::ranking::RRF_K`] + 1).
    pub score: f64,
}

/// A loaded, validated knowledge base.
pub struct KnowledgeBase {
    uri: String,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<tokio::sync::Semaphore>,
    /// Rows each query word matches in this file, for [`SearchTerms::selective`].
    word_rows: WordRows,
    /// The posting lists of the words searched so far, and what ranking needs besides them.
    postings: PostingCache,
    ranking: RankingIndex,
    pub documents: usize,
    pub chunks: usize,
    pub built_at: String,
    /// The local copy this value reads, deleted when the value is dropped.
    local_copy: Option<PathBuf>,
}

impl Drop for KnowledgeBase {
    fn drop(&mut self) {
        self.idle.get_mut().map(|c| c.clear()).ok();
        if let Some(copy) = &self.local_copy {
            let _ = std::fs::remove_file(copy);
        }
    }
}

/// A search that could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is refused before it runs (no word, or past a limit); the message names the rule.
    #[error(transparent)]
    Terms(#[from] TermsError),
    #[error("knowledge base error: {0}")]
    Database(rusqlite::Error),
    /// Its caller left (request timeout, client gone) or the server is stopping.
    #[error("the search was interrupted")]
    Interrupted,
}

impl From<rusqlite::Error> for SearchError {
    fn from(error: rusqlite::Error) -> SearchError {
        if is_interrupted(&error) {
            SearchError::Interrupted
        } else {
            SearchError::Database(error)
        }
    }
}

fn open_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Bytes of a private local copy that SQLite reads through a memory map instead of `read()` into
/// each connection's own page cache: the searches of every connection then share the kernel's pages,
/// with no copy per connection. Only for the private copy, which nothing else writes: a file mapped
/// while another process truncates it in place would fault.
const LOCAL_COPY_MMAP_BYTES: i64 = 1 << 30;

/// Opens one read-only connection; memory-mapped when it reads a private copy.
fn open_connection(uri: &str, private_copy: bool) -> Result<Connection, rusqlite::Error> {
    let db = Connection::open_with_flags(uri, open_flags())?;
    configure(&db)?;
    prepare_connection(&db)?;
    if private_copy {
        db.pragma_update(None, "mmap_size", LOCAL_COPY_MMAP_BYTES)?;
    }
    Ok(db)
}

/// The settings every search connection runs with (the benchmarks' bare-`rusqlite` baseline opens
/// its connection through this too, so both run the statement the same way).
///
/// `SQLITE_DBCONFIG_ENABLE_QPSG`, the query planner stability guarantee: without it SQLite plans
/// with the *values* bound to some parameters (here `LIMIT ?2`, through `sqlite3ExprIsInteger`),
/// marks the statement to be re-planned whenever such a parameter is bound again, and so re-parsed
/// and re-planned [`SEARCH_STATEMENT`] — CTEs, joins and all — on every search: half the CPU of a
/// search on the demo KB (`perf` of the release server, issue #16 §Speed). Our statement's plan does
/// not depend on its parameters' values, so it is planned once per connection.
pub fn configure(db: &Connection) -> Result<(), rusqlite::Error> {
    db.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// A `file:` URI for SQLite, escaping the characters URIs reserve.
fn sqlite_uri(path: &Path, immutable: bool) -> String {
    let escaped = path
        .to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?mode=ro{}", if immutable { "&immutable=1" } else { "" })
}

impl KnowledgeBase {
    /// Opens and validates a kb.db.
    fn open(path: &Path, immutable: bool, local_copy: Option<PathBuf>) -> Result<KnowledgeBase, String> {
        let uri = sqlite_uri(path, immutable);
        let db = open_connection(&uri, local_copy.is_some()).map_err(|e| format!("cannot open: {e}"))?;
        let check: String = db
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| format!("integrity check failed: {e}"))?;
        if check != "ok" {
            return Err(format!("integrity check failed: {check}"));
        }
        let meta = |key: &str| -> Result<Option<String>, String> {
            db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
                .optional()
                .map_err(|e| format!("not a postgres-mcp knowledge base (no meta table: {e})"))
        };
        match meta("schema_version")? {
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(format!(
                    "schema version {v} is not supported (expected {SCHEMA_VERSION}); rebuild with this version's `kb build`"
                ));
            }
            None => return Err("not a postgres-mcp knowledge base (no schema_version)".into()),
        }
        let documents = meta("source_count")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let built_at = meta("built_at")?.unwrap_or_default();
        let chunks: i64 = db
            .query_row("SELECT count(*) FROM chunks", [], |row| row.get(0))
            .map_err(|e| format!("chunks table unreadable: {e}"))?;
        let chunks = usize::try_from(chunks).unwrap_or(0);
        db.query_row(
            "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'probe'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(|e| format!("full-text index unreadable: {e}"))?;
        let ranking = RankingIndex::load(&db)?;
        let postings = PostingCache::new(&db)?;
        Ok(KnowledgeBase {
            uri,
            idle: Mutex::new(vec![db]),
            permits: Arc::new(tokio::sync::Semaphore::new(search_concurrency())),
            word_rows: WordRows::default(),
            postings,
            ranking,
            documents,
            chunks,
            built_at,
            local_copy,
        })
    }

    fn connection(&self) -> Result<Connection, rusqlite::Error> {
        if let Some(db) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(db);
        }
        open_connection(&self.uri, self.local_copy.is_some())
    }

    fn release(&self, db: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < search_concurrency() {
            idle.push(db);
        }
    }

    /// Runs `work` on one of this file's connections, on the blocking pool, at most
    /// [`search_concurrency`] at a time. The slot is held until the SQLite work has ended, and that
    /// work is interrupted inside SQLite as soon as the returned future is dropped (request timeout,
    /// client gone): a caller that leaves takes its cost with it. Errors: [`SearchError::Interrupted`]
    /// when cancelled, [`SearchError::Database`] for any other SQLite failure.
    pub async fn run<T: Send + 'static>(
        self: Arc<Self>,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, SearchError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SearchError::Interrupted)?;
        let (_cancel_on_drop, cancellation) = CancelOnDrop::new();
        let task = tokio::task::spawn_blocking(move || {
            let _slot = permit;
            if cancellation.is_cancelled() {
                return Err(SearchError::Interrupted);
            }
            let db = self.connection()?;
            let result = cancellation.install(&db, work);
            self.release(db);
            Ok(result?)
        });
        task.await.map_err(|_| SearchError::Interrupted)?
    }

    /// Full-text search, best first, through [`run`](Self::run); the query is checked against the
    /// limits of [`super::terms`] before any slot is taken.
    pub async fn search_async(self: Arc<Self>, query: String, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        self.search_in_async(query, SearchFilter::default(), limit).await
    }

    /// [`search_async`](Self::search_async) narrowed by `filter` (products, versions, source prefix;
    /// one hit per page unless `all_sections`).
    pub async fn search_in_async(
        self: Arc<Self>,
        query: String,
        filter: SearchFilter,
        limit: usize,
    ) -> Result<Vec<SearchHit>, SearchError> {
        let span = tracing::info_span!(
            "kb.search",
            db.system.name = "sqlite",
            db.operation.name = "search",
            error.type = tracing::field::Empty
        );
        let outcome = async {
            let terms = SearchTerms::parse(&query)?;
            let kb = self.clone();
            self.run(move |db| kb.search_on(db, &terms, &filter, limit)).await
        }
        .instrument(span.clone())
        .await;
        if let Err(error) = &outcome {
            let kind = match error {
                SearchError::Terms(_) => "invalid_query",
                SearchError::Database(_) => "sqlite_error",
                SearchError::Interrupted => "interrupted",
            };
            span.record("error.type", kind);
        }
        outcome
    }

    /// The same search, blocking and not cancellable: for measurements and tools in process, not for
    /// the request path.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        self.search_in(query, &SearchFilter::default(), limit)
    }

    /// [`search`](Self::search) narrowed by `filter`.
    pub fn search_in(&self, query: &str, filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let terms = SearchTerms::parse(query)?;
        let db = self.connection()?;
        let result = self.search_on(&db, &terms, filter, limit);
        self.release(db);
        Ok(result?)
    }

    /// The FTS5 `MATCH` expression of the words a search of `query` ranks on this file (its words past [`SearchTerms::selective`]), or `None` when no word is in the file (no
    /// hit). For measurements, which run the same statement without the server around it.
    pub fn planned_search(&self, query: &str) -> Result<Option<String>, SearchError> {
        let terms = SearchTerms::parse(query)?;
        let db = self.connection()?;
        let result = self.selective(&db, &terms);
        self.release(db);
        Ok(result?.map(|(terms, _)| terms.fts_expression()))
    }

    /// The words worth scoring and the rows they match ([`SearchTerms::selective`]).
    fn selective(&self, db: &Connection, terms: &SearchTerms) -> Result<Option<(SearchTerms, u64)>, rusqlite::Error> {
        let rows = self.word_rows.of(db, &self.postings, terms.words())?;
        Ok(terms.selective(&rows))
    }

    /// A search of the words of `terms` worth scoring ([`SearchTerms::selective`]; no word in the
    /// file, no hit): their posting lists ([`PostingCache`]), the candidates ranked by bm25 and
    /// [`fuse`]d ([`super::ranking`]), and the `limit` best read by [`HIT_STATEMENT`].
    fn search_on(
        &self,
        db: &Connection,
        terms: &SearchTerms,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<SearchHit>, rusqlite::Error> {
        let Some((terms, _)) = self.selective(db, terms)? else {
            return Ok(Vec::new());
        };
        let postings = self.postings.of(db, &self.ranking, terms.words())?;
        let candidates = self.ranking.candidates(&postings, filter);
        // Each hit's snippet is computed with the words its chunk holds only: FTS5 seeks every
        // word of the expression to the chunk before snippet() runs, and a word the chunk lacks
        // changes nothing in the snippet.
        let ranked = fuse(&candidates, limit).into_iter().map(|(chunk, score)| {
            let held = terms.words().iter().zip(&postings).filter(|(_, word)| {
                u32::try_from(chunk).is_ok_and(|row| word.chunks.binary_search_by_key(&row, |p| p.row).is_ok())
            });
            (fts_expression(held.map(|(word, _)| word.as_str())), chunk, score)
        });
        hits(db, ranked)
    }
}

/// One hit as it is returned: its page, section and snippet (`?1` the `MATCH` expression of the
/// search's words, `?2` the chunk): a `rowid =` lookup in the FTS index, run for the returned hits
/// only.
const HIT_STATEMENT: &str = "SELECT d.source, d.title, d.product, d.version, c.section, \
                snippet(chunks_fts, 2, '**', '**', '…', 32) \
         FROM chunks_fts \
         JOIN chunks c ON c.id = chunks_fts.rowid \
         JOIN documents d ON d.id = c.document_id \
         WHERE chunks_fts MATCH ?1 AND chunks_fts.rowid = ?2";

/// The hits of `ranked` (each an FTS5 `MATCH` expression of the search's words, a chunk and its
/// fused score, best first, from [`fuse`]), read by [`HIT_STATEMENT`].
fn hits(db: &Connection, ranked: impl Iterator<Item = (String, i64, f64)>) -> Result<Vec<SearchHit>, rusqlite::Error> {
    let mut hit = db.prepare_cached(HIT_STATEMENT)?;
    let found: Vec<Option<SearchHit>> = ranked
        .map(|(expression, chunk, score)| {
            hit.query_row(params![expression, chunk], |row| {
                Ok(SearchHit {
                    source: row.get(0)?,
                    title: row.get(1)?,
                    product: row.get(2)?,
                    version: row.get(3)?,
                    section: row.get(4)?,
                    snippet: row.get(5)?,
                    score,
                })
            })
            .optional()
        })
        .collect::<Result<_, _>>()?;
    // A chunk whose row or document a damaged file lacks is left out, not the whole search.
    Ok(found.into_iter().flatten().collect())
}

/// The same search computed by FTS5 alone ([`fts5_candidates`], then [`fuse`] and the hits), for an
/// FTS5 `expression` (from [`KnowledgeBase::planned_search`]): the server's search before its
/// ranking moved into Rust, kept as the tests' oracle and the benchmarks' baseline.
pub fn fts5_search(
    db: &Connection,
    expression: &str,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Vec<SearchHit>, rusqlite::Error> {
    let candidates = fts5_candidates(db, expression, filter)?;
    let ranked = fuse(&candidates, limit).into_iter();
    hits(db, ranked.map(|(chunk, score)| (expression.to_string(), chunk, score)))
}

/// Loads kb.db files for the reload engine.
pub struct KbLoader {
    pub copy_to_local: bool,
    /// Where local copies go (must be writable; `/tmp` in the container images).
    pub copy_dir: PathBuf,
}

/// Reads a whole file through one handle, hashing it and optionally copying it.
fn hash_and_copy(path: &Path, copy_to: Option<&Path>) -> Result<Served, String> {
    let mut source = std::fs::File::open(path).map_err(|e| crate::file_access::describe_read_error(path, &e))?;
    let mut sink = match copy_to {
        Some(dest) => {
            Some(std::fs::File::create(dest).map_err(|e| format!("cannot create local copy {}: {e}", dest.display()))?)
        }
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = source
            .read(&mut buffer)
            .map_err(|e| crate::file_access::describe_read_error(path, &e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        len += read as u64;
        if let Some(sink) = sink.as_mut() {
            std::io::Write::write_all(sink, &buffer[..read]).map_err(|e| format!("cannot write local copy: {e}"))?;
        }
    }
    Ok(Served {
        digest: hasher.finalize().into(),
        len,
    })
}

impl KbLoader {
    /// Hashes (copying in the same pass when configured) and verifies, unless the bytes turn out to
    /// be `unchanged`'s: then nothing is verified and the copy is removed at once.
    fn load_unless(&self, path: &Path, unchanged: Option<&Served>) -> Result<Option<Loaded<KnowledgeBase>>, String> {
        if !self.copy_to_local {
            let served = hash_and_copy(path, None)?;
            if Some(&served) == unchanged {
                return Ok(None);
            }
            let value = KnowledgeBase::open(path, false, None)?;
            return Ok(Some(Loaded { value, served }));
        }
        std::fs::create_dir_all(&self.copy_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.copy_dir.display()))?;
        let copy = self.copy_dir.join(format!("kb-{}.db", uuid::Uuid::new_v4().simple()));
        let discard = || {
            let _ = std::fs::remove_file(&copy);
        };
        let served = hash_and_copy(path, Some(&copy)).inspect_err(|_| discard())?;
        if Some(&served) == unchanged {
            discard();
            return Ok(None);
        }
        // On failure the KnowledgeBase is never built, so remove the copy here; on success the value
        // owns the copy and removes it when the last request holding it finishes.
        let value = KnowledgeBase::open(&copy, true, Some(copy.clone())).inspect_err(|_| discard())?;
        Ok(Some(Loaded { value, served }))
    }
}

impl Loader for KbLoader {
    type Value = KnowledgeBase;

    fn load(&self, path: &Path) -> Result<Loaded<KnowledgeBase>, String> {
        Ok(self.load_unless(path, None)?.expect("no digest to compare with"))
    }

    /// A file of the served size is hashed first and only copied and verified if its digest differs:
    /// a `touch`, or the same KB downloaded again, costs one read and no disk. A file of another size
    /// has changed for sure, so it is hashed and copied in one pass.
    fn reload(&self, path: &Path, served: &Served) -> Result<Option<Loaded<KnowledgeBase>>, String> {
        let len = std::fs::metadata(path)
            .map_err(|e| crate::file_access::describe_read_error(path, &e))?
            .len();
        if len == served.len && hash_and_copy(path, None)? == *served {
            return Ok(None);
        }
        self.load_unless(path, Some(served))
    }

    /// The served knowledge base's size and build time as gauges: `pgmcp_knowledgebase_documents`,
    /// `pgmcp_knowledgebase_chunks` (counts) and `pgmcp_knowledgebase_built_timestamp_seconds` (Unix seconds, from the
    /// `built_at` kb build recorded; left unset for a file whose `built_at` is not RFC 3339).
    fn serving(&self, kb: &KnowledgeBase) {
        metrics::gauge!("pgmcp_knowledgebase_documents").set(kb.documents as f64);
        metrics::gauge!("pgmcp_knowledgebase_chunks").set(kb.chunks as f64);
        if let Ok(built) = chrono::DateTime::parse_from_rfc3339(&kb.built_at) {
            metrics::gauge!("pgmcp_knowledgebase_built_timestamp_seconds").set(built.timestamp() as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::build::build;
    use crate::kb::ranking::Candidate;

    fn demo_kb(dir: &Path) -> PathBuf {
        let docs = dir.join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("replication.md"), "# Replication\n## Streaming\nWAL records stream to standbys.\n## Logical\nPublications and subscriptions.\n").unwrap();
        std::fs::write(docs.join("vacuum.md"), "# Vacuum\nAutovacuum removes dead tuples.\n").unwrap();
        let out = dir.join("kb.db");
        build(&docs, &out).unwrap();
        out
    }

    fn loader(copy: bool, dir: &Path) -> KbLoader {
        KbLoader {
            copy_to_local: copy,
            copy_dir: dir.join("copies"),
        }
    }

    #[test]
    fn search_ranks_matching_sections_with_source_and_snippet() {
        let dir = tempfile::tempdir().unwrap();
        let kb = loader(false, dir.path()).load(&demo_kb(dir.path())).unwrap().value;
        assert_eq!((kb.documents, kb.chunks), (2, 3));
        let hits = kb.search("how do standbys receive WAL?", 5).unwrap();
        assert_eq!(hits[0].source, "replication.md");
        assert_eq!(hits[0].section, "Replication > Streaming");
        assert!(hits[0].snippet.contains("**WAL**"), "{}", hits[0].snippet);
        assert!(matches!(kb.search("?!", 5), Err(SearchError::Terms(TermsError::Empty))));
        // FTS syntax in user input is inert.
        assert!(kb.search("NEAR(\"x\" AND *", 5).is_ok());
    }

    #[test]
    fn words_in_no_row_are_left_out_without_changing_the_hits() {
        let dir = tempfile::tempdir().unwrap();
        let path = demo_kb(dir.path());
        let kb = loader(false, dir.path()).load(&path).unwrap().value;
        let db = Connection::open(&path).unwrap();
        for (query, kept) in [
            ("how do standbys receive WAL", r#""standbys" OR "WAL""#),
            ("vacuum zebra", r#""vacuum""#),
            ("dead subscriptions", r#""dead" OR "subscriptions""#),
        ] {
            assert_eq!(kb.planned_search(query).unwrap().as_deref(), Some(kept), "{query}");
            let every_word = SearchTerms::parse(query).unwrap().fts_expression();
            let all = fts5_search(&db, &every_word, &SearchFilter::default(), 5).unwrap();
            assert!(!all.is_empty(), "{query}");
            assert_eq!(kb.search(query, 5).unwrap(), all, "{query}");
        }
        assert_eq!(kb.planned_search("zebra giraffe").unwrap(), None);
        assert!(kb.search("zebra giraffe", 5).unwrap().is_empty());
    }

    /// A corpus where words repeat across titles, headings and text at varied frequencies, with
    /// phrases of several tokens (`pg_dump`), stems and diacritics, in two products and versions.
    /// Three trees of random pages of a few words, in `dir`; built with the stored posting lists
    /// unless `without_posting_lists` (both from the same pages: the seed is fixed).
    fn varied_kb(dir: &Path, without_posting_lists: bool) -> PathBuf {
        use crate::kb::build::{BuildOptions, SourceTree, build_with};
        let words = [
            "vacuum",
            "index",
            "indexes",
            "replication",
            "standby",
            "wal",
            "pg_dump",
            "backup",
            "café",
            "planner",
            "join",
            "hash",
            "merge",
            "lock",
            "deadlock",
            "tuple",
            "page",
            "checkpoint",
        ];
        let mut state = 7u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        };
        let mut trees = Vec::new();
        for (t, (product, version)) in [("PostgreSQL", "15"), ("PostgreSQL", "16"), ("MyApp", "1.0")]
            .iter()
            .enumerate()
        {
            let root = dir.join(format!("tree{t}"));
            std::fs::create_dir_all(root.join("sub")).unwrap();
            for d in 0..12 {
                let mut page = format!("# {} {}\n", words[next(words.len())], words[next(words.len())]);
                for _ in 0..1 + next(4) {
                    page += &format!("## {} guide\n", words[next(words.len())]);
                    let text: Vec<&str> = (0..5 + next(60)).map(|_| words[next(words.len())]).collect();
                    page += &text.join(" ");
                    page += "\n";
                }
                let path = if d % 3 == 0 {
                    root.join("sub").join(format!("p{d}.md"))
                } else {
                    root.join(format!("p{d}.md"))
                };
                std::fs::write(path, page).unwrap();
            }
            trees.push(SourceTree {
                root,
                product: product.to_string(),
                version: version.to_string(),
            });
        }
        let out = dir.join(if without_posting_lists {
            "varied-bare.db"
        } else {
            "varied.db"
        });
        build_with(
            &BuildOptions {
                trees,
                without_posting_lists,
                ..BuildOptions::default()
            },
            &out,
        )
        .unwrap();
        out
    }

    #[test]
    fn scores_equal_fts5_bm25() {
        let dir = tempfile::tempdir().unwrap();
        let path = varied_kb(dir.path(), false);
        let kb = loader(false, dir.path()).load(&path).unwrap().value;
        let db = kb.connection().unwrap();
        let filters = [
            SearchFilter::default(),
            SearchFilter {
                all_sections: true,
                ..SearchFilter::default()
            },
            SearchFilter {
                products: vec!["postgresql".into()],
                versions: vec!["16".into(), "1.0".into()],
                ..SearchFilter::default()
            },
            SearchFilter {
                source_prefix: Some("sub/".into()),
                ..SearchFilter::default()
            },
        ];
        let queries = [
            "vacuum",
            "pg_dump backup",
            "indexes",
            "cafe",
            "CAFÉ lock",
            "hash join merge planner",
            "dump pg",
            "standby wal replication checkpoint tuple page deadlock",
            "guide",
            "vacuuming locks",
        ];
        let mut compared = 0;
        for query in queries {
            let terms = SearchTerms::parse(query).unwrap();
            let expression = terms.fts_expression();
            for filter in &filters {
                let postings = kb.postings.of(&db, &kb.ranking, terms.words()).unwrap();
                let mut ours = kb.ranking.candidates(&postings, filter);
                let mut fts5 = fts5_candidates(&db, &expression, filter).unwrap();
                for list in [&mut ours, &mut fts5] {
                    list.sort_by_key(|c| c.chunk);
                }
                assert!(!fts5.is_empty() || query == "dump pg", "{query}: {filter:?}");
                // To the bit: the same formula and order of additions as FTS5's bm25().
                assert_eq!(ours, fts5, "{query}: {filter:?}");
                compared += ours.len();
                let hits = |list: &[Candidate]| fuse(list, 5);
                assert_eq!(hits(&ours), hits(&fts5));
                assert_eq!(
                    kb.search_in(query, filter, 5).unwrap(),
                    fts5_search(&db, &kb.planned_search(query).unwrap().unwrap_or_default(), filter, 5).unwrap()
                );
            }
        }
        assert!(compared > 500, "{compared}");
        kb.release(db);
    }

    /// `kb build --without-posting-lists`: no stored lists, a smaller file, and every search answers
    /// as from the file with them (its words read through FTS5).
    #[test]
    fn a_file_built_without_posting_lists_searches_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let with = varied_kb(dir.path(), false);
        let without = varied_kb(dir.path(), true);
        let size = |path: &Path| std::fs::metadata(path).unwrap().len();
        assert!(size(&without) < size(&with), "{} vs {}", size(&without), size(&with));
        let tables = |path: &Path| -> i64 {
            rusqlite::Connection::open(path)
                .unwrap()
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name IN ('chunk_postings', 'page_postings')",
                    [],
                    |row| row.get(0),
                )
                .unwrap()
        };
        assert_eq!((tables(&with), tables(&without)), (2, 0));
        let [with, without] = [with, without].map(|path| loader(false, dir.path()).load(&path).unwrap().value);
        let filters = [
            SearchFilter::default(),
            SearchFilter {
                products: vec!["myapp".into()],
                ..SearchFilter::default()
            },
        ];
        let mut hits = 0;
        for query in [
            "vacuum",
            "pg_dump backup",
            "standby wal replication checkpoint",
            "dump pg",
            "CAFÉ lock",
        ] {
            for filter in &filters {
                let found = with.search_in(query, filter, 5).unwrap();
                assert_eq!(
                    found,
                    without.search_in(query, filter, 5).unwrap(),
                    "{query}: {filter:?}"
                );
                hits += found.len();
            }
        }
        assert!(hits > 20, "{hits}");
    }

    #[test]
    fn truncated_and_foreign_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let good = demo_kb(dir.path());
        let bytes = std::fs::read(&good).unwrap();
        let truncated = dir.path().join("truncated.db");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(loader(false, dir.path()).load(&truncated).is_err());
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        let error = loader(false, dir.path()).load(&foreign).err().unwrap();
        assert!(error.contains("not a postgres-mcp knowledge base"), "{error}");
        let text = dir.path().join("text.db");
        std::fs::write(&text, "hello").unwrap();
        assert!(loader(false, dir.path()).load(&text).is_err());
    }

    #[test]
    fn damaged_rankings_are_refused_at_load_and_orphan_chunks_are_no_hit() {
        let dir = tempfile::tempdir().unwrap();
        let good = demo_kb(dir.path());
        let damaged = |name: &str, sql: &str| {
            let path = dir.path().join(name);
            std::fs::copy(&good, &path).unwrap();
            let db = Connection::open(&path).unwrap();
            db.execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql}")).unwrap();
            path
        };
        for (name, sql, expected) in [
            (
                "sizes.db",
                "UPDATE chunks_fts_docsize SET sz = x'ffffffffffffffffff' WHERE id = 1",
                "out of range",
            ),
            (
                "sparse.db",
                "UPDATE documents SET id = 16000000 WHERE id = 2; UPDATE chunks SET document_id = 16000000 WHERE document_id = 2",
                "not dense",
            ),
        ] {
            let error = loader(false, dir.path()).load(&damaged(name, sql)).err().unwrap();
            assert!(error.contains(expected), "{name}: {error}");
        }
        let orphan = damaged("orphan.db", "DELETE FROM documents WHERE source = 'vacuum.md'");
        let kb = loader(false, dir.path()).load(&orphan).unwrap().value;
        assert!(kb.search("vacuum", 5).unwrap().is_empty());
        assert_eq!(kb.search("standbys WAL", 5).unwrap()[0].source, "replication.md");
    }

    #[test]
    fn local_copies_are_used_and_removed_with_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = demo_kb(dir.path());
        let kb = loader(true, dir.path()).load(&path).unwrap().value;
        assert_eq!(std::fs::read_dir(dir.path().join("copies")).unwrap().count(), 1);
        assert_eq!(kb.search("vacuum", 1).unwrap()[0].source, "vacuum.md");
        drop(kb);
        assert_eq!(std::fs::read_dir(dir.path().join("copies")).unwrap().count(), 0);
    }
}
