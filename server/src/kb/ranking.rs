//! Ranking a search's candidates in Rust: FTS5's bm25, computed from posting lists, and the fusion
//! of the section's and the page's ranks.
//!
//! Why not FTS5's own `bm25()`: a search fuses two rankings (a chunk's, and its page's in a second
//! table) after the filters, one hit per page, so FTS5 cannot stop early — every row any kept word
//! matches must be scored, in both tables. FTS5 does that through the SQL machine, row by row
//! (`bm25()` re-reads every instance of every phrase of the row, then a materialised CTE, a join to
//! `chunks`, a `GROUP BY` sort, a join to `pages_fts`'s own scan and to `documents`): about 3 µs per
//! matching row, p99 36 ms for questions on the 10k-document benchmark KB (issue #16 §Speed, goal
//! ≤ 5 ms). The same arithmetic over posting lists already in memory ([`super::postings`]) is a few
//! nanoseconds per posting.
//!
//! The score is FTS5's, to the bit: same formula, same constants, same order of the additions
//! (`fts5Bm25Function` in SQLite's `fts5_aux.c`, documented in the FTS5 manual §5.1.1), so the
//! ranking — and every relevance figure measured with FTS5 — is unchanged. The test
//! `scores_equal_fts5_bm25` compares the two on a real index, and `fts5_candidates` keeps FTS5's own
//! computation as the oracle and as the benchmarks' baseline.
//!
//! What is kept per loaded file, in memory ([`RankingIndex`]): each row's length in tokens (FTS5's
//! `%_docsize`, read once at load), each chunk's document, and each document's product, version
//! and source for the filters: 12–16 bytes per chunk plus the documents' metadata.

use std::sync::Arc;

use rusqlite::Connection;

use super::filter::SearchFilter;

/// bm25's `k1` and `b`, FTS5's values (`fts5_aux.c`).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// The weight of each column in bm25's term frequency (title, section path, text), as the search
/// statement used to pass them to `bm25(chunks_fts, 10.0, 4.0, 1.0)`: a section *about* the words
/// outranks one that mentions them in passing. Both FTS5 tables have the columns in this order.
pub const COLUMN_WEIGHTS: [u32; 3] = [10, 4, 1];

/// The constant of [`fuse`]'s reciprocal rank fusion (a hit at rank r of one ranking adds
/// 1 / (k + r)): 60, as its authors recommend, not tuned here — on the PostgreSQL manual's
/// questions every k from 20 to 200 gives the same hit@5 and MRR@5 (k = 5: one question fewer).
pub const RRF_K: f64 = 60.0;

/// One row a word matches in one FTS5 table: its rowid and the word's weighted frequency there
/// (Σ over the word's occurrences of its column's [`COLUMN_WEIGHTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub row: u32,
    pub frequency: u32,
}

/// A word's rows in both tables, ascending by row.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WordPostings {
    pub chunks: Box<[Posting]>,
    pub pages: Box<[Posting]>,
}

impl WordPostings {
    /// Postings held, for the cache's bound.
    pub fn len(&self) -> usize {
        self.chunks.len() + self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One FTS5 table's statistics: each row's length in tokens (every column), by rowid.
#[derive(Debug, Default)]
struct TableStats {
    /// `lengths[rowid]`; rowids without a row are 0 and never scored.
    lengths: Vec<u32>,
    rows: u64,
    /// Mean tokens per row (FTS5's `avgdl`: total tokens / rows).
    average: f64,
}

/// A document's filterable fields.
#[derive(Debug)]
struct DocumentMeta {
    source: Box<str>,
    product: Box<str>,
    version: Box<str>,
}

/// The per-file data ranking needs besides posting lists; see the module doc.
#[derive(Debug, Default)]
pub struct RankingIndex {
    chunks: TableStats,
    pages: TableStats,
    /// `chunk_document[chunk rowid]`: its document's id (0: no such chunk).
    chunk_document: Vec<u32>,
    /// `documents[id]`.
    documents: Vec<Option<DocumentMeta>>,
}

/// Rowids past this are refused at load: the index is a vector by rowid, and `kb build` numbers
/// rows from 1, so a file with larger ids was not written by it (or holds ~16 M chunks, far past
/// what one file serves well).
const MAX_ROWID: i64 = 1 << 24;

fn rowid(id: i64, what: &str) -> Result<usize, String> {
    if (1..=MAX_ROWID).contains(&id) {
        Ok(id as usize)
    } else {
        Err(format!(
            "{what} id {id} is outside 1..={MAX_ROWID}; rebuild the file with `kb build`"
        ))
    }
}

/// Refuses a table whose largest id is far past its row count: the vectors by rowid would be
/// mostly holes (an 80 KB file with one document numbered 16 M would take 800 MB), and `kb build`
/// numbers rows 1, 2, 3 …
fn dense(db: &Connection, table: &str, id: &str) -> Result<(), String> {
    let (rows, largest): (i64, Option<i64>) = db
        .query_row(&format!("SELECT count(*), max({id}) FROM {table}"), [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(|e| format!("{table} unreadable: {e}"))?;
    match largest {
        Some(largest) if largest > 2 * rows + 1024 => Err(format!(
            "{table} ids are not dense (largest {largest} for {rows} rows); rebuild the file with `kb build`"
        )),
        _ => Ok(()),
    }
}

fn set<T: Default + Clone>(vector: &mut Vec<T>, index: usize, value: T) {
    if vector.len() <= index {
        vector.resize(index + 1, T::default());
    }
    vector[index] = value;
}

/// Reads an SQLite varint (big-endian groups of 7 bits, the high bit set on all but the last;
/// a 9th byte carries 8 bits), as FTS5 writes `%_docsize.sz`. Returns it and the bytes it took.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some(((value << 8) | byte as u64, 9));
        }
        value = (value << 7) | (byte & 0x7f) as u64;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

impl TableStats {
    /// Reads `{table}_docsize`: one varint per column per row, the row's length its sum.
    fn load(db: &Connection, table: &str) -> Result<TableStats, String> {
        let mut stats = TableStats::default();
        let mut total = 0u64;
        let mut statement = db
            .prepare(&format!("SELECT id, sz FROM {table}_docsize"))
            .map_err(|e| format!("{table} sizes unreadable: {e}"))?;
        let mut rows = statement
            .query([])
            .map_err(|e| format!("{table} sizes unreadable: {e}"))?;
        while let Some(row) = rows.next().map_err(|e| format!("{table} sizes unreadable: {e}"))? {
            let id = rowid(row.get(0).map_err(|e| e.to_string())?, table)?;
            let sizes: Vec<u8> = row.get(1).map_err(|e| format!("{table} sizes unreadable: {e}"))?;
            let (mut length, mut rest) = (0u32, &sizes[..]);
            while !rest.is_empty() {
                let (size, used) = varint(rest).ok_or_else(|| format!("{table} sizes of row {id} are truncated"))?;
                length = u32::try_from(size)
                    .ok()
                    .and_then(|size| length.checked_add(size))
                    .ok_or_else(|| format!("{table} sizes of row {id} are out of range"))?;
                rest = &rest[used..];
            }
            total += u64::from(length);
            stats.rows += 1;
            set(&mut stats.lengths, id, length);
        }
        stats.average = if stats.rows == 0 {
            0.0
        } else {
            total as f64 / stats.rows as f64
        };
        Ok(stats)
    }

    /// FTS5's idf of a word found in `hits` rows: ln((N − n + 0.5) / (n + 0.5)), at least 1e-6.
    fn idf(&self, hits: usize) -> f64 {
        let (rows, hits) = (self.rows as f64, hits as f64);
        let idf = ((rows - hits + 0.5) / (hits + 0.5)).ln();
        if idf <= 0.0 { 1e-6 } else { idf }
    }

    /// bm25 of every row matching any of `words` (each the word's postings in this table,
    /// ascending by row), ascending by row, negated as FTS5 returns it (lower is better). The
    /// lists are merged (no hashing: each step takes the lowest row among the lists' heads), and a
    /// row's terms are added word by word, in `words`' order, as FTS5 adds its phrases, so the sums
    /// are FTS5's to the bit.
    fn score(&self, words: &[&[Posting]]) -> Vec<(u32, f64)> {
        let idf: Vec<f64> = words.iter().map(|list| self.idf(list.len())).collect();
        let mut heads = vec![0usize; words.len()];
        let mut scored = Vec::with_capacity(words.iter().map(|list| list.len()).max().unwrap_or(0));
        loop {
            let next = words
                .iter()
                .zip(&heads)
                .filter_map(|(list, &head)| list.get(head).map(|posting| posting.row))
                .min();
            let Some(row) = next else {
                return scored;
            };
            let length = self.lengths.get(row as usize).copied().unwrap_or(0) as f64;
            let mut sum = 0.0;
            for ((list, head), idf) in words.iter().zip(heads.iter_mut()).zip(&idf) {
                if let Some(posting) = list.get(*head).filter(|posting| posting.row == row) {
                    let frequency = posting.frequency as f64;
                    sum += idf * ((frequency * (K1 + 1.0)) / (frequency + K1 * (1.0 - B + B * length / self.average)));
                    *head += 1;
                }
            }
            scored.push((row, -sum));
        }
    }
}

impl TableStats {
    /// `word`'s postings in `table` through FTS5: the rows `MATCH "word"` finds and, for each, the
    /// word's weighted frequency recovered from FTS5's `bm25()` of that one-phrase query. With one
    /// phrase, bm25 s = −a·f / (f + K) where a = idf·(k1 + 1) and K = k1·(1 − b + b·D/avgdl), so
    /// f = −s·K / (s + a); f is a sum of integer weights, so rounding recovers it exactly. This
    /// costs one FTS5 search of the word — a phrase's rows need its tokens' positions, which only
    /// FTS5 reads cheaply.
    fn read_through_fts5(&self, db: &Connection, table: &str, word: &str) -> Result<Box<[Posting]>, rusqlite::Error> {
        let [title, section, content] = COLUMN_WEIGHTS;
        let mut statement = db.prepare_cached(&format!(
            "SELECT rowid, bm25({table}, {title}.0, {section}.0, {content}.0) FROM {table} \
             WHERE {table} MATCH '\"' || ?1 || '\"'"
        ))?;
        let scored: Vec<(i64, f64)> = statement
            .query_map([word], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let a = self.idf(scored.len()) * (K1 + 1.0);
        let mut postings: Vec<Posting> = scored
            .into_iter()
            .filter_map(|(row, score)| {
                let row = u32::try_from(row).ok()?;
                let length = self.lengths.get(row as usize).copied().unwrap_or(0) as f64;
                let k = K1 * (1.0 - B + B * length / self.average);
                let frequency = (-score * k / (score + a)).round();
                Some(Posting {
                    row,
                    frequency: frequency.clamp(1.0, u32::MAX as f64) as u32,
                })
            })
            .collect();
        postings.sort_unstable_by_key(|posting| posting.row);
        Ok(postings.into_boxed_slice())
    }
}

impl RankingIndex {
    /// `word`'s posting lists in both tables through FTS5 ([`TableStats::read_through_fts5`]): for a
    /// word of several tokens, or a file without stored lists.
    pub fn read_through_fts5(&self, db: &Connection, word: &str) -> Result<WordPostings, rusqlite::Error> {
        Ok(WordPostings {
            chunks: self.chunks.read_through_fts5(db, "chunks_fts", word)?,
            pages: self.pages.read_through_fts5(db, "pages_fts", word)?,
        })
    }
}

/// One candidate hit: a chunk, its section's and its page's bm25 (lower is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub chunk: i64,
    pub section: f64,
    pub page: f64,
}

impl DocumentMeta {
    /// The filter's rules as the SQL statement had them: product and version compared with
    /// SQLite's `NOCASE` (ASCII case folding), the prefix on the source's characters.
    fn passes(&self, filter: &SearchFilter) -> bool {
        let any_of =
            |values: &[String], field: &str| values.is_empty() || values.iter().any(|v| v.eq_ignore_ascii_case(field));
        any_of(&filter.products, &self.product)
            && any_of(&filter.versions, &self.version)
            && filter.prefix().is_none_or(|prefix| self.source.starts_with(prefix))
    }
}

impl RankingIndex {
    /// Reads a kb.db's sizes, chunk-to-document map and document metadata. Errors name the table
    /// that could not be read.
    pub fn load(db: &Connection) -> Result<RankingIndex, String> {
        for (table, id) in [
            ("chunks_fts_docsize", "id"),
            ("pages_fts_docsize", "id"),
            ("chunks", "id"),
            ("documents", "id"),
        ] {
            dense(db, table, id)?;
        }
        let mut index = RankingIndex {
            chunks: TableStats::load(db, "chunks_fts")?,
            pages: TableStats::load(db, "pages_fts")?,
            ..RankingIndex::default()
        };
        let unreadable = |e: rusqlite::Error| format!("chunks unreadable: {e}");
        let mut statement = db.prepare("SELECT id, document_id FROM chunks").map_err(unreadable)?;
        let mut rows = statement.query([]).map_err(unreadable)?;
        while let Some(row) = rows.next().map_err(unreadable)? {
            let chunk = rowid(row.get(0).map_err(unreadable)?, "chunk")?;
            let document = rowid(row.get(1).map_err(unreadable)?, "document")?;
            set(&mut index.chunk_document, chunk, document as u32);
        }
        let unreadable = |e: rusqlite::Error| format!("documents unreadable: {e}");
        let mut statement = db
            .prepare("SELECT id, source, product, version FROM documents")
            .map_err(unreadable)?;
        let mut rows = statement.query([]).map_err(unreadable)?;
        while let Some(row) = rows.next().map_err(unreadable)? {
            let id = rowid(row.get(0).map_err(unreadable)?, "document")?;
            let text = |i| row.get::<_, String>(i).map(String::into_boxed_str).map_err(unreadable);
            let meta = DocumentMeta {
                source: text(1)?,
                product: text(2)?,
                version: text(3)?,
            };
            if index.documents.len() <= id {
                index.documents.resize_with(id + 1, || None);
            }
            index.documents[id] = Some(meta);
        }
        Ok(index)
    }

    /// The candidates of a search of `words` (each word's postings, in query order), narrowed by
    /// `filter`: the best chunk of each page (the lowest bm25; the lowest rowid among equals), or
    /// every chunk when `filter.all_sections`, each with its section's and its page's bm25 — what
    /// [`fts5_candidates`] computes with FTS5, in no particular order.
    pub fn candidates(&self, words: &[Arc<WordPostings>], filter: &SearchFilter) -> Vec<Candidate> {
        let lists = |table: fn(&WordPostings) -> &[Posting]| words.iter().map(|w| table(w)).collect::<Vec<_>>();
        let sections = self.chunks.score(&lists(|w| &w.chunks));
        let pages = self.pages.score(&lists(|w| &w.pages));
        let unfiltered = filter.products.is_empty() && filter.versions.is_empty() && filter.prefix().is_none();
        // (document, candidate), in chunk order: a document's chunks are consecutive rows in a file
        // `kb build` wrote, so its best chunk is kept by comparing with the last entry only.
        let mut kept: Vec<(u32, Candidate)> = Vec::new();
        let mut in_order = true;
        for (chunk, section) in sections {
            let Some(&document) = self.chunk_document.get(chunk as usize) else {
                continue;
            };
            let Ok(at) = pages.binary_search_by_key(&document, |&(row, _)| row) else {
                continue;
            };
            // A chunk whose document is missing (a file not written by `kb build`) is no hit, as
            // the join to `documents` made it.
            let Some(meta) = self.documents.get(document as usize).and_then(Option::as_ref) else {
                continue;
            };
            if !unfiltered && !meta.passes(filter) {
                continue;
            }
            let candidate = Candidate {
                chunk: chunk as i64,
                section,
                page: pages[at].1,
            };
            match kept.last_mut() {
                Some((last, held)) if !filter.all_sections && *last == document => {
                    if section < held.section {
                        *held = candidate;
                    }
                }
                Some((last, _)) if *last > document => {
                    in_order = false;
                    kept.push((document, candidate));
                }
                _ => kept.push((document, candidate)),
            }
        }
        if !in_order && !filter.all_sections {
            // Chunks of a document that are not consecutive (a file written otherwise): best first
            // within each document, then one per document.
            kept.sort_by(|(a, x), (b, y)| {
                a.cmp(b)
                    .then(x.section.total_cmp(&y.section))
                    .then(x.chunk.cmp(&y.chunk))
            });
            kept.dedup_by_key(|(document, _)| *document);
        }
        kept.into_iter().map(|(_, candidate)| candidate).collect()
    }
}

/// The `limit` best candidates with their scores, best first, by reciprocal rank fusion (RRF,
/// Cormack, Clarke and Büttcher, SIGIR 2009) of two rankings: by the section's bm25, and by the
/// page's. The section says where the answer is, the page whether the page as a whole is about the
/// question. Fusing the two *ranks* instead of adding the two bm25 scores (the ranking before) keeps
/// the one whose scale happens to be larger for a query from deciding alone; on the PostgreSQL
/// manual it lifted MRR@5 on the repository and held-out questions (0.82 → 0.85, 0.77 → 0.78) and
/// left the shared ones as they were (0.83; see `tests/kb_eval.rs`). A score is
/// 1 / ([`RRF_K`] + rank by section) + 1 / ([`RRF_K`] + rank by page), ranks from 1, equal bm25
/// scores sharing a rank; equal scores are ordered by the sum of the two bm25 scores, then by chunk.
pub fn fuse(candidates: &[Candidate], limit: usize) -> Vec<(i64, f64)> {
    let mut score = vec![0.0; candidates.len()];
    for key in [|c: &Candidate| c.section, |c: &Candidate| c.page] {
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_unstable_by(|&a, &b| key(&candidates[a]).total_cmp(&key(&candidates[b])));
        let mut rank = 0;
        for (position, &i) in order.iter().enumerate() {
            if position == 0 || key(&candidates[i]) != key(&candidates[order[position - 1]]) {
                rank = position + 1;
            }
            score[i] += 1.0 / (RRF_K + rank as f64);
        }
    }
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    let better = |&a: &usize, &b: &usize| {
        let (x, y) = (&candidates[a], &candidates[b]);
        score[b]
            .total_cmp(&score[a])
            .then((x.section + x.page).total_cmp(&(y.section + y.page)))
            .then(x.chunk.cmp(&y.chunk))
    };
    if limit < order.len() {
        order.select_nth_unstable_by(limit, better);
        order.truncate(limit);
    }
    order.sort_unstable_by(better);
    order.into_iter().map(|i| (candidates[i].chunk, score[i])).collect()
}

/// FTS5's own computation of [`RankingIndex::candidates`]: one statement, `bm25()` in both tables.
/// `expression` is the FTS5 `MATCH` expression of the same words. The oracle of the tests and the
/// benchmarks' baseline (the ranking before issue #16's speed work); not on the request path.
pub fn fts5_candidates(
    db: &Connection,
    expression: &str,
    filter: &SearchFilter,
) -> Result<Vec<Candidate>, rusqlite::Error> {
    let mut statement = db.prepare_cached(FTS5_CANDIDATES_STATEMENT)?;
    let bound = rusqlite::params![
        expression,
        filter.products_json(),
        filter.versions_json(),
        filter.prefix(),
        filter.all_sections,
    ];
    statement
        .query_map(bound, |row| {
            Ok(Candidate {
                chunk: row.get(0)?,
                section: row.get(1)?,
                page: row.get(2)?,
            })
        })?
        .collect()
}

/// [`fts5_candidates`]' statement: the chunks matching `?1` with their bm25 (`MATERIALIZED`:
/// bm25() only runs in its own table's scan), the pages' bm25, the best chunk per document
/// (`min(rank)` with bare columns, SQLite's "Bare columns in an aggregate query") unless `?5`
/// (`all_sections`), and the filters (`?2`/`?3` products/versions as JSON arrays or NULL, `?4` the
/// source prefix or NULL).
const FTS5_CANDIDATES_STATEMENT: &str = "WITH matches AS MATERIALIZED ( \
             SELECT rowid AS id, bm25(chunks_fts, 10.0, 4.0, 1.0) AS rank \
             FROM chunks_fts WHERE chunks_fts MATCH ?1 \
         ), pages AS MATERIALIZED ( \
             SELECT rowid AS document_id, bm25(pages_fts, 10.0, 4.0, 1.0) AS rank \
             FROM pages_fts WHERE pages_fts MATCH ?1 \
         ), sections AS ( \
             SELECT m.id, c.document_id, min(m.rank) AS rank \
             FROM matches m JOIN chunks c ON c.id = m.id \
             GROUP BY CASE WHEN ?5 THEN m.id ELSE c.document_id END \
         ) \
         SELECT s.id, s.rank, p.rank \
         FROM sections s JOIN pages p ON p.document_id = s.document_id \
         JOIN documents d ON d.id = s.document_id \
         WHERE (?2 IS NULL OR d.product IN (SELECT value FROM json_each(?2))) \
           AND (?3 IS NULL OR d.version IN (SELECT value FROM json_each(?3))) \
           AND (?4 IS NULL OR substr(d.source, 1, length(?4)) = ?4)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_read_as_sqlite_writes_them() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0x82, 0x81, 0x7f]), Some(((2 << 14) | (1 << 7) | 0x7f, 3)));
        assert_eq!(varint(&[0x81]), None);
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
    }

    fn postings(list: &[(u32, u32)]) -> Box<[Posting]> {
        list.iter()
            .map(|&(row, frequency)| Posting { row, frequency })
            .collect()
    }

    #[test]
    fn each_page_answers_once_even_when_its_chunks_are_not_consecutive() {
        let stats = |lengths: Vec<u32>| TableStats {
            rows: lengths.len() as u64 - 1,
            average: 10.0,
            lengths,
        };
        // Chunks 1 and 3 belong to document 1, chunk 2 to document 2 (a file not written by
        // `kb build`, which numbers a document's chunks consecutively).
        let index = RankingIndex {
            chunks: stats(vec![0, 10, 10, 10]),
            pages: stats(vec![0, 20, 10]),
            chunk_document: vec![0, 1, 2, 1],
            documents: (0..3)
                .map(|id| {
                    (id > 0).then(|| DocumentMeta {
                        source: format!("{id}.md").into(),
                        product: "".into(),
                        version: "".into(),
                    })
                })
                .collect(),
        };
        let word = Arc::new(WordPostings {
            chunks: postings(&[(1, 1), (2, 1), (3, 5)]),
            pages: postings(&[(1, 6), (2, 1)]),
        });
        let mut found = index.candidates(std::slice::from_ref(&word), &SearchFilter::default());
        found.sort_by_key(|c| c.chunk);
        assert_eq!(found.iter().map(|c| c.chunk).collect::<Vec<_>>(), [2, 3], "{found:?}");
        assert!(found[1].section < found[0].section);
        let every = SearchFilter {
            all_sections: true,
            ..SearchFilter::default()
        };
        assert_eq!(index.candidates(&[word], &every).len(), 3);
    }

    #[test]
    fn two_rankings_are_fused_by_rank_not_by_score() {
        let c = |chunk, section, page| Candidate { chunk, section, page };
        // 1 is first by section by far and last by page; 2 is second and first: the sum of the
        // scores would put 1 first (-31 against -14), the fusion of the ranks puts 2 first.
        let candidates = [c(1, -30.0, -1.0), c(2, -9.0, -5.0), c(3, -1.0, -4.0)];
        let fused = fuse(&candidates, 5);
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), [2, 1, 3]);
        let expected = 1.0 / (RRF_K + 2.0) + 1.0 / (RRF_K + 1.0);
        assert!((fused[0].1 - expected).abs() < 1e-12, "{fused:?}");
        assert_eq!(fuse(&candidates, 1), fused[..1]);
        assert!(fuse(&[], 5).is_empty());
        // Equal bm25 scores share a rank; equal fused scores go to the better sum, then the chunk.
        let tied = [c(7, -2.0, -3.0), c(5, -2.0, -3.0), c(6, -3.0, -2.0), c(4, -1.0, -1.0)];
        let fused = fuse(&tied, 5);
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), [5, 7, 6, 4]);
        assert_eq!(fused[0].1, fused[1].1);
        assert_eq!(fuse(&tied, 2), fused[..2]);
    }
}
