//! §1. Throughput and latency of `/health`, `ping` and `tools/call search_knowledgebase` at several
//! concurrency levels: ours against the bare-hyper ceiling and the rmcp peer, interleaved point by
//! point so that a change in background load hits all three alike.

use std::{fmt::Write as _, process::Command, time::Duration};

use anyhow::{Context, bail};
use benchmarks::procs::{Proc, free_addr};
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::{Load, WrkResult};
use benchmarks::{http, svg};

use crate::Results;
use crate::ctx::{Ctx, post};
use crate::machine::Machine;
use crate::markdown::{not_measured, ratio};

/// What is measured in section 1, with the wrk script and path of each.
pub struct Endpoint {
    pub name: &'static str,
    pub script: &'static str,
    pub path: &'static str,
}

pub const ENDPOINTS: [Endpoint; 3] = [
    Endpoint {
        name: "/health",
        script: "health.lua",
        path: "/health",
    },
    Endpoint {
        name: "ping",
        script: "ping.lua",
        path: "/mcp",
    },
    Endpoint {
        name: "tools/call",
        script: "tools_call.lua",
        path: "/mcp",
    },
];

pub const SERVERS: [&str; 3] = ["ours", "baseline", "peer"];

pub const COLORS: [&str; 3] = ["#d62728", "#7f7f7f", "#1f77b4"];

/// The request bodies of wrk/tools_call.lua and wrk/ping.lua, for capturing answers.
pub const TOOLS_CALL_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_knowledgebase","arguments":{"query":"replication lag","limit":3}}}"#;

pub const PING_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let ours = ctx.ours("ours", &ctx.tokens_file.clone(), &ctx.demo_kb.clone())?;

    // The ceiling answers with exactly what ours answers.
    let answers = ctx.work().join("answers");
    std::fs::create_dir_all(&answers)?;
    let health = http::request(ours.addr, "GET", "/health", &[], b"")?;
    let call = post(ours.addr, &ctx.token, TOOLS_CALL_BODY)?;
    let ping = post(ours.addr, &ctx.token, PING_BODY)?;
    std::fs::write(answers.join("health.json"), &health.body)?;
    std::fs::write(answers.join("mcp.json"), &call.body)?;
    std::fs::write(answers.join("ping.json"), &ping.body)?;

    let addr = free_addr()?;
    let mut command = Command::new(ctx.bin_dir.join("baseline-hyper"));
    command
        .args(["--listen", &addr.to_string(), "--token-file"])
        .arg(ctx.work().join("token.txt"))
        .arg("--health")
        .arg(answers.join("health.json"))
        .arg("--mcp")
        .arg(answers.join("mcp.json"))
        .arg("--ping")
        .arg(answers.join("ping.json"));
    let baseline = Proc::start("baseline", command, addr, ctx.work())?;

    let peer = ctx.peer("peer", &ctx.demo_kb.clone())?;

    // The peer must run the same search: same structured results as ours.
    let peer_call = post(peer.addr, &ctx.token, TOOLS_CALL_BODY)?;
    let structured = |response: &http::HttpResponse| -> anyhow::Result<serde_json::Value> {
        Ok(response.json()?["result"]["structuredContent"].clone())
    };
    if structured(&call)? != structured(&peer_call)? || structured(&call)?.is_null() {
        bail!(
            "the peer's search results differ from ours:\nours: {}\npeer: {}",
            String::from_utf8_lossy(&call.body),
            String::from_utf8_lossy(&peer_call.body)
        );
    }
    for (name, response) in [("baseline", &baseline), ("peer", &peer)] {
        post(response.addr, &ctx.token, PING_BODY).with_context(|| format!("{name} ping"))?;
    }

    let servers = [&ours, &baseline, &peer];
    for (index, server) in servers.iter().enumerate() {
        let warm = Load::new(
            &ctx.script("tools_call.lua"),
            format!("http://{}/mcp", server.addr),
            16,
            Duration::from_secs(1),
        )
        .env("TOKEN", &ctx.token);
        ctx.wrk(&format!("warm-up {}", SERVERS[index]), &warm)?;
    }
    for (e, endpoint) in ENDPOINTS.iter().enumerate() {
        for &c in &ctx.plan.concurrencies.clone() {
            let mut runs: Vec<Vec<WrkResult>> = vec![Vec::new(); servers.len()];
            for round in 1..=ctx.plan.rounds {
                for (s, server) in servers.iter().enumerate() {
                    let load = ctx.load(endpoint.script, server.addr, endpoint.path, c);
                    let label = format!("{} {} (round {round})", endpoint.name, SERVERS[s]);
                    let result = ctx.wrk(&label, &load)?;
                    if result.non_2xx > 0 || result.socket_errors > 0 {
                        bail!(
                            "{} {} c={c}: {} non-2xx, {} socket errors",
                            SERVERS[s],
                            endpoint.name,
                            result.non_2xx,
                            result.socket_errors
                        );
                    }
                    runs[s].push(result);
                }
            }
            for (s, mut rounds) in runs.into_iter().enumerate() {
                rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
                let result = rounds.swap_remove(rounds.len() / 2);
                ctx.rows.wrk(
                    "1. throughput",
                    &format!("{} {}", SERVERS[s], endpoint.name),
                    c,
                    &result,
                );
                results.throughput.insert((e, s, c), result);
            }
            let get = |s: usize| results.throughput[&(e, s, c)].rps;
            for other in [1, 2] {
                let subject = format!("ours/{} {}", SERVERS[other], endpoint.name);
                ctx.rows
                    .push("1. throughput", &subject, Some(c), "ratio", get(0) / get(other), "x");
            }
        }
    }
    ctx.process(results, &ours, "ours, demo KB, 1 token; after section 1");
    ctx.process(results, &baseline, "bare hyper ceiling; after section 1");
    ctx.process(results, &peer, "rmcp stateless peer, demo KB; after section 1");
    Ok(())
}

/// The section's table.
pub fn render(md: &mut String, ctx: &Ctx, results: &Results) {
    let plan = &ctx.plan;
    md.push_str("## 1. Throughput and latency\n\n");
    md.push_str(
        "`ours` = `postgres-mcp serve` (release, demo KB, one token); `baseline` = bare hyper answering the \
         bytes ours answered, after a constant-time bearer compare (the ceiling); `peer` = rmcp 3.11's \
         stateless `StreamableHttpService` (`json_response`, no session) behind the same token check, \
         with the same `search_knowledgebase` through our KB library. `ping` is the transport and auth \
         alone; `tools/call` searches \"replication lag\" (limit 3).\n\n",
    );
    let _ = writeln!(
        md,
        "Each point is the median (by req/s) of {} runs of {} s, the three servers taking turns in \
         each round.\n",
        plan.rounds,
        plan.duration.as_secs()
    );
    if results.throughput.is_empty() {
        md.push_str(&not_measured(results, "1. throughput"));
    } else {
        let mut rows = Vec::new();
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for &c in &plan.concurrencies {
                let Some(ours) = results.throughput.get(&(e, 0, c)) else {
                    continue;
                };
                let base = &results.throughput[&(e, 1, c)];
                let peer = &results.throughput[&(e, 2, c)];
                rows.push(vec![
                    endpoint.name.to_string(),
                    c.to_string(),
                    format!("**{}**", rps(ours.rps)),
                    format!("{} / {}", ms(ours.p50_ms), ms(ours.p99_ms)),
                    rps(base.rps),
                    format!("{} / {}", ms(base.p50_ms), ms(base.p99_ms)),
                    rps(peer.rps),
                    format!("{} / {}", ms(peer.p50_ms), ms(peer.p99_ms)),
                    ratio(ours.rps, base.rps),
                    format!("**{}**", ratio(ours.rps, peer.rps)),
                ]);
            }
        }
        md.push_str(&table(
            &[
                "endpoint",
                "conns",
                "ours req/s",
                "ours p50 / p99",
                "baseline req/s",
                "baseline p50 / p99",
                "peer req/s",
                "peer p50 / p99",
                "ours/baseline",
                "ours/peer",
            ],
            &rows,
        ));
    }
}

pub fn render_svg(ctx: &Ctx, results: &Results, machine: &Machine) -> String {
    let panels: Vec<svg::Panel> = ENDPOINTS
        .iter()
        .enumerate()
        .map(|(e, endpoint)| svg::Panel {
            title: endpoint.name.to_string(),
            series: SERVERS
                .iter()
                .enumerate()
                .map(|(s, server)| svg::Series {
                    name: match *server {
                        "ours" => "ours (postgres-mcp)".into(),
                        "baseline" => "baseline (bare hyper, same bytes)".into(),
                        _ => "peer (rmcp stateless)".into(),
                    },
                    color: COLORS[s],
                    points: ctx
                        .plan
                        .concurrencies
                        .iter()
                        .filter_map(|&c| results.throughput.get(&(e, s, c)).map(|r| (c, r.rps)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    svg::render(
        "Throughput vs concurrency",
        &format!(
            "wrk on loopback, median of {} runs of {} s per point, {} ({} cores shared by wrk and server), {}",
            ctx.plan.rounds,
            ctx.plan.duration.as_secs(),
            machine.cpu,
            machine.cores,
            machine.date
        ),
        &panels,
        &ctx.plan.concurrencies,
    )
}
