//! `/livez` and `/readyz` as the kubelet, Docker and an operator see them: real servers on loopback,
//! real files. What must hold: a draining instance is unready but alive (liveness failing mid-drain
//! would get it killed), and a failure shared by every instance — a bad kb.db, an unreadable
//! tokens.yaml, a database that is down — leaves it ready, so the balancer keeps every instance.

mod common;

use common::*;
use postgres_mcp::server::RunningServer;
use serde_json::Value;

/// Status and body of `GET path`.
async fn get(server: &RunningServer, path: &str) -> (u16, String) {
    let response = client().get(url(server, path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `/health/details`: what operators read (the public `/health` says only the status).
async fn health(server: &RunningServer) -> Value {
    client()
        .get(url(server, "/health/details"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Both probes 200 `ok`, and `/health` 200 too.
async fn assert_live_and_ready(server: &RunningServer, case: &str) {
    assert_eq!(get(server, "/livez").await, (200, "ok".to_string()), "{case}: /livez");
    assert_eq!(get(server, "/readyz").await, (200, "ok".to_string()), "{case}: /readyz");
    let response = client().get(url(server, "/health")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{case}: /health");
}

#[tokio::test]
async fn livez_and_readyz_answer_ok_as_plain_text_while_serving() {
    postgres_mcp::metrics::handle();
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for path in ["/livez", "/readyz"] {
        let response = client().get(url(&server, path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-instance-id"], "mcp-a", "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(response.text().await.unwrap(), "ok", "{path}");
    }
    let metrics = get_text(&url(&server, "/metrics")).await;
    for route in ["/livez", "/readyz"] {
        assert!(
            metrics.contains(&format!(
                "pgmcp_http_requests_total{{route=\"{route}\",status=\"200\"}}"
            )),
            "{route} is not counted under its own route label"
        );
    }
}

#[tokio::test]
async fn verbose_lists_every_check_in_the_kube_apiserver_format() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    assert_eq!(
        get(&server, "/livez?verbose").await,
        (200, "[+]heartbeat ok\nlivez check passed\n".to_string())
    );
    assert_eq!(
        get(&server, "/readyz?verbose=1").await,
        (
            200,
            "[+]heartbeat ok\n[+]auth ok\n[+]draining ok\nreadyz check passed\n".to_string()
        )
    );
    assert_eq!(get(&server, "/readyz?verbosely").await, (200, "ok".to_string()));
}

#[tokio::test]
async fn while_draining_readyz_is_503_naming_draining_and_livez_stays_200() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    server.draining.start();

    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("[+]heartbeat ok\n[+]auth ok\n"), "{body}");
    assert!(body.contains("[-]draining failed: SIGTERM received"), "{body}");
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    let (status, body) = get(&server, "/readyz?verbose").await;
    assert_eq!(status, 503);
    assert!(body.contains("[-]draining failed:"), "{body}");

    assert_eq!(
        get(&server, "/livez").await,
        (200, "ok".to_string()),
        "liveness failing mid-drain gets the pod killed"
    );
}

#[tokio::test]
async fn head_answers_the_status_without_a_body() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for path in ["/livez", "/readyz"] {
        let response = client().head(url(&server, path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert!(response.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    server.draining.start();
    let response = client().head(url(&server, "/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let response = client().head(url(&server, "/livez")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for path in ["/livez", "/readyz"] {
        let response = client().post(url(&server, path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "POST {path}");
        assert_eq!(response.headers()["allow"], "GET, HEAD", "POST {path}");
    }
}

#[tokio::test]
async fn a_kb_that_failed_to_reload_leaves_the_instance_ready() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let bytes = std::fs::read(fixture.path("kb.db")).unwrap();
    std::fs::write(fixture.path("kb.db"), &bytes[..bytes.len() / 3]).unwrap();
    let reported = eventually(3, || async { health(&server).await["kb"]["last_error"].is_string() }).await;
    assert!(reported, "the truncated kb.db was never reported");
    assert_live_and_ready(&server, "kb reload failed").await;
}

#[tokio::test]
async fn an_unreadable_tokens_file_leaves_the_instance_ready() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    // A directory where the file was: unreadable for every user, root included (the tests may run
    // as root, which a mode of 000 does not stop).
    std::fs::remove_file(fixture.path("tokens.yaml")).unwrap();
    std::fs::create_dir(fixture.path("tokens.yaml")).unwrap();
    let reported = eventually(3, || async {
        health(&server).await["auth"]["last_error"]
            .as_str()
            .is_some_and(|error| error.starts_with("tokens"))
    })
    .await;
    assert!(reported, "the unreadable tokens.yaml was never reported");
    assert_live_and_ready(&server, "tokens unreadable").await;
}

#[tokio::test]
async fn a_database_that_is_down_leaves_the_instance_ready() {
    let fixture = Fixture::new();
    let server = fixture
        .start_with(
            "mcp-a",
            "database:\n  url: postgres://mcp@127.0.0.1:1/db?sslmode=disable\n  health_interval: 200ms\n  connect_timeout: 1s\n",
        )
        .await;
    let down = eventually(5, || async {
        health(&server).await["database"]["status"] == "unavailable"
    })
    .await;
    assert!(down, "the database health check never saw the database down");
    assert_live_and_ready(&server, "database down").await;
}
