//! A word's posting lists (the rows it matches in `chunks_fts` and `pages_fts`, with its weighted
//! frequency in each), read from the file's own FTS5 index once and kept with the loaded file.
//!
//! [`super::ranking`] scores a search from these lists instead of asking FTS5 to score every
//! matching row again on every search. They are read through FTS5 itself, so a word means exactly
//! what it means to FTS5's `MATCH "word"`:
//! - the word is split into tokens by the index's own tokenizer (case and diacritics folded,
//!   Porter-stemmed; `pg_dump` is two tokens), run on a private in-memory FTS5 table of the
//!   connection (`temp.query_words`: a read-only connection may still write its `temp` schema);
//! - each token's occurrences come from an `fts5vocab` table of type `instance` (SQLite's FTS5
//!   manual §7), constrained by `term =`, which FTS5 answers from that term's own posting list;
//! - a word of several tokens is a phrase: an occurrence is a run of its tokens at consecutive
//!   offsets of one column, as FTS5 matches phrases.
//!
//! A loaded file never changes (a new file is a new [`super::KnowledgeBase`] with an empty cache),
//! so a list never goes stale. The words users ask about repeat; reading a list costs about what
//! FTS5 spends on the word in every search, so after the first questions a search reads nothing.
//! The cache is bounded by [`MAX_CACHED_POSTINGS`]; past it, lists are read per search (correct,
//! as slow as before).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use rusqlite::Connection;

use super::format::TOKENIZER;
use super::ranking::{COLUMN_WEIGHTS, Posting, WordPostings};

/// Postings kept per loaded file, at most: 8 bytes each, so ≤ 32 MB. On the 10k-document
/// benchmark KB (44,922 chunks) every word of its 10,000 questions takes ~1 M.
pub const MAX_CACHED_POSTINGS: usize = 4 << 20;

/// Creates, on one search connection, the `temp` tables posting lists are read through. Run once
/// per connection, before its first search.
pub fn prepare_connection(db: &Connection) -> Result<(), rusqlite::Error> {
    db.execute_batch(&format!(
        "CREATE VIRTUAL TABLE temp.chunk_instances USING fts5vocab(main, chunks_fts, instance);
         CREATE VIRTUAL TABLE temp.page_instances USING fts5vocab(main, pages_fts, instance);
         CREATE VIRTUAL TABLE temp.query_words USING fts5(word, tokenize = '{TOKENIZER}');
         CREATE VIRTUAL TABLE temp.query_word_tokens USING fts5vocab(temp, query_words, instance);"
    ))
}

/// The posting lists of one loaded file's words.
#[derive(Debug, Default)]
pub struct PostingCache {
    words: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    lists: HashMap<String, Arc<WordPostings>>,
    postings: usize,
}

impl PostingCache {
    /// Each of `words`' posting lists (same order), from the cache or read on `db` (a connection
    /// prepared by [`prepare_connection`]). Errors: the read's SQLite error (an interrupted read is
    /// `OperationInterrupted`, as for any search statement).
    pub fn of(&self, db: &Connection, words: &[String]) -> Result<Vec<Arc<WordPostings>>, rusqlite::Error> {
        let mut lists = Vec::with_capacity(words.len());
        for word in words {
            let cached = self.lock().lists.get(word).cloned();
            let list = match cached {
                Some(list) => list,
                None => {
                    let list = Arc::new(read(db, word)?);
                    let mut cache = self.lock();
                    if cache.postings + list.len() <= MAX_CACHED_POSTINGS {
                        cache.postings += list.len();
                        cache.lists.insert(word.clone(), list.clone());
                    }
                    list
                }
            };
            lists.push(list);
        }
        Ok(lists)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.words.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads `word`'s posting lists in both tables.
fn read(db: &Connection, word: &str) -> Result<WordPostings, rusqlite::Error> {
    let tokens = tokens(db, word)?;
    Ok(WordPostings {
        chunks: phrase_postings(db, &CHUNK_INSTANCES, &tokens)?,
        pages: phrase_postings(db, &PAGE_INSTANCES, &tokens)?,
    })
}

/// `word` as the index's tokenizer splits it, in order.
fn tokens(db: &Connection, word: &str) -> Result<Vec<String>, rusqlite::Error> {
    db.prepare_cached("INSERT INTO temp.query_words (rowid, word) VALUES (1, ?1)")?
        .execute([word])?;
    let tokens = db
        .prepare_cached("SELECT term FROM temp.query_word_tokens ORDER BY offset")?
        .query_map([], |row| row.get(0))?
        .collect();
    db.prepare_cached("DELETE FROM temp.query_words")?.execute([])?;
    tokens
}

/// An `fts5vocab` instance table of [`prepare_connection`] and its FTS5 table's column names, in
/// [`COLUMN_WEIGHTS`]' order (the vocabulary table names the column of each occurrence).
struct Instances {
    table: &'static str,
    columns: [&'static str; 3],
}

const CHUNK_INSTANCES: Instances = Instances {
    table: "temp.chunk_instances",
    columns: ["title", "section", "content"],
};
const PAGE_INSTANCES: Instances = Instances {
    table: "temp.page_instances",
    columns: ["title", "sections", "content"],
};

/// One occurrence of a token: row, column index, offset in the column.
type Occurrence = (u32, usize, u32);

/// Every occurrence of `token` in the table behind `instances`.
fn occurrences(db: &Connection, instances: &Instances, token: &str) -> Result<Vec<Occurrence>, rusqlite::Error> {
    let mut statement = db.prepare_cached(&format!("SELECT doc, col, offset FROM {} WHERE term = ?1", instances.table))?;
    statement
        .query_map([token], |row| {
            let name: String = row.get(1)?;
            let column = instances
                .columns
                .iter()
                .position(|column| *column == name)
                .ok_or(rusqlite::Error::InvalidColumnName(name))?;
            Ok((row.get::<_, u32>(0)?, column, row.get::<_, u32>(2)?))
        })?
        .collect()
}

/// The rows where `tokens` occur as a phrase (at consecutive offsets of one column), each with the
/// phrase's weighted frequency there, ascending by row. No tokens, no rows.
fn phrase_postings(db: &Connection, instances: &Instances, tokens: &[String]) -> Result<Box<[Posting]>, rusqlite::Error> {
    let Some((first, rest)) = tokens.split_first() else {
        return Ok(Box::default());
    };
    let mut starts = occurrences(db, instances, first)?;
    for (distance, token) in (1u32..).zip(rest) {
        let next: HashSet<Occurrence> = occurrences(db, instances, token)?.into_iter().collect();
        starts.retain(|&(row, column, offset)| next.contains(&(row, column, offset + distance)));
    }
    starts.sort_unstable_by_key(|&(row, ..)| row);
    let mut postings: Vec<Posting> = Vec::new();
    for (row, column, _) in starts {
        let weight = COLUMN_WEIGHTS[column];
        match postings.last_mut() {
            Some(last) if last.row == row => last.frequency += weight,
            _ => postings.push(Posting { row, frequency: weight }),
        }
    }
    Ok(postings.into_boxed_slice())
}
