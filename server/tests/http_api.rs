//! The HTTP surface as a client sees it: real servers on loopback, real files, real HTTP.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn initialize_then_tool_call_with_an_api_token() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let response = rpc(&server, Some(&fixture.token), init).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-instance-id"], "mcp-a");
    assert!(
        response.headers().get("mcp-session-id").is_none(),
        "stateless: no session is issued"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(body["result"]["serverInfo"]["name"], "postgres-mcp");
    assert!(body["result"]["capabilities"]["tools"].is_object());

    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(rpc(&server, Some(&fixture.token), initialized).await.status(), 202);

    let list: Value = rpc(
        &server,
        Some(&fixture.token),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let tool = &list["result"]["tools"][0];
    assert_eq!(tool["name"], "search_knowledgebase");
    assert_eq!(tool["inputSchema"]["type"], "object");
    // `query` is required unless `list_sources` is true, which the tool checks (issue #16).
    assert!(tool["inputSchema"].get("required").is_none(), "{tool}");
    for argument in [
        "query",
        "limit",
        "products",
        "versions",
        "source_prefix",
        "all_sections",
        "list_sources",
    ] {
        assert!(
            tool["inputSchema"]["properties"].get(argument).is_some(),
            "{argument}: {tool}"
        );
    }
    assert!(
        list["result"].get("resultType").is_none(),
        "2025-11-25 results carry no resultType"
    );

    let call: Value = rpc(&server, Some(&fixture.token), search_call(3, "autovacuum dead tuples"))
        .await
        .json()
        .await
        .unwrap();
    let result = &call["result"];
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"]["results"][0]["source"], "vacuum.md");
    assert!(result["content"][0]["text"].as_str().unwrap().contains("Vacuum"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn older_and_unknown_protocol_versions_are_negotiated() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2026-07-28", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
    ] {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
        let response = common::client()
            .post(url(&server, "/mcp"))
            .bearer_auth(&fixture.token)
            .json(&init)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], answered, "asked {asked}");
    }
    let response = common::client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .header("mcp-protocol-version", "2024-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32022);
    assert_eq!(
        body["error"]["data"]["supported"],
        json!(["2025-06-18", "2025-11-25", "2026-07-28"])
    );
}

/// A 2026-07-28 request: version and capabilities in `_meta`, method and name repeated in headers.
fn new_revision_request(method: &str, name: Option<&str>, params: Value) -> (Value, Vec<(&'static str, String)>) {
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28".to_string()),
        ("mcp-method", method.to_string()),
    ];
    if let Some(name) = name {
        headers.push(("mcp-name", name.to_string()));
    }
    (
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        headers,
    )
}

async fn post_with(
    server: &postgres_mcp::server::RunningServer,
    token: &str,
    body: Value,
    headers: Vec<(&'static str, String)>,
) -> reqwest::Response {
    let mut request = common::client()
        .post(url(server, "/mcp"))
        .bearer_auth(token)
        .json(&body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_2026_revision_works_without_initialize_and_checks_its_headers() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;

    let (body, headers) = new_revision_request("server/discover", None, json!({}));
    let discover: Value = post_with(&server, &fixture.token, body, headers)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        discover["result"]["supportedVersions"],
        json!(["2025-06-18", "2025-11-25", "2026-07-28"])
    );
    assert_eq!(discover["result"]["resultType"], "complete");
    assert!(discover["result"]["capabilities"]["tools"].is_object());

    let (body, headers) = new_revision_request(
        "tools/call",
        Some("search_knowledgebase"),
        json!({"name": "search_knowledgebase", "arguments": {"query": "pgbouncer pool"}}),
    );
    let response = post_with(&server, &fixture.token, body, headers).await;
    assert_eq!(response.status(), 200);
    let call: Value = response.json().await.unwrap();
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(
        call["result"]["structuredContent"]["results"][0]["source"],
        "connection-pooling.md"
    );

    let (body, headers) = new_revision_request(
        "tools/call",
        Some("other_tool"),
        json!({"name": "search_knowledgebase", "arguments": {"query": "x"}}),
    );
    let response = post_with(&server, &fixture.token, body, headers).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], -32020);
    assert!(error["error"]["message"].as_str().unwrap().contains("Mcp-Name"));

    let (body, mut headers) = new_revision_request("tools/list", None, json!({}));
    headers.retain(|(name, _)| *name != "mcp-method");
    let response = post_with(&server, &fixture.token, body, headers).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], -32020);

    let (body, headers) = new_revision_request("resources/list", None, json!({}));
    let response = post_with(&server, &fixture.token, body, headers).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], -32601);
}

#[tokio::test]
async fn requests_without_valid_credentials_get_401_with_www_authenticate() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for bearer in [None, Some("pgmcp_not-a-real-token"), Some("pgmcs_forged.payload")] {
        let response = rpc(&server, bearer, search_call(1, "vacuum")).await;
        assert_eq!(response.status(), 401, "{bearer:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.starts_with("Bearer realm=\"postgres-mcp\""), "{challenge}");
        assert_eq!(response.headers()["x-instance-id"], "mcp-a");
        // Refused from its head, the body unread: the connection closes, and says so (an
        // operator's review: the client's next request on it failed).
        assert_eq!(response.headers()["connection"], "close", "{bearer:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string() && body["message"].is_string());
    }
    // A request whose body was read keeps its connection.
    let served = rpc(&server, Some(&fixture.token), search_call(1, "vacuum")).await;
    assert_eq!(served.status(), 200);
    assert!(served.headers().get("connection").is_none(), "{:?}", served.headers());
    let basic = common::client()
        .post(url(&server, "/mcp"))
        .basic_auth("a", Some("b"))
        .json(&search_call(1, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn a_revoked_token_is_refused_after_the_reload_and_an_expired_one_at_once() {
    let fixture = Fixture::new();
    let expired = postgres_mcp::auth::admin::token_create(
        &fixture.path("tokens.yaml"),
        "expired",
        Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
        None,
    )
    .unwrap();
    let server = fixture.start("mcp-a").await;
    assert_eq!(
        rpc(&server, Some(&expired), search_call(1, "vacuum")).await.status(),
        401
    );
    assert_eq!(
        rpc(&server, Some(&fixture.token), search_call(1, "vacuum"))
            .await
            .status(),
        200
    );

    postgres_mcp::auth::admin::token_revoke(&fixture.path("tokens.yaml"), "test-client").unwrap();
    let refused = eventually(2, || async {
        rpc(&server, Some(&fixture.token), search_call(2, "vacuum"))
            .await
            .status()
            == 401
    })
    .await;
    assert!(refused, "revoked token still accepted 2 s after the file changed");
}

#[tokio::test]
async fn a_session_from_one_instance_works_on_another_sharing_the_files() {
    let fixture = Fixture::new();
    let first = fixture.start("mcp-1").await;
    let second = fixture.start("mcp-2").await;

    let response = login(&first, "alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-instance-id"], "mcp-1");
    let session: Value = response.json().await.unwrap();
    let token = session["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("pgmcs_"));
    assert!(session["expires_at"].is_string());

    for server in [&first, &second] {
        let response = rpc(server, Some(&token), search_call(1, "replication slot")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["isError"], false);
    }

    // A flipped byte in the signature is refused everywhere.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(rpc(&second, Some(&tampered), search_call(1, "x")).await.status(), 401);

    // Changing alice's password ends her session on every instance.
    postgres_mcp::auth::admin::user_passwd(&fixture.path("users.yaml"), "alice", "a brand new password", 4).unwrap();
    for server in [&first, &second] {
        let refused = eventually(2, || async {
            rpc(server, Some(&token), search_call(2, "x")).await.status() == 401
        })
        .await;
        assert!(refused, "session survived a password change on {}", server.instance);
    }
}

#[tokio::test]
async fn wrong_passwords_are_refused_without_saying_which_part_was_wrong() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for (user, password) in [("alice", "wrong password"), ("mallory", PASSWORD)] {
        let response = login(&server, user, password).await;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "wrong username or password");
    }
    let response = common::client()
        .post(url(&server, "/api/login"))
        .json(&json!({"username": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("password")
    );
}

#[tokio::test]
async fn public_health_says_only_the_status() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let response = common::client().get(url(&server, "/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let health: Value = response.json().await.unwrap();
    assert_eq!(health, serde_json::json!({"status": "ok"}));

    server.draining.start();
    let response = common::client().get(url(&server, "/health")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health, serde_json::json!({"status": "draining"}));
}

#[tokio::test]
async fn health_details_report_instance_files_and_generations() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let response = common::client()
        .get(url(&server, "/health/details"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-instance-id"], "mcp-a");
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["instance"], "mcp-a");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_s"].is_u64());
    assert_eq!(health["auth"]["tokens"], 1);
    assert_eq!(health["auth"]["users"], 1);
    assert_eq!(health["auth"]["generation"].as_str().unwrap().len(), 12);
    assert!(health["auth"]["last_error"].is_null());
    assert!(health["auth"]["loaded_at"].is_string());
    assert_eq!(health["kb"]["documents"], 6);
    assert_eq!(health["kb"]["generation"].as_str().unwrap().len(), 12);
    assert!(health["kb"]["last_error"].is_null());

    // Draining: 503 at once.
    server.draining.start();
    let response = common::client()
        .get(url(&server, "/health/details"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let health = response.json::<Value>().await.unwrap();
    assert_eq!(
        (&health["status"], &health["instance"]),
        (&"draining".into(), &"mcp-a".into())
    );
}

#[tokio::test]
async fn while_draining_every_response_closes_its_connection() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let call = || rpc(&server, Some(&fixture.token), search_call(1, "replication"));

    let before = call().await;
    assert_eq!(before.status(), 200);
    assert!(
        before.headers().get("connection").is_none(),
        "keep-alive before draining"
    );

    server.draining.start();
    // Still served (the balancer has not noticed yet), but the connection is not kept for reuse.
    let during = call().await;
    assert_eq!(during.status(), 200);
    assert_eq!(during.headers()["connection"], "close");
    let health = common::client().get(url(&server, "/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    assert_eq!(health.headers()["connection"], "close");
}

#[tokio::test]
async fn malformed_requests_get_errors_naming_the_problem() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", "http:\n  max_body: 2KiB\n").await;
    let post = || common::client().post(url(&server, "/mcp")).bearer_auth(&fixture.token);

    let response = post()
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], -32700);

    let response = post()
        .json(&json!([search_call(1, "a"), search_call(2, "b")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch")
    );

    let response = post()
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let response = post()
        .header("accept", "text/html")
        .json(&search_call(1, "a"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);

    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_knowledgebase", "arguments": {"query": "x".repeat(4096)}}});
    let response = post().json(&big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert!(
        response.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("2048")
    );

    let response = rpc(
        &server,
        Some(&fixture.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "nope"}}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602);
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));

    // 2025-11-25 (SEP-1303): an argument the schema refuses is a tool error naming the field.
    let bad_args = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_knowledgebase", "arguments": {"query": 5}}});
    let body: Value = rpc(&server, Some(&fixture.token), bad_args).await.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("`query`"),
        "{body}"
    );

    let bad_limit = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_knowledgebase", "arguments": {"query": "x", "limit": 500}}});
    let body: Value = rpc(&server, Some(&fixture.token), bad_limit)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["result"]["isError"], true);
    assert!(body["result"]["content"][0]["text"].as_str().unwrap().contains("limit"));

    let body: Value = rpc(
        &server,
        Some(&fixture.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/list"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["error"]["code"], -32601);

    let body: Value = rpc(
        &server,
        Some(&fixture.token),
        json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["error"]["code"], -32600);

    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = common::client()
            .request(method, url(&server, "/mcp"))
            .bearer_auth(&fixture.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
    }
}

#[tokio::test]
async fn metrics_count_requests_and_auth_failures() {
    let fixture = Fixture::new();
    postgres_mcp::metrics::handle();
    let server = fixture.start("mcp-a").await;
    rpc(&server, Some(&fixture.token), search_call(1, "vacuum")).await;
    rpc(&server, Some("pgmcp_wrong"), search_call(1, "vacuum")).await;
    let text = get_text(&url(&server, "/metrics")).await;
    assert!(
        text.contains("pgmcp_http_requests_total{route=\"/mcp\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("pgmcp_auth_failures_total{reason=\"unknown_token\"}"));
    assert!(text.contains("pgmcp_tool_calls_total{tool=\"search_knowledgebase\",outcome=\"ok\",error_type=\"\"}"));
    assert!(text.contains("pgmcp_mcp_requests_total{method=\"tools/call\",outcome=\"ok\",error_type=\"\"}"));
    assert!(text.contains("pgmcp_mcp_request_duration_seconds_bucket{method=\"tools/call\""));
    assert!(text.contains("pgmcp_http_request_duration_seconds_bucket"));
}
