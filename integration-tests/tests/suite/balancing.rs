//! Scenarios 1 and 2: nginx spreads requests over all three instances, and any credential works on
//! any instance (no sticky sessions, no per-instance state).

use std::collections::BTreeMap;

use integration_tests::{
    cluster::{Cluster, ClusterOptions, search},
    report,
    shared_files::{PASSWORD, USER},
};
use serde_json::json;

#[tokio::test]
async fn requests_through_nginx_succeed_and_reach_all_three_instances() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let mut by_instance: BTreeMap<String, usize> = BTreeMap::new();
    let requests = 90;
    for id in 0..requests {
        let reply = cluster
            .rpc(&cluster.nginx_url, &cluster.files.token, &search(id, "vacuum"))
            .await
            .unwrap();
        assert!(reply.is_success(), "request {id}: {reply:?}");
        *by_instance.entry(reply.instance).or_default() += 1;
    }
    report::record(
        "1 balancing",
        &format!("{requests} requests through nginx, all 200; by instance: {by_instance:?}"),
    );
    let expected: Vec<String> = (1..=3).map(|i| format!("mcp-{i}")).collect();
    assert_eq!(by_instance.keys().cloned().collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn a_token_and_a_session_from_nginx_work_on_every_instance_directly() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    for instance in &cluster.instances {
        let reply = cluster
            .rpc(&instance.url(), &cluster.files.token, &search(1, "index"))
            .await
            .unwrap();
        assert!(reply.is_success(), "{}: {reply:?}", instance.id);
        assert_eq!(reply.instance, instance.id);
    }
    let login = cluster
        .client
        .post(format!("{}/api/login", cluster.nginx_url))
        .json(&json!({"username": USER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let issuer = login.headers()["x-instance-id"].to_str().unwrap().to_string();
    let session = login.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(session.starts_with("pgmcs_"));
    for instance in &cluster.instances {
        let reply = cluster
            .rpc(&instance.url(), &session, &search(2, "index"))
            .await
            .unwrap();
        assert!(
            reply.is_success(),
            "session issued by {issuer} refused by {}: {reply:?}",
            instance.id
        );
    }
    let forged = format!("{}x", session);
    let reply = cluster
        .rpc(&cluster.instances[0].url(), &forged, &search(3, "index"))
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    report::record(
        "2 credentials",
        &format!(
            "token accepted by mcp-1..3; session issued by {issuer} via nginx accepted by mcp-1..3; tampered session 401"
        ),
    );
}
