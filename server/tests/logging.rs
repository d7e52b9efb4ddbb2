//! Log output as an operator's pipeline sees it: JSON lines in a rotating file, each with `instance`,
//! request lines with `request_id`, and never a credential. (Its own test binary: the logger is
//! process-global.)

mod common;

use common::*;
use postgres_mcp::{config::LogFormat, telemetry};
use serde_json::Value;

#[tokio::test]
async fn json_log_file_lines_carry_instance_and_request_id_and_no_secrets() {
    let fixture = Fixture::new();
    let log_dir = fixture.path("logs");
    let mut config = fixture.config(
        "mcp-log",
        &format!(
            "log:\n  format: json\n  level: debug\n  file:\n    dir: {}\n",
            log_dir.display()
        ),
    );
    config.log.format = LogFormat::Json;
    let guard = telemetry::init(&config.log, "mcp-log").unwrap();
    let server = postgres_mcp::server::start(config, postgres_mcp::InstanceId::resolve(Some("mcp-log"), None))
        .await
        .unwrap();

    let wrong = "pgmcp_this-is-a-secret-guess";
    let refused = common::client()
        .post(url(&server, "/mcp"))
        .bearer_auth(wrong)
        .header("x-request-id", "req-42")
        .json(&search_call(1, "vacuum"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], "req-42");
    let session: Value = login(&server, "alice", PASSWORD).await.json().await.unwrap();
    let session_token = session["token"].as_str().unwrap().to_string();
    assert_eq!(
        rpc(&server, Some(&session_token), search_call(2, "vacuum"))
            .await
            .status(),
        200
    );
    server.stop().await.unwrap();
    drop(guard); // flushes the non-blocking file writer

    let files: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("postgres-mcp.log")
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines.len() >= 3);
    assert!(
        lines
            .iter()
            .all(|l| l["instance"] == "mcp-log" && l["timestamp"].is_string() && l["level"].is_string())
    );
    let refusal = lines
        .iter()
        .find(|l| l["message"] == "authentication refused")
        .expect("refusal logged");
    assert_eq!(refusal["request_id"], "req-42");
    assert_eq!(refusal["reason"], "unknown_token");
    assert_eq!(refusal["client_ip"], "127.0.0.1");
    let login_line = lines.iter().find(|l| l["message"] == "login").expect("login logged");
    assert_eq!(login_line["user"], "alice");
    for secret in [wrong, session_token.as_str(), fixture.token.as_str(), PASSWORD] {
        assert!(!text.contains(secret), "a secret reached the log: {secret}");
    }
    assert!(!text.contains("$2b$"), "a password hash reached the log");
}
