//! A free-text question as a bounded FTS5 query.
//!
//! The cost of a bm25 search grows faster than linearly with the number of OR-ed terms (each term
//! is one more posting list to merge for every candidate row): on the 55 MB benchmark kb.db 1k, 2k,
//! 4k and 8k distinct terms took 0.9, 4.1, 13.2 and 42.7 s, so a single 1 MB `query` held a search
//! slot, and a core, for minutes (issue #13 §B.9). Every query is therefore checked before SQLite
//! sees it: at most [`MAX_QUERY_BYTES`] of text, de-duplicated, and at most [`MAX_TERMS`] distinct
//! words. Both limits are refusals rather than silent truncation: a model that sent a whole
//! document learns the limit from the tool error and can send the question instead, and a search
//! never answers for words it ignored.
//!
//! The limits come from measurement over HTTP on the 55 MB benchmark kb.db
//! (`benchmarks::scale::build_kb(dir, 55, 11)`, release build, 2 cores): a search of N random
//! distinct words took 1.9, 3.7, 11.5, 25, 60, 92, 224, 539 and 2001 ms for N = 1, 8, 32, 64, 128,
//! 256, 512, 1024 and 2048; of the N most frequent words (the worst case: every posting list is
//! long) 40, 53, 125, 132, 245, 439, 642, 1279 and 3534 ms. 64 is the largest count whose random
//! queries stay under 50 ms, and its worst case costs about three single common words; past it,
//! both curves double with every doubling.
//!
//! Within those limits a search still costs in proportion to the rows its words match: FTS5 scores
//! every row that matches any OR-ed word (and counts each word's rows again for its idf), so one
//! word found in most chunks — `the`, `how`, or a project's own name — makes a natural-language
//! question cost as much as scoring the whole file (p99 39 ms on the 10k-document benchmark KB).
//! [`SearchTerms::selective`] therefore keeps the rarest words and drops the commonest ones past
//! [`MAX_SCORED_ROWS`] rows in total: the words bm25 weighs least (idf falls with the number of rows
//! a word is in; FTS5 clamps it to 1e-6 past half the rows), i.e. stop words found by statistics
//! rather than by a list, in any language. The rarest word is always kept, so a question is never
//! answered for none of its words.

use std::collections::HashSet;

/// Longest `query` accepted, in bytes of UTF-8. A question, or a paragraph quoted from an error
/// log, fits; a pasted document does not.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Most distinct words (after de-duplication, ignoring case) in one search; see the module doc.
pub const MAX_TERMS: usize = 64;

/// Rows (chunk matches, summed over the words kept) a search scores at most before it drops its
/// commonest words; see the module doc. Measured on the 10k-document benchmark KB (44,922 chunks,
/// 2 shared cores under load): a search costs about 1 µs per row it scores (bm25 and its idf
/// pass), so questions of 3–12 words took p50 7.4 / p99 28 ms in process with 20,000 (load ~10)
/// and p50 1.9 / p99 7.3 ms with 5,000 (load ~5; `bench --only kb`). A word in fewer rows than this
/// is always searchable alone.
///
/// Relevance sets the floor (`tests/kb_eval.rs`, PostgreSQL 15's manual, 4,908 chunks, hit@5 /
/// MRR@5 shared, repository, held out): with 5,000 the figures equal scoring every word (0.83/0.83,
/// 1.00/0.82, 0.90/0.77) though 35 of the 38 questions lose words, and a search there costs ~1.6×
/// less; 3,000 loses the repository set (0.81/0.78) and 2,000 every set (0.83/0.79, 0.81/0.74,
/// 0.80/0.62), for 2–3× less time.
pub const MAX_SCORED_ROWS: u64 = 5_000;

/// The FTS5 `MATCH` expression of `words` (words of a [`SearchTerms`]: no `"` inside), each quoted,
/// joined by OR.
pub fn fts_expression<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words.map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" OR ")
}

/// Why a query cannot be searched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("query must contain at least one word")]
    Empty,
    #[error("query is {bytes} bytes; the limit is {MAX_QUERY_BYTES} bytes — send the question, not a document")]
    TooLong { bytes: usize },
    #[error("query has {terms} distinct words; the limit is {MAX_TERMS} — send fewer, more specific words")]
    TooManyTerms { terms: usize },
}

/// The words of a query, de-duplicated (first spelling kept, case ignored) and within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// Splits `query` into words (runs of letters, digits and `_`: everything else, FTS5 syntax
    /// included, separates words), refusing it past [`MAX_QUERY_BYTES`] or [`MAX_TERMS`].
    pub fn parse(query: &str) -> Result<SearchTerms, TermsError> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(TermsError::TooLong { bytes: query.len() });
        }
        let mut seen = HashSet::new();
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty() && seen.insert(w.to_lowercase()))
            .map(str::to_string)
            .collect();
        match words.len() {
            0 => Err(TermsError::Empty),
            terms if terms > MAX_TERMS => Err(TermsError::TooManyTerms { terms }),
            _ => Ok(SearchTerms(words)),
        }
    }

    /// The FTS5 `MATCH` expression: every word quoted (so FTS syntax in user input is inert), joined
    /// by OR so that bm25 ranks documents matching more and rarer words first.
    pub fn fts_expression(&self) -> String {
        fts_expression(self.0.iter().map(String::as_str))
    }

    /// The words, first spelling kept, in query order.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// The words worth scoring, given `rows[i]`, the number of rows word `i` of [`words`](Self::words)
    /// matches: words matching nothing are dropped (they cannot change a result); then, rarest first,
    /// words are kept while the rows they match add up to at most [`MAX_SCORED_ROWS`], the rarest one
    /// always. Returns them with the rows they match in total, or `None` when no word matches any
    /// row (the search has no result). Panics if `rows` is not one count per word.
    pub fn selective(&self, rows: &[u64]) -> Option<(SearchTerms, u64)> {
        assert_eq!(rows.len(), self.0.len(), "one row count per word");
        let mut order: Vec<usize> = (0..self.0.len()).filter(|&i| rows[i] > 0).collect();
        order.sort_by_key(|&i| rows[i]);
        let mut kept = vec![false; self.0.len()];
        let mut scored = 0u64;
        for (rank, &i) in order.iter().enumerate() {
            if rank > 0 && scored + rows[i] > MAX_SCORED_ROWS {
                break;
            }
            scored += rows[i];
            kept[i] = true;
        }
        let words: Vec<String> = self
            .0
            .iter()
            .zip(kept)
            .filter(|(_, kept)| *kept)
            .map(|(word, _)| word.clone())
            .collect();
        (!words.is_empty()).then_some((SearchTerms(words), scored))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_deduplicated_and_fts_syntax_is_inert() {
        let terms = SearchTerms::parse("WAL wal, Wal? NEAR(\"x\" AND * standby").unwrap();
        assert_eq!(
            terms.fts_expression(),
            r#""WAL" OR "NEAR" OR "x" OR "AND" OR "standby""#
        );
    }

    #[test]
    fn each_kind_of_oversized_query_is_refused_naming_the_limit() {
        let distinct = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let cases: Vec<(&str, String, Result<usize, TermsError>)> = vec![
            ("no word", "?! ...".into(), Err(TermsError::Empty)),
            ("empty", String::new(), Err(TermsError::Empty)),
            ("at the term limit", distinct(MAX_TERMS), Ok(MAX_TERMS)),
            (
                "one term past it",
                distinct(MAX_TERMS + 1),
                Err(TermsError::TooManyTerms { terms: MAX_TERMS + 1 }),
            ),
            // One word repeated is one term, however often: within the byte limit it is accepted.
            ("one word repeated", "vacuum ".repeat(MAX_QUERY_BYTES / 7), Ok(1)),
            ("same word, any case", "Vacuum VACUUM vacuum".into(), Ok(1)),
            ("at the byte limit", "x".repeat(MAX_QUERY_BYTES), Ok(1)),
            (
                "one byte past it",
                "x".repeat(MAX_QUERY_BYTES + 1),
                Err(TermsError::TooLong {
                    bytes: MAX_QUERY_BYTES + 1,
                }),
            ),
            (
                "1 MB of one word",
                "vacuum ".repeat(150_000),
                Err(TermsError::TooLong { bytes: 1_050_000 }),
            ),
            (
                "multi-byte text past it",
                "é".repeat(MAX_QUERY_BYTES / 2 + 1),
                Err(TermsError::TooLong {
                    bytes: MAX_QUERY_BYTES + 2,
                }),
            ),
        ];
        for (case, query, expected) in cases {
            assert_eq!(SearchTerms::parse(&query).map(|t| t.len()), expected, "{case}");
        }
    }

    #[test]
    fn the_commonest_words_are_dropped_past_the_row_budget_and_the_rarest_always_kept() {
        let terms = SearchTerms::parse("how do I tune autovacuum on the primary").unwrap();
        let words = |t: Option<(SearchTerms, u64)>| t.map(|(t, _)| t.words().join(" "));
        // (case, rows per word: how do I tune autovacuum on the primary, words kept in query order)
        let cases: Vec<(&str, [u64; 8], Option<&str>)> = vec![
            (
                "a small KB: every word is kept",
                [30, 40, 50, 3, 2, 60, 90, 8],
                Some("how do I tune autovacuum on the primary"),
            ),
            (
                "common words past the budget go, commonest first",
                [2_250, 1_000, 1_500, 75, 30, 5_000, 10_000, 225],
                Some("do I tune autovacuum primary"),
            ),
            (
                "words matching nothing are dropped",
                [0, 0, 0, 300, 0, 0, 0, 0],
                Some("tune"),
            ),
            (
                "the rarest word stays even past the budget alone",
                [
                    MAX_SCORED_ROWS * 5,
                    MAX_SCORED_ROWS * 6,
                    MAX_SCORED_ROWS * 7,
                    MAX_SCORED_ROWS * 3,
                    MAX_SCORED_ROWS * 2,
                    MAX_SCORED_ROWS * 8,
                    MAX_SCORED_ROWS * 9,
                    MAX_SCORED_ROWS * 4,
                ],
                Some("autovacuum"),
            ),
            ("nothing matches", [0; 8], None),
            (
                "exactly at the budget: kept",
                [0, 0, 0, MAX_SCORED_ROWS - 100, 100, 0, 0, 0],
                Some("tune autovacuum"),
            ),
        ];
        for (case, rows, expected) in cases {
            assert_eq!(words(terms.selective(&rows)).as_deref(), expected, "{case}");
        }
    }

    #[test]
    fn refusals_name_the_limit() {
        let message = TermsError::TooLong { bytes: 5000 }.to_string();
        assert!(
            message.contains("5000 bytes") && message.contains(&format!("limit is {MAX_QUERY_BYTES} bytes")),
            "{message}"
        );
        let message = TermsError::TooManyTerms { terms: 65 }.to_string();
        assert!(
            message.contains("65 distinct words") && message.contains(&format!("limit is {MAX_TERMS}")),
            "{message}"
        );
    }
}
