//! §10. Knowledge-base search on real documentation: PostgreSQL 15's HTML manual (Debian package
//! `postgresql-doc-15`), built by `kb::build` and served by the release server (issue #16 §Figures:
//! per-search p50/p99 over HTTP at 1 and 16 connections, goal p99 ≤ 5 ms at 1).
//!
//! The questions are the relevance evaluation's (`../shared/search-eval/questions.tsv` and
//! `server/tests/kb_eval/*.tsv`): the kind assistants send. Three ways over HTTP, one server:
//! - *first sight*: each question once on a freshly started server, one at a time, as
//!   `eval.py` asks them — every word's posting list is read from FTS5 on the way;
//! - *again*: the same pass once more;
//! - wrk at 1 and 16 connections, rotating through the questions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use benchmarks::bare_search::Latency;
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::WrkResult;

use crate::Results;
use crate::ctx::{Ctx, post};
use crate::kb_search::build_kb;
use crate::markdown::section;

const CORPUS: &str = "/usr/share/doc/postgresql-doc-15/html";
const CONCURRENCIES: [u32; 2] = [1, 16];

pub struct ManualFigure {
    pub documents: usize,
    pub chunks: usize,
    pub db_bytes: u64,
    pub build: Duration,
    pub questions: usize,
    pub first_sight: Latency,
    pub again: Latency,
    pub http: Vec<(u32, WrkResult)>,
}

/// The questions of every question file found: the shared set (in the nearest ancestor's
/// `shared/search-eval`) and the repository's own.
fn questions(root: &Path) -> anyhow::Result<Vec<String>> {
    let shared = root
        .ancestors()
        .map(|dir| dir.join("shared/search-eval/questions.tsv"))
        .find(|file| file.is_file());
    let files: Vec<PathBuf> = shared
        .into_iter()
        .chain(["questions.tsv", "held_out.tsv"].map(|f| root.join("server/tests/kb_eval").join(f)))
        .collect();
    let mut questions = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        questions.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split('\t').next())
                .map(str::to_string),
        );
    }
    Ok(questions)
}

/// Each of `questions` once over HTTP, one at a time.
fn one_pass(ctx: &Ctx, addr: std::net::SocketAddr, questions: &[String]) -> anyhow::Result<Latency> {
    Latency::measure(questions, questions.len(), Duration::ZERO, |question| {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "search_knowledgebase", "arguments": {"query": question, "limit": 5}}
        });
        let response = post(addr, &ctx.token, &body.to_string())?;
        if String::from_utf8_lossy(&response.body).contains("\"isError\":true") {
            bail!("search of {question:?} failed");
        }
        Ok(())
    })
}

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let corpus = std::env::var_os("PGMCP_EVAL_CORPUS").map_or_else(|| PathBuf::from(CORPUS), PathBuf::from);
    if !corpus.is_dir() {
        bail!("{} is missing (apt-get install postgresql-doc-15)", corpus.display());
    }
    let questions = questions(&ctx.root)?;
    let db = ctx.work().join("kb-manual.db");
    let (report, build, db_bytes) = build_kb(&corpus, &db)?;
    let server = ctx.ours("ours-manual-kb", &ctx.tokens_file.clone(), &db)?;
    let first_sight = one_pass(ctx, server.addr, &questions)?;
    let again = one_pass(ctx, server.addr, &questions)?;
    eprintln!(
        "  {} questions over HTTP, one at a time: first sight {}; again {}",
        questions.len(),
        first_sight.cell(),
        again.cell()
    );
    let rotation = questions.join("|");
    let mut http = Vec::new();
    for c in CONCURRENCIES {
        let load = ctx
            .load("tools_call_varied.lua", server.addr, "/mcp", c)
            .env("QUERIES", &rotation);
        let result = ctx.wrk("tools/call, PostgreSQL manual KB", &load)?;
        if result.non_2xx > 0 {
            bail!("{} non-2xx answers from the manual's KB", result.non_2xx);
        }
        ctx.rows
            .wrk("10. KB, PostgreSQL manual", "tools/call over HTTP", c, &result);
        http.push((c, result));
    }
    for (what, latency) in [("first sight", &first_sight), ("again", &again)] {
        let subject = format!("{} questions over HTTP, one at a time, {what}", questions.len());
        ctx.rows.push(
            "10. KB, PostgreSQL manual",
            &subject,
            None,
            "search_p50",
            latency.p50_us,
            "us",
        );
        ctx.rows.push(
            "10. KB, PostgreSQL manual",
            &subject,
            None,
            "search_p99",
            latency.p99_us,
            "us",
        );
    }
    results.manual = Some(ManualFigure {
        documents: report.sources,
        chunks: report.chunks,
        db_bytes,
        build,
        questions: questions.len(),
        first_sight,
        again,
        http,
    });
    Ok(())
}

/// The section's table.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    section(
        md,
        results,
        "10. Knowledge-base search, PostgreSQL manual",
        "10. KB, PostgreSQL manual",
        results.manual.as_ref(),
        |md, kb| {
            let _ = writeln!(
                md,
                "PostgreSQL 15's HTML manual (`postgresql-doc-15`) → {} documents, {} chunks, kb.db \
                 {:.1} MB, built by `kb::build` in {:.1} s, served by the release server. The {} \
                 questions of the relevance evaluation (shared, repository, held out), `tools/call \
                 search_knowledgebase`, limit 5. Goal: p99 ≤ 5 ms at 1 connection.\n",
                kb.documents,
                kb.chunks,
                kb.db_bytes as f64 / 1e6,
                kb.build.as_secs_f64(),
                kb.questions,
            );
            let mut rows = vec![
                vec![
                    "each question once, fresh server (first sight)".into(),
                    "1".into(),
                    kb.first_sight.cell(),
                    "—".into(),
                ],
                vec![
                    "each question once more".into(),
                    "1".into(),
                    kb.again.cell(),
                    "—".into(),
                ],
            ];
            for (c, result) in &kb.http {
                rows.push(vec![
                    "rotating, wrk".into(),
                    c.to_string(),
                    format!("{} / {}", ms(result.p50_ms), ms(result.p99_ms)),
                    rps(result.rps),
                ]);
            }
            md.push_str(&table(&["how", "conns", "p50 / p99", "searches/s"], &rows));
        },
    );
}
