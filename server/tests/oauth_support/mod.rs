//! Shared by the OAuth tests: servers with a known public URL, and the steps of an OAuth client
//! written out with plain HTTP so each step's answer can be checked (the Python SDK test drives the
//! same flow with a client nobody here wrote).
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postgres_mcp::{InstanceId, server::RunningServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::Fixture;

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An instance listening on `port` whose public URL is `public` (instances behind one balancer
/// share it), with `extra` YAML merged over the fixture's config.
pub async fn start_at(fixture: &Fixture, instance: &str, port: u16, public: &str, extra: &str) -> RunningServer {
    let yaml = format!("listen: 127.0.0.1:{port}\npublic_url: {public}\n{extra}");
    postgres_mcp::server::start(
        fixture.config(instance, &yaml),
        InstanceId::resolve(Some(instance), None),
    )
    .await
    .unwrap()
}

/// An HTTP client that shows redirects instead of following them.
pub fn http() -> reqwest::Client {
    postgres_mcp::tls::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `tools/list` at `base/mcp` with `bearer`.
pub async fn tools_list(base: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = http()
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The `WWW-Authenticate` header of a response.
pub fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A PKCE pair (RFC 7636): a verifier and its S256 challenge.
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("{seed:-<43}").replace(['/', ' '], "-");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub const REDIRECT: &str = "http://127.0.0.1:7777/callback";

/// Registers a public client (RFC 7591); its id.
pub async fn register(base: &str, redirect_uris: &[&str]) -> String {
    let response = http()
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": redirect_uris, "client_name": "test", "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["client_id"].as_str().unwrap().to_string()
}

/// The answer to `GET /oauth/authorize` with `params`.
pub async fn authorize(base: &str, params: &[(&str, &str)]) -> reqwest::Response {
    http()
        .get(format!("{base}/oauth/authorize"))
        .query(params)
        .send()
        .await
        .unwrap()
}

/// The sign-in page's sealed request and the CSRF cookie that came with it.
pub async fn page_and_cookie(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    let start = html.find("name=\"request\" value=\"").unwrap() + "name=\"request\" value=\"".len();
    let end = start + html[start..].find('"').unwrap();
    (html[start..end].to_string(), cookie)
}

/// Posts the sign-in form.
pub async fn sign_in(
    base: &str,
    request: &str,
    cookie: Option<&str>,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut post = http().post(format!("{base}/oauth/authorize")).form(&[
        ("request", request),
        ("username", username),
        ("password", password),
    ]);
    if let Some(cookie) = cookie {
        post = post.header("cookie", cookie);
    }
    post.send().await.unwrap()
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response.headers().get("location").unwrap().to_str().unwrap();
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// `POST /oauth/token` with `form`: status and JSON body.
pub async fn token(base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(
        response.headers().get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "token answers are never cached"
    );
    (status, response.json().await.unwrap())
}
