//! The limit of a knowledge-base search ranked inside SQLite: FTS5 computing the server's ranking
//! itself (`kb::store::fts5_search`: bm25 in both FTS5 tables, the fusion of their ranks, the hits'
//! snippets — the server's search before it ranked in Rust from posting lists) on the same kb.db
//! in a bare `rusqlite` loop — one connection with the server's settings
//! ([`postgres_mcp::kb::store::configure`]), the statements prepared once, and nothing else (no
//! pool, no thread hop, no cancellation, no query parsing). The server's search returns the same
//! hits (`kb::store::tests::scores_equal_fts5_bm25`); its time beside this one is issue #16's
//! "ours vs bare".

use std::{
    path::Path,
    time::{Duration, Instant},
};

use postgres_mcp::kb::{filter::SearchFilter, store::fts5_search};
use rusqlite::{Connection, OpenFlags};

use crate::report::percentile;

/// One read-only connection to a kb.db.
pub struct BareSearch {
    db: Connection,
}

impl BareSearch {
    pub fn open(kb: &Path) -> anyhow::Result<BareSearch> {
        let db = Connection::open_with_flags(kb, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        postgres_mcp::kb::store::configure(&db)?;
        Ok(BareSearch { db })
    }

    /// Runs the server's search ([`fts5_search`]) with FTS5 `expression` (from
    /// `KnowledgeBase::planned_search`, or every word of a question for the cost before words were
    /// dropped) and the filter of a search without filters (one hit per page), reading every column
    /// of at most `limit` hits; returns the number of hits.
    pub fn search(&self, expression: &str, limit: usize) -> anyhow::Result<usize> {
        Ok(fts5_search(&self.db, expression, &SearchFilter::default(), limit)?.len())
    }
}

/// Latencies of repeated calls, in µs.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

impl Latency {
    /// Times `call` on each of `inputs` in turn, cycling, for at least `calls` calls and at least
    /// `min_time` (short calls are repeated until the clock has something to measure).
    pub fn measure<T>(
        inputs: &[T],
        calls: usize,
        min_time: Duration,
        mut call: impl FnMut(&T) -> anyhow::Result<()>,
    ) -> anyhow::Result<Latency> {
        let mut samples = Vec::with_capacity(calls);
        let started = Instant::now();
        for input in inputs.iter().cycle() {
            if samples.len() >= calls && started.elapsed() >= min_time {
                break;
            }
            let timer = Instant::now();
            call(input)?;
            samples.push(timer.elapsed().as_secs_f64() * 1e6);
        }
        samples.sort_by(f64::total_cmp);
        Ok(Latency {
            calls: samples.len(),
            p50_us: percentile(&samples, 0.50),
            p99_us: percentile(&samples, 0.99),
            mean_us: samples.iter().sum::<f64>() / samples.len() as f64,
        })
    }

    /// `p50 / p99 (mean)` in µs, for a table cell.
    pub fn cell(&self) -> String {
        format!(
            "{:.0} µs / {:.0} µs (mean {:.0} µs)",
            self.p50_us, self.p99_us, self.mean_us
        )
    }
}
