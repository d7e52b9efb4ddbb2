//! Scenario 10: OAuth through nginx round-robin over three instances, with no sticky sessions and no
//! shared database. The official MCP Python SDK's OAuth client (`server/tests/python/oauth_client.py`,
//! the same script the server's own test runs) discovers, registers, signs in on the built-in
//! authorization server, redeems the code, calls tools and refreshes — and the `X-Instance-Id` of each
//! answer shows those steps served by different instances, each succeeding with only what the client
//! carried.

use std::collections::BTreeSet;

use integration_tests::{
    cluster::{Cluster, ClusterOptions},
    images::repo_root,
    report,
    shared_files::{PASSWORD, USER},
};
use serde_json::Value;

fn python() -> std::path::PathBuf {
    std::env::var_os("TEST_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_oauth_flow_is_served_by_any_instance_through_nginx() {
    let port = free_port();
    let public = format!("https://127.0.0.1:{port}");
    let mut options = ClusterOptions::default()
        .env("PGMCP_PUBLIC_URL", &public)
        .env("PGMCP_AUTH_OAUTH_MODE", "builtin");
    options.nginx_https_port = Some(port);
    let cluster = Cluster::start(options).await.unwrap();
    assert_eq!(cluster.nginx_url, public);
    let python = python();
    assert!(
        python.exists(),
        "no Python with the MCP SDK at {}: run scripts/setup.sh",
        python.display()
    );
    let output = tokio::process::Command::new(&python)
        .arg(repo_root().join("server/tests/python/oauth_client.py"))
        .args([&format!("{public}/mcp"), USER, PASSWORD, "replication lag", "6"])
        .env("SSL_CERT_FILE", cluster.certificate())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "oauth_client.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let exchanges = result["exchanges"].as_array().unwrap();
    let sequence: Vec<String> = exchanges
        .iter()
        .map(|e| format!("{}@{}", e["step"].as_str().unwrap(), e["instance"].as_str().unwrap()))
        .collect();
    let instance_of = |step: &str| -> Vec<&str> {
        exchanges
            .iter()
            .filter(|e| e["step"] == step)
            .map(|e| e["instance"].as_str().unwrap())
            .collect()
    };
    report::record(
        "10 oauth",
        &format!("Python SDK OAuth flow via nginx: {}", sequence.join(" → ")),
    );
    // Every step answered by an instance, and the whole flow spread over all three.
    let all: BTreeSet<&str> = exchanges.iter().map(|e| e["instance"].as_str().unwrap()).collect();
    assert!(all.iter().all(|i| i.starts_with("mcp-")), "{sequence:?}");
    assert_eq!(all.len(), 3, "the flow used {all:?}: {sequence:?}");
    // The steps that depend on an earlier one were served by an instance other than that one's:
    // the code issued at sign-in was redeemed elsewhere, and so on.
    let (registration, authorize, sign_in, token) = (
        instance_of("registration")[0],
        instance_of("authorize")[0],
        instance_of("sign-in")[0],
        instance_of("token")[0],
    );
    assert_ne!(
        registration, authorize,
        "client id checked on the instance that issued it: {sequence:?}"
    );
    assert_ne!(
        authorize, sign_in,
        "sign-in form posted to the instance that showed it: {sequence:?}"
    );
    assert_ne!(
        sign_in, token,
        "code redeemed on the instance that issued it: {sequence:?}"
    );
    let refresh = instance_of("refresh");
    assert!(!refresh.is_empty(), "no refresh in {sequence:?}");
    let calls: BTreeSet<&str> = instance_of("call").into_iter().collect();
    assert!(calls.len() >= 2, "tool calls with one access token landed on {calls:?}");
    assert!(
        exchanges
            .iter()
            .all(|e| e["status"].as_u64().unwrap() < 400 || e["step"] == "challenge" || e["step"] == "discovery"),
        "{sequence:?}"
    );
}
