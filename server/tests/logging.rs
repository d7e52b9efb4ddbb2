//! Log output as an operator's pipeline sees it: JSON lines in a rotating file, each with the service
//! and instance, request lines with `http.request.id`, and never a credential. (Its own test binary:
//! the logger is process-global.) Every field of the access and audit lines: `access_audit_log.rs`.

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
            "log:\n  format: json\n  level: debug\n  file:\n    dir: {}\n    max_files: 2\n",
            log_dir.display()
        ),
    );
    config.log.format = LogFormat::Json;
    // Last year's rotated files: all but the newest go when logging starts (log.file.max_files: 2
    // keeps today's file and one more).
    std::fs::create_dir_all(&log_dir).unwrap();
    for day in 1..=5 {
        std::fs::write(log_dir.join(format!("postgres-mcp.log.2025-01-0{day}")), "{}\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
    assert!(
        files.len() <= 2,
        "log.file.max_files: 2 keeps at most two files: {files:?}"
    );
    let today = log_dir.join(format!("postgres-mcp.log.{}", chrono::Utc::now().format("%Y-%m-%d")));
    assert!(files.contains(&today), "{files:?}");
    let text = std::fs::read_to_string(&today).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines.len() >= 3);
    assert!(
        lines.iter().all(|l| l["service.instance.id"] == "mcp-log"
            && l["@timestamp"].is_string()
            && l["log.level"].is_string())
    );
    let refusal = lines
        .iter()
        .find(|l| l["message"] == "authentication refused")
        .expect("refusal logged");
    assert_eq!(refusal["http.request.id"], "req-42");
    assert_eq!(refusal["error.type"], "unknown_token");
    assert_eq!(refusal["client.address"], "127.0.0.1");
    let login_line = lines.iter().find(|l| l["message"] == "login").expect("login logged");
    assert_eq!(login_line["user.name"], "alice");
    for secret in [wrong, session_token.as_str(), fixture.token.as_str(), PASSWORD] {
        assert!(!text.contains(secret), "a secret reached the log: {secret}");
    }
    assert!(!text.contains("$2b$"), "a password hash reached the log");
}
