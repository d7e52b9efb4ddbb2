//! External identity provider mode against a real OpenID Connect provider process
//! (tests/python/oidc_provider.py: discovery, JWKS, RS256 tokens from the client-credentials grant):
//! a valid token is served; a wrong audience, an expired token, an unknown key and a tampered token
//! are refused with `WWW-Authenticate: Bearer error="invalid_token", resource_metadata=…`; a key
//! rotated at the IdP is picked up without a restart; an IdP that goes away does not fail tokens
//! whose key is cached.

mod common;
mod oauth_support;

use std::{path::PathBuf, process::Stdio, time::Duration};

use common::Fixture;
use oauth_support::*;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "the test IdP needs Python with PyJWT and cryptography (installed with `mcp`): run `make test` (creates .venv), or set TEST_PYTHON"
    );
    venv
}

/// The provider process, stopped when dropped.
struct Idp {
    child: tokio::process::Child,
    base: String,
}

impl Idp {
    async fn start() -> Idp {
        let port = free_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/oidc_provider.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "ready"),
            "the IdP did not start: {ready:?}"
        );
        Idp {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A token from the client-credentials grant; `extra` adds or overrides form fields.
    async fn token(&self, resource: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", "test-client"),
            ("client_secret", "test-secret"),
            ("resource", resource),
            ("scope", "openid mcp"),
        ];
        for (name, value) in extra {
            form.retain(|(n, _)| n != name);
            form.push((name, value));
        }
        let body: Value = http()
            .post(format!("{}/token", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn rotate(&self) {
        let response = http().post(format!("{}/rotate", self.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn jwks_fetches(&self) -> u64 {
        let stats: Value = http()
            .get(format!("{}/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["jwks_fetches"].as_u64().unwrap()
    }
}

fn external(issuer: &str) -> String {
    format!(
        "auth:\n  oauth:\n    mode: external\n    external:\n      issuer: {issuer}\n      jwks_refresh_interval: 1s\n      request_timeout: 2s\n"
    )
}

fn assert_invalid_token(response: &reqwest::Response, reason: &str, metadata: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{reason}");
    let value = challenge(response);
    assert!(value.starts_with("Bearer "), "{value}");
    assert!(value.contains("error=\"invalid_token\""), "{reason}: {value}");
    assert!(
        value.contains(&format!("error_description=\"{reason}\"")),
        "{reason}: {value}"
    );
    assert!(value.contains(&format!("resource_metadata=\"{metadata}\"")), "{value}");
}

#[tokio::test]
async fn idp_tokens_are_checked_for_signature_audience_expiry_and_key() {
    let idp = Idp::start().await;
    let fixture = Fixture::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = start_at(&fixture, "ext", port, &base, &external(&idp.base)).await;
    let resource = format!("{base}/mcp");
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");

    // Discovery: no token → 401 naming the metadata, which names the IdP.
    let anonymous = tools_list(&base, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !challenge(&anonymous).contains("error="),
        "no error code without a token (RFC 6750 §3.1)"
    );
    assert!(challenge(&anonymous).contains(&format!("resource_metadata=\"{metadata}\"")));
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let prm: Value = http()
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prm["resource"], resource);
        assert_eq!(prm["authorization_servers"][0], idp.base);
    }

    let valid = idp.token(&resource, &[]).await;
    let served = tools_list(&base, Some(&valid)).await;
    assert_eq!(served.status(), StatusCode::OK);

    let other_audience = idp.token("https://other.example.com/mcp", &[]).await;
    assert_invalid_token(
        &tools_list(&base, Some(&other_audience)).await,
        "wrong_audience",
        &metadata,
    );
    let expired = idp.token(&resource, &[("ttl", "-600")]).await;
    assert_invalid_token(&tools_list(&base, Some(&expired)).await, "expired", &metadata);
    let unknown_key = idp.token(&resource, &[("unpublished", "1")]).await;
    assert_invalid_token(&tools_list(&base, Some(&unknown_key)).await, "unknown_key", &metadata);
    // Tampered: the payload edited (another subject), the signature kept.
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    let payload = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1]).unwrap(),
    )
    .unwrap()
    .replace("service-account-ci", "administrator-root");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload);
    assert_invalid_token(
        &tools_list(&base, Some(&parts.join("."))).await,
        "bad_signature",
        &metadata,
    );

    // A valid token without any of our scopes: 403 insufficient_scope (RFC 6750 §3.1).
    let unscoped = idp.token(&resource, &[("scope", "openid email")]).await;
    let forbidden = tools_list(&base, Some(&unscoped)).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&forbidden).contains("error=\"insufficient_scope\", scope=\"mcp\""));

    // Static API tokens keep working beside OAuth.
    assert_eq!(tools_list(&base, Some(&fixture.token)).await.status(), StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_key_rotated_at_the_idp_is_used_without_restart_and_a_dead_idp_fails_nothing_cached() {
    let mut idp = Idp::start().await;
    let fixture = Fixture::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The failed-auth limiter would turn the unknown-kid probes below into 429 after 10; this test
    // counts JWKS fetches, so it raises the budget.
    let config = format!("{}  rate_limit:\n    failures: 1000\n", external(&idp.base));
    let server = start_at(&fixture, "ext-rotate", port, &base, &config).await;
    let resource = format!("{base}/mcp");

    let old = idp.token(&resource, &[]).await;
    assert_eq!(tools_list(&base, Some(&old)).await.status(), StatusCode::OK);
    // Cached keys serve without asking the IdP again.
    let fetches = idp.jwks_fetches().await;
    for _ in 0..20 {
        assert_eq!(tools_list(&base, Some(&old)).await.status(), StatusCode::OK);
    }
    assert_eq!(idp.jwks_fetches().await, fetches, "a cached key needs no fetch");

    idp.rotate().await;
    let new = idp.token(&resource, &[]).await;
    // The first token with the new kid may land inside the refresh interval (1 s here) of the
    // start-up fetch; within a few seconds it is served, with no restart.
    let picked_up = common::eventually(10, || async {
        tools_list(&base, Some(&new)).await.status() == StatusCode::OK
    })
    .await;
    assert!(picked_up, "the rotated key was never fetched");
    assert_eq!(
        tools_list(&base, Some(&old)).await.status(),
        StatusCode::OK,
        "the old key is still published"
    );

    // Unknown kids do not turn into a flood of fetches: at most one per interval.
    let before = idp.jwks_fetches().await;
    let unknown = idp.token(&resource, &[("unpublished", "1")]).await;
    let started = std::time::Instant::now();
    for _ in 0..30 {
        assert_eq!(
            tools_list(&base, Some(&unknown)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let fetched = idp.jwks_fetches().await - before;
    let allowed = started.elapsed().as_secs() + 1;
    println!(
        "30 requests with an unknown kid in {:?}: {fetched} JWKS fetches",
        started.elapsed()
    );
    assert!(
        fetched <= allowed,
        "unknown kids must not each fetch the JWKS: {fetched} fetches"
    );

    // The IdP goes away: tokens whose key is cached are still served.
    idp.child.kill().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for token in [&old, &new] {
        assert_eq!(tools_list(&base, Some(token)).await.status(), StatusCode::OK);
    }
    // And an unknown key is refused quickly rather than hanging on the dead IdP.
    let started = std::time::Instant::now();
    assert_eq!(
        tools_list(&base, Some(&unknown)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    server.stop().await.unwrap();
}
