//! Scenario 9: the official MCP Python SDK (PyPI `mcp`, written by nobody here) through nginx over
//! TLS: initialize (or discover), list tools, call `search_knowledgebase` repeatedly, landing on
//! different instances with no session stickiness. The SDK client script is the one the server's
//! conformance tests use (`server/tests/python/sdk_client.py`).

use integration_tests::{
    cluster::{Cluster, ClusterOptions},
    images::repo_root,
    report,
};
use serde_json::Value;

fn python() -> std::path::PathBuf {
    std::env::var_os("TEST_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

#[tokio::test]
async fn the_python_sdk_works_through_nginx_across_instances_without_stickiness() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let python = python();
    assert!(
        python.exists(),
        "no Python with the MCP SDK at {}: run scripts/setup.sh",
        python.display()
    );
    for mode in ["legacy", "auto"] {
        let output = tokio::process::Command::new(&python)
            .arg(repo_root().join("server/tests/python/sdk_client.py"))
            .args([
                &format!("{}/mcp", cluster.nginx_url),
                &cluster.files.token,
                mode,
                "replication lag",
                "12",
            ])
            .env("SSL_CERT_FILE", cluster.certificate())
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "sdk_client.py ({mode}) failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_slice(&output.stdout).unwrap();
        let statuses: Vec<u64> = result["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect();
        assert!(statuses.iter().all(|s| *s == 200 || *s == 202), "{statuses:?}");
        let mut instances: Vec<String> = result["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect();
        let responses = instances.len();
        instances.sort();
        instances.dedup();
        let sources = &result["sources"];
        assert!(
            sources
                .as_array()
                .unwrap()
                .iter()
                .all(|call| call.as_array().is_some_and(|s| !s.is_empty()))
        );
        report::record(
            "9 python sdk",
            &format!(
                "mode {mode} (protocol {}): {responses} HTTP responses via nginx answered by {instances:?}, all 200/202",
                result["protocol_version"]
            ),
        );
        assert!(instances.len() >= 2, "one MCP session landed on only {instances:?}");
    }
}
