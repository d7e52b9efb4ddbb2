//! Issue #16 §Build 2–3 over MCP: a kb.db of two products and versions, searched with and without
//! filters; `list_sources`; one hit per page unless `all_sections`; and the tool's own refusals.

mod common;

use common::*;
use postgres_mcp::kb::build::{BuildOptions, SourceTree, build_with};
use serde_json::{Value, json};

/// Two trees: `pg` as PostgreSQL 15 (HTML) and 16 (Markdown), and `app` as MyApp with a page whose
/// front matter names its own version.
fn build_kb(fixture: &Fixture) {
    let root = fixture.path("trees");
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "pg15/routine-vacuuming.html",
        "<title>25.1. Routine Vacuuming</title><h2>25.1. Routine Vacuuming</h2><p>Autovacuum removes dead tuples.</p>\
         <h3>25.1.1. Vacuum Basics</h3><p>VACUUM reclaims storage held by dead tuples.</p>\
         <h3>25.1.2. Recovering Disk Space</h3><p>VACUUM FULL rewrites the table to reclaim dead tuples space.</p>",
    );
    write(
        "pg15/sql-vacuum.html",
        "<title>VACUUM</title><h1>VACUUM</h1><p>VACUUM — garbage-collect and optionally analyze a database; dead tuples.</p>",
    );
    write(
        "pg16/routine-vacuuming.md",
        "# Routine Vacuuming\nIn 16, autovacuum removes dead tuples faster.\n",
    );
    write(
        "app/guide/vacuum.md",
        "# App vacuum\nOur app never leaves dead tuples.\n",
    );
    write(
        "app/legacy.md",
        "---\nversion: \"1.0\"\n---\n# Legacy\nThe old app left dead tuples behind.\n",
    );
    let tree = |dir: &str, product: &str, version: &str| SourceTree {
        root: root.join(dir),
        product: product.into(),
        version: version.into(),
    };
    let options = BuildOptions {
        trees: vec![
            tree("pg15", "PostgreSQL", "15"),
            tree("pg16", "PostgreSQL", "16"),
            tree("app", "MyApp", "2.0"),
        ],
        ..BuildOptions::default()
    };
    let report = build_with(&options, &fixture.path("kb.db")).unwrap();
    assert_eq!((report.sources, report.chunks), (5, 7));
}

async fn call(server: &postgres_mcp::server::RunningServer, token: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "search_knowledgebase", "arguments": arguments}});
    let response: Value = rpc(server, Some(token), body).await.json().await.unwrap();
    response["result"].clone()
}

/// (source, product, version, section) of each hit.
fn hits(result: &Value) -> Vec<(String, String, String, String)> {
    assert_ne!(result["isError"], true, "{result}");
    result["structuredContent"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let field = |name: &str| h[name].as_str().unwrap().to_string();
            (field("source"), field("product"), field("version"), field("section"))
        })
        .collect()
}

fn sources(result: &Value) -> Vec<String> {
    let mut sources: Vec<_> = hits(result).into_iter().map(|h| format!("{}@{}", h.0, h.2)).collect();
    sources.sort();
    sources
}

#[tokio::test]
async fn filters_narrow_by_product_version_and_path_and_pages_answer_once() {
    let fixture = Fixture::new();
    build_kb(&fixture);
    let server = fixture.start("mcp-kb-filters").await;
    let token = &fixture.token;

    // Every document matches; each page once, with its best section.
    let all = call(&server, token, json!({"query": "dead tuples", "limit": 50})).await;
    assert_eq!(
        sources(&all),
        [
            "guide/vacuum.md@2.0",
            "legacy.md@1.0",
            "routine-vacuuming.html@15",
            "routine-vacuuming.md@16",
            "sql-vacuum.html@15"
        ]
    );
    let text = all["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("(routine-vacuuming.html, PostgreSQL 15)"), "{text}");
    // The three sections of one page come back with all_sections.
    let sections = call(
        &server,
        token,
        json!({"query": "dead tuples", "all_sections": true, "source_prefix": "routine-vacuuming.html"}),
    )
    .await;
    let mut paths: Vec<_> = hits(&sections).into_iter().map(|h| h.3).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "Routine Vacuuming",
            "Routine Vacuuming > Recovering Disk Space",
            "Routine Vacuuming > Vacuum Basics"
        ]
    );

    for (filter, expected) in [
        (
            json!({"products": ["postgresql"]}),
            vec![
                "routine-vacuuming.html@15",
                "routine-vacuuming.md@16",
                "sql-vacuum.html@15",
            ],
        ),
        (
            json!({"products": ["PostgreSQL"], "versions": ["16"]}),
            vec!["routine-vacuuming.md@16"],
        ),
        (
            json!({"versions": ["15", "1.0"]}),
            vec!["legacy.md@1.0", "routine-vacuuming.html@15", "sql-vacuum.html@15"],
        ),
        (json!({"source_prefix": "sql-"}), vec!["sql-vacuum.html@15"]),
        (json!({"source_prefix": "guide/"}), vec!["guide/vacuum.md@2.0"]),
        (json!({"products": ["Oracle"]}), vec![]),
        (
            json!({"products": [], "versions": [], "source_prefix": ""}),
            vec![
                "guide/vacuum.md@2.0",
                "legacy.md@1.0",
                "routine-vacuuming.html@15",
                "routine-vacuuming.md@16",
                "sql-vacuum.html@15",
            ],
        ),
    ] {
        let mut arguments = filter.clone();
        arguments["query"] = json!("dead tuples");
        arguments["limit"] = json!(50);
        assert_eq!(sources(&call(&server, token, arguments).await), expected, "{filter}");
    }

    let listed = call(&server, token, json!({"list_sources": true})).await;
    assert_eq!(
        listed["structuredContent"]["sources"],
        json!([
            {"product": "MyApp", "version": "1.0", "documents": 1},
            {"product": "MyApp", "version": "2.0", "documents": 1},
            {"product": "PostgreSQL", "version": "15", "documents": 2},
            {"product": "PostgreSQL", "version": "16", "documents": 1},
        ])
    );
    assert_eq!(
        listed["content"][0]["text"],
        "MyApp 1.0: 1 documents\nMyApp 2.0: 1 documents\nPostgreSQL 15: 2 documents\nPostgreSQL 16: 1 documents"
    );

    for (arguments, message) in [
        (json!({}), "`query` is required"),
        (json!({"list_sources": false}), "`query` is required"),
        (json!({"query": "x", "list_sources": true}), "not both"),
        (
            json!({"query": "x", "products": vec!["p"; 33]}),
            "`products` names 33 values; the limit is 32",
        ),
        (
            json!({"query": "x", "source_prefix": "x".repeat(300)}),
            "`source_prefix` has a value of 300 bytes",
        ),
    ] {
        let result = call(&server, token, arguments.clone()).await;
        assert_eq!(result["isError"], true, "{arguments}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(message), "{arguments}: {text}");
    }
}
