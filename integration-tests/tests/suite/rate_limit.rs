//! Scenario 8: two layers of rate limiting. nginx's `limit_req` caps each client address centrally
//! (429 from the proxy, before any instance); each instance's failed-auth limiter counts failures
//! per client on its own (documented as per-instance: no shared state), so hammering one instance
//! with bad tokens locks the client out there while the other two still answer 401.

use integration_tests::{
    cluster::{Cluster, ClusterOptions, ping},
    report,
};

const FAILURES: usize = 5;

#[tokio::test]
async fn nginx_limits_bursts_and_each_instance_locks_out_bad_tokens_on_its_own() {
    let options = ClusterOptions::default().env("PGMCP_AUTH_RATE_LIMIT_FAILURES", &FAILURES.to_string());
    let cluster = Cluster::start(options).await.unwrap();

    // nginx: 400 concurrent requests from one address against rate 100 r/s, burst 200.
    let burst: Vec<_> = (0..400)
        .map(|id| {
            let (client, url, token) = (
                cluster.client.clone(),
                format!("{}/mcp", cluster.nginx_url),
                cluster.files.token.clone(),
            );
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("MCP-Protocol-Version", "2025-11-25")
                    .json(&ping(id))
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.headers().contains_key("x-instance-id"),
                )
            })
        })
        .collect();
    let (mut passed, mut limited_by_nginx) = (0, 0);
    for task in burst {
        match task.await.unwrap() {
            (200, true) => passed += 1,
            (429, false) => limited_by_nginx += 1,
            other => panic!("unexpected answer in the burst: {other:?}"),
        }
    }
    report::record(
        "8 rate limit",
        &format!("nginx limit_req: 400 concurrent requests -> {passed} x 200, {limited_by_nginx} x 429 from nginx"),
    );
    assert!(limited_by_nginx > 0, "nginx's limit_req never answered 429");
    assert!(passed >= 100, "nginx let too few through: {passed}");

    // Instance limiter: bad tokens straight at mcp-1.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await; // let nginx's bucket drain
    let mut statuses = Vec::new();
    for id in 0..(FAILURES + 3) {
        let reply = cluster
            .rpc(&cluster.instances[0].url(), "pgmcp_not-a-real-token", &ping(id as u64))
            .await
            .unwrap();
        statuses.push(reply.status);
    }
    assert_eq!(&statuses[..FAILURES], &vec![401; FAILURES][..], "{statuses:?}");
    assert!(statuses[FAILURES..].iter().all(|s| *s == 429), "{statuses:?}");
    let locked = cluster
        .client
        .post(format!("{}/mcp", cluster.instances[0].url()))
        .bearer_auth("pgmcp_not-a-real-token")
        .json(&ping(99))
        .send()
        .await
        .unwrap();
    let retry_after = locked
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(locked.status(), 429);
    assert!(retry_after.is_some(), "429 without Retry-After");
    for instance in &cluster.instances[1..] {
        let reply = cluster
            .rpc(&instance.url(), "pgmcp_not-a-real-token", &ping(1))
            .await
            .unwrap();
        assert_eq!(reply.status, 401, "{} should count its own failures", instance.id);
    }
    report::record(
        "8 rate limit",
        &format!(
            "bad tokens at mcp-1: {statuses:?} (Retry-After: {}); mcp-2 and mcp-3 still 401 (per-instance limiter)",
            retry_after.unwrap()
        ),
    );
}
