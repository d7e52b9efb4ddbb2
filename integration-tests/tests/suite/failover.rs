//! Scenarios 6 and 7: steady load through nginx while an instance is SIGKILLed (failover), and while
//! each instance in turn gets SIGTERM and is restarted (a rolling restart, which must lose nothing).

use std::time::{Duration, Instant};

use integration_tests::{
    cluster::{Cluster, ClusterOptions},
    load::{Load, LoadOutcome},
    report,
};

/// 4 clients x 20 requests/s: steady, and under nginx's per-client limit_req (100 r/s).
const CLIENTS: usize = 4;
const INTERVAL: Duration = Duration::from_millis(50);

fn start_load(cluster: &Cluster) -> Load {
    Load::start(
        cluster.client.clone(),
        cluster.nginx_url.clone(),
        cluster.files.token.clone(),
        CLIENTS,
        INTERVAL,
    )
}

fn describe(outcome: &LoadOutcome) -> String {
    format!(
        "sent {} succeeded {} failed {} by instance {:?}",
        outcome.sent,
        outcome.succeeded,
        outcome.failures.len(),
        outcome.by_instance
    )
}

#[tokio::test]
async fn killing_one_instance_under_load_fails_at_most_its_requests_in_flight_and_it_rejoins() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let load = start_load(&cluster);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = load.started.elapsed();
    cluster.kill(1).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restart_at = load.started.elapsed();
    let started_again = cluster.restart(1).await.unwrap();
    let restarted_at = load.started.elapsed();
    // nginx leaves a failed upstream alone for fail_timeout (10 s), then tries it again.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let outcome = load.finish().await;

    let rejoined = outcome
        .timeline
        .iter()
        .find(|(at, instance)| *at > restarted_at && instance == "mcp-2")
        .map(|(at, _)| *at - restarted_at);
    report::record(
        "6 failover",
        &format!(
            "SIGKILL mcp-2 at {:.1} s under {CLIENTS} clients x 20 r/s: {}",
            killed_at.as_secs_f64(),
            describe(&outcome)
        ),
    );
    for (at, failure) in &outcome.failures {
        report::record(
            "6 failover",
            &format!("  failed at {:.3} s: {failure}", at.as_secs_f64()),
        );
    }
    report::record(
        "6 failover",
        &format!(
            "mcp-2 restarted at {:.1} s, healthy after {} ms, first request through nginx {} later",
            restart_at.as_secs_f64(),
            started_again.as_millis(),
            rejoined.map_or("never".to_string(), |d| format!("{} ms", d.as_millis()))
        ),
    );
    assert!(
        outcome.failures.len() <= CLIENTS,
        "more failures than requests that can be in flight on the killed instance: {:?}",
        outcome.failures
    );
    assert!(
        rejoined.is_some(),
        "mcp-2 never served through nginx again after its restart"
    );
    assert!(outcome.by_instance.len() == 3);
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_no_request() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let load = start_load(&cluster);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut steps = Vec::new();
    for index in 0..cluster.instances.len() {
        let began = Instant::now();
        cluster.stop_gracefully(index).await.unwrap();
        let stopped = began.elapsed();
        let healthy = cluster.restart(index).await.unwrap();
        steps.push(format!(
            "{}: SIGTERM->exit {} ms, start->healthy {} ms",
            cluster.instances[index].id,
            stopped.as_millis(),
            healthy.as_millis()
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcome = load.finish().await;
    report::record(
        "7 rolling restart",
        &format!("{}; {}", steps.join("; "), describe(&outcome)),
    );
    for (at, failure) in &outcome.failures {
        report::record(
            "7 rolling restart",
            &format!("  failed at {:.3} s: {failure}", at.as_secs_f64()),
        );
    }
    assert!(
        outcome.failures.is_empty(),
        "requests failed during a rolling restart: {:?}",
        outcome.failures
    );
    assert!(outcome.succeeded > 0);
}
