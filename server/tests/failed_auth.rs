//! The failed-auth limiter as a client sees it: failing attempts and password logins are slowed per
//! client address; a valid API or session token is always served, whatever its address did before.
//! Clients are told apart by `X-Forwarded-For` from a trusted proxy (the test itself, on loopback).

mod common;

use common::*;
use postgres_mcp::server::RunningServer;
use serde_json::{Value, json};

/// Three failures per minute, then two minutes of 429; the loopback peer is a trusted proxy.
const LIMITS: &str =
    "auth:\n  trusted_proxies: [127.0.0.1]\n  rate_limit:\n    failures: 3\n    window: 1m\n    lockout: 2m\n";
const FAILURES: usize = 3;
const ATTACKER: &str = "198.51.100.7";

async fn call_from(server: &RunningServer, client_ip: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = common::client()
        .post(url(server, "/mcp"))
        .header("x-forwarded-for", client_ip)
        .header("accept", "application/json, text/event-stream")
        .json(&search_call(1, "vacuum"));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn login_from(server: &RunningServer, client_ip: &str, password: &str) -> reqwest::Response {
    common::client()
        .post(url(server, "/api/login"))
        .header("x-forwarded-for", client_ip)
        .json(&json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap()
}

async fn session_token(server: &RunningServer, client_ip: &str) -> String {
    let response = login_from(server, client_ip, PASSWORD).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The Retry-After of a response, in seconds.
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

async fn lock_out(server: &RunningServer, client_ip: &str) {
    for attempt in 1..=FAILURES {
        let status = call_from(server, client_ip, Some("pgmcp_guess")).await.status();
        assert_eq!(status, 401, "attempt {attempt} is answered 401");
    }
}

#[tokio::test]
async fn after_repeated_bad_tokens_valid_tokens_from_that_address_are_still_served() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", LIMITS).await;
    let session = session_token(&server, ATTACKER).await;
    lock_out(&server, ATTACKER).await;

    // The bad token is now refused with 429 and a Retry-After within the lockout ...
    let refused = call_from(&server, ATTACKER, Some("pgmcp_guess")).await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused).expect("429 carries Retry-After");
    assert!((100..=120).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "too_many_failed_attempts"
    );

    // ... while a valid API token and a valid session token from the same address are served,
    // however often they come.
    for _ in 0..5 {
        let response = call_from(&server, ATTACKER, Some(&fixture.token)).await;
        assert_eq!(response.status(), 200, "a valid API token is never locked out");
        assert_eq!(response.json::<Value>().await.unwrap()["result"]["isError"], false);
        let response = call_from(&server, ATTACKER, Some(&session)).await;
        assert_eq!(response.status(), 200, "a valid session token is never locked out");
    }
    // Serving them did not lift the lockout.
    assert_eq!(
        call_from(&server, ATTACKER, Some("pgmcs_forged.payload"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn a_lockout_concerns_only_the_address_that_failed() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", LIMITS).await;
    lock_out(&server, ATTACKER).await;
    assert_eq!(call_from(&server, ATTACKER, Some("pgmcp_guess")).await.status(), 429);
    // Another client behind the same proxy still gets 401 for a bad token, and logs in.
    assert_eq!(
        call_from(&server, "203.0.113.9", Some("pgmcp_guess")).await.status(),
        401
    );
    assert_eq!(login_from(&server, "203.0.113.9", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn wrong_passwords_lock_out_logins_before_bcrypt_runs() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", LIMITS).await;
    for attempt in 1..=FAILURES {
        let response = login_from(&server, ATTACKER, "wrong password").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let refused = login_from(&server, ATTACKER, "wrong password").await;
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused).is_some_and(|s| s > 100));
    // Even the right password is refused from that address: the 429 came before any password check.
    assert_eq!(login_from(&server, ATTACKER, PASSWORD).await.status(), 429);
    // A correct login from an address that is not locked out is served.
    let response = login_from(&server, "203.0.113.9", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .starts_with("pgmcs_")
    );
}

#[tokio::test]
async fn successful_logins_count_nothing() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", LIMITS).await;
    for _ in 0..(FAILURES * 3) {
        assert_eq!(login_from(&server, ATTACKER, PASSWORD).await.status(), 200);
    }
    // The whole budget is still there.
    lock_out(&server, ATTACKER).await;
    assert_eq!(call_from(&server, ATTACKER, Some("pgmcp_guess")).await.status(), 429);
}

#[tokio::test]
async fn a_burst_of_concurrent_wrong_passwords_gets_no_more_bcrypts_than_the_budget() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", LIMITS).await;
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let url = url(&server, "/api/login");
            tokio::spawn(async move {
                common::client()
                    .post(url)
                    .header("x-forwarded-for", ATTACKER)
                    .json(&json!({"username": "alice", "password": "wrong password"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // Logins in flight hold the budget: only the first three reached bcrypt.
    assert_eq!((checked, refused), (FAILURES, 20 - FAILURES), "{statuses:?}");
}

#[tokio::test]
async fn requests_without_credentials_are_not_counted() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", LIMITS).await;
    for _ in 0..(FAILURES * 3) {
        let response = call_from(&server, ATTACKER, None).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
    }
    assert_eq!(call_from(&server, ATTACKER, Some("pgmcp_guess")).await.status(), 401);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_cannot_dodge_the_limiter() {
    let fixture = Fixture::new();
    let server = fixture
        .start_with("mcp-a", "auth:\n  rate_limit:\n    failures: 2\n")
        .await;
    // No trusted proxies: X-Forwarded-For is ignored, so rotating it does not reset the count.
    assert_eq!(call_from(&server, "10.0.0.1", Some("pgmcp_x")).await.status(), 401);
    assert_eq!(call_from(&server, "10.0.0.2", Some("pgmcp_x")).await.status(), 401);
    assert_eq!(call_from(&server, "10.0.0.3", Some("pgmcp_x")).await.status(), 429);
    // Every client behind that untrusted proxy shares the lockout for bad credentials, but valid
    // tokens are served: a missing trusted_proxies setting cannot lock anyone with a token out.
    assert_eq!(call_from(&server, "10.0.0.4", Some(&fixture.token)).await.status(), 200);
}
