//! Issue #14: a collector that is down never fails or slows a request — spans wait in memory and
//! are dropped past the queue, the POSTs fail in the background — and the shutdown's flush is
//! bounded. The collector here is the worst kind of down: it accepts connections and never answers
//! (a refused connection fails in microseconds, so it could not show a request waiting on export).
//! (Its own test binary: the span exporter is process-global.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use postgres_mcp::{telemetry, trace_export};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_never_fails_or_slows_a_request() {
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = black_hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = black_hole.accept().await {
            held.push(stream);
        }
    });
    let fixture = Fixture::new();
    let config = fixture.config(
        "mcp-down",
        &format!("log:\n  level: warn\ntrace:\n  otlp_endpoint: http://{collector}\n"),
    );
    let (layer, export) = trace_export::start(&config.trace, "mcp-down").unwrap().unwrap();
    let guard = telemetry::init_with(&config.log, "mcp-down", Some(layer)).unwrap();
    let server = postgres_mcp::server::start(config, postgres_mcp::InstanceId::resolve(Some("mcp-down"), None))
        .await
        .unwrap();

    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    let calls = 200;
    for id in 0..calls {
        let call = Instant::now();
        let response = rpc(&server, Some(&fixture.token), search_call(id, "vacuum")).await;
        assert_eq!(response.status(), 200);
        slowest = slowest.max(call.elapsed());
        if id == 20 {
            // Past the first export interval: the batch task has tried (and failed) to POST.
            tokio::time::sleep(trace_export::EXPORT_INTERVAL + Duration::from_millis(200)).await;
        }
    }
    let busy = started.elapsed() - trace_export::EXPORT_INTERVAL;
    println!(
        "{calls} calls with the collector down: slowest {} ms, mean {:.2} ms",
        slowest.as_millis(),
        busy.as_secs_f64() * 1000.0 / calls as f64
    );
    // A request that waited on the export would take EXPORT_TIMEOUT (5 s).
    assert!(slowest < Duration::from_secs(2), "a call took {slowest:?}");

    // The failure is seen: a POST that timed out is counted as a failed batch.
    let counted = eventually(15, || async {
        postgres_mcp::metrics::handle()
            .render()
            .contains("pgmcp_trace_export_batches_total{outcome=\"failed\"}")
    })
    .await;
    assert!(counted, "no failed batch counted");

    server.stop().await.unwrap();
    let flush = Instant::now();
    export.shutdown().await;
    println!(
        "shutdown flush with the collector down: {} ms",
        flush.elapsed().as_millis()
    );
    assert!(
        flush.elapsed() < trace_export::SHUTDOWN_TIMEOUT + Duration::from_secs(1),
        "the flush took {:?}",
        flush.elapsed()
    );
    drop(guard);
}
