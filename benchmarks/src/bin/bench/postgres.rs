//! §7. `query_database` through the server against the same statement on a bare tokio-postgres
//! client.

use std::fmt::Write as _;

use anyhow::bail;
use benchmarks::pg;
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::WrkResult;

use crate::Results;
use crate::ctx::{Ctx, post};
use crate::markdown::{not_measured, ratio};

pub struct PgFigure {
    pub connections: u32,
    pub ours: WrkResult,
    pub bare: pg::BareResult,
    pub sample: String,
}

/// `query_database` through the server against the same primary-key lookup with a bare
/// tokio-postgres client, same database, same pool size (the server's default 4), same concurrency.
pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    const CONNECTIONS: u32 = 16;
    let script = std::fs::read_to_string(ctx.script("query_database.lua"))?;
    anyhow::ensure!(
        script.contains(pg::QUERY),
        "benchmarks/wrk/query_database.lua must run pg::QUERY"
    );
    let cluster = std::panic::catch_unwind(pg::PgCluster::start)
        .map_err(|_| anyhow::anyhow!("cannot start PostgreSQL (apt-get install postgresql)"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    pg::seed(&runtime, &cluster.url())?;
    let url = cluster.url();
    let server = ctx.ours_with(
        "ours-pg",
        &ctx.tokens_file.clone(),
        Some(&ctx.demo_kb.clone()),
        &[("PGMCP_DATABASE_URL", &url)],
    )?;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"query_database","arguments":{{"sql":"{}"}}}}}}"#,
        pg::QUERY
    );
    let answer = post(server.addr, &ctx.token, &body)?;
    let sample = String::from_utf8_lossy(&answer.body).into_owned();
    anyhow::ensure!(
        sample.contains(r#""isError":false"#) && sample.contains("customer 4242"),
        "query_database did not answer the row: {sample}"
    );
    let load = ctx.load("query_database.lua", server.addr, "/mcp", CONNECTIONS);
    let ours = ctx.wrk("query_database", &load)?;
    if ours.non_2xx > 0 {
        bail!("query_database: {} non-2xx answers", ours.non_2xx);
    }
    ctx.process(results, &server, "ours with PostgreSQL; after query_database load");
    drop(server);
    let bare = pg::bare_load(&runtime, &url, 4, CONNECTIONS as usize, ctx.plan.duration)?;
    eprintln!(
        "  {:<40} c={:<3} {:>9} req/s  p50 {:>9}  p99 {:>9}",
        "bare tokio-postgres",
        CONNECTIONS,
        format!("{:.0}", bare.queries_per_s),
        ms(bare.p50_ms),
        ms(bare.p99_ms)
    );
    let section = "7. Postgres tools";
    ctx.rows.wrk(section, "ours query_database", CONNECTIONS, &ours);
    let c = Some(CONNECTIONS);
    ctx.rows.push(
        section,
        "bare tokio-postgres",
        c,
        "requests_per_s",
        bare.queries_per_s,
        "req/s",
    );
    ctx.rows
        .push(section, "bare tokio-postgres", c, "latency_p50", bare.p50_ms, "ms");
    ctx.rows
        .push(section, "bare tokio-postgres", c, "latency_p99", bare.p99_ms, "ms");
    results.postgres = Some(PgFigure {
        connections: CONNECTIONS,
        ours,
        bare,
        sample,
    });
    Ok(())
}

/// The section's table.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    md.push_str("\n## 7. Postgres tools\n\n");
    let _ = writeln!(
        md,
        "`query_database` with `{}` (a primary-key lookup on a 10k-row table in a throwaway local \
         cluster), through the server — MCP over HTTP, bearer check, `START TRANSACTION READ ONLY` + \
         timeouts, Parse/Describe, portal fetch, `to_json`, `ROLLBACK` — against the same statement \
         prepared once on a bare tokio-postgres client (4 connections, the server's default pool).\n",
        pg::QUERY
    );
    match &results.postgres {
        None => md.push_str(&not_measured(results, "7. Postgres tools")),
        Some(f) => {
            md.push_str(&table(
                &["client", "concurrency", "req/s", "p50 / p99"],
                &[
                    vec![
                        "ours: tools/call query_database".into(),
                        f.connections.to_string(),
                        rps(f.ours.rps),
                        format!("{} / {}", ms(f.ours.p50_ms), ms(f.ours.p99_ms)),
                    ],
                    vec![
                        "bare tokio-postgres".into(),
                        f.connections.to_string(),
                        rps(f.bare.queries_per_s),
                        format!("{} / {}", ms(f.bare.p50_ms), ms(f.bare.p99_ms)),
                    ],
                ],
            ));
            let _ = writeln!(
                md,
                "\nours / bare: **{}**. One answer: `{}`",
                ratio(f.ours.rps, f.bare.queries_per_s),
                f.sample.chars().take(240).collect::<String>()
            );
        }
    }
}
