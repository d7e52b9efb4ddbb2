//! A word's posting lists (the rows it matches in `chunks_fts` and `pages_fts`, with its weighted
//! frequency in each), read from the file's own FTS5 index once and kept with the loaded file.
//!
//! [`super::ranking`] scores a search from these lists instead of asking FTS5 to score every
//! matching row again on every search. They are read through FTS5 itself, so a word means exactly
//! what it means to FTS5's `MATCH "word"`:
//! - the word is split into tokens by the index's own tokenizer (case and diacritics folded,
//!   Porter-stemmed; `pg_dump` is two tokens), run on a private in-memory FTS5 table of the
//!   connection (`temp.query_words`: a read-only connection may still write its `temp` schema);
//! - its rows and weighted frequencies come from the stored lists `kb build` writes (below) when
//!   the word is one token, and otherwise from FTS5's own `MATCH "word"` with `bm25()`, whose
//!   one-phrase score is inverted to the frequency ([`RankingIndex::read_through_fts5`]): the cost
//!   of one FTS5 search of that word, never more (a phrase such as `the_of` is not re-assembled
//!   from its tokens' occurrences, which on the manual are 170k);
//! - lists are cached by the word's tokens, not its spelling, so `pg_dump`, `PG_DUMP` and
//!   `pg__dump` are read once, and the cache is bounded in bytes, keys included.
//!
//! `kb build` also stores every single-token word's lists in two tables of its own
//! ([`write_lists`]: `chunk_postings`, `page_postings`, one compact row per token), so that a word
//! seen for the first time costs one indexed read instead of a pass over each of its occurrences
//! (first sight over HTTP on the PostgreSQL manual's questions: p50 10.7 → 3.7 ms). The tables are
//! optional: a file without them (built before them) is read through FTS5 as above, and a server of
//! the previous release ignores them, so neither needs the other rebuilt. A word of several
//! tokens (`pg_dump`, `work_mem`) is a phrase, whose rows need positions, and is always read
//! through FTS5.
//!
//! A loaded file never changes (a new file is a new [`super::KnowledgeBase`] with an empty cache),
//! so a list never goes stale. The words users ask about repeat; reading a list costs about what
//! FTS5 spends on the word in every search, so after the first questions a search reads nothing.
//! The cache is bounded by [`MAX_CACHED_BYTES`]; past it, lists are read per search (correct,
//! as slow as before).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rusqlite::Connection;

use super::format::TOKENIZER;
use super::ranking::{COLUMN_WEIGHTS, Posting, RankingIndex, WordPostings};

/// Bytes of lists (8 a posting), words and tokens kept per loaded file, at most. On the 10k-document
/// benchmark KB (44,922 chunks) every word of its questions takes ~8 MB.
pub const MAX_CACHED_BYTES: usize = 32 << 20;

/// The stored lists' tables ([`write_lists`]), created by `kb build` after its FTS5 tables. A row
/// per token: `list` is the token's postings ascending by row, each as two LEB128 varints, the
/// row's distance from the previous one (from 0) and the weighted frequency.
pub const LISTS_SQL: &str = "
CREATE TABLE chunk_postings (term TEXT PRIMARY KEY, list BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE page_postings (term TEXT PRIMARY KEY, list BLOB NOT NULL) WITHOUT ROWID;
";

/// The `meta` key `kb build` sets, with the stored lists, to the file's `content_hash`: lists in a file
/// whose content they were not written for (tables copied in from another build, a content rewritten
/// by another tool) are not used. A file built before this key was written is read through FTS5,
/// as one without the tables. Lists edited in place are not detected (that needs reading them all).
pub const LISTS_OF_KEY: &str = "posting_lists_of";

/// Creates, on one search connection, the `temp` tables a word is split into tokens through. Run
/// once per connection, before its first search.
pub fn prepare_connection(db: &Connection) -> Result<(), rusqlite::Error> {
    db.execute_batch(&format!(
        "CREATE VIRTUAL TABLE temp.query_words USING fts5(word, tokenize = '{TOKENIZER}');
         CREATE VIRTUAL TABLE temp.query_word_tokens USING fts5vocab(temp, query_words, instance);"
    ))
}

/// The posting lists of one loaded file's words.
#[derive(Debug, Default)]
pub struct PostingCache {
    cache: Mutex<Cached>,
    /// The file has the stored lists of [`write_lists`].
    stored: bool,
}

/// A word as its tokens, the cache's key for its lists.
type Tokens = Arc<[String]>;

#[derive(Debug, Default)]
struct Cached {
    tokens: HashMap<String, Tokens>,
    lists: HashMap<Tokens, Arc<WordPostings>>,
    /// What both maps hold, counted against [`MAX_CACHED_BYTES`].
    bytes: usize,
}

impl Cached {
    /// Whether `bytes` more fit, counting them if so.
    fn admit(&mut self, bytes: usize) -> bool {
        let fits = self.bytes + bytes <= MAX_CACHED_BYTES;
        if fits {
            self.bytes += bytes;
        }
        fits
    }
}

fn tokens_bytes(tokens: &[String]) -> usize {
    tokens.iter().map(|t| t.len() + 24).sum::<usize>() + 16
}

impl PostingCache {
    /// An empty cache for the file `db` reads, using its stored lists when it has them and they
    /// were written for its content ([`LISTS_OF_KEY`]).
    pub fn new(db: &Connection) -> Result<PostingCache, String> {
        let (tables, bound): (i64, bool) = db
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
                               AND name IN ('chunk_postings', 'page_postings')), \
                            coalesce((SELECT value FROM meta WHERE key = '{LISTS_OF_KEY}') \
                                     = (SELECT value FROM meta WHERE key = 'content_hash'), 0)"
                ),
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| format!("schema unreadable: {e}"))?;
        if tables == 2 && !bound {
            tracing::warn!(
                "the stored posting lists were not written for this kb.db's content (meta {LISTS_OF_KEY}); \
                 reading words through FTS5"
            );
        }
        Ok(PostingCache {
            cache: Mutex::default(),
            stored: tables == 2 && bound,
        })
    }

    /// `word`'s tokens, from the cache or split on `db`.
    fn tokens(&self, db: &Connection, word: &str) -> Result<Tokens, rusqlite::Error> {
        if let Some(tokens) = self.lock().tokens.get(word) {
            return Ok(tokens.clone());
        }
        let split: Tokens = tokens(db, word)?.into();
        let mut cache = self.lock();
        if cache.admit(word.len() + 32 + tokens_bytes(&split)) {
            cache.tokens.insert(word.to_string(), split.clone());
        }
        Ok(split)
    }

    /// Each of `words`' posting lists (same order), from the cache or read on `db` (a connection
    /// prepared by [`prepare_connection`]) with `ranking`, the same file's. Errors: the read's
    /// SQLite error (an interrupted read is `OperationInterrupted`, as for any search statement).
    pub fn of(
        &self,
        db: &Connection,
        ranking: &RankingIndex,
        words: &[String],
    ) -> Result<Vec<Arc<WordPostings>>, rusqlite::Error> {
        let mut lists = Vec::with_capacity(words.len());
        for word in words {
            let tokens = self.tokens(db, word)?;
            let cached = self.lock().lists.get(&tokens).cloned();
            let list = match cached {
                Some(list) => list,
                None => {
                    let list = Arc::new(read(db, ranking, word, &tokens, self.stored)?);
                    let mut cache = self.lock();
                    if cache.admit(list.len() * std::mem::size_of::<Posting>() + tokens_bytes(&tokens) + 64) {
                        cache.lists.insert(tokens, list.clone());
                    }
                    list
                }
            };
            lists.push(list);
        }
        Ok(lists)
    }

    /// Rows of `chunks_fts` that `word` matches: the length of its stored list when the file has
    /// them and the word is one token (one indexed read, not a pass over FTS5's list — the count
    /// of a word like `the` on a large file), FTS5's own count (`MATCH "word"`) otherwise.
    pub fn rows(&self, db: &Connection, word: &str) -> Result<u64, rusqlite::Error> {
        if self.stored
            && let [token] = &*self.tokens(db, word)?
            && let Some(rows) = stored_rows(db, "chunk_postings", token)?
        {
            return Ok(rows);
        }
        let mut count =
            db.prepare_cached("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH '\"' || ?1 || '\"'")?;
        Ok(count.query_row([word], |row| row.get::<_, i64>(0))?.max(0) as u64)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads `word`'s posting lists in both tables: stored when the file has them (`stored`) and the
/// word is one token (`tokens`), through FTS5 otherwise.
fn read(
    db: &Connection,
    ranking: &RankingIndex,
    word: &str,
    tokens: &[String],
    stored: bool,
) -> Result<WordPostings, rusqlite::Error> {
    if let (true, [token]) = (stored, tokens) {
        let lists = stored_list(db, "chunk_postings", token).and_then(|chunks| {
            Ok(WordPostings {
                chunks,
                pages: stored_list(db, "page_postings", token)?,
            })
        });
        match lists {
            Ok(lists) => return Ok(lists),
            // A damaged stored list (the file passed SQLite's checks, not ours): FTS5 still knows
            // the word, so the search answers as if the list were not there.
            Err(rusqlite::Error::InvalidColumnType(_, what, _)) => {
                tracing::warn!(
                    list = what,
                    "a stored posting list is damaged; reading the word through FTS5"
                );
            }
            Err(error) => return Err(error),
        }
    }
    ranking.read_through_fts5(db, word)
}

/// One token's stored list in `table` (empty when the token is in no row).
fn stored_list(db: &Connection, table: &str, token: &str) -> Result<Box<[Posting]>, rusqlite::Error> {
    let mut statement = db.prepare_cached(&format!("SELECT list FROM {table} WHERE term = ?1"))?;
    let mut rows = statement.query([token])?;
    let Some(row) = rows.next()? else {
        return Ok(Box::default());
    };
    let bytes = row.get_ref(0)?.as_blob().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, format!("{table}.list of {token:?}"), rusqlite::types::Type::Text)
    })?;
    decode(bytes).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(0, format!("{table}.list of {token:?}"), rusqlite::types::Type::Blob)
    })
}

/// The number of postings in one token's stored list in `table` ([`stored_list`], decoded, so
/// checked: a few nanoseconds a posting, once per word and file). `None` when the stored value is
/// not a list (a damaged file: count through FTS5 instead).
fn stored_rows(db: &Connection, table: &str, token: &str) -> Result<Option<u64>, rusqlite::Error> {
    match stored_list(db, table, token) {
        Ok(list) => Ok(Some(list.len() as u64)),
        Err(rusqlite::Error::InvalidColumnType(..)) => Ok(None),
        Err(error) => Err(error),
    }
}

fn push_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A list as [`LISTS_SQL`] stores it.
fn encode(postings: &[Posting]) -> Vec<u8> {
    let mut out = Vec::with_capacity(postings.len() * 3);
    let mut previous = 0;
    for posting in postings {
        push_varint(&mut out, posting.row - previous);
        push_varint(&mut out, posting.frequency);
        previous = posting.row;
    }
    out
}

/// A stored list, or `None` when it is not one (truncated, or rows not ascending).
fn decode(mut bytes: &[u8]) -> Option<Box<[Posting]>> {
    let mut postings = Vec::with_capacity(bytes.len() / 3);
    let mut row = 0u32;
    while !bytes.is_empty() {
        let distance = read_varint(&mut bytes)?;
        if distance == 0 && !postings.is_empty() {
            return None;
        }
        row = row.checked_add(distance)?;
        postings.push(Posting {
            row,
            frequency: read_varint(&mut bytes)?,
        });
    }
    Some(postings.into_boxed_slice())
}

/// Fills the tables of [`LISTS_SQL`] (which must exist, empty) from the FTS5 index of the same file,
/// one token at a time in the index's term order: memory holds one token's list, and records in
/// `meta` that they were written for `content_hash` ([`LISTS_OF_KEY`]). Run by `kb build` inside its
/// transaction, after the FTS5 tables are complete.
pub fn write_lists(db: &Connection, content_hash: &str) -> Result<(), rusqlite::Error> {
    for (table, instances) in [("chunk_postings", &CHUNK_INSTANCES), ("page_postings", &PAGE_INSTANCES)] {
        let fts = instances.fts;
        db.execute_batch(&format!(
            "CREATE VIRTUAL TABLE temp.{fts}_instances USING fts5vocab(main, {fts}, instance);"
        ))?;
        let mut insert = db.prepare(&format!("INSERT INTO {table} (term, list) VALUES (?1, ?2)"))?;
        let mut read = db.prepare(&format!("SELECT term, doc, col FROM temp.{fts}_instances"))?;
        let mut rows = read.query([])?;
        let mut term = String::new();
        let mut list: Vec<Posting> = Vec::new();
        let mut flush = |term: &str, list: &mut Vec<Posting>| -> Result<(), rusqlite::Error> {
            if !list.is_empty() {
                insert.execute(rusqlite::params![term, encode(list)])?;
                list.clear();
            }
            Ok(())
        };
        while let Some(row) = rows.next()? {
            let token = row.get_ref(0)?.as_str()?;
            if token != term {
                flush(&term, &mut list)?;
                term = token.to_string();
            }
            let column = instances.column(&row.get::<_, String>(2)?)?;
            add_occurrence(&mut list, row.get(1)?, column);
        }
        flush(&term, &mut list)?;
        drop(rows);
        drop(read);
        db.execute_batch(&format!("DROP TABLE temp.{fts}_instances;"))?;
    }
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![LISTS_OF_KEY, content_hash],
    )?;
    Ok(())
}

/// Adds one occurrence in `column` of `row` to a list being built in row order.
fn add_occurrence(list: &mut Vec<Posting>, row: u32, column: usize) {
    let weight = COLUMN_WEIGHTS[column];
    match list.last_mut() {
        Some(last) if last.row == row => last.frequency += weight,
        _ => list.push(Posting { row, frequency: weight }),
    }
}

/// `word` as the index's tokenizer splits it, in order. The private table is emptied first, not
/// after: a search interrupted between the two statements leaves its word behind, and the next
/// word must still be read alone.
fn tokens(db: &Connection, word: &str) -> Result<Vec<String>, rusqlite::Error> {
    db.prepare_cached("DELETE FROM temp.query_words")?.execute([])?;
    db.prepare_cached("INSERT INTO temp.query_words (rowid, word) VALUES (1, ?1)")?
        .execute([word])?;
    db.prepare_cached("SELECT term FROM temp.query_word_tokens ORDER BY offset")?
        .query_map([], |row| row.get(0))?
        .collect()
}

/// An `fts5vocab` instance table [`write_lists`] reads, and its FTS5 table's column names, in
/// [`COLUMN_WEIGHTS`]' order (the vocabulary table names the column of each occurrence).
struct Instances {
    fts: &'static str,
    columns: [&'static str; 3],
}

const CHUNK_INSTANCES: Instances = Instances {
    fts: "chunks_fts",
    columns: ["title", "section", "content"],
};
const PAGE_INSTANCES: Instances = Instances {
    fts: "pages_fts",
    columns: ["title", "sections", "content"],
};

impl Instances {
    /// The index of the column the vocabulary table calls `name`.
    fn column(&self, name: &str) -> Result<usize, rusqlite::Error> {
        self.columns
            .iter()
            .position(|column| *column == name)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_broken_ones_are_refused() {
        let list = [(1, 10), (2, 1), (300, 15), (70_000, 4_000_000)].map(|(row, frequency)| Posting { row, frequency });
        let bytes = encode(&list);
        assert_eq!(decode(&bytes).as_deref(), Some(&list[..]));
        assert_eq!(decode(&[]).as_deref(), Some(&[][..]));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "truncated");
        assert_eq!(decode(&[0x01, 0x01, 0x00, 0x01]), None, "a row twice");
        assert_eq!(decode(&[0xff; 6]), None, "a varint past 32 bits");
    }

    #[test]
    fn a_word_left_behind_by_an_interrupted_read_does_not_block_the_next() {
        let db = Connection::open_in_memory().unwrap();
        prepare_connection(&db).unwrap();
        db.execute(
            "INSERT INTO temp.query_words (rowid, word) VALUES (1, 'left behind')",
            [],
        )
        .unwrap();
        assert_eq!(tokens(&db, "Vacuuming pg_dump").unwrap(), ["vacuum", "pg", "dump"]);
        assert_eq!(tokens(&db, "café").unwrap(), ["cafe"]);
    }

    #[test]
    fn stored_lists_equal_the_lists_read_through_fts5() {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(
            docs.join("a.md"),
            "# Vacuum and pg_dump\n## Vacuuming\nVACUUM removes dead tuples; vacuum often. Café.\n## Dumps\npg_dump writes a dump.\n",
        )
        .unwrap();
        std::fs::write(
            docs.join("b.md"),
            "# Indexes\nAn index on a café table; dump it with pg dump.\n",
        )
        .unwrap();
        let out = dir.path().join("kb.db");
        crate::kb::build::build(&docs, &out).unwrap();
        let db = Connection::open(&out).unwrap();
        prepare_connection(&db).unwrap();
        let cache = PostingCache::new(&db).unwrap();
        assert!(cache.stored);
        let ranking = RankingIndex::load(&db).unwrap();
        let read = |word: &str, stored| read(&db, &ranking, word, &tokens(&db, word).unwrap(), stored);
        let mut seen = 0;
        for word in [
            "vacuum",
            "VACUUMING",
            "cafe",
            "dump",
            "pg_dump",
            "indexes",
            "absent",
            "tuples",
        ] {
            let stored = read(word, true).unwrap();
            assert_eq!(stored, read(word, false).unwrap(), "{word}");
            let rows: i64 = db
                .query_row(
                    "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH '\"' || ?1 || '\"'",
                    [word],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(stored.chunks.len() as i64, rows, "{word}");
            assert_eq!(cache.rows(&db, word).unwrap() as i64, rows, "{word}");
            seen += stored.len();
        }
        assert!(seen > 10, "{seen}");
        // "vacuum" in a.md: at least the title (10), the heading "Vacuuming" (4), the text twice.
        let vacuum = read("vacuum", true).unwrap();
        assert_eq!(vacuum.pages[0].row, 1);
        assert!(vacuum.pages[0].frequency >= 10 + 4 + 2, "{vacuum:?}");
        // Lists not written for this content (copied in from another build) are not used.
        db.execute(
            &format!("UPDATE meta SET value = 'another build' WHERE key = '{LISTS_OF_KEY}'"),
            [],
        )
        .unwrap();
        assert!(!PostingCache::new(&db).unwrap().stored);
        db.execute(&format!("DELETE FROM meta WHERE key = '{LISTS_OF_KEY}'"), [])
            .unwrap();
        assert!(!PostingCache::new(&db).unwrap().stored, "a file built before the key");
        db.execute(
            &format!(
                "INSERT INTO meta (key, value) SELECT '{LISTS_OF_KEY}', value FROM meta WHERE key = 'content_hash'"
            ),
            [],
        )
        .unwrap();
        assert!(PostingCache::new(&db).unwrap().stored);
        // "pg_dump" is a phrase: b.md has "pg dump" (adjacent), so both pages.
        assert_eq!(read("pg_dump", true).unwrap().pages.len(), 2);
        // Spellings of the same tokens share one cache entry.
        for word in ["pg_dump", "PG_DUMP", "pg__dump", "_pg_dump_"] {
            cache.of(&db, &ranking, &[word.to_string()]).unwrap();
        }
        assert_eq!(cache.lock().lists.len(), 1);
        // A damaged stored list is read through FTS5 instead.
        let expected = read("vacuum", false).unwrap();
        for damage in ["x'81'", "'text'"] {
            db.execute(
                &format!("UPDATE chunk_postings SET list = {damage} WHERE term = 'vacuum'"),
                [],
            )
            .unwrap();
            assert_eq!(read("vacuum", true).unwrap(), expected, "{damage}");
            let fresh = PostingCache::new(&db).unwrap();
            assert_eq!(
                fresh.rows(&db, "vacuum").unwrap(),
                expected.chunks.len() as u64,
                "{damage}"
            );
        }
    }
}
