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
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(SEED).await?;
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
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .context("bare client cannot connect")?;
            tokio::spawn(connection);
            let statement = client.prepare(QUERY).await?;
            clients.push(std::sync::Arc::new((client, statement)));
        }
        let deadline = Instant::now() + duration;
        let mut handles = Vec::new();
        for task in 0..tasks {
            let pair = clients[task % connections].clone();
            handles.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let rows = pair.0.query(&pair.1, &[]).await?;
                    anyhow::ensure!(rows.len() == 1, "expected one row");
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, anyhow::Error>(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for handle in handles {
            latencies.extend(handle.await??);
        }
        latencies.sort_by(f64::total_cmp);
        let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        Ok(BareResult {
            queries_per_s: latencies.len() as f64 / duration.as_secs_f64(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        })
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
        let (client, connection) = tokio_postgres::connect(url_through_proxy, tokio_postgres::NoTls)
            .await
            .context("bare client cannot connect through the counting proxy")?;
        tokio::spawn(connection);
        let statement = client.prepare(QUERY).await?;
        let before = proxy.turns();
        for _ in 0..calls {
            client.query(&statement, &[]).await?;
        }
        Ok((proxy.turns() - before) as f64 / f64::from(calls))
    })
}
