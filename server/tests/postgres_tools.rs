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
    setup_after("", extra).await
}

/// [`setup`], with `prepare` run on the database (as its superuser) before the server starts.
async fn setup_after(prepare: &str, extra: &str) -> Setup {
    let cluster = PgCluster::start();
    cluster.client().await.batch_execute(SEED).await.unwrap();
    if !prepare.is_empty() {
        cluster.client().await.batch_execute(prepare).await.unwrap();
    }
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

/// `GET /health/details`: status code and body (the database's state is a detail).
async fn health(server: &RunningServer) -> (u16, Value) {
    let response = client().get(url(server, "/health/details")).send().await.unwrap();
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
    // The status is the reachability probe's, which the failed call asked to look at once.
    assert!(
        eventually(2, || async {
            health(&setup.server).await.1["database"]["status"] == "unavailable"
        })
        .await,
        "{:?}",
        health(&setup.server).await
    );
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
        [
            "search_knowledgebase",
            "query_database",
            "explain_query",
            "get_schema_info"
        ]
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
        "the URL must not appear in /health/details"
    );
}

/// Issue #13 §C.11: every shape of an oversized result — rows too large, one value too large, many
/// rows of any size — is cut at `max_result_size` while it is fetched, and flagged; a result that
/// spans several batches of the portal comes back whole.
#[tokio::test]
async fn each_kind_of_oversized_result_is_cut_at_the_budget_while_fetching() {
    let setup = setup("  max_rows: 1000\n  max_result_size: 4KiB\n").await;
    let by_size = json!({"reason": "result_size", "max_bytes": 4096});
    // (case, sql, limit, truncation, rows returned)
    let cases = [
        (
            "rows of 1 MB",
            "SELECT repeat('x', 1000000) AS blob FROM generate_series(1, 200)",
            None,
            by_size.clone(),
            0,
        ),
        (
            "one 64 MB value",
            "SELECT repeat('x', 64000000) AS blob",
            None,
            by_size.clone(),
            0,
        ),
        (
            "rows under the server's row ceiling, over the budget",
            "SELECT repeat('x', 6000) FROM generate_series(1, 10000)",
            None,
            by_size.clone(),
            0,
        ),
        // Each row is `["x…x"]`: 1000 + 2 quotes + 2 brackets + 1 = 1005 bytes; four fit in 4096.
        (
            "rows that fill the budget",
            "SELECT repeat('x', 1000) FROM generate_series(1, 100000)",
            None,
            by_size.clone(),
            4,
        ),
        (
            "small rows past the first batch, up to the limit",
            "SELECT g FROM generate_series(1, 100000) g",
            Some(250),
            json!({"reason": "row_limit", "limit": 250}),
            250,
        ),
        // Within both caps and over several Executes of the portal: whole, not flagged.
        (
            "a result spanning batches",
            "SELECT g FROM generate_series(1, 300) g",
            Some(300),
            Value::Null,
            300,
        ),
        (
            "a large value after small rows",
            "SELECT CASE WHEN g < 150 THEN 'a' ELSE repeat('y', 2000000) END FROM generate_series(1, 300) g",
            None,
            by_size.clone(),
            149,
        ),
    ];
    for (case, sql, limit, truncated, rows) in cases {
        let result = call(&setup, "query_database", json!({"sql": sql, "limit": limit})).await;
        assert_eq!(result["isError"], false, "{case}: {result}");
        let out = &result["structuredContent"];
        assert_eq!(out["truncated"], truncated, "{case}");
        assert_eq!(out["row_count"], rows, "{case}");
        assert_eq!(out["rows"].as_array().unwrap().len(), rows, "{case}");
    }
}

/// Issue #13 §C.11: `database.pool_size` calls at once, each asking for hundreds of megabytes, keep
/// the server's peak memory within a design bound (each call holds a few times `max_result_size`;
/// before, each fetched its rows whole: +281 MiB of peak RSS for one call).
#[tokio::test]
async fn pool_size_oversized_queries_at_once_leave_peak_memory_small() {
    const BOUND_MIB: u64 = 64;
    let setup = setup("  pool_size: 4\n").await;
    // Warm the pool and the code paths, then measure the peak of what follows.
    sql(&setup, "SELECT 1").await;
    let pid = std::process::id();
    process::reset_peak_rss(pid);
    let base = process::status_kib(pid, "VmHWM");
    let queries = [
        "SELECT repeat('x', 1000000) AS blob FROM generate_series(1, 200)",
        "SELECT repeat('x', 300000) AS blob FROM generate_series(1, 200)",
    ];
    let (a, b, c, d) = tokio::join!(
        sql(&setup, queries[0]),
        sql(&setup, queries[1]),
        sql(&setup, queries[0]),
        sql(&setup, queries[1])
    );
    for result in [a, b, c, d] {
        assert_eq!(result["isError"], false, "{result}");
        assert_eq!(
            result["structuredContent"]["truncated"]["reason"], "result_size",
            "{result}"
        );
    }
    let grown_mib = process::status_kib(pid, "VmHWM").saturating_sub(base) / 1024;
    println!("peak RSS grew by {grown_mib} MiB during 4 oversized calls at once");
    assert!(
        grown_mib < BOUND_MIB,
        "peak RSS grew by {grown_mib} MiB (bound {BOUND_MIB} MiB)"
    );
}

/// `query_database` refused before it ran: HTTP 200, no JSON-RPC error (a tool result), `isError`
/// true; the message.
async fn refused(server: &RunningServer, token: &str, sql: &str) -> String {
    let response = rpc(
        server,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "query_database", "arguments": {"sql": sql}}}),
    )
    .await;
    assert_eq!(response.status(), 200, "{sql}");
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("error").is_none(),
        "{sql}: a tool error, not a JSON-RPC error: {body}"
    );
    error_text(&body["result"])
}

#[tokio::test]
async fn one_caller_cannot_terminate_another_callers_query() {
    let setup = setup("").await;
    let token_b =
        postgres_mcp::auth::admin::token_create(&setup.fixture.path("tokens.yaml"), "caller-b", None, None).unwrap();
    assert!(
        eventually(5, || async {
            let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
            rpc(&setup.server, Some(&token_b), ping).await.status() == 200
        })
        .await,
        "the second token was not picked up"
    );
    // B sleeps on one pooled backend; A, with another token but the same database role, tries to
    // terminate every other backend of that role (#13 C.12: B died with 57P01 before).
    let sleeper = tool_call(
        &setup.server,
        &token_b,
        "query_database",
        json!({"sql": "SELECT pg_sleep(3)"}),
    );
    let killer = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let sql = "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                   WHERE usename = current_user AND pid <> pg_backend_pid()";
        tool_call(
            &setup.server,
            &setup.fixture.token,
            "query_database",
            json!({ "sql": sql }),
        )
        .await
    };
    let (slept, killed) = tokio::join!(sleeper, killer);
    assert_eq!(slept["isError"], false, "B's call was hurt: {slept}");
    assert_eq!(
        error_text(&killed),
        "pg_terminate_backend() is refused before it runs: it signals other server processes (§9.27.2 Server \
         Signaling Functions); query_database runs only statements whose effects stay inside the call"
    );
}

#[tokio::test]
async fn every_spelling_of_a_refused_call_is_refused_and_look_alikes_run() {
    let setup = setup("").await;
    let db = setup.cluster.client().await;
    db.batch_execute(
        "CREATE TABLE lookalike (pg_terminate_backend int);
         INSERT INTO lookalike VALUES (7);
         CREATE FUNCTION pg_terminate_backend_audit(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';",
    )
    .await
    .unwrap();
    let (server, token) = (&setup.server, setup.fixture.token.as_str());
    let refusals = [
        ("SELECT pg_terminate_backend(0)", "pg_terminate_backend()"),
        ("SELECT PG_TERMINATE_BACKEND(0)", "pg_terminate_backend()"),
        ("SELECT \"pg_terminate_backend\"(0)", "pg_terminate_backend()"),
        (
            "SELECT pg_catalog.pg_terminate_backend(0)",
            "pg_catalog.pg_terminate_backend()",
        ),
        (
            "SELECT PG_CATALOG.\"pg_cancel_backend\"(0)",
            "pg_catalog.pg_cancel_backend()",
        ),
        ("SELECT * FROM (SELECT pg_cancel_backend(0)) s", "pg_cancel_backend()"),
        (
            "WITH k AS (SELECT pg_cancel_backend(0)) SELECT * FROM k",
            "pg_cancel_backend()",
        ),
        ("SELECT * FROM pg_cancel_backend(0)", "pg_cancel_backend()"),
        (
            "SELECT CASE WHEN true THEN pg_cancel_backend(0) END",
            "pg_cancel_backend()",
        ),
        ("SELECT 1 ORDER BY pg_cancel_backend(0)", "pg_cancel_backend()"),
        (
            "SELECT * FROM customers c, LATERAL (SELECT pg_cancel_backend(c.id)) x",
            "pg_cancel_backend()",
        ),
        (
            "EXPLAIN ANALYZE SELECT pg_terminate_backend(0)",
            "pg_terminate_backend()",
        ),
        ("SELECT pg_reload_conf()", "pg_reload_conf()"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file()"),
        ("SELECT pg_notify('c', 'x')", "pg_notify()"),
        ("SELECT lo_import('/etc/passwd')", "lo_import()"),
        (
            "SELECT query_to_xml('SELECT pg_terminate_backend(0)', true, true, '')",
            "query_to_xml()",
        ),
        (
            "SELECT ts_rewrite('a'::tsquery, 'select ''a''::tsquery, pg_cancel_backend(0)::text::tsquery')",
            "ts_rewrite()",
        ),
    ];
    let statements = [
        ("DO $$ BEGIN PERFORM 1; END $$", "Do statements are not run"),
        ("LISTEN c", "Listen statements are not run"),
        ("NOTIFY c", "Notify statements are not run"),
        ("SET statement_timeout = 0", "VariableSet statements are not run"),
        ("COPY customers TO STDOUT", "Copy statements are not run"),
        (
            "SELECT 1; SELECT 2",
            "exactly one statement is run per call, this text holds 2",
        ),
    ];
    let functions = refusals.map(|(sql, called)| (sql, format!("{called} is refused before it runs: it ")));
    let statements = statements.map(|(sql, start)| (sql, start.to_string()));
    for (sql, start) in functions.into_iter().chain(statements) {
        let message = refused(server, token, sql).await;
        assert!(message.starts_with(&start), "{sql}: {message}");
    }
    let look_alikes = [
        ("SELECT pg_terminate_backend FROM lookalike", json!([[7]])),
        (
            "SELECT 'pg_terminate_backend(1)' AS text",
            json!([["pg_terminate_backend(1)"]]),
        ),
        ("SELECT pg_terminate_backend_audit(1)", json!([[2]])),
        ("SELECT 1 AS n -- pg_cancel_backend(1)", json!([[1]])),
    ];
    for (sql, rows) in look_alikes {
        let result = call(&setup, "query_database", json!({ "sql": sql })).await;
        assert_eq!(result["isError"], false, "{sql}: {result}");
        assert_eq!(result["structuredContent"]["rows"], rows, "{sql}");
    }
}

/// `/health`'s `database.role` once the role audit has said `safe` (within 5 s).
async fn audited_role(server: &RunningServer, safe: bool) -> Value {
    let role = || async { health(server).await.1["database"]["role"].clone() };
    assert!(
        eventually(5, || async { role().await["safe"] == safe }).await,
        "{}",
        role().await
    );
    role().await
}

#[tokio::test]
async fn a_superuser_role_is_reported_unsafe_and_require_safe_role_refuses_the_tools() {
    let setup = setup("  require_safe_role: true\n").await;
    let role = audited_role(&setup.server, false).await;
    assert_eq!(role["role"], "postgres");
    assert_eq!(role["tools_refused"], true);
    let kinds: Vec<&str> = role["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "superuser",
        "replication",
        "create_role",
        "signal_backend",
        "read_server_files",
        "execute_admin_function",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {role}");
    }
    let metrics = get_text(&url(&setup.server, "/metrics")).await;
    assert!(
        metrics.contains("pgmcp_database_role_finding{finding=\"superuser\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pgmcp_database_role_safe 0"), "{metrics}");
    let message = refused(&setup.server, &setup.fixture.token, "SELECT 1").await;
    assert!(
        message
            .starts_with("the database role `postgres` is unsafe (superuser, replication, create_role, signal_backend"),
        "{message}"
    );
    assert!(message.contains("database.require_safe_role is set"), "{message}");
    let schema = call(&setup, "get_schema_info", json!({})).await;
    assert!(error_text(&schema).contains("is unsafe"), "{schema}");
}

#[tokio::test]
async fn without_require_safe_role_an_unsafe_role_is_reported_and_still_served() {
    let setup = setup("").await;
    assert!(
        eventually(5, || async {
            health(&setup.server).await.1["database"]["role"]["safe"] == false
        })
        .await
    );
    assert_eq!(
        health(&setup.server).await.1["database"]["role"]["tools_refused"],
        false
    );
    let ok = sql(&setup, "SELECT 42 AS answer").await;
    assert_eq!(ok["structuredContent"]["rows"], json!([[42]]));
}

#[tokio::test]
async fn the_reader_role_script_makes_a_safe_role_that_cannot_signal() {
    let cluster = PgCluster::start();
    let admin = cluster.client().await;
    admin.batch_execute(SEED).await.unwrap();
    // What the statement check cannot see: a call inside a view.
    admin
        .batch_execute("CREATE VIEW backend_killer AS SELECT pg_terminate_backend(pg_backend_pid()) AS done")
        .await
        .unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sql/reader-role.sql");
    cluster.psql_file(&script, &[("password", "s3cret")]);
    // Idempotent: a second run changes nothing and fails nothing.
    cluster.psql_file(&script, &[("password", "s3cret")]);
    // Created after the script: readable through the default privileges.
    admin
        .batch_execute("CREATE TABLE later (x int); INSERT INTO later VALUES (1)")
        .await
        .unwrap();

    let fixture = Fixture::new();
    let config = format!(
        "database:\n  url: \"{}\"\n  health_interval: 200ms\n  connect_timeout: 1s\n  require_safe_role: true\n",
        cluster.url_as("mcp_reader")
    );
    let server = fixture.start_with("mcp-reader", &config).await;
    let role = audited_role(&server, true).await;
    assert_eq!(role["role"], "mcp_reader");
    assert_eq!(role["findings"], json!([]));
    assert_eq!(role["tools_refused"], false);

    let query = |sql: &'static str| tool_call(&server, &fixture.token, "query_database", json!({ "sql": sql }));
    let counted = query("SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM later) AS n").await;
    assert_eq!(counted["structuredContent"]["rows"], json!([[4]]), "{counted}");
    // The view's hidden call passes the statement check; the role stops it.
    let hidden = query("SELECT * FROM backend_killer").await;
    let message = error_text(&hidden);
    assert!(
        message.contains("permission denied for function pg_terminate_backend"),
        "{message}"
    );
    assert!(message.contains("42501"), "{message}");

    let (reader, connection) = tokio_postgres::connect(&cluster.url_as("mcp_reader"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for sql in [
        "SELECT pg_terminate_backend(pg_backend_pid())",
        "SELECT pg_cancel_backend(pg_backend_pid())",
        "SELECT pg_read_file('PG_VERSION')",
        "SELECT pg_reload_conf()",
    ] {
        let error = reader.simple_query(sql).await.unwrap_err();
        let code = error.as_db_error().map(|e| e.code().code().to_string());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {error}");
    }

    // A privilege granted while the pool's connections live shows at the next health check (it was
    // seen only when a connection happened to be replaced), and so does its revocation.
    let kinds = |role: &Value| -> Vec<String> {
        let findings = role["findings"].as_array().cloned().unwrap_or_default();
        findings
            .iter()
            .map(|f| f["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    admin
        .batch_execute("GRANT pg_signal_backend TO mcp_reader; ALTER ROLE mcp_reader CREATEROLE")
        .await
        .unwrap();
    let role = audited_role(&server, false).await;
    assert_eq!(kinds(&role), ["create_role", "signal_backend"], "{role}");
    assert_eq!(role["tools_refused"], true);
    admin
        .batch_execute("REVOKE pg_signal_backend FROM mcp_reader; ALTER ROLE mcp_reader NOCREATEROLE")
        .await
        .unwrap();
    let role = audited_role(&server, true).await;
    assert_eq!(role["tools_refused"], false);
}

/// Red-team review of #13: with `standard_conforming_strings = off` on the database, PostgreSQL
/// read `'\'` as the start of a longer string where the statement check's parser saw a whole one,
/// so a call the check took for a comment ran. The pool pins the lexer settings, so the server now
/// reads the text exactly as the check did: one string column, no call.
#[tokio::test]
async fn the_server_reads_string_literals_as_the_check_does_whatever_the_database_sets() {
    let setup = setup_after(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET standard_conforming_strings = off', \
         current_database()); EXECUTE format('ALTER DATABASE %I SET backslash_quote = on', current_database()); END $$",
        "",
    )
    .await;
    let result = sql(&setup, r"select '\' -- ', pg_cancel_backend(0) -- '").await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["rows"], json!([["\\"]]), "{result}");
}

/// Red-team review of #13: a call abandoned by its request (504 here; a client that goes away takes
/// the same path) used to leave its statement running and its session advisory lock held on the
/// pooled connection until that connection served another call. Now its statement is cancelled and
/// its connection closed, which releases the lock at once.
#[tokio::test]
async fn an_abandoned_call_is_cancelled_and_leaves_no_lock_behind() {
    let setup = setup("http:\n  request_timeout: 1s\n").await;
    let response = rpc(
        &setup.server,
        Some(&setup.fixture.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query_database",
            "arguments": {"sql": "SELECT pg_advisory_lock(777001), pg_sleep(20)"}}}),
    )
    .await;
    assert_eq!(response.status(), 504);
    let admin = setup.cluster.client().await;
    let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 777001";
    let sleeping =
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()";
    let mut released = false;
    for _ in 0..50 {
        if scalar::<i64>(&admin, held).await == 0 && scalar::<i64>(&admin, sleeping).await == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        released,
        "5 s after the 504: {} advisory lock(s) held, {} statement(s) still running",
        scalar::<i64>(&admin, held).await,
        scalar::<i64>(&admin, sleeping).await
    );
    // The pool still serves the next call, on a new connection.
    let ok = sql(&setup, "SELECT 1 AS one").await;
    assert_eq!(ok["structuredContent"]["rows"], json!([[1]]), "{ok}");
}

/// Issue #14: an operator looking at `pg_stat_activity` sees which instance and which request (the
/// `X-Request-Id` of the response) a running statement belongs to; an idle pooled connection names
/// the instance.
#[tokio::test]
async fn pg_stat_activity_names_the_instance_and_the_request_of_a_running_call() {
    let setup = setup("").await;
    let sleeper = client()
        .post(url(&setup.server, "/mcp"))
        .bearer_auth(&setup.fixture.token)
        .header("x-request-id", "req-pgsa-42")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query_database",
            "arguments": {"sql": "SELECT pg_sleep(2)"}}}),
        )
        .send();
    let watcher = async {
        let admin = setup.cluster.client().await;
        let running = "SELECT application_name FROM pg_stat_activity \
                       WHERE query LIKE '%pg_sleep(2)%' AND state = 'active' AND pid <> pg_backend_pid()";
        for _ in 0..40 {
            if let Some(row) = admin.query_opt(running, &[]).await.unwrap() {
                return Some(row.get::<_, String>(0));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    };
    let (response, seen) = tokio::join!(sleeper, watcher);
    let response = response.unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-pgsa-42");
    let seen = seen.expect("the call was never seen running in pg_stat_activity");
    println!("pg_stat_activity.application_name during the call: {seen}");
    assert_eq!(seen, "postgres-mcp/mcp-pg req-pgsa-42");

    let idle: Vec<String> = setup
        .cluster
        .client()
        .await
        .query(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'postgres-mcp/%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        !idle.is_empty() && idle.iter().all(|name| name == "postgres-mcp/mcp-pg"),
        "{idle:?}"
    );
}

// ---- Issue #17: the pipelined path and its statement cache, and `explain_query`. ----

/// Issue #17: a call's messages are pipelined and repeated SQL reuses a prepared statement; every
/// guarantee of the batched path holds on the first call (nothing cached) and on the repeats
/// (Bind/Execute of the cached statement). One connection, so every call shares its cache.
#[tokio::test]
async fn pipelined_calls_keep_every_guarantee_first_time_and_cached() {
    let setup = setup("  pool_size: 1\n  statement_timeout: 500ms\n  max_rows: 1000\n  max_result_size: 4KiB\n").await;
    let admin = setup.cluster.client().await;
    for round in 0..3 {
        // Row limit: the wrapper's LIMIT, flagged.
        let limited = call(
            &setup,
            "query_database",
            json!({"sql": "SELECT g FROM generate_series(1, 50) g", "limit": 10}),
        )
        .await;
        assert_eq!(
            limited["structuredContent"]["row_count"], 10,
            "round {round}: {limited}"
        );
        assert_eq!(
            limited["structuredContent"]["truncated"],
            json!({"reason": "row_limit", "limit": 10})
        );
        // Longer than one batch (100 rows): every row, through the batched path.
        let long = sql(&setup, "SELECT g FROM generate_series(1, 500) g").await;
        assert_eq!(long["structuredContent"]["row_count"], 500, "round {round}");
        assert!(long["structuredContent"].get("truncated").is_none());
        // Byte budget, within the first batch.
        let wide = sql(&setup, "SELECT repeat('x', 500) FROM generate_series(1, 50)").await;
        assert_eq!(
            wide["structuredContent"]["truncated"],
            json!({"reason": "result_size", "max_bytes": 4096}),
            "round {round}"
        );
        // Timeout.
        let message = error_text(&sql(&setup, "SELECT pg_sleep(10)").await);
        assert!(message.contains("statement timeout"), "round {round}: {message}");
        // Refusals: no result description, placeholders, a write.
        let message = error_text(&sql(&setup, "SELECT FROM customers").await);
        assert!(message.contains("only statements that return rows"), "{message}");
        let message = error_text(&sql(&setup, "SELECT * FROM customers WHERE id = $1").await);
        assert!(message.contains("parameter placeholder"), "{message}");
        let message = error_text(&sql(&setup, "SELECT nextval('invoice_numbers')").await);
        assert!(message.contains("25006"), "{message}");
        // Advisory locks taken by a call are gone when it returns.
        let locked = sql(&setup, "SELECT count(*) AS n FROM (SELECT pg_advisory_lock(4242)) AS l").await;
        assert_eq!(locked["structuredContent"]["rows"], json!([[1]]), "{locked}");
        let held: i64 = scalar(
            &admin,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242",
        )
        .await;
        assert_eq!(held, 0, "round {round}: the advisory lock outlived the call");
        // Statements that cannot be wrapped still run.
        let shown = sql(&setup, "SHOW statement_timeout").await;
        assert_eq!(shown["structuredContent"]["rows"], json!([["500ms"]]), "{shown}");
    }
    let next: i64 = scalar(&admin, "SELECT last_value FROM invoice_numbers").await;
    assert_eq!(next, 1, "nextval never ran");
    // The connection's prepared statements hold other callers' SQL, literals included (red-team
    // review): the view is refused, as are the settings and the seed that outlive a call.
    for (sql_text, named) in [
        (
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%generate_series%'",
            "pg_prepared_statements",
        ),
        ("SELECT set_config('statement_timeout', '0', true)", "set_config"),
        ("SELECT setseed(0.42)", "setseed"),
    ] {
        let message = error_text(&sql(&setup, sql_text).await);
        assert!(
            message.contains(named) && message.contains("pooled connection"),
            "{message}"
        );
    }
}

/// Issue #17: a cached statement follows the table: after `ALTER TABLE` changes a column's type
/// and adds one, the next call shows the new types, values and columns.
#[tokio::test]
async fn the_statement_cache_follows_a_changed_table() {
    let setup = setup("  pool_size: 1\n").await;
    let admin = setup.cluster.client().await;
    admin
        .batch_execute("CREATE TABLE gauges (id int PRIMARY KEY, reading int); INSERT INTO gauges VALUES (1, 7);")
        .await
        .unwrap();
    for _ in 0..2 {
        let before = sql(&setup, "SELECT * FROM gauges").await;
        assert_eq!(before["structuredContent"]["rows"], json!([[1, 7]]), "{before}");
        assert_eq!(before["structuredContent"]["columns"][1]["type"], "int4");
    }
    admin
        .batch_execute(
            "ALTER TABLE gauges ALTER COLUMN reading TYPE text; ALTER TABLE gauges ADD COLUMN unit text DEFAULT 'kPa';",
        )
        .await
        .unwrap();
    let after = sql(&setup, "SELECT * FROM gauges").await;
    let out = &after["structuredContent"];
    assert_eq!(out["rows"], json!([[1, "7", "kPa"]]), "{after}");
    let types: Vec<&str> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["int4", "text", "text"]);
}

/// Issue #17: from its third call on a connection a cached text is no longer described — its
/// guarded wrapper carries a typed NULL per column, so PostgreSQL refuses it once the columns
/// change. Every kind of change, reached with the text in that state, shows in the next answer:
/// a type, a name, a column added (with rows, and with none: then the server describes it again),
/// a column dropped, the table replaced by another shape.
#[tokio::test]
async fn a_statement_no_longer_described_still_follows_every_change_of_its_columns() {
    let setup = setup("  pool_size: 1\n").await;
    let admin = setup.cluster.client().await;
    /// The columns after, as (name, type).
    type Columns = &'static [(&'static str, &'static str)];
    // (table, statement, change, columns after, rows after)
    let cases: [(&str, &str, &str, Columns, Value); 7] = [
        (
            "g_type",
            "SELECT * FROM g_type",
            "ALTER TABLE g_type ALTER COLUMN reading TYPE bigint",
            &[("id", "int4"), ("reading", "int8")],
            json!([[1, 7]]),
        ),
        (
            "g_rename",
            "SELECT * FROM g_rename",
            "ALTER TABLE g_rename RENAME COLUMN reading TO value",
            &[("id", "int4"), ("value", "int4")],
            json!([[1, 7]]),
        ),
        (
            "g_add",
            "SELECT * FROM g_add",
            "ALTER TABLE g_add ADD COLUMN unit text DEFAULT 'kPa'",
            &[("id", "int4"), ("reading", "int4"), ("unit", "text")],
            json!([[1, 7, "kPa"]]),
        ),
        (
            "g_add_empty",
            "SELECT * FROM g_add_empty WHERE id < 0",
            "ALTER TABLE g_add_empty ADD COLUMN unit text",
            &[("id", "int4"), ("reading", "int4"), ("unit", "text")],
            json!([]),
        ),
        (
            "g_drop",
            "SELECT * FROM g_drop",
            "ALTER TABLE g_drop DROP COLUMN reading",
            &[("id", "int4")],
            json!([[1]]),
        ),
        (
            "g_swap",
            "SELECT * FROM g_swap",
            "DROP TABLE g_swap; CREATE TABLE g_swap (reading text, id int); INSERT INTO g_swap VALUES ('7', 1)",
            &[("reading", "text"), ("id", "int4")],
            json!([["7", 1]]),
        ),
        // Same types, names and positions swapped: every guard still resolves with its type.
        (
            "g_same",
            "SELECT * FROM g_same",
            "DROP TABLE g_same; CREATE TABLE g_same (reading int, id int); INSERT INTO g_same VALUES (7, 1)",
            &[("reading", "int4"), ("id", "int4")],
            json!([[7, 1]]),
        ),
    ];
    for (table, statement, change, columns, rows) in cases {
        admin
            .batch_execute(&format!(
                "CREATE TABLE {table} (id int PRIMARY KEY, reading int); INSERT INTO {table} VALUES (1, 7);"
            ))
            .await
            .unwrap();
        // Miss, then described with the guarded form prepared, then guarded: three calls.
        for _ in 0..4 {
            let before = sql(&setup, statement).await;
            assert_eq!(before["isError"], false, "{table}: {before}");
        }
        admin.batch_execute(change).await.unwrap();
        for attempt in 0..2 {
            let after = sql(&setup, statement).await;
            let out = &after["structuredContent"];
            let seen: Vec<(&str, &str)> = out["columns"]
                .as_array()
                .unwrap_or_else(|| panic!("{table}: {after}"))
                .iter()
                .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
                .collect();
            assert_eq!(seen, columns, "{table}, call {attempt} after `{change}`: {after}");
            assert_eq!(out["rows"], rows, "{table}, call {attempt} after `{change}`: {after}");
        }
    }
}

/// A statement that fails while it runs is run once: its error is not taken for a text that cannot
/// be wrapped (which the batched path would run again), first time or cached (a red-team review of
/// issue #17 measured 2× and 3× the statement's time).
#[tokio::test]
async fn a_statement_failing_at_run_time_runs_once() {
    let setup = setup("  pool_size: 1\n").await;
    let admin = setup.cluster.client().await;
    admin
        .batch_execute("CREATE TABLE units (k int, u text); INSERT INTO units VALUES (1, 'day');")
        .await
        .unwrap();
    // 42704 at run time, never cached.
    let started = std::time::Instant::now();
    let failed = sql(
        &setup,
        "SELECT pg_sleep(1) AS s, current_setting('pgmcp.no_such_setting') AS c",
    )
    .await;
    assert!(error_text(&failed).contains("pgmcp.no_such_setting"), "{failed}");
    let once = started.elapsed();
    assert!(
        once < std::time::Duration::from_millis(1800),
        "ran more than once: {once:?}"
    );
    // 0A000 at run time from a cached, guarded statement.
    let statement = "SELECT k, pg_sleep(0.5) AS s, date_part(u, interval '1 day') AS p FROM units";
    for _ in 0..3 {
        let answer = sql(&setup, statement).await;
        assert_eq!(answer["isError"], false, "{answer}");
    }
    admin.batch_execute("UPDATE units SET u = 'week'").await.unwrap();
    let started = std::time::Instant::now();
    let failed = sql(&setup, statement).await;
    assert_eq!(failed["isError"], true, "{failed}");
    let runs = started.elapsed();
    // The guarded attempt and one retry without the cache (0A000 may be a stale plan): never three.
    assert!(
        runs < std::time::Duration::from_millis(1400),
        "ran three times: {runs:?}"
    );
}

const BIG: &str = "CREATE TABLE readings AS SELECT g AS id, g % 97 AS sensor, md5(g::text) AS payload \
                   FROM generate_series(1, 20000) g; ALTER TABLE readings ADD PRIMARY KEY (id); ANALYZE readings;";

#[tokio::test]
async fn explain_query_shows_seq_and_index_scans_as_text_and_json() {
    let setup = setup_after(BIG, "").await;
    let seq = call(
        &setup,
        "explain_query",
        json!({"sql": "SELECT * FROM readings WHERE sensor = 3"}),
    )
    .await;
    assert_eq!(seq["isError"], false, "{seq}");
    let text = seq["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Seq Scan on readings"), "{text}");
    assert_eq!(seq["structuredContent"]["format"], "text");
    assert!(
        seq["structuredContent"].get("plan").is_none(),
        "format text plans once, as text: {seq}"
    );

    let index = call(
        &setup,
        "explain_query",
        json!({"sql": "SELECT payload FROM readings WHERE id = 4242", "format": "json", "verbose": true}),
    )
    .await;
    assert_eq!(index["isError"], false, "{index}");
    let plan = &index["structuredContent"]["plan"][0]["Plan"];
    assert_eq!(plan["Node Type"], "Index Scan", "{index}");
    assert_eq!(plan["Index Name"], "readings_pkey");
    assert!(plan["Output"].is_array(), "verbose adds Output: {plan}");
    let text: Value = serde_json::from_str(index["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text[0]["Plan"], plan, "the text is the same JSON plan");

    // ANALYZE runs it and reports actual rows; buffers and settings are passed through.
    let analyzed = call(
        &setup,
        "explain_query",
        json!({"sql": "SELECT count(*) FROM readings", "analyze": true, "buffers": true, "settings": true}),
    )
    .await;
    let text = analyzed["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("actual") && text.contains("Buffers"), "{text}");
    assert!(
        analyzed["structuredContent"].get("plan").is_none(),
        "one run, one format: {analyzed}"
    );

    // Arguments: an unknown format, and EXPLAIN given twice.
    let response = rpc(
        &setup.server,
        Some(&setup.fixture.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "explain_query",
            "arguments": {"sql": "SELECT 1", "format": "yaml"}}}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("yaml"), "{body}");
    for not_a_select in ["EXPLAIN SELECT 1", "SHOW work_mem"] {
        let message = error_text(&call(&setup, "explain_query", json!({"sql": not_a_select})).await);
        assert!(message.contains("pass the statement itself"), "{message}");
    }
}

#[tokio::test]
async fn explain_analyze_of_a_write_is_refused_and_changes_nothing() {
    let setup = setup("").await;
    let admin = setup.cluster.client().await;
    // Refused by the statement check, before anything is sent.
    for write in [
        "INSERT INTO customers (name) VALUES ('Mallory') RETURNING id",
        "DELETE FROM orders",
        "UPDATE customers SET balance = 0",
    ] {
        let result = call(&setup, "explain_query", json!({"sql": write, "analyze": true})).await;
        let message = error_text(&result);
        assert!(message.contains("statements are not explained"), "{write}: {message}");
    }
    // A write the check cannot see, hidden in a function or a CTE: refused by the read-only transaction.
    for hidden in [
        "SELECT nextval('invoice_numbers')",
        "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone",
    ] {
        let message = error_text(&call(&setup, "explain_query", json!({"sql": hidden, "analyze": true})).await);
        assert!(message.contains("read-only transaction"), "{hidden}: {message}");
    }
    // And the same refusals of functions that reach beyond the call.
    let message = error_text(
        &call(
            &setup,
            "explain_query",
            json!({"sql": "SELECT pg_terminate_backend(1)", "analyze": true}),
        )
        .await,
    );
    assert!(message.contains("refused before it runs"), "{message}");
    let orders: i64 = scalar(&admin, "SELECT count(*) FROM orders").await;
    let next: i64 = scalar(&admin, "SELECT last_value FROM invoice_numbers").await;
    assert_eq!((orders, next), (500, 1));
}

#[tokio::test]
async fn explain_analyze_of_a_slow_query_is_cancelled_at_the_timeout() {
    let setup = setup("  statement_timeout: 300ms\n").await;
    let started = std::time::Instant::now();
    let result = call(
        &setup,
        "explain_query",
        json!({"sql": "SELECT pg_sleep(10)", "analyze": true}),
    )
    .await;
    let elapsed = started.elapsed();
    let message = error_text(&result);
    assert!(
        message.contains("statement timeout") && message.contains("57014"),
        "{message}"
    );
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    // Without analyze nothing runs: the plan comes at once.
    let planned = call(&setup, "explain_query", json!({"sql": "SELECT pg_sleep(10)"})).await;
    assert_eq!(planned["isError"], false, "{planned}");
    assert!(
        planned["content"][0]["text"].as_str().unwrap().contains("Result"),
        "{planned}"
    );
}

#[tokio::test]
async fn explain_query_is_offered_only_to_credentials_whose_scope_names_it() {
    let setup = setup("").await;
    let tokens = setup.fixture.path("tokens.yaml");
    let query_only = postgres_mcp::auth::admin::token_create_scoped(
        &tokens,
        "query-only",
        None,
        None,
        Some(vec!["query_database".into()]),
    )
    .unwrap();
    let explain_only = postgres_mcp::auth::admin::token_create_scoped(
        &tokens,
        "explain-only",
        None,
        None,
        Some(vec!["explain_query".into()]),
    )
    .unwrap();
    let explains = |token: String| {
        let server = &setup.server;
        async move {
            let response = rpc(
                server,
                Some(&token),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "explain_query", "arguments": {"sql": "SELECT 1"}}}),
            )
            .await;
            response.status() == 200 && response.json::<Value>().await.unwrap()["result"]["isError"] == false
        }
    };
    // The reload engine picks the new tokens up.
    assert!(
        eventually(5, || async { explains(explain_only.clone()).await }).await,
        "the explain-only token can explain"
    );
    let response = rpc(
        &setup.server,
        Some(&query_only),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "explain_query", "arguments": {"sql": "SELECT 1"}}}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"], "tool `explain_query` is not permitted for credential `query-only`",
        "{body}"
    );
    let refused = tool_call(
        &setup.server,
        &explain_only,
        "query_database",
        json!({"sql": "SELECT 1"}),
    )
    .await;
    assert!(refused.is_null(), "query_database is not in the explain-only scope");

    // EXPLAIN ANALYZE runs the statement, and its answer shows what it read (an error quoting a
    // value, actual row counts): explain-only may plan, not analyze.
    setup
        .cluster
        .client()
        .await
        .batch_execute("CREATE TABLE secrets (secret text); INSERT INTO secrets VALUES ('hunter2');")
        .await
        .unwrap();
    for sql in [
        "SELECT secret::int FROM secrets",
        "SELECT 1 FROM secrets WHERE secret LIKE 'h%'",
    ] {
        let analyzed = tool_call(
            &setup.server,
            &explain_only,
            "explain_query",
            json!({"sql": sql, "analyze": true}),
        )
        .await;
        let message = error_text(&analyzed);
        assert!(
            message.contains("needs query_database in this credential's tool scope") && !message.contains("hunter2"),
            "{message}"
        );
        let planned = tool_call(&setup.server, &explain_only, "explain_query", json!({"sql": sql})).await;
        assert_eq!(planned["isError"], false, "{planned}");
    }
    // A credential with both may analyze, and sees what the query would show it anyway.
    let both = postgres_mcp::auth::admin::token_create_scoped(
        &tokens,
        "query-and-explain",
        None,
        None,
        Some(vec!["query_database".into(), "explain_query".into()]),
    )
    .unwrap();
    assert!(
        eventually(5, || async { explains(both.clone()).await }).await,
        "the new token is picked up"
    );
    let analyzed = tool_call(
        &setup.server,
        &both,
        "explain_query",
        json!({"sql": "SELECT secret::int FROM secrets", "analyze": true}),
    )
    .await;
    assert!(error_text(&analyzed).contains("invalid input syntax"), "{analyzed}");
}

#[tokio::test]
async fn a_text_plan_past_the_budget_is_cut_and_flagged_and_a_json_one_refused() {
    let setup = setup(
        "  max_result_size: 2KiB
",
    )
    .await;
    // 40 UNION ALL branches, each its own scan: a plan of well over 2 KiB in either format.
    let big = vec!["SELECT id FROM orders WHERE id > 7"; 40].join(" UNION ALL ");
    let text = call(&setup, "explain_query", json!({"sql": big, "format": "text"})).await;
    assert_eq!(text["isError"], false, "{text}");
    assert_eq!(text["structuredContent"]["truncated"], true, "{text}");
    assert!(text["structuredContent"].get("plan").is_none(), "{text}");
    let printed = text["content"][0]["text"].as_str().unwrap();
    assert!(printed.contains("Append") && printed.len() <= 2048, "{printed}");
    let json = call(&setup, "explain_query", json!({"sql": big, "format": "json"})).await;
    let message = error_text(&json);
    assert!(message.contains("ask for format text"), "{message}");
}

#[tokio::test]
async fn deeply_nested_statements_are_refused_or_answered_and_the_server_stays_up() {
    let setup = setup("").await;
    for terms in [60, 99, 150, 600, 5000] {
        let forms = [
            format!("SELECT {}", vec!["1"; terms].join("+")),
            format!("SELECT {}1{}", "(".repeat(terms), ")".repeat(terms)),
            format!("SELECT {}1{}", "(SELECT ".repeat(terms), ")".repeat(terms)),
            vec!["SELECT 1"; terms].join(" UNION ALL "),
        ];
        for sql in forms {
            for tool in ["query_database", "explain_query"] {
                let result = call(&setup, tool, json!({ "sql": sql })).await;
                if result["isError"] == true {
                    let message = error_text(&result);
                    assert!(
                        message.contains("nested deeper than 100 levels"),
                        "{tool} {terms}: {message}"
                    );
                }
            }
        }
    }
    let alive = sql(&setup, "SELECT 41 + 1 AS answer").await;
    assert_eq!(alive["structuredContent"]["rows"][0], json!([42]), "{alive}");
}
