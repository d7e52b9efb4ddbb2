//! The access and audit logs as an operator's pipeline receives them from the real binary (JSON on
//! stdout, against a real PostgreSQL): every field of each line kind checked by name, the statement
//! normalised unless `log.audit.statement: full`, and no secret in any line at `debug` — a token, a
//! password, the database URL's password or a literal a model put in its SQL.

mod common;
mod pg_cluster;

use std::time::{Duration, Instant};

use common::{process::ServerProcess, *};
use pg_cluster::PgCluster;
use serde_json::{Value, json};

/// A password in the database URL (the cluster trusts loopback, so any password connects).
const DB_PASSWORD: &str = "Db-pw-7f3a9c-never-logged";
/// A value a model writes into its SQL.
const SQL_LITERAL: &str = "ann-7f3a9c@example.com";

struct Logged {
    lines: Vec<Value>,
    text: String,
}

impl Logged {
    fn of(logger: &str, lines: &[Value]) -> Vec<Value> {
        lines.iter().filter(|l| l["log.logger"] == logger).cloned().collect()
    }

    fn access(&self) -> Vec<Value> {
        Self::of("access", &self.lines)
    }

    fn audit(&self) -> Vec<Value> {
        Self::of("audit", &self.lines)
    }

    /// The access line of the request with `X-Request-Id: id`.
    fn access_line(&self, id: &str) -> Value {
        self.access()
            .into_iter()
            .find(|l| l["http.request.id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}: {:#?}", self.access()))
    }
}

/// Runs the binary at `level` with the database tools, sends `requests`, stops it and returns its
/// log. `extra` is YAML merged into the configuration.
async fn serve_and_log(
    fixture: &Fixture,
    cluster: &PgCluster,
    level: &str,
    extra: &str,
    requests: impl AsyncFnOnce(&str),
) -> Logged {
    let url = format!(
        "postgres://postgres:{DB_PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
        cluster.port
    );
    let config = format!("database:\n  url: \"{url}\"\n  health_interval: 200ms\nlog:\n  level: {level}\n{extra}");
    fixture.config("mcp-log", &config);
    let mut process = ServerProcess::spawn(["--config".as_ref(), fixture.path("mcp-log.yaml").as_os_str()]);
    requests(&process.base).await;
    process.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    while process.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = process.log_lines();
    let text = lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    Logged { lines, text }
}

async fn post(base: &str, bearer: Option<&str>, request_id: &str, body: Value) -> reqwest::Response {
    let mut request = client()
        .post(format!("{base}/mcp"))
        .header("x-request-id", request_id)
        .header("user-agent", "log-test/1.0")
        .json(&body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

fn call(id: i64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

async fn seed(cluster: &PgCluster) {
    cluster
        .client()
        .await
        .batch_execute("CREATE TABLE people (id int PRIMARY KEY, email text); INSERT INTO people VALUES (1, 'x@example.com'), (2, 'y@example.com');")
        .await
        .unwrap();
}

#[tokio::test]
async fn access_and_audit_lines_carry_every_field_and_no_secret_at_debug() {
    let cluster = PgCluster::start();
    seed(&cluster).await;
    let fixture = Fixture::new();
    let token = fixture.token.clone();
    let logged = serve_and_log(&fixture, &cluster, "debug", "", async |base| {
        let ok = post(
            base,
            Some(&token),
            "req-query",
            call(
                11,
                "query_database",
                json!({"sql": format!("SELECT id FROM people WHERE email <> '{SQL_LITERAL}' ORDER BY id")}),
            ),
        )
        .await;
        assert_eq!(ok.status(), 200);
        let bad_sql = post(
            base,
            Some(&token),
            "req-bad-sql",
            call(12, "query_database", json!({"sql": "SELECT * FROM no_such_table"})),
        )
        .await;
        assert_eq!(bad_sql.status(), 200);
        let search = post(base, Some(&token), "req-search", search_call(13, "vacuum")).await;
        assert_eq!(search.status(), 200);
        let unknown = post(
            base,
            Some(&token),
            "req-unknown-method",
            json!({"jsonrpc": "2.0", "id": 14, "method": "no/such"}),
        )
        .await;
        assert!(unknown.status().is_client_error() || unknown.status() == 200);
        let refused = post(
            base,
            Some("pgmcp_wrong-token-7f3a9c"),
            "req-401",
            search_call(15, "vacuum"),
        )
        .await;
        assert_eq!(refused.status(), 401);
        let login = client()
            .post(format!("{base}/api/login"))
            .header("x-request-id", "req-login")
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        let session: Value = login.json().await.unwrap();
        let session = session["token"].as_str().unwrap().to_string();
        let schema = post(
            base,
            Some(&session),
            "req-schema",
            call(16, "get_schema_info", json!({"table": "people"})),
        )
        .await;
        assert_eq!(schema.status(), 200);
        let initialize = json!({"jsonrpc": "2.0", "id": 17, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "log-test", "version": "1"}}});
        assert_eq!(
            post(base, Some(&token), "req-initialize", initialize).await.status(),
            200
        );
        let health = client().get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    })
    .await;

    println!("access line: {}", logged.access_line("req-query"));
    println!(
        "audit line: {}",
        logged
            .audit()
            .iter()
            .find(|l| l["http.request.id"] == "req-query")
            .unwrap()
    );
    // Every line: the envelope and the service.
    for line in &logged.lines {
        for key in [
            "@timestamp",
            "log.level",
            "log.logger",
            "message",
            "service.name",
            "service.version",
        ] {
            assert!(line[key].is_string(), "{key} missing: {line}");
        }
        assert_eq!(line["service.instance.id"], "mcp-log", "{line}");
    }

    // A successful tool call.
    let query = logged.access_line("req-query");
    assert_eq!(query["log.level"], "info");
    assert_eq!(query["http.request.method"], "POST");
    assert_eq!(query["http.route"], "/mcp");
    assert_eq!(query["url.path"], "/mcp");
    assert_eq!(query["http.response.status_code"], 200);
    assert_eq!(query["client.address"], "127.0.0.1");
    assert_eq!(query["network.peer.address"], "127.0.0.1");
    assert_eq!(query["user_agent.original"], "log-test/1.0");
    assert_eq!(query["user.name"], "test-client");
    assert_eq!(query["mcp.method.name"], "tools/call");
    assert_eq!(query["jsonrpc.request.id"], "11");
    assert_eq!(query["gen_ai.tool.name"], "query_database");
    assert_eq!(query["pgmcp.outcome"], "ok");
    assert!(query["error.type"].is_null(), "{query}");
    assert!(query["http.server.request.duration"].as_f64().unwrap() > 0.0);

    // Bad SQL is the caller's fault, though HTTP and JSON-RPC both say success.
    let bad_sql = logged.access_line("req-bad-sql");
    assert_eq!(bad_sql["http.response.status_code"], 200);
    assert_eq!(bad_sql["pgmcp.outcome"], "caller_error");
    assert_eq!(bad_sql["error.type"], "sql_rejected");

    let unknown = logged.access_line("req-unknown-method");
    assert_eq!(unknown["mcp.method.name"], "other");
    assert_eq!(unknown["rpc.response.status_code"], -32601);
    assert_eq!(unknown["error.type"], "-32601");
    assert_eq!(unknown["pgmcp.outcome"], "caller_error");

    let refused = logged.access_line("req-401");
    assert_eq!(refused["http.response.status_code"], 401);
    assert_eq!(refused["error.type"], "401");
    assert!(
        refused["user.name"].is_null(),
        "a refused token names nobody: {refused}"
    );

    let login = logged.access_line("req-login");
    assert_eq!(login["http.route"], "/api/login");
    assert_eq!(login["user.name"], "alice");
    assert_eq!(logged.access_line("req-schema")["user.name"], "alice");
    assert_eq!(
        logged.access_line("req-search")["gen_ai.tool.name"],
        "search_knowledgebase"
    );
    assert!(
        logged.access().iter().all(|l| l["http.route"] != "/health"),
        "a successful probe is not logged"
    );

    // The audit trail: one line per database tool call, joined to its request by id.
    let audit = logged.audit();
    assert_eq!(audit.len(), 3, "{audit:#?}");
    let query_audit = audit.iter().find(|l| l["http.request.id"] == "req-query").unwrap();
    assert_eq!(query_audit["user.name"], "test-client");
    assert_eq!(query_audit["gen_ai.tool.name"], "query_database");
    assert_eq!(query_audit["db.system.name"], "postgresql");
    assert_eq!(
        query_audit["db.query.text"],
        "SELECT id FROM people WHERE email <> $1 ORDER BY id"
    );
    assert_eq!(query_audit["db.response.returned_rows"], 2);
    assert!(query_audit["pgmcp.db.response.bytes"].as_u64().unwrap() > 10);
    assert!(query_audit["db.client.operation.duration"].as_f64().unwrap() > 0.0);
    assert_eq!(query_audit["pgmcp.outcome"], "ok");
    let failed_audit = audit.iter().find(|l| l["http.request.id"] == "req-bad-sql").unwrap();
    assert_eq!(failed_audit["db.response.status_code"], "42P01");
    assert_eq!(failed_audit["error.type"], "sql_rejected");
    let schema_audit = audit.iter().find(|l| l["http.request.id"] == "req-schema").unwrap();
    assert_eq!(schema_audit["user.name"], "alice");
    assert!(schema_audit["db.query.text"].is_null());

    // Nothing secret, at debug, in any line.
    assert!(
        logged.lines.iter().any(|l| l["log.level"] == "debug"),
        "debug lines were written"
    );
    let session_or_token = [
        fixture.token.as_str(),
        "pgmcp_wrong-token-7f3a9c",
        PASSWORD,
        DB_PASSWORD,
        SQL_LITERAL,
    ];
    for secret in session_or_token {
        assert!(!logged.text.contains(secret), "a secret reached the log: {secret}");
    }
    assert!(!logged.text.contains("pgmcs_"), "a session token reached the log");
    assert!(!logged.text.contains("$2b$"), "a password hash reached the log");
}

#[tokio::test]
async fn full_statements_are_logged_only_when_configured() {
    let cluster = PgCluster::start();
    seed(&cluster).await;
    let fixture = Fixture::new();
    let token = fixture.token.clone();
    let logged = serve_and_log(
        &fixture,
        &cluster,
        "\"warn,postgres_mcp::server=info\"",
        "  access:\n    mode: off\n  audit:\n    statement: full\n",
        async |base| {
            let sql = format!("SELECT id FROM people WHERE email <> '{SQL_LITERAL}'");
            let ok = post(
                base,
                Some(&token),
                "req-full",
                call(1, "query_database", json!({"sql": sql})),
            )
            .await;
            assert_eq!(ok.status(), 200);
            let unparsable = post(
                base,
                Some(&token),
                "req-unparsable",
                call(2, "query_database", json!({"sql": "SELEC 'x"})),
            )
            .await;
            assert_eq!(unparsable.status(), 200);
        },
    )
    .await;
    assert!(logged.access().is_empty(), "log.access.mode: off");
    let audit = logged.audit();
    assert_eq!(audit.len(), 2, "the audit trail survives log.level: warn: {audit:#?}");
    assert!(audit[0]["db.query.text"].as_str().unwrap().contains(SQL_LITERAL));
    assert_eq!(audit[1]["error.type"], "statement_refused");
}

#[tokio::test]
async fn a_statement_postgres_cannot_parse_is_logged_by_length_only() {
    let cluster = PgCluster::start();
    let fixture = Fixture::new();
    let token = fixture.token.clone();
    let garbage = format!("SELEC '{SQL_LITERAL}");
    let logged = serve_and_log(&fixture, &cluster, "info", "", async |base| {
        let response = post(
            base,
            Some(&token),
            "req-garbage",
            call(1, "query_database", json!({"sql": garbage.clone()})),
        )
        .await;
        assert_eq!(response.status(), 200);
    })
    .await;
    let audit = logged.audit();
    assert_eq!(audit.len(), 1);
    assert!(audit[0]["db.query.text"].is_null());
    assert_eq!(audit[0]["pgmcp.db.query.unparsable_bytes"], garbage.len());
    assert!(!logged.text.contains(SQL_LITERAL));
}

#[test]
fn config_check_masks_the_database_password_in_every_url_form() {
    let fixture = Fixture::new();
    for url in [
        format!("postgres://mcp:{DB_PASSWORD}@db.internal:5432/app"),
        format!("postgres://db.internal/app?user=mcp&password={DB_PASSWORD}"),
        format!("host=db.internal user=mcp password={DB_PASSWORD} dbname=app"),
        format!("postgres://db.internal/app?user=mcp&PASSWORD={DB_PASSWORD}"),
        format!("postgres://mcp@db.internal/app?options=-c%20password%3D{DB_PASSWORD}"),
        format!("host=db.internal user=mcp PASSWORD={DB_PASSWORD}"),
    ] {
        fixture.config("mcp-check", &format!("database:\n  url: \"{url}\"\n"));
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_postgres-mcp"))
            .env_clear()
            .args(["config", "check", "--config"])
            .arg(fixture.path("mcp-check.yaml"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("url"), "{text}");
        assert!(
            !text.contains(DB_PASSWORD),
            "config check printed the password of {url}: {text}"
        );
    }
}
