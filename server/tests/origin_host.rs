//! Origin and Host checks as a browser and an operator meet them (issue #13 §A.3, §A.4): a loopback
//! page may call a loopback server with the default configuration, DNS rebinding stays refused, and
//! an `http.allowed_*` entry either matches what a request sends or stops `config check` and
//! `serve` with exit code 2 naming the key.

mod common;

use std::process::Command;

use common::*;
use postgres_mcp::server::RunningServer;
use serde_json::{Value, json};

/// `tools/list` with the given Origin and Host; the status and the JSON body.
async fn call(server: &RunningServer, token: &str, origin: Option<&str>, host: &str) -> (u16, Value) {
    let mut request = client()
        .post(url(server, "/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("host", host)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Each row: Origin, Host, and the refusal expected (`None`: served).
async fn assert_table(server: &RunningServer, token: &str, rows: &[(Option<&str>, &str, Option<&str>)]) {
    for &(origin, host, refusal) in rows {
        let (status, body) = call(server, token, origin, host).await;
        match refusal {
            None => {
                assert_eq!(status, 200, "{origin:?} {host}: {body}");
                assert!(body["result"]["tools"].is_array(), "{origin:?} {host}: {body}");
            }
            Some(code) => {
                assert_eq!(status, 403, "{origin:?} {host}: {body}");
                assert_eq!(body["error"], code, "{origin:?} {host}: {body}");
                let setting = if code == "origin_not_allowed" {
                    "http.allowed_origins"
                } else {
                    "http.allowed_hosts"
                };
                let message = body["message"].as_str().unwrap();
                assert!(message.contains(setting), "{origin:?} {host}: {message}");
            }
        }
    }
}

#[tokio::test]
async fn with_the_default_configuration_a_loopback_page_may_call_a_loopback_host_and_nothing_else() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let port = server.addr.port();
    let here = format!("127.0.0.1:{port}");
    let (origin_here, localhost) = (format!("http://{here}"), format!("localhost:{port}"));
    let origin_localhost = format!("http://localhost:{port}");
    let (v6_host, v6_origin) = (format!("[::1]:{port}"), format!("http://[::1]:{port}"));
    const ORIGIN: Option<&str> = Some("origin_not_allowed");
    const HOST: Option<&str> = Some("host_not_allowed");
    assert_table(
        &server,
        &fixture.token,
        &[
            // The case: the page and the server on the same loopback address.
            (Some(&origin_here), &here, None),
            (Some(&origin_localhost), &localhost, None),
            (Some("HTTP://LOCALHOST.:6274"), &here, None),
            (Some("https://127.0.0.2"), &here, None),
            (Some(&v6_origin), &v6_host, None),
            (Some("http://app.localhost:3000"), &localhost, None),
            (None, &here, None),
            (None, "LOCALHOST.", None),
            // Foreign and opaque origins, and non-web schemes, stay refused.
            (Some("null"), &here, ORIGIN),
            (Some("http://evil.example"), &here, ORIGIN),
            (Some("http://localhost.evil.example"), &localhost, ORIGIN),
            (Some("http://127.0.0.1.evil.example"), &here, ORIGIN),
            (Some("file://"), &here, ORIGIN),
            (Some("chrome-extension://abc"), &here, ORIGIN),
            (Some(&format!("{origin_here}/path")), &here, ORIGIN),
            // DNS rebinding: a loopback page calling a name that resolves elsewhere, or a rebound
            // page (its own origin) calling us under its name.
            (Some(&origin_here), "rebound.attacker.example", ORIGIN),
            (
                Some("http://rebound.attacker.example"),
                "rebound.attacker.example",
                ORIGIN,
            ),
            (None, "rebound.attacker.example", HOST),
            (None, "127.0.0.1@evil.example", HOST),
        ],
    )
    .await;
}

#[tokio::test]
async fn configured_entries_match_whatever_spelling_the_request_uses() {
    let fixture = Fixture::new();
    let server = fixture
        .start_with(
            "mcp-a",
            concat!(
                "public_url: https://Public.example.net:8443/mcp\n",
                "http:\n",
                "  allowed_hosts: [\"mcp.example.com:8443\", \"*.internal.example\"]\n",
                "  allowed_origins: [\"HTTPS://App.example.com/\", \"https://*.apps.example.com\"]\n",
            ),
        )
        .await;
    const ORIGIN: Option<&str> = Some("origin_not_allowed");
    const HOST: Option<&str> = Some("host_not_allowed");
    assert_table(
        &server,
        &fixture.token,
        &[
            // §A.4: the entry has a port; the request's port (any) is not compared.
            (None, "mcp.example.com:8443", None),
            (None, "MCP.EXAMPLE.COM.", None),
            (None, "a.internal.example:80", None),
            (None, "b.a.internal.example", None),
            (None, "internal.example", HOST),
            (None, "mcp.example.com.evil.example", HOST),
            (None, "public.example.net:8443", None),
            (Some("https://app.example.com"), "mcp.example.com", None),
            (Some("https://app.example.com:443"), "mcp.example.com", None),
            (Some("https://x.apps.example.com"), "mcp.example.com", None),
            (Some("https://public.example.net:8443"), "public.example.net:8443", None),
            // An origin is scheme, host and port.
            (Some("https://public.example.net"), "public.example.net:8443", ORIGIN),
            (Some("http://app.example.com"), "mcp.example.com", ORIGIN),
            (Some("https://apps.example.com"), "mcp.example.com", ORIGIN),
            // A loopback page calling this server under a public name is not a local call.
            (Some("http://localhost:3000"), "mcp.example.com", ORIGIN),
        ],
    )
    .await;
}

/// `config check` and `serve` with one environment variable set; exit code and stderr.
fn run(command: &str, tokens: &std::path::Path, variable: &str, value: &str) -> (Option<i32>, String) {
    let mut cli = Command::new(env!("CARGO_BIN_EXE_postgres-mcp"));
    cli.env_remove("PGMCP_CONFIG").env(variable, value);
    let output = match command {
        "check" => cli.args(["config", "check", "--tokens"]).arg(tokens).output(),
        _ => cli
            .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
            .arg(tokens)
            .output(),
    }
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn entries_that_cannot_match_stop_config_check_and_serve_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    postgres_mcp::auth::admin::token_create(&tokens, "a", None, None).unwrap();
    for (variable, value, key, says) in [
        (
            "PGMCP_HTTP_ALLOWED_HOSTS",
            "*example.com",
            "http.allowed_hosts[0]",
            "wildcards",
        ),
        (
            "PGMCP_HTTP_ALLOWED_HOSTS",
            "ok.example.com,https://mcp.example.com",
            "http.allowed_hosts[1]",
            "not a URL",
        ),
        (
            "PGMCP_HTTP_ALLOWED_HOSTS",
            "*.com",
            "http.allowed_hosts[0]",
            "two labels",
        ),
        (
            "PGMCP_HTTP_ALLOWED_ORIGINS",
            "https://app.example.com/mcp",
            "http.allowed_origins[0]",
            "no path",
        ),
        (
            "PGMCP_HTTP_ALLOWED_ORIGINS",
            "app.example.com",
            "http.allowed_origins[0]",
            "scheme://host",
        ),
        (
            "PGMCP_HTTP_ALLOWED_ORIGINS",
            "null",
            "http.allowed_origins[0]",
            "sandboxed",
        ),
    ] {
        for command in ["check", "serve"] {
            let (code, stderr) = run(command, &tokens, variable, value);
            assert_eq!(code, Some(2), "{command} {value}: {stderr}");
            assert!(
                stderr.contains(&format!("`{key}`")) && stderr.contains(says),
                "{command} {value}: {stderr}"
            );
        }
    }
    // The entry is valid: check passes (and the server matches it, see above).
    let (code, stderr) = run("check", &tokens, "PGMCP_HTTP_ALLOWED_HOSTS", "mcp.example.com:8443");
    assert_eq!(code, Some(0), "{stderr}");
}
