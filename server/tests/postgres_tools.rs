//! The Postgres tools against a real PostgreSQL (a throwaway cluster per test): results and types,
//! limits, timeouts, every write attempt refused by the server, an outage and the recovery after it.

mod common;
mod pg_cluster;

use common::*;
use pg_cluster::PgCluster;
use postgres_mcp::server::RunningServer;
use serde_json::{Value, json};

const SEED: &str = "
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text UNIQUE,
  balance numeric(12,2) DEFAULT 0,
  active boolean NOT NULL DEFAULT true,
  joined timestamptz NOT NULL DEFAULT '2026-01-02T03:04:05Z',
  tags text[],
  profile jsonb
);
COMMENT ON TABLE customers IS 'People who buy things';
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  total numeric(12,2) NOT NULL
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE SEQUENCE invoice_numbers;
INSERT INTO customers (name, email, balance, tags, profile) VALUES
  ('Ada', 'ada@example.com', 12.50, '{vip,early}', '{\"tier\": 1}'),
  ('Brian', NULL, 0, NULL, NULL),
  ('Chen', 'chen@example.com', 99999.99, '{}', '{\"tier\": 3}');
INSERT INTO orders (customer_id, total) SELECT 1 + (g % 3), g FROM generate_series(1, 500) g;
ANALYZE;
";

struct Setup {
    // Field order is drop order: the server goes before the database it points at.
    server: RunningServer,
    cluster: PgCluster,
    fixture: Fixture,
}

async fn setup(extra: &str) -> Setup {
    let cluster = PgCluster::start();
    cluster.client().await.batch_execute(SEED).await.unwrap();
    let fixture = Fixture::new();
    let config = format!(
        "database:\n  url: \"{}\"\n  health_interval: 200ms\n  connect_timeout: 1s\n{extra}",
        cluster.url()
    );
    let server = fixture.start_with("mcp-pg", &config).await;
    Setup {
        server,
        cluster,
        fixture,
    }
}

/// `tools/call` on `server` with `token`; the JSON-RPC result.
async fn tool_call(server: &RunningServer, token: &str, tool: &str, arguments: Value) -> Value {
    let response = rpc(
        server,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["result"].clone()
}

async fn call(setup: &Setup, tool: &str, arguments: Value) -> Value {
    tool_call(&setup.server, &setup.fixture.token, tool, arguments).await
}

/// `GET /health`: status code and body.
async fn health(server: &RunningServer) -> (u16, Value) {
    let response = client().get(url(server, "/health")).send().await.unwrap();
    (response.status().as_u16(), response.json::<Value>().await.unwrap())
}

/// The first column of the one row `sql` returns, read directly from the database.
async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(db: &tokio_postgres::Client, sql: &str) -> T {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

async fn sql(setup: &Setup, sql: &str) -> Value {
    call(setup, "query_database", json!({ "sql": sql })).await
}

fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a tool error, got {result}");
    result["content"][0]["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rows_come_back_with_column_names_types_and_nulls() {
    let setup = setup("").await;
    let result = sql(
        &setup,
        "SELECT id, name, email, balance, active, joined, tags, profile FROM customers ORDER BY id;",
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let out = &result["structuredContent"];
    let columns: Vec<(String, String)> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().into(), c["type"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "int4"),
            ("name", "text"),
            ("email", "text"),
            ("balance", "numeric"),
            ("active", "bool"),
            ("joined", "timestamptz"),
            ("tags", "_text"),
            ("profile", "jsonb"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(out["row_count"], 3);
    assert_eq!(
        out["rows"][0],
        json!([1, "Ada", "ada@example.com", 12.50, true, "2026-01-02T03:04:05+00:00", ["vip", "early"], {"tier": 1}])
    );
    assert_eq!(
        out["rows"][1],
        json!([2, "Brian", null, 0.00, true, "2026-01-02T03:04:05+00:00", null, null])
    );
    assert!(out.get("truncated").is_none());
    // The text content is the same JSON, for clients that ignore structuredContent.
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, out);

    // Duplicate column names keep both values, in order; EXPLAIN (not a subquery) still works.
    let dup = sql(&setup, "SELECT 1 AS a, 'x' AS a").await;
    assert_eq!(dup["structuredContent"]["rows"][0], json!([1, "x"]));
    let explain = sql(&setup, "EXPLAIN SELECT * FROM orders WHERE customer_id = 1").await;
    assert_eq!(explain["isError"], false, "{explain}");
    assert_eq!(explain["structuredContent"]["columns"][0]["name"], "QUERY PLAN");
    assert!(
        explain["structuredContent"]["rows"][0][0]
            .as_str()
            .unwrap()
            .contains("orders")
    );
    let show = sql(&setup, "SHOW transaction_read_only").await;
    assert_eq!(show["structuredContent"]["rows"], json!([["on"]]));
}

#[tokio::test]
async fn row_and_size_caps_truncate_and_say_so() {
    let setup = setup("  max_rows: 100\n  max_result_size: 2KiB\n").await;
    let limited = call(
        &setup,
        "query_database",
        json!({"sql": "SELECT id FROM orders ORDER BY id", "limit": 7}),
    )
    .await;
    let out = &limited["structuredContent"];
    assert_eq!(out["row_count"], 7);
    assert_eq!(out["rows"][6], json!([7]));
    assert_eq!(out["truncated"], json!({"reason": "row_limit", "limit": 7}));

    // Without a limit, the server's max_rows applies; a limit above it is capped.
    let capped = call(
        &setup,
        "query_database",
        json!({"sql": "SELECT id FROM orders", "limit": 100000}),
    )
    .await;
    assert_eq!(capped["structuredContent"]["row_count"], 100);
    assert_eq!(capped["structuredContent"]["truncated"]["reason"], "row_limit");

    let wide = sql(&setup, "SELECT repeat('x', 500) FROM orders").await;
    let out = &wide["structuredContent"];
    assert_eq!(out["truncated"], json!({"reason": "result_size", "max_bytes": 2048}));
    assert!(out["row_count"].as_u64().unwrap() < 5, "{}", out["row_count"]);

    // Exactly the limit is not truncation.
    let exact = call(
        &setup,
        "query_database",
        json!({"sql": "SELECT 1 UNION ALL SELECT 2", "limit": 2}),
    )
    .await;
    assert!(exact["structuredContent"].get("truncated").is_none());
}

#[tokio::test]
async fn every_write_attempt_is_refused_and_nothing_changes() {
    let setup = setup("").await;
    let attempts = [
        "INSERT INTO customers (name) VALUES ('Mallory')",
        "INSERT INTO customers (name) VALUES ('Mallory') RETURNING id",
        "UPDATE customers SET balance = 0 RETURNING id",
        "DELETE FROM orders",
        "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
        "CREATE TABLE stolen (x int)",
        "CREATE TEMP TABLE scratch AS SELECT 1",
        "SELECT * INTO copy_of_customers FROM customers",
        "DROP TABLE orders",
        "TRUNCATE orders",
        "ALTER TABLE customers ADD COLUMN pwned int",
        "SELECT nextval('invoice_numbers')",
        "SET ROLE pg_write_all_data",
        "SET TRANSACTION READ WRITE",
        "COMMIT",
        "SELECT 1; COMMIT; DELETE FROM orders",
        "COMMIT; DELETE FROM orders",
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pgmcp-pwned'",
        "DO $$ BEGIN DELETE FROM orders; END $$",
        "GRANT ALL ON customers TO PUBLIC",
        "VACUUM orders",
        "SELECT pg_advisory_lock(42), nextval('invoice_numbers')",
    ];
    for attempt in attempts {
        let result = sql(&setup, attempt).await;
        let message = error_text(&result);
        assert!(!message.is_empty(), "{attempt}");
        println!("refused: {attempt}\n  -> {message}");
    }
    // A write smuggled into a SELECT is refused by PostgreSQL's read-only transaction.
    let message = error_text(&sql(&setup, "UPDATE customers SET balance = 0 RETURNING id").await);
    assert!(message.contains("read-only transaction"), "{message}");
    let message = error_text(&sql(&setup, "SELECT 1; COMMIT; DELETE FROM orders").await);
    assert!(message.contains("multiple commands"), "{message}");

    let db = setup.cluster.client().await;
    let count: i64 = scalar(&db, "SELECT count(*) FROM orders").await;
    assert_eq!(count, 500);
    let names: i64 = scalar(
        &db,
        "SELECT count(*) FROM customers WHERE name = 'Mallory' OR balance = 0 AND name <> 'Brian'",
    )
    .await;
    assert_eq!(names, 0);
    let tables: i64 = scalar(
        &db,
        "SELECT count(*) FROM pg_class WHERE relname IN ('stolen', 'copy_of_customers', 'scratch')",
    )
    .await;
    assert_eq!(tables, 0);
    let next: i64 = scalar(&db, "SELECT nextval('invoice_numbers')").await;
    assert_eq!(next, 1, "the sequence was never advanced");
    assert!(!std::path::Path::new("/tmp/pgmcp-pwned").exists());
    // The advisory lock taken before nextval() failed was not left behind on a pooled connection,
    // nor is one taken by a successful call: another session can take both.
    let free: bool = scalar(&db, "SELECT pg_try_advisory_lock(42)").await;
    assert!(free, "an advisory lock outlived a refused call");
    let lock = sql(&setup, "SELECT pg_advisory_lock(7)").await;
    assert_eq!(lock["isError"], false, "{lock}");
    let free: bool = scalar(&db, "SELECT pg_try_advisory_lock(7)").await;
    assert!(free, "an advisory lock outlived its call");

    // And ordinary reads still work on the same pooled connections.
    let ok = sql(&setup, "SELECT count(*) AS n FROM orders").await;
    assert_eq!(ok["structuredContent"]["rows"], json!([[500]]));
}

#[tokio::test]
async fn bad_sql_gets_postgres_own_error_and_parameters_are_refused() {
    let setup = setup("").await;
    let message = error_text(&sql(&setup, "SELEC 1").await);
    assert!(
        message.contains("syntax error") && message.contains("42601"),
        "{message}"
    );
    let message = error_text(&sql(&setup, "SELECT * FROM no_such_table").await);
    assert!(message.contains("does not exist"), "{message}");
    let message = error_text(&sql(&setup, "SELECT * FROM customers WHERE id = $1").await);
    assert!(message.contains("parameter"), "{message}");
    let message = error_text(&sql(&setup, "  ;  ").await);
    assert!(message.contains("empty"), "{message}");
    // A missing argument is, in 2025-11-25 (SEP-1303), a tool error naming it.
    let response = rpc(
        &setup.server,
        Some(&setup.fixture.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query_database", "arguments": {}}}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert!(error_text(&body["result"]).contains("missing field `sql`"), "{body}");
}

#[tokio::test]
async fn a_slow_query_is_cancelled_by_the_statement_timeout() {
    let setup = setup("  statement_timeout: 300ms\n").await;
    let started = std::time::Instant::now();
    let message = error_text(&sql(&setup, "SELECT pg_sleep(10)").await);
    let elapsed = started.elapsed();
    assert!(message.contains("statement timeout"), "{message}");
    println!("pg_sleep(10) cancelled after {} ms", elapsed.as_millis());
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    let ok = sql(&setup, "SELECT 42 AS answer").await;
    assert_eq!(ok["structuredContent"]["rows"], json!([[42]]));
}

#[tokio::test]
async fn schema_info_lists_tables_columns_keys_and_indexes() {
    let setup = setup("").await;
    let result = call(&setup, "get_schema_info", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let schemas = &result["structuredContent"]["schemas"];
    assert_eq!(schemas[0]["name"], "public");
    let tables = schemas[0]["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["customers", "orders"]);
    let customers = &tables[0];
    assert_eq!(customers["kind"], "table");
    assert_eq!(customers["rows_estimate"], 3);
    assert_eq!(customers["comment"], "People who buy things");
    assert_eq!(customers["primary_key"], json!(["id"]));
    assert_eq!(customers["unique"], json!(["UNIQUE (email)"]));
    assert_eq!(
        customers["columns"][0],
        json!({"name": "id", "type": "integer", "nullable": false, "default": "nextval('customers_id_seq'::regclass)"})
    );
    assert_eq!(
        customers["columns"][3],
        json!({"name": "balance", "type": "numeric(12,2)", "nullable": true, "default": "0"})
    );
    let orders = &tables[1];
    assert_eq!(
        orders["foreign_keys"],
        json!(["FOREIGN KEY (customer_id) REFERENCES customers(id)"])
    );
    assert_eq!(
        orders["indexes"],
        json!(["CREATE INDEX orders_customer_idx ON public.orders USING btree (customer_id)"])
    );
    assert_eq!(result["structuredContent"]["truncated"], false);

    let one = call(
        &setup,
        "get_schema_info",
        json!({"schema": "public", "table": "orders"}),
    )
    .await;
    let tables = one["structuredContent"]["schemas"][0]["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1);
    let none = call(&setup, "get_schema_info", json!({"schema": "nope"})).await;
    assert_eq!(none["structuredContent"]["schemas"], json!([]));
}

#[tokio::test]
async fn an_outage_is_a_tool_error_and_health_stays_up_then_both_recover() {
    let setup = setup("").await;
    assert!(
        eventually(5, || async {
            health(&setup.server).await.1["database"]["status"] == "ok"
        })
        .await,
        "{:?}",
        health(&setup.server).await
    );

    setup.cluster.stop();
    let message = error_text(&sql(&setup, "SELECT 1").await);
    assert!(message.contains("database is unavailable"), "{message}");
    let (status, body) = health(&setup.server).await;
    assert_eq!(
        status, 200,
        "a database outage must not take the instance out of the balancer"
    );
    assert_eq!(body["database"]["status"], "unavailable", "{body}");
    assert!(body["database"]["last_error"].is_string());
    // The knowledge base still answers.
    let kb = rpc(&setup.server, Some(&setup.fixture.token), search_call(1, "vacuum")).await;
    let kb: Value = kb.json().await.unwrap();
    assert_eq!(kb["result"]["isError"], false);

    setup.cluster.restart();
    let started = std::time::Instant::now();
    assert!(
        eventually(10, || async {
            sql(&setup, "SELECT count(*) FROM customers").await["isError"] == false
        })
        .await,
        "tools did not recover after the database came back"
    );
    println!("recovered {} ms after restart", started.elapsed().as_millis());
    assert!(
        eventually(5, || async {
            health(&setup.server).await.1["database"]["status"] == "ok"
        })
        .await
    );
}

#[tokio::test]
async fn without_a_database_the_postgres_tools_are_not_offered() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-kb-only").await;
    let response = rpc(
        &server,
        Some(&fixture.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search_knowledgebase"]);
    assert_eq!(health(&server).await.1["database"], Value::Null);
}

#[tokio::test]
async fn a_token_scoped_to_the_knowledge_base_cannot_see_or_call_the_database_tools() {
    let setup = setup("").await;
    let scoped = postgres_mcp::auth::admin::token_create_scoped(
        &setup.fixture.path("tokens.yaml"),
        "docs-only",
        None,
        None,
        Some(vec!["search_knowledgebase".into()]),
    )
    .unwrap();
    let list = |bearer: String| {
        let server = &setup.server;
        async move {
            let response = rpc(
                server,
                Some(&bearer),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            )
            .await;
            let body: Value = response.json().await.unwrap();
            body["result"]["tools"].as_array().map(|tools| {
                tools
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
        }
    };
    // The reload engine picks the new token up; then it sees only its tool.
    assert!(
        eventually(5, || async {
            list(scoped.clone()).await == Some(vec!["search_knowledgebase".to_string()])
        })
        .await
    );
    assert_eq!(
        list(setup.fixture.token.clone()).await.unwrap(),
        ["search_knowledgebase", "query_database", "get_schema_info"]
    );
    let refused = rpc(
        &setup.server,
        Some(&scoped),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "query_database", "arguments": {"sql": "SELECT 1"}}}),
    )
    .await;
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert_eq!(
        body["error"]["message"],
        "tool `query_database` is not permitted for credential `docs-only`"
    );
    let allowed = rpc(&setup.server, Some(&scoped), search_call(3, "vacuum")).await;
    let body: Value = allowed.json().await.unwrap();
    assert_eq!(body["result"]["isError"], false, "{body}");

    // A scope naming a tool that does not exist is a broken file: refused, the last good one kept.
    let text = std::fs::read_to_string(setup.fixture.path("tokens.yaml")).unwrap();
    std::fs::write(
        setup.fixture.path("tokens.yaml"),
        text.replace("- search_knowledgebase", "- serch_knowledgebase"),
    )
    .unwrap();
    let health = || async { health(&setup.server).await.1 };
    assert!(
        eventually(5, || async {
            health().await["auth"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("unknown tool `serch_knowledgebase`"))
        })
        .await,
        "{}",
        health().await
    );
    assert_eq!(list(scoped.clone()).await.unwrap(), ["search_knowledgebase"]);
}

#[tokio::test]
async fn a_rewritten_url_file_moves_the_pool_without_a_restart_and_a_broken_one_is_refused() {
    let cluster = PgCluster::start();
    let admin = cluster.client().await;
    // One statement per call: CREATE DATABASE refuses to run in a multi-statement batch.
    for db in ["blue", "green"] {
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    }
    let fixture = Fixture::new();
    let url_file = fixture.path("database.url");
    let url_for = |db: &str| cluster.url().replace("/postgres?", &format!("/{db}?"));
    std::fs::write(&url_file, format!("{}\n", url_for("blue"))).unwrap();
    let server = fixture
        .start_with(
            "mcp-rotate",
            &format!("database:\n  url_file: {}\n  connect_timeout: 1s\n", url_file.display()),
        )
        .await;
    let current_db = || async {
        let sql = json!({"sql": "SELECT current_database()"});
        tool_call(&server, &fixture.token, "query_database", sql).await["structuredContent"]["rows"][0][0].clone()
    };
    assert_eq!(current_db().await, "blue");

    // Rotation: an atomic rename, as a Secret update or our CLI writes it.
    let staged = fixture.path("database.url.new");
    std::fs::write(&staged, url_for("green")).unwrap();
    std::fs::rename(&staged, &url_file).unwrap();
    let started = std::time::Instant::now();
    assert!(
        eventually(2, || async { current_db().await == "green" }).await,
        "the new URL was not used"
    );
    println!("url_file rotation picked up in {} ms", started.elapsed().as_millis());

    // Not a URL: refused, the last good pool keeps serving, /health names the problem.
    std::fs::write(&url_file, "this is not a url").unwrap();
    let health = || async { health(&server).await.1 };
    assert!(
        eventually(2, || async {
            health().await["database"]["url_file"]["last_error"].is_string()
        })
        .await,
        "{}",
        health().await
    );
    assert_eq!(current_db().await, "green");
    assert!(
        !health().await.to_string().contains("postgres@127.0.0.1"),
        "the URL must not appear in /health"
    );
}
