//! §2. The token check with 10, 1k and 100k tokens in tokens.yaml, and at 100k tokens the load time
//! of the file and the memory of a process serving it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use benchmarks::fixtures;
use benchmarks::procs::status_field;
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::WrkResult;
use postgres_mcp::auth::tokens::TokenSet;

use crate::Results;
use crate::ctx::{Ctx, LOAD_CONNECTIONS};
use crate::markdown::{mib, not_measured};

pub struct TokenFigure {
    pub count: usize,
    pub verify_ns: f64,
    pub load: WrkResult,
    pub start_to_healthy: Duration,
    pub peak_rss_kib: Option<u64>,
}

/// Goals at 100k tokens (issue "HA at production scale", §4): a credential rotation is a reload of
/// tokens.yaml, and every instance holds the whole set.
pub const TOKEN_LOAD_GOAL_MS: f64 = 100.0;

pub const TOKEN_RSS_GOAL_MIB: f64 = 30.0;

/// `TokenSet::parse` runs per figure (the median is kept).
pub const TOKEN_LOAD_RUNS: usize = 7;

/// The largest token file: how long it takes to load and what a process serving it holds.
pub struct TokenLoadFigure {
    pub count: usize,
    pub file_bytes: u64,
    /// Parse + build of the set in process, every run sorted.
    pub runs_ms: Vec<f64>,
    /// `serve --tokens FILE`, no KB: VmRSS when /health first answered 200, and VmHWM then.
    pub rss_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    pub start_to_healthy: Duration,
}

impl TokenLoadFigure {
    pub fn median_ms(&self) -> f64 {
        self.runs_ms[self.runs_ms.len() / 2]
    }
}

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    for &count in &ctx.plan.token_counts.clone() {
        let path = ctx.work().join(format!("tokens-{count}.yaml"));
        fixtures::write_tokens(&path, count, &ctx.token)?;

        // In process: one verify (SHA-256 + directory and binary search of the sorted digests +
        // constant-time compare).
        let set = TokenSet::parse(&std::fs::read_to_string(&path)?).map_err(anyhow::Error::msg)?;
        let now = chrono::Utc::now();
        let rounds = 200_000;
        let timer = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(set.verify(std::hint::black_box(&ctx.token), now).is_ok());
        }
        let verify_ns = timer.elapsed().as_nanos() as f64 / rounds as f64;
        drop(set);

        let name = format!("ours-{count}-tokens");
        let server = ctx.ours(&name, &path, &ctx.demo_kb.clone())?;
        let load = ctx.load("ping.lua", server.addr, "/mcp", LOAD_CONNECTIONS);
        let result = ctx.wrk(&format!("ping, {count} tokens"), &load)?;
        if result.non_2xx > 0 {
            bail!("{count} tokens: {} non-2xx answers", result.non_2xx);
        }
        let subject = format!("{count} tokens");
        ctx.rows
            .wrk("2. token check", &format!("{subject} ping"), LOAD_CONNECTIONS, &result);
        ctx.rows
            .push("2. token check", &subject, None, "verify_in_process", verify_ns, "ns");
        ctx.process(results, &server, &format!("ours, {count} tokens; after ping load"));
        results.tokens.push(TokenFigure {
            count,
            verify_ns,
            load: result,
            start_to_healthy: server.start_to_healthy,
            peak_rss_kib: server.peak_rss_kib(),
        });
        drop(server);
        if Some(&count) == ctx.plan.token_counts.iter().max() {
            token_load(ctx, results, &path, count)?;
        }
    }
    Ok(())
}

/// Load time of the largest file (what a credential rotation waits for, besides reading it) and
/// the memory of a process serving it with nothing else loaded.
pub fn token_load(ctx: &mut Ctx, results: &mut Results, path: &Path, count: usize) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut runs_ms = Vec::with_capacity(TOKEN_LOAD_RUNS);
    for _ in 0..TOKEN_LOAD_RUNS {
        let timer = Instant::now();
        let set = TokenSet::parse(&text).map_err(anyhow::Error::msg)?;
        runs_ms.push(timer.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(set.len() == count, "{count} tokens written, {} loaded", set.len());
    }
    runs_ms.sort_by(f64::total_cmp);
    drop(text);

    let server = ctx.ours_with(&format!("ours-{count}-tokens-no-kb"), path, None, &[])?;
    let figure = TokenLoadFigure {
        count,
        file_bytes: std::fs::metadata(path)?.len(),
        runs_ms,
        rss_kib: status_field(server.pid(), "VmRSS"),
        peak_rss_kib: server.peak_rss_kib(),
        start_to_healthy: server.start_to_healthy,
    };
    eprintln!(
        "  {count} tokens ({:.1} MB): load median {:.1} ms (goal ≤ {TOKEN_LOAD_GOAL_MS} ms; runs {:.1}–{:.1}); \
         serving, no KB: VmRSS {} (goal ≤ {TOKEN_RSS_GOAL_MIB} MiB), peak {}",
        figure.file_bytes as f64 / 1e6,
        figure.median_ms(),
        figure.runs_ms[0],
        figure.runs_ms[figure.runs_ms.len() - 1],
        mib(figure.rss_kib),
        mib(figure.peak_rss_kib),
    );
    let subject = format!("{count} tokens");
    let section = "2. token check";
    ctx.rows
        .push(section, &subject, None, "load_median", figure.median_ms(), "ms");
    if let Some(kib) = figure.rss_kib {
        ctx.rows
            .push(section, &subject, None, "serving_rss_no_kb", kib as f64 / 1024.0, "MiB");
    }
    ctx.process(
        results,
        &server,
        &format!("ours, {count} tokens, no KB; at first healthy"),
    );
    results.token_load = Some(figure);
    Ok(())
}

/// The section's tables.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    md.push_str("\n## 2. Token check cost\n\n");
    let _ = writeln!(
        md,
        "Authenticated `ping` at {LOAD_CONNECTIONS} connections with N entries in tokens.yaml (the benchmark's \
         token in the middle); `verify` is `TokenSet::verify` in process (SHA-256, lookup among the \
         sorted digests by their leading bits, constant-time compare).\n"
    );
    if results.tokens.is_empty() {
        md.push_str(&not_measured(results, "2. token check"));
    } else {
        let rows: Vec<Vec<String>> = results
            .tokens
            .iter()
            .map(|t| {
                vec![
                    t.count.to_string(),
                    format!("{:.0} ns", t.verify_ns),
                    rps(t.load.rps),
                    format!("{} / {}", ms(t.load.p50_ms), ms(t.load.p99_ms)),
                    ms(t.start_to_healthy.as_secs_f64() * 1000.0),
                    mib(t.peak_rss_kib),
                ]
            })
            .collect();
        md.push_str(&table(
            &[
                "tokens",
                "verify (in process)",
                "ping req/s",
                "p50 / p99",
                "start→healthy",
                "peak RSS",
            ],
            &rows,
        ));
        if let (Some(first), Some(last)) = (results.tokens.first(), results.tokens.last()) {
            let _ = writeln!(
                md,
                "\n{} → {} tokens: {:.0} % of the req/s.",
                first.count,
                last.count,
                last.load.rps / first.load.rps * 100.0
            );
        }
        if let Some(load) = &results.token_load {
            let verdict = |met: bool| if met { "met" } else { "**not met**" };
            let rss_met = load.rss_kib.is_some_and(|k| k as f64 / 1024.0 <= TOKEN_RSS_GOAL_MIB);
            let _ = writeln!(
                md,
                "\n{} tokens ({:.1} MB tokens.yaml as `token create` writes it):\n",
                load.count,
                load.file_bytes as f64 / 1e6
            );
            let rows = vec![
                vec![
                    format!(
                        "load: `TokenSet::parse` (parse + build), in process, median of {}",
                        load.runs_ms.len()
                    ),
                    format!(
                        "**{:.1} ms** ({:.1}–{:.1})",
                        load.median_ms(),
                        load.runs_ms[0],
                        load.runs_ms[load.runs_ms.len() - 1]
                    ),
                    format!(
                        "≤ {TOKEN_LOAD_GOAL_MS} ms: {}",
                        verdict(load.median_ms() <= TOKEN_LOAD_GOAL_MS)
                    ),
                ],
                vec![
                    "`serve --tokens`, no KB: VmRSS at the first 200 on `/health`".to_string(),
                    format!(
                        "**{}** (peak {}, start→healthy {})",
                        mib(load.rss_kib),
                        mib(load.peak_rss_kib),
                        ms(load.start_to_healthy.as_secs_f64() * 1000.0)
                    ),
                    format!("≤ {TOKEN_RSS_GOAL_MIB} MiB: {}", verdict(rss_met)),
                ],
            ];
            md.push_str(&table(&["figure", "measured", "goal"], &rows));
        }
    }
}
