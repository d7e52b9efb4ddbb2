//! Scenarios 6 and 7: steady load through nginx while an instance is SIGKILLed (failover), and while
//! each instance in turn gets SIGTERM and is restarted (a rolling restart, which must lose nothing).
//!
//! Scenarios 11 and 12 (issue #18), through nginx and through HAProxy alike: 16 clients while one of
//! three instances is SIGKILLed (11: the calls in flight on it are replayed elsewhere, none fails)
//! or SIGSTOPped (12: a hung instance; its calls wait out the balancer's read timeout, 35 s, and
//! are replayed, none fails). Each reports requests served, their latency percentiles and the
//! failures, which must be zero. The freeze lasts beyond that timeout so the replays, not a
//! resumed instance, are what answers.

use std::time::{Duration, Instant};

use integration_tests::{
    cluster::{Balancer, Cluster, ClusterOptions},
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
    // nginx leaves a failed upstream alone for fail_timeout (2 s), then tries it again.
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

/// Issue #18's load: 16 concurrent clients, 5 calls/s each (80/s in all, under both balancers'
/// 100/s per-client limit: every call comes from this one address).
const MANY_CLIENTS: usize = 16;
const MANY_INTERVAL: Duration = Duration::from_millis(200);
/// The balancers wait 35 s for an answer (server request timeout 30 s + 5 s) before replaying; a
/// client must outwait that and one replay.
const PATIENT_CLIENT: Duration = Duration::from_secs(90);

async fn start_many(cluster: &Cluster) -> Load {
    Load::start(
        cluster.client_with_timeout(PATIENT_CLIENT).unwrap(),
        cluster.nginx_url.clone(),
        cluster.files.token.clone(),
        MANY_CLIENTS,
        MANY_INTERVAL,
    )
}

/// One report line: served, failed, latency percentiles and the spread over instances.
fn figures(outcome: &LoadOutcome) -> String {
    let slow = outcome
        .latencies
        .iter()
        .filter(|d| **d > Duration::from_secs(5))
        .count();
    format!(
        "sent {} served {} failed {}; latency {}; {slow} took over 5 s; by instance {:?}",
        outcome.sent,
        outcome.succeeded,
        outcome.failures.len(),
        report::summary(&outcome.latencies),
        outcome.by_instance
    )
}

fn record_failures(scenario: &str, outcome: &LoadOutcome) {
    for (at, failure) in outcome.failures.iter().take(10) {
        report::record(scenario, &format!("  failed at {:.3} s: {failure}", at.as_secs_f64()));
    }
}

/// SIGKILL one of three under 16 clients: the balancer replays the calls that were in flight on
/// it, so not one fails.
async fn sigkill_loses_nothing(balancer: Balancer) {
    let cluster = Cluster::start(ClusterOptions::default().balancer(balancer))
        .await
        .unwrap();
    let load = start_many(&cluster).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = load.started.elapsed();
    cluster.kill(1).unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let outcome = load.finish().await;
    let scenario = format!("11 SIGKILL via {}", balancer.name());
    report::record(
        &scenario,
        &format!(
            "SIGKILL mcp-2 at {:.1} s under {MANY_CLIENTS} clients x 5 r/s: {}",
            killed_at.as_secs_f64(),
            figures(&outcome)
        ),
    );
    record_failures(&scenario, &outcome);
    let after_kill = outcome.timeline.iter().filter(|(at, _)| *at > killed_at).count();
    assert!(after_kill > 0, "nothing was served after the kill");
    assert!(
        outcome.failures.is_empty(),
        "{} failed requests through {} when an instance was killed: {:?}",
        outcome.failures.len(),
        balancer.name(),
        outcome.failures
    );
    assert_eq!(outcome.by_instance.len(), 3, "every instance served before the kill");
}

/// SIGSTOP one of three under 16 clients for longer than the balancer's read timeout, then SIGCONT:
/// the calls it holds time out at the balancer and are replayed elsewhere, the balancer stops
/// sending it more, and not one call fails.
async fn sigstop_loses_nothing(balancer: Balancer) {
    let cluster = Cluster::start(ClusterOptions::default().balancer(balancer))
        .await
        .unwrap();
    let load = start_many(&cluster).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.freeze(1).unwrap();
    // After the signal is delivered (the docker CLI takes a moment): answers before this instant
    // may still come from the instance.
    let frozen_at = load.started.elapsed();
    tokio::time::sleep(Duration::from_secs(40)).await;
    let thawed_at = load.started.elapsed();
    cluster.thaw(1).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outcome = load.finish().await;
    let during: Vec<&(Duration, String)> = outcome
        .timeline
        .iter()
        .filter(|(at, _)| *at > frozen_at && *at < thawed_at)
        .collect();
    let by_frozen = during.iter().filter(|(_, instance)| instance == "mcp-2").count();
    let scenario = format!("12 SIGSTOP via {}", balancer.name());
    report::record(
        &scenario,
        &format!(
            "SIGSTOP mcp-2 at {:.1} s, SIGCONT at {:.1} s, under {MANY_CLIENTS} clients x 5 r/s: {}; \
             answered while frozen: {} ({by_frozen} by mcp-2)",
            frozen_at.as_secs_f64(),
            thawed_at.as_secs_f64(),
            figures(&outcome),
            during.len()
        ),
    );
    record_failures(&scenario, &outcome);
    assert!(
        outcome.failures.is_empty(),
        "{} failed requests through {} while an instance hung: {:?}",
        outcome.failures.len(),
        balancer.name(),
        outcome.failures
    );
    assert_eq!(by_frozen, 0, "a frozen instance cannot answer");
    assert!(!during.is_empty(), "nothing was served while one instance hung");
}

#[tokio::test]
async fn sigkill_under_16_clients_loses_no_request_through_nginx() {
    sigkill_loses_nothing(Balancer::Nginx).await;
}

#[tokio::test]
async fn sigkill_under_16_clients_loses_no_request_through_haproxy() {
    sigkill_loses_nothing(Balancer::Haproxy).await;
}

#[tokio::test]
async fn sigstop_under_16_clients_loses_no_request_through_nginx() {
    sigstop_loses_nothing(Balancer::Nginx).await;
}

#[tokio::test]
async fn sigstop_under_16_clients_loses_no_request_through_haproxy() {
    sigstop_loses_nothing(Balancer::Haproxy).await;
}
