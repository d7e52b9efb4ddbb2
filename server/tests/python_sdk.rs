//! Conformance with a client nobody here wrote: the official MCP Python SDK (PyPI `mcp`).
//!
//! The SDK runs in the project's venv ([`common::python`]).

mod common;

use std::path::PathBuf;

use common::{python::python, *};
use serde_json::Value;

async fn sdk(url: &str, token: &str, mode: &str, query: &str, rounds: u32) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_client.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .args([url, token, mode, query, &rounds.to_string()])
        .output()
        .await
        .expect("python starts");
    assert!(
        output.status.success(),
        "Python SDK ({mode}) failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("the client prints one JSON report")
}

#[tokio::test]
async fn the_python_sdk_initializes_lists_and_calls_over_the_handshake() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-py").await;
    let report = sdk(
        &url(&server, "/mcp"),
        &fixture.token,
        "legacy",
        "replication slot standby",
        3,
    )
    .await;
    assert_eq!(report["protocol_version"], "2025-11-25");
    assert_eq!(report["tools"], serde_json::json!(["search_knowledgebase"]));
    assert_eq!(report["sources"][0][0], "replication.md");
    assert_eq!(report["sources"].as_array().unwrap().len(), 3);
    assert!(report["instances"].as_array().unwrap().iter().all(|i| i == "mcp-py"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_python_sdk_speaks_2026_07_28_via_discover() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-py").await;
    let report = sdk(
        &url(&server, "/mcp"),
        &fixture.token,
        "auto",
        "autovacuum wraparound",
        2,
    )
    .await;
    assert_eq!(report["protocol_version"], "2026-07-28");
    assert_eq!(report["sources"][0][0], "vacuum.md");
    assert!(report["statuses"].as_array().unwrap().iter().all(|s| s == 200));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_python_sdk_with_a_session_token_from_login() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-py").await;
    let session: Value = login(&server, "alice", PASSWORD).await.json().await.unwrap();
    let report = sdk(
        &url(&server, "/mcp/v1"),
        session["token"].as_str().unwrap(),
        "legacy",
        "pgbouncer",
        1,
    )
    .await;
    assert_eq!(report["sources"][0][0], "connection-pooling.md");
    server.stop().await.unwrap();
}
