//! §7. `query_database` through the server against the same statement on a bare tokio-postgres
//! client, at 1, 16 and 64 concurrent calls, and the round trips each costs per call (issue #17).
//!
//! Run only this section with `cargo run --release --locked -p benchmarks --bin bench --
//! --section 7 --out /tmp/bench-pg`.

use std::fmt::Write as _;

use anyhow::bail;
use benchmarks::pg;
use benchmarks::report::{ms, rps, table};
use benchmarks::round_trips::TurnCounter;
use benchmarks::wrk::WrkResult;

use crate::Results;
use crate::ctx::{Ctx, post};
use crate::markdown::{not_measured, ratio};

/// Concurrent calls measured: one (latency alone), the issue's 16, and past the pool (64).
const CONCURRENCIES: [u32; 3] = [1, 16, 64];
/// The server's default `database.pool_size`; the bare client gets as many connections.
const POOL: usize = 4;
/// The subject of [`pg::call_shape_load`]'s rows.
const CALL_SHAPE: &str = "bare tokio-postgres, our call's messages";
/// Sequential calls whose round trips are counted, after as many to warm the connection up.
const COUNTED_CALLS: u32 = 200;

/// One concurrency level: ours, the bare client, and the bare client sending our call's messages.
pub struct PgPoint {
    pub concurrency: u32,
    pub ours: WrkResult,
    /// MCP `ping` on the same server at the same concurrency: what the server answers per second
    /// when a request does nothing (HTTP, bearer check, JSON-RPC, access log), the ceiling of any
    /// `tools/call` on this machine whatever the database does.
    pub transport: WrkResult,
    pub bare: pg::BareResult,
    /// [`pg::call_shape_load`]: what the database alone allows for calls shaped as ours.
    pub shape: pg::BareResult,
}

pub struct PgFigure {
    pub points: Vec<PgPoint>,
    /// Mean round trips per call, counted on the wire at one call at a time.
    pub ours_round_trips: f64,
    pub bare_round_trips: f64,
    pub sample: String,
}

/// `query_database` through the server against the same primary-key lookup with a bare
/// tokio-postgres client, same database, same pool size (the server's default 4), same concurrency;
/// then the round trips per call of each, through a counting proxy.
pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
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
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"query_database","arguments":{{"sql":"{}"}}}}}}"#,
        pg::QUERY
    );
    let server = ctx.ours_with(
        pg::INSTANCE,
        &ctx.tokens_file.clone(),
        Some(&ctx.demo_kb.clone()),
        &[("PGMCP_DATABASE_URL", &url)],
    )?;
    let answer = post(server.addr, &ctx.token, &body)?;
    let sample = String::from_utf8_lossy(&answer.body).into_owned();
    anyhow::ensure!(
        sample.contains(r#""isError":false"#) && sample.contains("customer 4242"),
        "query_database did not answer the row: {sample}"
    );
    let mut ours = Vec::new();
    for concurrency in CONCURRENCIES {
        let load = ctx.load("query_database.lua", server.addr, "/mcp", concurrency);
        let result = ctx.wrk(&format!("query_database c={concurrency}"), &load)?;
        if result.non_2xx > 0 {
            bail!("query_database: {} non-2xx answers", result.non_2xx);
        }
        let load = ctx.load("ping.lua", server.addr, "/mcp", concurrency);
        let transport = ctx.wrk(&format!("ping beside query_database c={concurrency}"), &load)?;
        if transport.non_2xx > 0 {
            bail!("ping: {} non-2xx answers", transport.non_2xx);
        }
        ours.push((result, transport));
    }
    ctx.process(results, &server, "ours with PostgreSQL; after query_database load");
    drop(server);

    // The server's `database` settings under the run's configuration (the wrapper's row limit and
    // byte ceiling come from them).
    let overrides = postgres_mcp::config::Overrides {
        tokens_file: Some(ctx.tokens_file.clone()),
        ..Default::default()
    };
    let database = postgres_mcp::config::Config::load(Some(&ctx.config), [], &overrides)?.database;
    let section = "7. Postgres tools";
    let mut points = Vec::new();
    for (concurrency, (ours, transport)) in CONCURRENCIES.into_iter().zip(ours) {
        let bare = pg::bare_load(&runtime, &url, POOL, concurrency as usize, ctx.plan.duration)?;
        let shape = pg::call_shape_load(&runtime, &url, &database, POOL, concurrency as usize, ctx.plan.duration)?;
        ctx.rows.wrk(section, "ours query_database", concurrency, &ours);
        ctx.rows
            .wrk(section, "ours ping (transport ceiling)", concurrency, &transport);
        let c = Some(concurrency);
        for (subject, result) in [("bare tokio-postgres", &bare), (CALL_SHAPE, &shape)] {
            eprintln!(
                "  {:<40} c={:<3} {:>9} req/s  p50 {:>9}  p99 {:>9}",
                subject,
                concurrency,
                format!("{:.0}", result.queries_per_s),
                ms(result.p50_ms),
                ms(result.p99_ms)
            );
            ctx.rows
                .push(section, subject, c, "requests_per_s", result.queries_per_s, "req/s");
            ctx.rows.push(section, subject, c, "latency_p50", result.p50_ms, "ms");
            ctx.rows.push(section, subject, c, "latency_p99", result.p99_ms, "ms");
        }
        ctx.rows.push(
            section,
            "ours / bare, our call's messages",
            c,
            "throughput_ratio",
            ours.rps / shape.queries_per_s,
            "×",
        );
        ctx.rows.push(
            section,
            "ours / bare",
            c,
            "throughput_ratio",
            ours.rps / bare.queries_per_s,
            "×",
        );
        ctx.rows.push(
            section,
            "ours ping / bare",
            c,
            "throughput_ratio",
            transport.rps / bare.queries_per_s,
            "×",
        );
        points.push(PgPoint {
            concurrency,
            ours,
            transport,
            bare,
            shape,
        });
    }

    // Round trips: the same calls, one at a time, through the counting proxy.
    let proxy = runtime.block_on(TurnCounter::start(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        cluster.port,
    ))))?;
    let proxied_url = url.replace(&format!(":{}/", cluster.port), &format!(":{}/", proxy.addr.port()));
    let counted = ctx.ours_with(
        "ours-pg-counted",
        &ctx.tokens_file.clone(),
        Some(&ctx.demo_kb.clone()),
        &[("PGMCP_DATABASE_URL", &proxied_url), ("PGMCP_DATABASE_POOL_SIZE", "1")],
    )?;
    for _ in 0..COUNTED_CALLS {
        post(counted.addr, &ctx.token, &body)?;
    }
    let before = proxy.turns();
    for _ in 0..COUNTED_CALLS {
        post(counted.addr, &ctx.token, &body)?;
    }
    let ours_round_trips = (proxy.turns() - before) as f64 / f64::from(COUNTED_CALLS);
    drop(counted);
    let bare_round_trips = pg::bare_round_trips(&runtime, &proxy, &proxied_url, COUNTED_CALLS)?;
    eprintln!("  round trips per call: ours {ours_round_trips:.2}, bare {bare_round_trips:.2}");
    ctx.rows.push(
        section,
        "ours query_database",
        Some(1),
        "round_trips_per_call",
        ours_round_trips,
        "",
    );
    ctx.rows.push(
        section,
        "bare tokio-postgres",
        Some(1),
        "round_trips_per_call",
        bare_round_trips,
        "",
    );
    results.postgres = Some(PgFigure {
        points,
        ours_round_trips,
        bare_round_trips,
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
         cluster), through the server — MCP over HTTP, bearer check, statement check, `START \
         TRANSACTION READ ONLY`, the statement wrapped in `to_json` with its row limit, `ROLLBACK` and \
         advisory-lock release, all pipelined in one round trip, the wrapped statement prepared once \
         per connection — against the same statement prepared once on a bare tokio-postgres client \
         ({POOL} connections, the server's default pool; concurrent calls share them, which \
         tokio-postgres pipelines). \"bare, our call's messages\" is the database's ceiling for our \
         design: the same client sending, per call, exactly what the server sends from a text's fourth \
         call on (transaction start with the request's `application_name`, the guarded wrapper \
         prepared once, rollback with the advisory-lock release; `pg::call_shape_load`), pipelined, \
         one call per connection at a time as a pooled connection is held; no HTTP, MCP, JSON or \
         audit line (ours writes one per call). \"ours, ping\" is MCP `ping` on the same server right \
         after its `query_database` run: a request that does nothing past HTTP, the bearer check, \
         JSON-RPC and the access log, so no `tools/call` can be faster on this machine whatever the \
         database does (wrk, the server and PostgreSQL share its cores). At 1 call the ratio of the two bare figures isolates \
         the call's message cycles; at 16 and 64 it also carries the bare client's pipelining of \
         several calls per connection. \
         Round trips are counted on the wire by a loopback proxy \
         (`benchmarks/src/round_trips.rs`): turns of {COUNTED_CALLS} calls one at a time, after as many \
         to warm up, on a pool of one connection.\n",
        pg::QUERY
    );
    match &results.postgres {
        None => md.push_str(&not_measured(results, "7. Postgres tools")),
        Some(f) => {
            let rows: Vec<Vec<String>> = f
                .points
                .iter()
                .map(|p| {
                    vec![
                        p.concurrency.to_string(),
                        rps(p.ours.rps),
                        format!("{} / {}", ms(p.ours.p50_ms), ms(p.ours.p99_ms)),
                        rps(p.bare.queries_per_s),
                        format!("{} / {}", ms(p.bare.p50_ms), ms(p.bare.p99_ms)),
                        format!("**{}**", ratio(p.ours.rps, p.bare.queries_per_s)),
                        rps(p.shape.queries_per_s),
                        ratio(p.shape.queries_per_s, p.bare.queries_per_s),
                        ratio(p.ours.rps, p.shape.queries_per_s),
                        rps(p.transport.rps),
                        ratio(p.transport.rps, p.bare.queries_per_s),
                    ]
                })
                .collect();
            md.push_str(&table(
                &[
                    "concurrent calls",
                    "ours req/s",
                    "ours p50 / p99",
                    "bare req/s",
                    "bare p50 / p99",
                    "ours / bare",
                    "bare, our call's messages, req/s",
                    "its ratio to bare",
                    "ours / it",
                    "ours, ping, req/s",
                    "ping / bare",
                ],
                &rows,
            ));
            let _ = writeln!(
                md,
                "\nRound trips per call: ours **{:.2}**, bare client {:.2}. One answer: `{}`",
                f.ours_round_trips,
                f.bare_round_trips,
                f.sample.chars().take(240).collect::<String>()
            );
        }
    }
}
