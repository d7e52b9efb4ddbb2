//! The database resources against a real PostgreSQL (a throwaway cluster per test), in each of the
//! three protocol revisions served; scopes; the capability without a database; exact values
//! (NUMERIC past f64, JSON nested past serde_json's limit) through `query_database`; and the
//! official Python SDK reading them (`list_resources`, `read_resource`, templates).

mod common;
mod pg_cluster;

use common::{python::python, *};
use pg_cluster::PgCluster;
use postgres_mcp::server::RunningServer;
use serde_json::{Value, json};

const SEED: &str = "
CREATE EXTENSION pg_trgm;
CREATE SCHEMA \"odd/schema\";
CREATE TABLE \"odd/schema\".\"Mixed Case\" (id int);
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), total numeric(12,2));
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
INSERT INTO customers (name) VALUES ('Ada'), ('Brian'), ('Chen');
INSERT INTO orders (customer_id, total) SELECT 1 + (g % 3), g FROM generate_series(1, 500) g;
CREATE TABLE secret (x int);
CREATE ROLE reader LOGIN;
GRANT SELECT ON customers, orders TO reader;
ANALYZE;
";

struct Setup {
    // Field order is drop order: the server goes before the database it points at.
    server: RunningServer,
    cluster: PgCluster,
    fixture: Fixture,
}

/// A cluster seeded with [`SEED`] and a server connecting as `role` (`None`: the superuser).
async fn setup(role: Option<&str>) -> Setup {
    setup_with(role, "").await
}

/// [`setup`] with `extra` lines under `database:`.
async fn setup_with(role: Option<&str>, extra: &str) -> Setup {
    let cluster = PgCluster::start();
    cluster.client().await.batch_execute(SEED).await.unwrap();
    let fixture = Fixture::new();
    let url = role.map_or_else(|| cluster.url(), |role| cluster.url_as(role));
    let config = format!(
        "database:\n  url: \"{url}\"\n  health_interval: 200ms\n  connect_timeout: 1s\n  statement_timeout: 7s\n{extra}"
    );
    let server = fixture.start_with("mcp-res", &config).await;
    Setup {
        server,
        cluster,
        fixture,
    }
}

const REVISIONS: [&str; 3] = ["2025-06-18", "2025-11-25", "2026-07-28"];

/// One request as a client of `revision` sends it: the version header, and for 2026-07-28 the
/// per-request `_meta` and the `Mcp-Method` / `Mcp-Name` headers. The HTTP status and the body.
async fn request(server: &RunningServer, token: &str, revision: &str, method: &str, params: Value) -> (u16, Value) {
    let mut params = params;
    let mut builder = client()
        .post(url(server, "/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", revision)
        .bearer_auth(token);
    if revision == "2026-07-28" {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": revision,
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        builder = builder.header("mcp-method", method);
        if let Some(uri) = params.get("uri").and_then(Value::as_str) {
            builder = builder.header("mcp-name", uri);
        }
    }
    let response = builder
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// `resources/read` of `uri` with the fixture's token: the HTTP status and the body.
async fn read_response(setup: &Setup, revision: &str, uri: &str) -> (u16, Value) {
    request(
        &setup.server,
        &setup.fixture.token,
        revision,
        "resources/read",
        json!({ "uri": uri }),
    )
    .await
}

/// `resources/read` of `uri`: the parsed JSON of its one content, after checking its shape.
async fn read(setup: &Setup, revision: &str, uri: &str) -> Value {
    let (status, body) = read_response(setup, revision, uri).await;
    assert_eq!(status, 200, "{body}");
    let contents = body["result"]["contents"]
        .as_array()
        .unwrap_or_else(|| panic!("{uri}: {body}"));
    assert_eq!(contents.len(), 1, "{body}");
    assert_eq!(contents[0]["uri"], uri);
    assert_eq!(contents[0]["mimeType"], "application/json");
    serde_json::from_str(contents[0]["text"].as_str().unwrap()).unwrap()
}

fn not_found_code(revision: &str) -> i64 {
    if revision == "2026-07-28" { -32602 } else { -32002 }
}

#[tokio::test]
async fn resources_are_listed_and_read_in_every_revision() {
    let setup = setup(None).await;
    for revision in REVISIONS {
        let (_, listed) = request(
            &setup.server,
            &setup.fixture.token,
            revision,
            "resources/list",
            json!({}),
        )
        .await;
        let uris: Vec<&str> = listed["result"]["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{revision}: {listed}"))
            .iter()
            .map(|r| r["uri"].as_str().unwrap())
            .collect();
        assert_eq!(
            uris,
            [
                "postgres-mcp://database/server",
                "postgres-mcp://database/size",
                "postgres-mcp://database/extensions",
                "postgres-mcp://database/tables"
            ],
            "{revision}"
        );
        assert!(
            listed["result"]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["mimeType"] == "application/json" && r["description"].is_string())
        );
        // Only the new revision carries the result type and caching fields (SEP-2322, SEP-2549):
        // nothing is cached, the values move.
        let (_, read_body) = read_response(&setup, revision, "postgres-mcp://database/size").await;
        for body in [&listed, &read_body] {
            let result = &body["result"];
            let new = revision == "2026-07-28";
            assert_eq!(result["resultType"].as_str(), new.then_some("complete"), "{body}");
            assert_eq!(result["ttlMs"].as_i64(), new.then_some(0), "{body}");
            assert_eq!(result["cacheScope"].as_str(), new.then_some("private"), "{body}");
        }

        let (_, templates) = request(
            &setup.server,
            &setup.fixture.token,
            revision,
            "resources/templates/list",
            json!({}),
        )
        .await;
        assert_eq!(
            templates["result"]["resourceTemplates"][0]["uriTemplate"],
            "postgres-mcp://database/tables/{schema}/{table}",
            "{templates}"
        );

        let server = read(&setup, revision, "postgres-mcp://database/server").await;
        assert!(
            server["version"].as_str().unwrap().starts_with("PostgreSQL "),
            "{server}"
        );
        assert!(server["version_num"].as_i64().unwrap() >= 130000);
        assert_eq!(server["in_recovery"], false);
        let setting = |name: &str| {
            server["settings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} missing: {server}"))
        };
        for name in [
            "server_version",
            "max_connections",
            "shared_buffers",
            "work_mem",
            "effective_cache_size",
            "statement_timeout",
        ] {
            assert!(setting(name)["value"].is_string(), "{name}");
        }
        assert_eq!(setting("shared_buffers")["unit"], "8kB");
        // As the server's connections see it: the configured `database.statement_timeout`.
        assert_eq!(setting("statement_timeout")["value"], "7s");

        let size = read(&setup, revision, "postgres-mcp://database/size").await;
        assert_eq!(size["name"], "postgres");
        assert!(size["size_bytes"].as_i64().unwrap() > 1_000_000, "{size}");
        assert_eq!(size["encoding"], "UTF8");

        let extensions = read(&setup, revision, "postgres-mcp://database/extensions").await;
        let names: Vec<&str> = extensions["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["pg_trgm", "plpgsql"], "{extensions}");
        assert!(extensions["extensions"][0]["version"].is_string());

        let tables = read(&setup, revision, "postgres-mcp://database/tables").await;
        assert_eq!(tables["truncated"], false);
        let estimate = |name: &str| {
            tables["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .map(|t| t["rows_estimate"].clone())
        };
        assert_eq!(estimate("orders"), Some(json!(500)), "{tables}");
        assert_eq!(estimate("customers"), Some(json!(3)));
        assert_eq!(estimate("big_orders"), None, "views have no rows of their own");

        let orders = read(&setup, revision, "postgres-mcp://database/tables/public/orders").await;
        assert_eq!(orders["rows_estimate"], 500);
        assert_eq!(orders["kind"], "table");
        assert!(orders["total_bytes"].as_i64().unwrap() >= orders["table_bytes"].as_i64().unwrap());
        assert!(orders["index_bytes"].as_i64().unwrap() > 0);
        assert!(orders["last_analyze"].is_string(), "{orders}");
        // Names with reserved characters are percent-encoded path segments (RFC 6570).
        let odd = read(
            &setup,
            revision,
            "postgres-mcp://database/tables/odd%2Fschema/Mixed%20Case",
        )
        .await;
        assert_eq!(
            (odd["schema"].as_str(), odd["name"].as_str()),
            (Some("odd/schema"), Some("Mixed Case"))
        );

        for missing in [
            "postgres-mcp://database/tables/public/nope",
            "postgres-mcp://database/tables/public",
            "postgres-mcp://database/nothing",
            "file:///etc/passwd",
        ] {
            let (status, body) = read_response(&setup, revision, missing).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body["error"]["code"],
                not_found_code(revision),
                "{revision} {missing}: {body}"
            );
            assert_eq!(body["error"]["data"]["uri"], missing);
        }
        // Subscriptions are not offered (no stream to notify on).
        let (_, body) = request(
            &setup.server,
            &setup.fixture.token,
            revision,
            "resources/subscribe",
            json!({"uri": "postgres-mcp://database/server"}),
        )
        .await;
        assert_eq!(body["error"]["code"], -32601, "{body}");
    }
}

#[tokio::test]
async fn the_capability_is_declared_with_a_database_and_only_then() {
    let setup = setup(None).await;
    let (_, discovered) = request(
        &setup.server,
        &setup.fixture.token,
        "2026-07-28",
        "server/discover",
        json!({}),
    )
    .await;
    assert_eq!(
        discovered["result"]["capabilities"]["resources"],
        json!({}),
        "{discovered}"
    );

    let fixture = Fixture::new();
    let kb_only = fixture.start("mcp-kb").await;
    let (_, discovered) = request(&kb_only, &fixture.token, "2026-07-28", "server/discover", json!({})).await;
    assert!(
        discovered["result"]["capabilities"].get("resources").is_none(),
        "{discovered}"
    );
    assert!(discovered["result"]["capabilities"]["tools"].is_object());
    let (_, initialized) = request(
        &kb_only,
        &fixture.token,
        "2025-06-18",
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    )
    .await;
    assert!(
        initialized["result"]["capabilities"].get("resources").is_none(),
        "{initialized}"
    );
    for method in ["resources/list", "resources/templates/list", "resources/read"] {
        let (_, body) = request(
            &kb_only,
            &fixture.token,
            "2025-11-25",
            method,
            json!({"uri": "postgres-mcp://database/server"}),
        )
        .await;
        assert_eq!(body["error"]["code"], -32601, "{method}: {body}");
    }
    kb_only.stop().await.unwrap();
}

#[tokio::test]
async fn a_knowledge_base_token_sees_no_database_resources() {
    let setup = setup(None).await;
    let scoped = postgres_mcp::auth::admin::token_create_scoped(
        &setup.fixture.path("tokens.yaml"),
        "docs-only",
        None,
        None,
        Some(vec!["search_knowledgebase".into()]),
    )
    .unwrap();
    let schema_only = postgres_mcp::auth::admin::token_create_scoped(
        &setup.fixture.path("tokens.yaml"),
        "schema-only",
        None,
        None,
        Some(vec!["get_schema_info".into()]),
    )
    .unwrap();
    // The reload engine picks the new tokens up.
    assert!(
        eventually(5, || async {
            let (status, _) = request(&setup.server, &schema_only, "2025-11-25", "resources/list", json!({})).await;
            status == 200
        })
        .await
    );
    for revision in REVISIONS {
        let (_, listed) = request(&setup.server, &scoped, revision, "resources/list", json!({})).await;
        assert_eq!(listed["result"]["resources"], json!([]), "{listed}");
        let (_, templates) = request(&setup.server, &scoped, revision, "resources/templates/list", json!({})).await;
        assert_eq!(templates["result"]["resourceTemplates"], json!([]), "{templates}");
        for uri in [
            "postgres-mcp://database/server",
            "postgres-mcp://database/tables/public/orders",
        ] {
            let (_, body) = request(&setup.server, &scoped, revision, "resources/read", json!({"uri": uri})).await;
            assert_eq!(body["error"]["code"], not_found_code(revision), "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("docs-only") && message.contains("query_database"),
                "{message}"
            );
        }
        // Any database tool in the scope is enough.
        let (_, listed) = request(&setup.server, &schema_only, revision, "resources/list", json!({})).await;
        assert_eq!(listed["result"]["resources"].as_array().unwrap().len(), 4, "{listed}");
    }
}

#[tokio::test]
async fn a_role_sees_only_the_tables_it_may_read_and_an_outage_is_an_internal_error() {
    let setup = setup(Some("reader")).await;
    let tables = read(&setup, "2025-11-25", "postgres-mcp://database/tables").await;
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["customers", "orders"], "{tables}");
    let (_, body) = read_response(&setup, "2025-11-25", "postgres-mcp://database/tables/public/secret").await;
    assert_eq!(body["error"]["code"], -32002, "{body}");

    setup.cluster.stop();
    let (status, body) = read_response(&setup, "2026-07-28", "postgres-mcp://database/size").await;
    assert_eq!(status, 200);
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
}

#[tokio::test]
async fn answers_keep_to_the_byte_budget() {
    let setup = setup_with(None, "  max_result_size: 1KiB\n").await;
    setup
        .cluster
        .client()
        .await
        .batch_execute(
            "DO $$ BEGIN FOR i IN 1..40 LOOP EXECUTE format('CREATE TABLE t%s (x int)', i); END LOOP; END $$",
        )
        .await
        .unwrap();
    let tables = read(&setup, "2025-11-25", "postgres-mcp://database/tables").await;
    assert_eq!(tables["truncated"], true, "{tables}");
    let listed = tables["tables"].as_array().unwrap().len();
    assert!((1..40).contains(&listed), "{listed} tables listed");
    assert!(tables.to_string().len() <= 1024, "{tables}");
    // The settings (with their descriptions) cannot be trimmed meaningfully: a clear error instead.
    let (_, body) = read_response(&setup, "2025-11-25", "postgres-mcp://database/server").await;
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("database.max_result_size"),
        "{body}"
    );
}

/// `query_database`'s rows: the structured content of a successful call.
async fn rows(setup: &Setup, sql: &str) -> Value {
    let response = rpc(
        &setup.server,
        Some(&setup.fixture.token),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "query_database", "arguments": {"sql": sql}}}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let result = &body["result"];
    assert_eq!(result["isError"], false, "{sql}: {body}");
    result["structuredContent"]["rows"].clone()
}

#[tokio::test]
async fn numerics_past_f64_come_back_exact_and_deep_json_does_not_fail_the_call() {
    let setup = setup(None).await;
    let exact = rows(
        &setup,
        "SELECT 12345678901234567890.123456789::numeric AS big, 0.1::numeric AS small, 12.50::numeric(12,2) AS money, \
                ARRAY[1.5, 123456789012345678901234567890]::numeric[] AS list, '{\"n\": 98765432109876543210}'::jsonb AS doc, \
                9007199254740993::int8 AS i8",
    )
    .await;
    assert_eq!(
        exact[0],
        json!([
            "12345678901234567890.123456789",
            0.1,
            12.5,
            [1.5, "123456789012345678901234567890"],
            {"n": "98765432109876543210"},
            9007199254740993i64
        ])
    );

    let depth = 200;
    let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let deep_rows = rows(
        &setup,
        &format!("SELECT 1 AS id, '{deep}'::jsonb AS deep, '{{\"ok\": [1]}}'::json AS shallow"),
    )
    .await;
    assert_eq!(deep_rows[0][0], 1);
    // Past the limit, the value is its JSON text: lossless, and PostgreSQL's own spelling.
    let text = deep_rows[0][1].as_str().expect("a deep value comes back as text");
    assert_eq!(text.replace(' ', ""), deep);
    assert_eq!(deep_rows[0][2], json!({"ok": [1]}));

    // The EXPLAIN/SHOW path decodes json itself: a plan comes back as JSON.
    let plan = rows(&setup, "EXPLAIN (FORMAT JSON) SELECT * FROM orders").await;
    assert_eq!(plan[0][0][0]["Plan"]["Relation Name"], "orders", "{plan}");
}

#[tokio::test]
async fn the_python_sdk_lists_and_reads_the_resources_in_both_of_its_modes() {
    let setup = setup(None).await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_resources.py");
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let output = tokio::process::Command::new(python())
            .arg(&script)
            .args([&url(&setup.server, "/mcp"), &setup.fixture.token, mode])
            .output()
            .await
            .expect("python starts");
        assert!(
            output.status.success(),
            "Python SDK ({mode}) failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
        assert_eq!(report["protocol_version"], version);
        assert_eq!(
            report["resources"],
            json!([
                "postgres-mcp://database/server",
                "postgres-mcp://database/size",
                "postgres-mcp://database/extensions",
                "postgres-mcp://database/tables"
            ])
        );
        assert_eq!(
            report["templates"],
            json!(["postgres-mcp://database/tables/{schema}/{table}"])
        );
        assert!(
            report["server_version"].as_str().unwrap().starts_with("PostgreSQL "),
            "{report}"
        );
        assert_eq!(report["orders_rows_estimate"], 500);
        assert_eq!(report["missing_error_code"], not_found_code(version), "{report}");
    }
}
