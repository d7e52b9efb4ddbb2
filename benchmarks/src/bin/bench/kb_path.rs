//! §9. The knowledge-base request path on the demo KB: what the server adds between an MCP request
//! and SQLite (issue #16 §Speed).
//!
//! - In process, one search at a time, the same hits three ways: FTS5 computing the ranking itself
//!   in a bare rusqlite loop on the same kb.db (`kb::store::fts5_search`, the search before it
//!   ranked in Rust: the limit of doing it in SQLite), `KnowledgeBase::search` (query parsing, word
//!   selection, pooled connection, ranking from cached posting lists), and `search_async`, the
//!   request path's call (search slot, blocking-pool hop, cancellation guard). Goal: ours ≤ 2× bare.
//! - Over HTTP, `tools/call search_knowledgebase` against the rmcp stateless peer answering through
//!   the same library, interleaved round by round as in §1. Goal: ours ≥ 2× the peer. Both without
//!   a log line per request (the peer writes none); ours again with its default access log
//!   (`log.access.mode: all`), which costs a formatted line per call (written off the request path,
//!   by the log thread).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use benchmarks::bare_search::{BareSearch, Latency};
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::WrkResult;
use postgres_mcp::{kb::store::KbLoader, watch::Loader};

use crate::Results;
use crate::ctx::Ctx;
use crate::markdown::{ratio, section};

/// The query of `wrk/tools_call.lua` (and §1).
const QUERY: &str = "replication lag";
const LIMIT: usize = 3;
const CONCURRENCIES: [u32; 2] = [1, 16];

pub struct PathFigure {
    pub bare: Latency,
    pub blocking: Latency,
    pub request_path: Latency,
    /// (connections, ours, peer, ours with its default access log), each the median of the rounds
    /// by req/s.
    pub http: Vec<(u32, WrkResult, WrkResult, WrkResult)>,
    pub rounds: usize,
}

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let calls = ctx.plan.searches * 4;
    let min_time = Duration::from_secs(2);
    let loader = KbLoader {
        copy_to_local: false,
        copy_dir: ctx.work().join("tmp"),
    };
    let kb = Arc::new(loader.load(&ctx.demo_kb).map_err(anyhow::Error::msg)?.value);
    let Some(expression) = kb.planned_search(QUERY)? else {
        bail!("the demo KB has none of the words of {QUERY:?}");
    };
    let bare_db = BareSearch::open(&ctx.demo_kb)?;
    let expected = kb.search(QUERY, LIMIT)?.len();
    if bare_db.search(&expression, LIMIT)? != expected || expected == 0 {
        bail!("the bare statement and ours disagree on {QUERY:?}");
    }
    let bare = Latency::measure(&[&expression], calls, min_time, |e| {
        bare_db.search(e, LIMIT)?;
        Ok(())
    })?;
    let blocking = Latency::measure(&[QUERY], calls, min_time, |q| {
        kb.search(q, LIMIT)?;
        Ok(())
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let request_path = Latency::measure(&[QUERY], calls, min_time, |q| {
        runtime.block_on(kb.clone().search_async(q.to_string(), LIMIT))?;
        Ok(())
    })?;
    drop(runtime);
    eprintln!(
        "  in process, demo KB: bare {}; search {}; search_async {}",
        bare.cell(),
        blocking.cell(),
        request_path.cell()
    );

    let ours = ctx.ours("ours-kb-path", &ctx.tokens_file.clone(), &ctx.demo_kb.clone())?;
    let peer = ctx.peer("peer-kb-path", &ctx.demo_kb.clone())?;
    let logged = ctx.ours_with(
        "ours-kb-path-logged",
        &ctx.tokens_file.clone(),
        Some(&ctx.demo_kb.clone()),
        &[("PGMCP_LOG_ACCESS_MODE", "all")],
    )?;
    let mut http = Vec::new();
    for c in CONCURRENCIES {
        let mut runs: [Vec<WrkResult>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for round in 1..=ctx.plan.rounds {
            let servers = [("ours", &ours), ("peer", &peer), ("ours, access log on", &logged)];
            for (s, (name, server)) in servers.into_iter().enumerate() {
                let load = ctx.load("tools_call.lua", server.addr, "/mcp", c);
                let result = ctx.wrk(&format!("tools/call demo KB, {name} (round {round})"), &load)?;
                if result.non_2xx > 0 || result.socket_errors > 0 {
                    bail!(
                        "{name} c={c}: {} non-2xx, {} socket errors",
                        result.non_2xx,
                        result.socket_errors
                    );
                }
                runs[s].push(result);
            }
        }
        let [ours_runs, peer_runs, logged_runs] = runs.map(|mut rounds| {
            rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            rounds.swap_remove(rounds.len() / 2)
        });
        ctx.rows.wrk("9. KB request path", "ours tools/call", c, &ours_runs);
        ctx.rows.wrk("9. KB request path", "peer tools/call", c, &peer_runs);
        ctx.rows
            .wrk("9. KB request path", "ours tools/call, access log on", c, &logged_runs);
        ctx.rows.push(
            "9. KB request path",
            "ours/peer tools/call",
            Some(c),
            "ratio",
            ours_runs.rps / peer_runs.rps,
            "x",
        );
        ctx.rows.push(
            "9. KB request path",
            "ours/peer tools/call, ours with access log on",
            Some(c),
            "ratio",
            logged_runs.rps / peer_runs.rps,
            "x",
        );
        http.push((c, ours_runs, peer_runs, logged_runs));
    }
    for (what, latency) in [
        ("bare rusqlite", &bare),
        ("KnowledgeBase::search", &blocking),
        ("KnowledgeBase::search_async", &request_path),
    ] {
        let subject = format!("demo KB in process, {what}");
        ctx.rows
            .push("9. KB request path", &subject, None, "search_p50", latency.p50_us, "us");
        ctx.rows.push(
            "9. KB request path",
            &subject,
            None,
            "search_mean",
            latency.mean_us,
            "us",
        );
    }
    ctx.rows.push(
        "9. KB request path",
        "demo KB in process, search_async/bare",
        None,
        "ratio",
        request_path.mean_us / bare.mean_us,
        "x",
    );
    ctx.process(results, &ours, "ours, demo KB; after section 9");
    ctx.process(results, &peer, "rmcp stateless peer, demo KB; after section 9");
    drop(logged);
    results.kb_path = Some(PathFigure {
        bare,
        blocking,
        request_path,
        http,
        rounds: ctx.plan.rounds,
    });
    Ok(())
}

/// The section's tables.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    section(
        md,
        results,
        "9. Knowledge-base request path, demo KB",
        "9. KB request path",
        results.kb_path.as_ref(),
        |md, figure| {
            let _ = writeln!(
                md,
                "The demo KB (`demo/docs`), query {QUERY:?}, limit {LIMIT}. In process, one search at a \
                 time: `bare` is FTS5 computing the same ranking itself (`kb::store::fts5_search`, the \
                 search before it ranked in Rust) with the same `MATCH` expression in a bare rusqlite \
                 loop (one connection, prepared once); `search` is ours in process (query parsing, word \
                 selection, connection pool, ranking from cached posting lists); `search_async` is the \
                 request path's call (search slot, blocking-pool hop, cancellation guard). Goal: ≤ 2× \
                 bare.\n"
            );
            let row = |how: &str, latency: &Latency| {
                vec![
                    how.to_string(),
                    latency.cell(),
                    format!("{:.2}×", latency.mean_us / figure.bare.mean_us),
                ]
            };
            md.push_str(&table(
                &["how", "p50 / p99", "mean / bare"],
                &[
                    row("bare rusqlite", &figure.bare),
                    row("`KnowledgeBase::search`", &figure.blocking),
                    row("**`KnowledgeBase::search_async`**", &figure.request_path),
                ],
            ));
            let _ = writeln!(
                md,
                "\n`tools/call search_knowledgebase` over HTTP against the rmcp stateless peer answering \
                 through the same library (§1's peer); median of {} runs per point, the servers taking \
                 turns. Goal: ours ≥ 2× the peer. Neither writes a line per request (the peer has no \
                 access log; ours runs with `log.access.mode: off`); the last columns are ours with its \
                 default access log (`all`).\n",
                figure.rounds
            );
            let rows: Vec<Vec<String>> = figure
                .http
                .iter()
                .map(|(c, ours, peer, logged)| {
                    vec![
                        c.to_string(),
                        format!("**{}**", rps(ours.rps)),
                        format!("{} / {}", ms(ours.p50_ms), ms(ours.p99_ms)),
                        rps(peer.rps),
                        format!("{} / {}", ms(peer.p50_ms), ms(peer.p99_ms)),
                        format!("**{}**", ratio(ours.rps, peer.rps)),
                        rps(logged.rps),
                        ratio(logged.rps, peer.rps),
                    ]
                })
                .collect();
            md.push_str(&table(
                &[
                    "conns",
                    "ours req/s",
                    "ours p50 / p99",
                    "peer req/s",
                    "peer p50 / p99",
                    "ours/peer",
                    "ours, access log on, req/s",
                    "its ratio to the peer",
                ],
                &rows,
            ));
        },
    );
}
