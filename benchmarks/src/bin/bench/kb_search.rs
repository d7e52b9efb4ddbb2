//! §3. Knowledge-base search on a generated corpus, in process and over HTTP.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;
use benchmarks::fixtures;
use benchmarks::report::{ms, percentile, rps, table};
use benchmarks::wrk::WrkResult;
use postgres_mcp::{kb::store::KbLoader, watch::Loader};

use crate::Results;
use crate::ctx::{Ctx, LOAD_CONNECTIONS};
use crate::markdown::section;

pub struct KbFigure {
    pub documents: usize,
    pub chunks: usize,
    pub corpus_bytes: u64,
    pub db_bytes: u64,
    pub build: Duration,
    pub searches: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub with_hits: f64,
    pub http: Vec<(u32, WrkResult)>,
}

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let corpus_dir = ctx.work().join("corpus");
    let corpus = fixtures::generate_corpus(&corpus_dir, ctx.plan.kb_documents, 2026)?;
    let db = ctx.work().join("kb-large.db");
    let timer = Instant::now();
    let report = postgres_mcp::kb::build::build(&corpus_dir, &db)?;
    let build = timer.elapsed();
    let db_bytes = std::fs::metadata(&db)?.len();
    eprintln!(
        "  built {} documents, {} chunks, {:.1} MB in {:.1} s",
        report.sources,
        report.chunks,
        db_bytes as f64 / 1e6,
        build.as_secs_f64()
    );

    let loader = KbLoader {
        copy_to_local: false,
        copy_dir: ctx.work().join("tmp"),
    };
    let kb = loader.load(&db).map_err(anyhow::Error::msg)?.value;
    for query in corpus.queries.iter().take(200) {
        kb.search(query, 5)?;
    }
    let mut samples = Vec::with_capacity(ctx.plan.searches);
    let mut with_hits = 0usize;
    for query in corpus.queries.iter().cycle().take(ctx.plan.searches) {
        let timer = Instant::now();
        let hits = kb.search(query, 5)?;
        samples.push(timer.elapsed().as_secs_f64() * 1e6);
        with_hits += usize::from(!hits.is_empty());
    }
    drop(kb);
    samples.sort_by(f64::total_cmp);
    let mean_us = samples.iter().sum::<f64>() / samples.len() as f64;
    let (p50_us, p99_us) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    eprintln!(
        "  in process: {} searches, p50 {p50_us:.0} µs, p99 {p99_us:.0} µs",
        samples.len()
    );

    let server = ctx.ours("ours-large-kb", &ctx.tokens_file.clone(), &db)?;
    let queries = corpus.queries.join("|");
    let mut http_results = Vec::new();
    for c in [16, LOAD_CONNECTIONS] {
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
        ("search_p50", p50_us, "us"),
        ("search_p99", p99_us, "us"),
        ("search_mean", mean_us, "us"),
    ] {
        ctx.rows.push("3. KB search", &subject, None, metric, value, unit);
    }
    results.kb = Some(KbFigure {
        documents: corpus.documents,
        chunks: report.chunks,
        corpus_bytes: corpus.bytes,
        db_bytes,
        build,
        searches: samples.len(),
        p50_us,
        p99_us,
        mean_us,
        with_hits: with_hits as f64 / samples.len() as f64,
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
             {} chunks, kb.db {:.1} MB, built by `kb::build` in {:.1} s. {} searches of 2–3 words \
             (256 distinct queries, limit 5; {:.0} % with hits), one at a time in process:\n",
                kb.documents,
                kb.corpus_bytes as f64 / 1e6,
                kb.chunks,
                kb.db_bytes as f64 / 1e6,
                kb.build.as_secs_f64(),
                kb.searches,
                kb.with_hits * 100.0
            );
            let mut rows = vec![vec![
                "in process, 1 thread".to_string(),
                "—".into(),
                format!("{:.0} µs / {:.0} µs (mean {:.0} µs)", kb.p50_us, kb.p99_us, kb.mean_us),
                format!("{:.0} (1 core)", 1e6 / kb.mean_us),
            ]];
            for (c, result) in &kb.http {
                rows.push(vec![
                    "tools/call over HTTP, queries rotating".into(),
                    c.to_string(),
                    format!("{} / {}", ms(result.p50_ms), ms(result.p99_ms)),
                    rps(result.rps),
                ]);
            }
            md.push_str(&table(&["how", "conns", "p50 / p99", "searches/s"], &rows));
        },
    );
}
