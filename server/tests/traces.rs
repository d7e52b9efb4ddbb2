//! Issue #14, traces: a request's W3C `traceparent` reaches its log lines and the spans exported to
//! an OTLP/HTTP collector (an in-test one, decoding the protobuf the server POSTs), with the span
//! tree request -> auth, MCP method -> tool -> kb.search or the PostgreSQL span; an MCP
//! `_meta.traceparent` parents the MCP span. (Its own test binary: the logger and the span exporter
//! are process-global.)

mod common;
mod otlp_collector;
mod pg_cluster;

use common::*;
use otlp_collector::{Collector, Exported};
use postgres_mcp::{config::LogFormat, telemetry, trace_export};
use serde_json::{Value, json};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const META_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const META_PARENT_ID: &str = "b7ad6b7169203331";

fn named<'a>(spans: &'a [Exported], name: &str) -> &'a Exported {
    spans.iter().find(|s| s.span.name == name).unwrap_or_else(|| {
        panic!(
            "no span `{name}` among {:?}",
            spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_reaches_the_log_lines_and_the_exported_span_tree() {
    let collector = Collector::start().await;
    let cluster = pg_cluster::PgCluster::start();
    let fixture = Fixture::new();
    let log_dir = fixture.path("logs");
    let mut config = fixture.config(
        "mcp-trace",
        &format!(
            "log:\n  format: json\n  level: info\n  file:\n    dir: {}\ntrace:\n  otlp_endpoint: {}\ndatabase:\n  url: \"{}\"\n",
            log_dir.display(),
            collector.endpoint(),
            cluster.url()
        ),
    );
    config.log.format = LogFormat::Json;
    let (layer, export) = trace_export::start(&config.trace, "mcp-trace").unwrap().unwrap();
    let guard = telemetry::init_with(&config.log, "mcp-trace", Some(layer)).unwrap();
    let server = postgres_mcp::server::start(config, postgres_mcp::InstanceId::resolve(Some("mcp-trace"), None))
        .await
        .unwrap();

    // 1. An HTTP traceparent; a refused credential first, so the request logs a line of its own.
    let refused = client()
        .post(url(&server, "/mcp"))
        .bearer_auth("pgmcp_not-a-token")
        .header("x-request-id", "req-trace-401")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&search_call(1, "vacuum"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let answered = client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .header("x-request-id", "req-trace-ok")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&search_call(2, "vacuum"))
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    // 2. The MCP way (SEP-414): the context in params._meta, no header.
    let mut meta_call = search_call(3, "replication");
    meta_call["params"]["_meta"] = json!({"traceparent": format!("00-{META_TRACE_ID}-{META_PARENT_ID}-01")});
    let answered = client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .header("x-request-id", "req-trace-meta")
        .json(&meta_call)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    // 3. An unknown tool: the MCP span says why it failed.
    let unknown =
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}});
    let answered = client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .header("x-request-id", "req-trace-unknown")
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);

    // 4. A database call with a literal that must not be exported.
    let query = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "query_database",
        "arguments": {"sql": "SELECT 'alice@example.com' AS email, 42 AS answer"}}});
    let answered = client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.json::<Value>().await.unwrap()["result"]["isError"], false);

    // 5. A database call PostgreSQL refuses: a tool error, on the tool and database spans.
    let failing = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "query_database",
        "arguments": {"sql": "SELECT 1 / 0 AS boom"}}});
    let answered = client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .json(&failing)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.json::<Value>().await.unwrap()["result"]["isError"], true);

    server.stop().await.unwrap();
    export.shutdown().await;
    drop(guard);

    let posts = collector.posts();
    assert!(!posts.is_empty(), "nothing was exported");
    assert!(
        posts.iter().all(|p| p == "/v1/traces application/x-protobuf"),
        "{posts:?}"
    );
    let spans = collector.spans();
    println!("exported {} spans in {} POSTs", spans.len(), posts.len());

    // The server span of request 2 is a child of the caller's span, in the caller's trace.
    let in_trace: Vec<Exported> = spans.iter().filter(|s| s.trace_id() == TRACE_ID).cloned().collect();
    let request = in_trace
        .iter()
        .find(|s| s.span.name == "POST /mcp" && s.attribute("http.request.id").as_deref() == Some("req-trace-ok"))
        .expect("the request span of req-trace-ok");
    assert_eq!(request.parent_span_id(), PARENT_ID);
    assert_eq!(request.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        request.resource_attribute("service.name").as_deref(),
        Some("postgres-mcp")
    );
    assert_eq!(
        request.resource_attribute("service.instance.id").as_deref(),
        Some("mcp-trace")
    );
    assert_eq!(
        request.resource_attribute("service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let children: Vec<Exported> = in_trace
        .iter()
        .filter(|s| s.parent_span_id() == request.span_id())
        .cloned()
        .collect();
    let auth = named(&children, "auth");
    assert_eq!(auth.attribute("error.type"), None);
    let mcp = named(&children, "tools/call search_knowledgebase");
    assert_eq!(mcp.attribute("mcp.method.name").as_deref(), Some("tools/call"));
    assert_eq!(
        mcp.attribute("gen_ai.tool.name").as_deref(),
        Some("search_knowledgebase")
    );
    assert_eq!(mcp.attribute("gen_ai.operation.name").as_deref(), Some("execute_tool"));
    assert_eq!(mcp.attribute("jsonrpc.request.id").as_deref(), Some("2"));
    assert_eq!(mcp.span.kind, 2, "SPAN_KIND_SERVER");
    let tool = in_trace
        .iter()
        .find(|s| s.parent_span_id() == mcp.span_id())
        .expect("a tool span under the MCP span");
    assert_eq!(tool.span.name, "execute_tool search_knowledgebase");
    let search = in_trace
        .iter()
        .find(|s| s.parent_span_id() == tool.span_id())
        .expect("a kb.search span under the tool span");
    assert_eq!(search.span.name, "kb.search");
    assert_eq!(search.attribute("db.system.name").as_deref(), Some("sqlite"));

    // The refused request: its auth span says why.
    let refused_request = in_trace
        .iter()
        .find(|s| s.attribute("http.request.id").as_deref() == Some("req-trace-401"))
        .expect("the request span of req-trace-401");
    let refused_auth = in_trace
        .iter()
        .find(|s| s.parent_span_id() == refused_request.span_id() && s.span.name == "auth")
        .expect("its auth span");
    assert!(
        refused_auth.attribute("error.type").is_some(),
        "{:?}",
        refused_auth.span.attributes
    );

    // _meta: the MCP span joins the client's trace; the HTTP span has a trace of its own.
    let meta_mcp = spans
        .iter()
        .find(|s| s.trace_id() == META_TRACE_ID && s.span.name == "tools/call search_knowledgebase")
        .expect("the MCP span in the _meta trace");
    assert_eq!(meta_mcp.parent_span_id(), META_PARENT_ID);
    let meta_tool = spans
        .iter()
        .find(|s| s.parent_span_id() == meta_mcp.span_id())
        .expect("the tool span follows the MCP span into the _meta trace");
    assert_eq!(meta_tool.trace_id(), META_TRACE_ID);

    // The unknown tool: JSON-RPC -32602 on the MCP span.
    let failed = spans
        .iter()
        .find(|s| s.span.name == "tools/call no_such_tool")
        .expect("the MCP span of the unknown tool");
    assert_eq!(failed.attribute("rpc.response.status_code").as_deref(), Some("-32602"));
    assert_eq!(failed.attribute("error.type").as_deref(), Some("-32602"));

    // The database call: a client span under the tool span, its text normalised.
    let db_tool = spans
        .iter()
        .find(|s| s.span.name == "execute_tool query_database")
        .expect("the query_database tool span");
    let db = spans
        .iter()
        .find(|s| s.parent_span_id() == db_tool.span_id())
        .expect("a database span under the tool span");
    assert_eq!(db.span.name, "SELECT");
    assert_eq!(db.span.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(db.attribute("db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(db.attribute("db.operation.name").as_deref(), Some("SELECT"));
    let text = db.attribute("db.query.text").expect("db.query.text");
    assert!(
        text.contains("$1") && !text.contains("alice") && !text.contains("42"),
        "{text}"
    );
    assert_eq!(db.attribute("error.type"), None);
    assert_eq!(db_tool.attribute("error.type"), None);
    let failed_db = spans
        .iter()
        .find(|s| s.span.name == "SELECT" && s.attribute("error.type").is_some())
        .expect("the refused statement's span");
    assert_eq!(failed_db.attribute("error.type").as_deref(), Some("sql_rejected"));
    let failed_tool = spans
        .iter()
        .find(|s| s.span_id() == failed_db.parent_span_id())
        .expect("its tool span");
    assert_eq!(failed_tool.attribute("error.type").as_deref(), Some("sql_rejected"));
    drop(cluster);

    // Every line a request logged carries its request id, trace id and the request span's id.
    let files: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let refusal = lines
        .iter()
        .find(|l| l["message"] == "authentication refused")
        .expect("the refusal is logged");
    assert_eq!(refusal["http.request.id"], "req-trace-401");
    assert_eq!(refusal["trace.id"], TRACE_ID);
    assert_eq!(refusal["span.id"], refused_request.span_id());
    let in_requests: Vec<&Value> = lines.iter().filter(|l| l["http.request.id"].is_string()).collect();
    assert!(!in_requests.is_empty());
    for line in in_requests {
        let trace_id = line["trace.id"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace.id: {line}"));
        let span_id = line["span.id"].as_str().unwrap_or_else(|| panic!("no span.id: {line}"));
        assert!(trace_id.len() == 32 && span_id.len() == 16, "{line}");
    }
}
