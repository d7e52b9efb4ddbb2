//! Section 7's database side: a throwaway PostgreSQL cluster (the same helper the server's Postgres
//! tests use, compiled in from there rather than copied) and the bare-client baseline — the same
//! query through tokio-postgres directly, which is what `query_database` costs without MCP, auth,
//! the read-only transaction and JSON — and the round trips either costs per call
//! ([`crate::round_trips`]).

use std::time::{Duration, Instant};

use anyhow::Context;

#[path = "../../server/tests/pg_cluster/mod.rs"]
mod pg_cluster;

pub use pg_cluster::PgCluster;

/// Rows for the benchmark's query.
pub const SEED: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric(12,2) NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g, g * 1.5 FROM generate_series(1, 10000) g;
ANALYZE customers;";

/// The query both sides run: a primary-key lookup, so the database is not what is measured.
pub const QUERY: &str = "SELECT id, name, balance FROM customers WHERE id = 4242";

/// Throughput and latency of the bare client.
pub struct BareResult {
    pub queries_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Creates the table.
pub fn seed(runtime: &tokio::runtime::Runtime, url: &str) -> anyhow::Result<()> {
    runtime.block_on(async {
        connect(url).await?.batch_execute(SEED).await?;
        Ok(())
    })
}

/// `tasks` concurrent loops over `connections` clients (the server's default pool size), each
/// running [`QUERY`] as a prepared statement for `duration`.
pub fn bare_load(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    connections: usize,
    tasks: usize,
    duration: Duration,
) -> anyhow::Result<BareResult> {
    runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..connections {
            let client = connect(url).await?;
            let statement = client.prepare(QUERY).await?;
            clients.push(std::sync::Arc::new((client, statement)));
        }
        drive(clients, tasks, duration, |pair| async move {
            let rows = pair.0.query(&pair.1, &[]).await?;
            anyhow::ensure!(rows.len() == 1, "expected one row");
            Ok(())
        })
        .await
    })
}

/// The instance name of the server §7 measures, which its calls' `application_name` carries.
pub const INSTANCE: &str = "ours-pg";

/// What PostgreSQL alone allows for `query_database`'s calls: `tasks` concurrent loops over
/// `connections` bare clients, each call holding its client alone (as a pooled connection is held
/// by one call) and sending what the server sends for a steady-state call of [`QUERY`]
/// ([`postgres_mcp::benchmarking::steady_state_call`] under `database`, the server's settings:
/// transaction start with the request's `application_name`, the guarded wrapper prepared once,
/// rollback with the advisory-lock release), pipelined, for `duration`. No HTTP, no MCP, no JSON,
/// no log lines: the ceiling of the server's figure, as [`bare_load`] is the ceiling of the
/// statement.
pub fn call_shape_load(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    database: &postgres_mcp::config::DatabaseConfig,
    connections: usize,
    tasks: usize,
    duration: Duration,
) -> anyhow::Result<BareResult> {
    use postgres_mcp::benchmarking::{Correlation, columns_of, steady_state_call};
    let correlation = Correlation::new(
        postgres_mcp::InstanceId::resolve(Some(INSTANCE), None),
        "0f6c2a9d1e8b4c7fa3d25b6e9c1f4a70",
    );
    runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..connections {
            let client = connect(url).await?;
            let columns = columns_of(&client.prepare(QUERY).await?);
            let call = steady_state_call(QUERY, database, &columns, &correlation);
            let statement = client.prepare(&call.statement).await?;
            clients.push(std::sync::Arc::new(tokio::sync::Mutex::new((client, statement, call))));
        }
        drive(clients, tasks, duration, |held| async move {
            let held = held.lock().await;
            let (client, statement, call) = &*held;
            // Each request is sent when its future is first polled, and `biased` polls them in
            // this order: none waits for an answer before the next is queued.
            let (begun, rows, ended) = tokio::join!(
                biased;
                client.batch_execute(&call.begin),
                client.query(statement, &[]),
                client.batch_execute(&call.end)
            );
            begun?;
            ended?;
            anyhow::ensure!(rows?.len() == 1, "expected one row");
            Ok(())
        })
        .await
    })
}

/// A bare client of `url`, its connection driven in the background.
async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("bare client cannot connect")?;
    tokio::spawn(connection);
    Ok(client)
}

/// `tasks` loops, task `i` on `clients[i % clients.len()]`, each running `call` until `duration`
/// has passed; the calls' rate and latency (from before `call`, so a wait for the client counts).
async fn drive<C, F, Fut>(
    clients: Vec<std::sync::Arc<C>>,
    tasks: usize,
    duration: Duration,
    call: F,
) -> anyhow::Result<BareResult>
where
    C: Send + Sync + 'static,
    F: Fn(std::sync::Arc<C>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let deadline = Instant::now() + duration;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let client = clients[task % clients.len()].clone();
        let call = call.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                call(client.clone()).await?;
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await??);
    }
    anyhow::ensure!(!latencies.is_empty(), "no call finished within {duration:?}");
    latencies.sort_by(f64::total_cmp);
    Ok(BareResult {
        queries_per_s: latencies.len() as f64 / duration.as_secs_f64(),
        p50_ms: crate::report::percentile(&latencies, 0.5),
        p99_ms: crate::report::percentile(&latencies, 0.99),
    })
}

/// Round trips per query of the bare client: `calls` sequential runs of the prepared [`QUERY`] on
/// one connection through `proxy` (after the connection and the prepare).
pub fn bare_round_trips(
    runtime: &tokio::runtime::Runtime,
    proxy: &crate::round_trips::TurnCounter,
    url_through_proxy: &str,
    calls: u32,
) -> anyhow::Result<f64> {
    runtime.block_on(async {
        let client = connect(url_through_proxy).await.context("through the counting proxy")?;
        let statement = client.prepare(QUERY).await?;
        let before = proxy.turns();
        for _ in 0..calls {
            client.query(&statement, &[]).await?;
        }
        Ok((proxy.turns() - before) as f64 / f64::from(calls))
    })
}
