//! §3. Knowledge-base search on a generated corpus, in process and over HTTP.
//!
//! Two query sets over the same 10k-document KB: the historical 2–3-word queries, and questions of
//! 3–12 words drawn with the corpus's own word frequencies (issue #16's goal: in-process p99 ≤ 5 ms).
//! Each in-process figure stands beside the physical limit, the same statement on the same kb.db in
//! a bare rusqlite loop ([`BareSearch`]), and the bare cost of scoring every word of the question
//! (what a search cost before it dropped the commonest words).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use benchmarks::bare_search::{BareSearch, Latency};
use benchmarks::fixtures;
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::WrkResult;
use postgres_mcp::kb::build::BuildReport;
use postgres_mcp::{
    kb::{store::KbLoader, terms::SearchTerms},
    watch::Loader,
};

use crate::Results;
use crate::ctx::{Ctx, LOAD_CONNECTIONS};
use crate::markdown::section;

pub struct KbFigure {
    pub documents: usize,
    pub chunks: usize,
    pub corpus_bytes: u64,
    pub db_bytes: u64,
    pub build: Duration,
    /// 2–3-word queries: ours in process, and the same statement bare.
    pub short: Latency,
    pub short_bare: Latency,
    pub with_hits: f64,
    /// 3–12-word questions: ours, bare with the words ours searches, bare with every word.
    pub questions: Latency,
    /// Each question once on a freshly loaded file: every word's posting list read from FTS5.
    pub questions_first: Latency,
    pub questions_bare: Latency,
    pub questions_every_word: Latency,
    pub question_words: f64,
    pub question_words_kept: f64,
    pub http: Vec<(u32, WrkResult)>,
}

/// Ours (`KnowledgeBase::search`, blocking, in process) on `queries`, after one warm-up pass.
fn ours(kb: &postgres_mcp::kb::KnowledgeBase, queries: &[String], calls: usize) -> anyhow::Result<Latency> {
    for query in queries {
        kb.search(query, 5)?;
    }
    Latency::measure(queries, calls, Duration::ZERO, |query| {
        kb.search(query, 5)?;
        Ok(())
    })
}

/// The bare statement on FTS5 `expressions`, after one warm-up pass.
fn bare(db: &BareSearch, planned: &[String], calls: usize) -> anyhow::Result<Latency> {
    for expression in planned {
        db.search(expression, 5)?;
    }
    Latency::measure(planned, calls, Duration::ZERO, |expression| {
        db.search(expression, 5)?;
        Ok(())
    })
}

/// Builds `db` from the documents under `from` with `kb::build`, reporting it on stderr: the build's
/// report, how long it took and the file's size in bytes.
pub fn build_kb(from: &Path, db: &Path) -> anyhow::Result<(BuildReport, Duration, u64)> {
    let timer = Instant::now();
    let report = postgres_mcp::kb::build::build(from, db)?;
    let build = timer.elapsed();
    let db_bytes = std::fs::metadata(db)?.len();
    eprintln!(
        "  built {} documents, {} chunks, {:.1} MB in {:.1} s",
        report.sources,
        report.chunks,
        db_bytes as f64 / 1e6,
        build.as_secs_f64()
    );
    Ok((report, build, db_bytes))
}

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let corpus_dir = ctx.work().join("corpus");
    let corpus = fixtures::generate_corpus(&corpus_dir, ctx.plan.kb_documents, 2026)?;
    let db = ctx.work().join("kb-large.db");
    let (report, build, db_bytes) = build_kb(&corpus_dir, &db)?;

    let loader = KbLoader {
        copy_to_local: false,
        copy_dir: ctx.work().join("tmp"),
    };
    // First sight: each question once on a freshly loaded file, its words' posting lists not yet read.
    let fresh = loader.load(&db).map_err(anyhow::Error::msg)?.value;
    let questions_first = Latency::measure(&corpus.questions, corpus.questions.len(), Duration::ZERO, |query| {
        fresh.search(query, 5)?;
        Ok(())
    })?;
    drop(fresh);
    let kb = loader.load(&db).map_err(anyhow::Error::msg)?.value;
    let searches = ctx.plan.searches;
    let with_hits = corpus
        .queries
        .iter()
        .map(|q| kb.search(q, 5).map(|hits| !hits.is_empty()))
        .collect::<Result<Vec<_>, _>>()?;
    let with_hits = with_hits.iter().filter(|&&hit| hit).count() as f64 / with_hits.len() as f64;
    // The expression ours runs for each query (its commonest words dropped), and every word of it.
    let searched = |queries: &[String]| -> anyhow::Result<Vec<String>> {
        let mut planned = Vec::new();
        for query in queries {
            planned.extend(kb.planned_search(query)?);
        }
        Ok(planned)
    };
    // Before issue #16: every word scored, by the one statement every search ran.
    let every_word = |queries: &[String]| -> anyhow::Result<Vec<String>> {
        queries
            .iter()
            .map(|q| Ok(SearchTerms::parse(q)?.fts_expression()))
            .collect()
    };
    let bare_db = BareSearch::open(&db)?;
    let short = ours(&kb, &corpus.queries, searches)?;
    let short_bare = bare(&bare_db, &searched(&corpus.queries)?, searches)?;
    let questions = ours(&kb, &corpus.questions, searches)?;
    let questions_bare = bare(&bare_db, &searched(&corpus.questions)?, searches)?;
    let questions_every_word = bare(&bare_db, &every_word(&corpus.questions)?, searches / 5)?;
    let words = |planned: Vec<String>| planned.iter().map(|e| e.split(" OR ").count()).sum::<usize>() as f64;
    let question_words = words(every_word(&corpus.questions)?) / corpus.questions.len() as f64;
    let question_words_kept = words(searched(&corpus.questions)?) / corpus.questions.len() as f64;
    drop(kb);
    eprintln!(
        "  in process, 2–3 words: ours {}; bare {}",
        short.cell(),
        short_bare.cell()
    );
    eprintln!(
        "  in process, questions of 3–12 words: ours {} (first sight {}); bare {}; bare, every word {}",
        questions.cell(),
        questions_first.cell(),
        questions_bare.cell(),
        questions_every_word.cell()
    );

    let server = ctx.ours("ours-large-kb", &ctx.tokens_file.clone(), &db)?;
    let queries = corpus.questions.join("|");
    let mut http_results = Vec::new();
    for c in [1, 16, LOAD_CONNECTIONS] {
        let load = ctx
            .load("tools_call_varied.lua", server.addr, "/mcp", c)
            .env("QUERIES", &queries);
        let result = ctx.wrk(&format!("tools/call, {}-document KB", corpus.documents), &load)?;
        if result.non_2xx > 0 {
            bail!("{} non-2xx answers from the large KB", result.non_2xx);
        }
        ctx.rows.wrk("3. KB search", "tools/call over HTTP", c, &result);
        http_results.push((c, result));
    }
    ctx.process(
        results,
        &server,
        &format!("ours, {}-document KB; after tools/call load", corpus.documents),
    );
    let subject = format!("{} documents in process", corpus.documents);
    for (metric, value, unit) in [
        ("build_time", build.as_secs_f64(), "s"),
        ("kb_db_size", db_bytes as f64 / 1e6, "MB"),
        ("chunks", report.chunks as f64, "count"),
    ] {
        ctx.rows.push("3. KB search", &subject, None, metric, value, unit);
    }
    for (what, latency) in [
        ("2-3 words, ours", &short),
        ("2-3 words, bare rusqlite", &short_bare),
        ("questions, ours", &questions),
        ("questions, ours, first sight", &questions_first),
        ("questions, bare rusqlite", &questions_bare),
        (
            "questions, before: bare, every word, one statement",
            &questions_every_word,
        ),
    ] {
        let subject = format!("{subject}, {what}");
        ctx.rows
            .push("3. KB search", &subject, None, "search_p50", latency.p50_us, "us");
        ctx.rows
            .push("3. KB search", &subject, None, "search_p99", latency.p99_us, "us");
        ctx.rows
            .push("3. KB search", &subject, None, "search_mean", latency.mean_us, "us");
    }
    ctx.rows.push(
        "3. KB search",
        &format!("{subject}, questions"),
        None,
        "ours_over_bare_mean",
        questions.mean_us / questions_bare.mean_us,
        "x",
    );
    results.kb = Some(KbFigure {
        documents: corpus.documents,
        chunks: report.chunks,
        corpus_bytes: corpus.bytes,
        db_bytes,
        build,
        short,
        short_bare,
        with_hits,
        questions,
        questions_first,
        questions_bare,
        questions_every_word,
        question_words,
        question_words_kept,
        http: http_results,
    });
    Ok(())
}

/// The section's table.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    let figures = results.kb.as_ref();
    section(
        md,
        results,
        "3. Knowledge-base search, generated corpus",
        "3. KB search",
        figures,
        |md, kb| {
            let _ = writeln!(
                md,
                "{} generated Markdown documents ({:.1} MB; seeded, Zipf-like vocabulary of 20k words) → \
             {} chunks, kb.db {:.1} MB, built by `kb::build` in {:.1} s. Two sets of 256 queries, limit \
             5, one at a time in process ({} searches each, after a warm-up pass): 2–3 words ({:.0} % \
             with hits), and questions of 3–12 words drawn with the corpus's word frequencies ({:.1} \
             distinct words on average, {:.1} of them searched: the commonest dropped past \
             `kb::terms::MAX_SCORED_ROWS`). Ours ranks in Rust from posting lists read once per word \
             (`kb::ranking`, `kb::postings`); *first sight* is each question once on a freshly loaded \
             file, every list read from FTS5. `bare` is FTS5's own computation of the same ranking \
             (`kb::store::fts5_search`: the statements every search ran before) on the same kb.db in \
             a bare rusqlite loop, the limit of doing it in SQLite; goal: questions p99 ≤ 5 ms.\n",
                kb.documents,
                kb.corpus_bytes as f64 / 1e6,
                kb.chunks,
                kb.db_bytes as f64 / 1e6,
                kb.build.as_secs_f64(),
                kb.questions.calls,
                kb.with_hits * 100.0,
                kb.question_words,
                kb.question_words_kept,
            );
            let row = |how: &str, latency: &Latency, bare: Option<&Latency>| {
                vec![
                    how.to_string(),
                    "—".into(),
                    latency.cell(),
                    format!("{:.0} (1 core)", 1e6 / latency.mean_us),
                    bare.map_or("—".into(), |bare| format!("{:.2}×", latency.mean_us / bare.mean_us)),
                ]
            };
            let mut rows = vec![
                row("2–3 words, ours in process", &kb.short, Some(&kb.short_bare)),
                row("2–3 words, bare rusqlite", &kb.short_bare, None),
                row(
                    "**questions**, ours in process",
                    &kb.questions,
                    Some(&kb.questions_bare),
                ),
                row(
                    "questions, ours, first sight (fresh file)",
                    &kb.questions_first,
                    Some(&kb.questions_bare),
                ),
                row("questions, bare rusqlite", &kb.questions_bare, None),
                row(
                    "questions, before (bare: every word scored, one statement)",
                    &kb.questions_every_word,
                    None,
                ),
            ];
            for (c, result) in &kb.http {
                rows.push(vec![
                    "questions, tools/call over HTTP, rotating".into(),
                    c.to_string(),
                    format!("{} / {}", ms(result.p50_ms), ms(result.p99_ms)),
                    rps(result.rps),
                    "—".into(),
                ]);
            }
            md.push_str(&table(
                &["how", "conns", "p50 / p99", "searches/s", "mean, ours/bare"],
                &rows,
            ));
        },
    );
}
