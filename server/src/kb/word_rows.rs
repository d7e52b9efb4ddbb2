//! How many rows of a loaded kb.db each query word matches, counted once per file.
//!
//! [`super::terms::SearchTerms::selective`] needs these counts to drop a question's commonest words
//! before they are scored. Counting a word costs one pass over its FTS5 posting list — what bm25's
//! idf step spends on it in every search anyway — so each word is counted on first use and the
//! count is kept with the [`super::KnowledgeBase`] it belongs to: a loaded file never changes (a new
//! file is a new value with an empty cache). The few words whose count is expensive, the common
//! ones, are the ones every question repeats, so after the first questions a search counts nothing.
//!
//! The count is [`PostingCache::rows`]: the length of the word's stored posting list, or FTS5's own
//! count (`MATCH` on the quoted word); either sees the word exactly as the search does — the
//! table's tokenizer, stemming and case folding included — and a word is cached under its spelling
//! as sent.

use std::{collections::HashMap, sync::Mutex};

use rusqlite::Connection;

use super::postings::PostingCache;

/// Words remembered per loaded file, at most, and the bytes of their spellings (a word may be a
/// whole 4 KB query): ≤ ~10 MB in all. Past either, new words are counted for each search that uses
/// them (rare words: short posting lists, cheap to count).
const MAX_CACHED_WORDS: usize = 65_536;
const MAX_CACHED_WORD_BYTES: usize = 4 << 20;

/// The row counts of one loaded file's words.
#[derive(Debug, Default)]
pub struct WordRows {
    counted: Mutex<Counted>,
}

#[derive(Debug, Default)]
struct Counted {
    rows: HashMap<String, u64>,
    /// Bytes of the spellings in `rows`.
    bytes: usize,
}

impl WordRows {
    /// Rows matching each of `words` (same order), from the cache or counted on `db` by
    /// `lists`' [`PostingCache::rows`]. Errors: the count's SQLite error (an interrupted count is
    /// `OperationInterrupted`, as for the search).
    pub fn of(&self, db: &Connection, lists: &PostingCache, words: &[String]) -> Result<Vec<u64>, rusqlite::Error> {
        let mut rows = Vec::with_capacity(words.len());
        let mut missing = Vec::new();
        {
            let counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
            for (i, word) in words.iter().enumerate() {
                match counted.rows.get(word) {
                    Some(&n) => rows.push(n),
                    None => {
                        rows.push(0);
                        missing.push(i);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(rows);
        }
        for &i in &missing {
            rows[i] = lists.rows(db, &words[i])?;
        }
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        for &i in &missing {
            if counted.rows.len() >= MAX_CACHED_WORDS || counted.bytes + words[i].len() > MAX_CACHED_WORD_BYTES {
                break;
            }
            counted.bytes += words[i].len();
            counted.rows.insert(words[i].clone(), rows[i]);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fts() -> Connection {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, section, content, tokenize = 'porter unicode61');
             INSERT INTO chunks_fts VALUES ('Vacuum', 'Autovacuum', 'dead tuples are removed');
             INSERT INTO chunks_fts VALUES ('Replication', 'Streaming', 'the standby replays WAL');
             INSERT INTO chunks_fts VALUES ('Indexes', 'B-tree', 'the planner picks an index');",
        )
        .unwrap();
        db
    }

    #[test]
    fn words_are_counted_as_the_search_tokenizes_them_and_cached() {
        let db = fts();
        let words: Vec<String> = ["The", "vacuum", "indexes", "absent"].map(String::from).into();
        let lists = PostingCache::default();
        // Case folded, stemmed ("indexes" finds "index" and "Indexes"), in any column.
        assert_eq!(WordRows::default().of(&db, &lists, &words).unwrap(), [2, 1, 1, 0]);
        let cache = WordRows::default();
        cache.of(&db, &lists, &words).unwrap();
        // Counted once: the same counts without the table.
        db.execute_batch("DROP TABLE chunks_fts").unwrap();
        assert_eq!(cache.of(&db, &lists, &words).unwrap(), [2, 1, 1, 0]);
    }
}
