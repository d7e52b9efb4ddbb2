//! The official MCP Python SDK's OAuth client (`OAuthClientProvider`, PyPI `mcp`) signs in through
//! the built-in authorization server and calls tools, refreshing its token on the way — the flow a
//! connector in Claude, VS Code or Cursor runs — against one instance here; the integration suite
//! runs it through nginx over three.
//!
//! Like tests/python_sdk.rs, a missing SDK fails with instructions rather than passing.

mod common;
mod oauth_support;

use std::path::PathBuf;

use common::{Fixture, PASSWORD};
use oauth_support::*;
use serde_json::Value;

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "the MCP Python SDK is needed: run `make test` (creates .venv with `mcp`), or set TEST_PYTHON to a python with `mcp` installed"
    );
    venv
}

#[tokio::test]
async fn the_python_sdk_signs_in_with_oauth_calls_tools_and_refreshes() {
    let fixture = Fixture::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = start_at(
        &fixture,
        "oauth-py",
        port,
        &base,
        "auth:\n  oauth:\n    mode: builtin\n",
    )
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/oauth_client.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .args([
            &format!("{base}/mcp"),
            "alice",
            PASSWORD,
            "replication slot standby",
            "3",
        ])
        .output()
        .await
        .expect("python starts");
    assert!(
        output.status.success(),
        "Python SDK OAuth client failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the client prints one JSON report");
    assert_eq!(report["tools"], serde_json::json!(["search_knowledgebase"]));
    assert_eq!(report["sources"][0][0], "replication.md");
    let exchanges = report["exchanges"].as_array().unwrap();
    let steps: Vec<&str> = exchanges.iter().map(|e| e["step"].as_str().unwrap()).collect();
    println!("OAuth steps as the SDK ran them: {steps:?}");
    // Every step succeeded (the first call's 401 is the challenge that starts the flow).
    for exchange in exchanges {
        let status = exchange["status"].as_u64().unwrap();
        match exchange["step"].as_str().unwrap() {
            "challenge" => assert_eq!(status, 401),
            "registration" => assert_eq!(status, 201),
            "sign-in" => assert_eq!(status, 303),
            "discovery" => assert!(status == 200 || status == 404, "{exchange}"),
            _ => assert!((200..300).contains(&status), "{exchange}"),
        }
    }
    server.stop().await.unwrap();
}
