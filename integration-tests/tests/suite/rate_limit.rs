//! Scenario 8: two layers of rate limiting, and the one thing neither may do. nginx's `limit_req`
//! caps each client address centrally (429 from the proxy, before any instance). Each instance's
//! failed-auth limiter counts failing attempts per client address on its own (documented as
//! per-instance: no shared state) and answers them 429 once the address is locked out — but it never
//! refuses a valid token. Through nginx every client on this host has the same address (nginx's
//! `X-Forwarded-For`, believed because compose.yaml trusts nginx), so client A's bad tokens lock
//! that address out on every instance, and client B's valid token and session, and A's own valid
//! token, are served all the same.

use std::collections::BTreeMap;

use integration_tests::{
    cluster::{Cluster, ClusterOptions, ping},
    report,
    shared_files::{PASSWORD, USER},
};
use serde_json::json;

const FAILURES: usize = 5;
const BAD_TOKEN: &str = "pgmcp_not-a-real-token";

/// What came back: status, answering instance ("" when nginx answered itself), Retry-After.
#[derive(Debug)]
struct Answer {
    status: u16,
    instance: String,
    retry_after: Option<u64>,
}

async fn call(client: &reqwest::Client, base: &str, token: &str, id: u64) -> Answer {
    let response = client
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&ping(id))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Answer {
        status: response.status().as_u16(),
        instance: header("x-instance-id").unwrap_or_default(),
        retry_after: header("retry-after").and_then(|v| v.parse().ok()),
    }
}

async fn login(client: &reqwest::Client, base: &str) -> reqwest::Response {
    client
        .post(format!("{base}/api/login"))
        .json(&json!({"username": USER, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

/// A second client program on the same host: its own connections, the same address.
fn another_client(cluster: &Cluster) -> reqwest::Client {
    let pem = std::fs::read(cluster.certificate()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .unwrap()
}

/// "mcp-1: 401x4 429x3, mcp-2: ..." from answers in arrival order.
fn by_instance(answers: &[Answer]) -> BTreeMap<String, Vec<u16>> {
    let mut grouped: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for answer in answers {
        grouped.entry(answer.instance.clone()).or_default().push(answer.status);
    }
    grouped
}

fn runs(statuses: &[u16]) -> String {
    let mut parts: Vec<(u16, usize)> = Vec::new();
    for status in statuses {
        match parts.last_mut() {
            Some((last, count)) if last == status => *count += 1,
            _ => parts.push((*status, 1)),
        }
    }
    parts
        .iter()
        .map(|(status, count)| format!("{status}x{count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn summary(answers: &[Answer]) -> String {
    by_instance(answers)
        .iter()
        .map(|(instance, statuses)| format!("{instance}: {}", runs(statuses)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn nginx_limits_bursts_and_bad_tokens_never_lock_out_valid_ones() {
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
    tokio::time::sleep(std::time::Duration::from_secs(3)).await; // let nginx's bucket drain

    // Client B logs in before anything failed: a password login from a locked-out address is
    // refused before bcrypt (checked at the end).
    let client_a = &cluster.client;
    let client_b = another_client(&cluster);
    let response = login(&client_b, &cluster.nginx_url).await;
    assert_eq!(response.status(), 200);
    let session = response.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Per instance: bad tokens straight at mcp-1 lock the address out there only.
    let mut direct = Vec::new();
    for id in 0..(FAILURES as u64 + 3) {
        direct.push(call(client_a, &cluster.instances[0].url(), BAD_TOKEN, id).await);
    }
    let statuses: Vec<u16> = direct.iter().map(|a| a.status).collect();
    assert_eq!(&statuses[..FAILURES], &vec![401; FAILURES][..], "{statuses:?}");
    assert!(statuses[FAILURES..].iter().all(|s| *s == 429), "{statuses:?}");
    let retry_after = direct.last().unwrap().retry_after.expect("429 without Retry-After");
    for instance in &cluster.instances[1..] {
        let answer = call(client_a, &instance.url(), BAD_TOKEN, 1).await;
        assert_eq!(answer.status, 401, "{} should count its own failures", instance.id);
    }
    report::record(
        "8 rate limit",
        &format!(
            "bad tokens straight at mcp-1: {} (Retry-After: {retry_after}); mcp-2 and mcp-3 still 401 (per-instance limiter)",
            runs(&statuses)
        ),
    );

    // Through nginx: client A sends 20 bad tokens, then more until every instance has locked the
    // address out (nginx spreads requests evenly, but not to the request).
    let mut bad = Vec::new();
    for id in 0..20 {
        bad.push(call(client_a, &cluster.nginx_url, BAD_TOKEN, 100 + id).await);
    }
    let everyone_locked = |answers: &[Answer]| {
        cluster
            .instances
            .iter()
            .all(|i| answers.iter().any(|a| a.instance == i.id && a.status == 429))
    };
    for id in 0..40 {
        if everyone_locked(&bad) {
            break;
        }
        bad.push(call(client_a, &cluster.nginx_url, BAD_TOKEN, 200 + id).await);
    }
    assert!(
        everyone_locked(&bad),
        "not every instance locked the address out: {bad:?}"
    );
    for (instance, statuses) in by_instance(&bad) {
        let first_429 = statuses.iter().position(|s| *s == 429).unwrap_or(statuses.len());
        assert!(
            statuses[..first_429].iter().all(|s| *s == 401) && statuses[first_429..].iter().all(|s| *s == 429),
            "{instance}: 401s then 429s expected: {statuses:?}"
        );
    }
    assert!(
        bad.iter().filter(|a| a.status == 429).all(|a| a.retry_after.is_some()),
        "a 429 without Retry-After: {bad:?}"
    );
    report::record(
        "8 rate limit",
        &format!("client A, {} bad tokens via nginx: {}", bad.len(), summary(&bad)),
    );

    // The address is locked out everywhere, yet valid credentials from it are served: client B's
    // token and session, and client A's own token, through nginx and straight at each instance.
    let mut valid = Vec::new();
    for id in 0..6 {
        valid.push(call(&client_b, &cluster.nginx_url, &cluster.files.token, 300 + id).await);
        valid.push(call(&client_b, &cluster.nginx_url, &session, 400 + id).await);
        valid.push(call(client_a, &cluster.nginx_url, &cluster.files.token, 500 + id).await);
    }
    for instance in &cluster.instances {
        valid.push(call(&client_b, &instance.url(), &session, 600).await);
        valid.push(call(client_a, &instance.url(), &cluster.files.token, 601).await);
    }
    assert!(
        valid.iter().all(|a| a.status == 200),
        "a valid credential was refused: {valid:?}"
    );
    report::record(
        "8 rate limit",
        &format!(
            "then valid token (B, A) and session (B) from the locked-out address: {} x 200 ({})",
            valid.len(),
            summary(&valid)
        ),
    );

    // ... and the lockout still holds for A's bad tokens, and for password logins from the address.
    let mut after = Vec::new();
    for id in 0..6 {
        after.push(call(client_a, &cluster.nginx_url, BAD_TOKEN, 700 + id).await);
    }
    assert!(
        after.iter().all(|a| a.status == 429 && a.retry_after.is_some()),
        "bad tokens after the valid calls: {after:?}"
    );
    let refused_login = login(&client_b, &cluster.nginx_url).await;
    let refused_login_status = refused_login.status().as_u16();
    assert!(
        refused_login.headers().contains_key("x-instance-id"),
        "answered by nginx, not an instance"
    );
    assert_eq!(refused_login_status, 429, "a password login from a locked-out address");
    report::record(
        "8 rate limit",
        &format!(
            "then client A's bad tokens via nginx: {}; a password login from the address: {refused_login_status}",
            summary(&after)
        ),
    );
}
