//! Hostile and malformed protocol input (issue #13 §A.1, 2, 5, 6, 7), each kind as a table against a
//! real server on loopback: request ids of every JSON type, unsupported versions on every message
//! kind, methods removed per revision, invalid tool arguments per tool and revision, and every
//! route with every method it lacks.

mod common;

use common::*;
use postgres_mcp::server::RunningServer;
use serde_json::{Value, json};

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The revisions a client can speak, as the request shows them: `None` is no version header at all
/// (2025-03-26 by the compatibility rule).
const REVISIONS: [Option<&str>; 4] = [None, Some("2025-06-18"), Some("2025-11-25"), Some("2026-07-28")];

/// `body` as a client speaking `revision` sends it: the version header, and for 2026-07-28 the
/// `_meta` fields and the `Mcp-Method` / `Mcp-Name` headers.
async fn send(server: &RunningServer, token: &str, revision: Option<&str>, mut body: Value) -> reqwest::Response {
    let mut request = client()
        .post(url(server, "/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream");
    if let Some(version) = revision {
        request = request.header("mcp-protocol-version", version);
    }
    if revision == Some("2026-07-28") {
        let method = body["method"].as_str().unwrap_or_default().to_string();
        request = request.header("mcp-method", &method);
        if let Some(name) = body["params"]["name"].as_str() {
            request = request.header("mcp-name", name);
        }
        if body["params"].is_null() {
            body["params"] = json!({});
        }
        if body["params"].is_object() {
            body["params"]["_meta"] = json!({META_VERSION: "2026-07-28", META_CAPABILITIES: {}});
        }
    }
    request.json(&body).send().await.unwrap()
}

/// Status and JSON body of a response.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn initialize_params(version: &str) -> Value {
    json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}})
}

#[tokio::test]
async fn a_present_id_that_is_not_a_string_or_integer_is_refused_for_every_method() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let methods = [
        ("tools/list", json!({})),
        (
            "tools/call",
            json!({"name": "search_knowledgebase", "arguments": {"query": "vacuum"}}),
        ),
        ("ping", json!({})),
        ("initialize", initialize_params("2025-11-25")),
        ("server/discover", json!({})),
        ("notifications/initialized", json!({})),
        ("no/such/method", json!({})),
    ];
    let ids = [
        ("null", "null"),
        ("true", "a boolean"),
        ("false", "a boolean"),
        ("1.5", "a number that is not a 64-bit integer"),
        ("2.0", "a number that is not a 64-bit integer"),
        ("18446744073709551616", "a number that is not a 64-bit integer"),
        ("[1]", "an array"),
        ("{\"id\":1}", "an object"),
    ];
    for (method, params) in &methods {
        for (id, named) in ids {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
            let response = client()
                .post(url(&server, "/mcp"))
                .bearer_auth(&fixture.token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let (status, answer) = answer(response).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["error"]["code"], -32600, "{body}");
            assert_eq!(answer["id"], Value::Null, "an invalid id is never echoed: {body}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("`id` must be a string or an integer")
                    && message.ends_with(&format!("got {named}")),
                "{body}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn string_and_integer_ids_are_echoed_and_a_missing_id_is_a_notification() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for id in [
        json!("abc"),
        json!(""),
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!(u64::MAX),
    ] {
        let (status, body) = answer(
            rpc(
                &server,
                Some(&fixture.token),
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{id}");
        assert_eq!(body["id"], id);
        assert!(body["result"]["tools"].is_array(), "{body}");
    }
    for method in ["notifications/initialized", "notifications/cancelled", "tools/list"] {
        let response = rpc(
            &server,
            Some(&fixture.token),
            json!({"jsonrpc": "2.0", "method": method}),
        )
        .await;
        assert_eq!(response.status(), 202, "{method}");
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn an_unsupported_version_is_400_whatever_the_message_kind() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let messages = [
        (
            "notification",
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ),
        ("result response", json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
        (
            "error response",
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "no"}}),
        ),
        ("request", json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
    ];
    for (kind, message) in &messages {
        for version in ["1999-01-01", "2025-03-26", "2024-11-05", "latest"] {
            let response = client()
                .post(url(&server, "/mcp"))
                .bearer_auth(&fixture.token)
                .header("mcp-protocol-version", version)
                .json(message)
                .send()
                .await
                .unwrap();
            let (status, body) = answer(response).await;
            assert_eq!(status, 400, "{kind} with {version}: {body}");
            assert_eq!(body["error"]["code"], -32022, "{kind} with {version}");
            assert!(
                body["error"]["message"].as_str().unwrap().starts_with(&format!(
                    "unsupported protocol version {version}; supported: 2025-06-18"
                )),
                "{body}"
            );
        }
        // A served version is accepted.
        let response = client()
            .post(url(&server, "/mcp"))
            .bearer_auth(&fixture.token)
            .header("mcp-protocol-version", "2025-06-18")
            .json(message)
            .send()
            .await
            .unwrap();
        assert!([200, 202].contains(&response.status().as_u16()), "{kind}");
    }
    // A notification's `_meta` must agree with its header, as a request's must.
    let response = client()
        .post(url(&server, "/mcp"))
        .bearer_auth(&fixture.token)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized", "params": {"_meta": {META_VERSION: "1999-01-01"}}}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!((status, body["error"]["code"].clone()), (400, json!(-32020)), "{body}");
}

#[tokio::test]
async fn initialize_and_ping_are_removed_methods_in_2026_07_28_only() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    // (revision, method, params, HTTP status, JSON-RPC error code or None for a result)
    let cases = [
        (
            Some("2026-07-28"),
            "initialize",
            initialize_params("2026-07-28"),
            404,
            Some(-32601),
        ),
        (Some("2026-07-28"), "ping", json!({}), 404, Some(-32601)),
        (
            Some("2026-07-28"),
            "logging/setLevel",
            json!({"level": "info"}),
            404,
            Some(-32601),
        ),
        (Some("2026-07-28"), "server/discover", json!({}), 200, None),
        (Some("2025-11-25"), "ping", json!({}), 200, None),
        (Some("2025-06-18"), "ping", json!({}), 200, None),
        (None, "ping", json!({}), 200, None),
        (
            Some("2025-11-25"),
            "initialize",
            initialize_params("2025-11-25"),
            200,
            None,
        ),
        (
            Some("2025-06-18"),
            "initialize",
            initialize_params("2025-06-18"),
            200,
            None,
        ),
        (None, "initialize", initialize_params("2026-07-28"), 200, None),
        (
            Some("2025-11-25"),
            "logging/setLevel",
            json!({"level": "info"}),
            200,
            Some(-32601),
        ),
        // server/discover is new in 2026-07-28: a request naming an earlier revision asks for a
        // method that revision lacks (a fresh review saw -32602 for its missing _meta).
        (Some("2025-11-25"), "server/discover", json!({}), 200, Some(-32601)),
        (Some("2025-06-18"), "server/discover", json!({}), 200, Some(-32601)),
    ];
    for (revision, method, params, status, code) in cases {
        let request = json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params});
        let (got, body) = answer(send(&server, &fixture.token, revision, request).await).await;
        assert_eq!(got, status, "{method} in {revision:?}: {body}");
        match code {
            Some(code) => {
                assert_eq!(body["error"]["code"], code, "{method} in {revision:?}");
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains(&format!("`{method}`")), "{message}");
                match method {
                    "logging/setLevel" => {}
                    "server/discover" => assert!(message.contains("does not exist in MCP 2025-"), "{message}"),
                    _ => assert!(message.contains("removed in MCP 2026-07-28"), "{message}"),
                }
            }
            None => assert!(body["result"].is_object(), "{method} in {revision:?}: {body}"),
        }
    }
}

/// This server lists everything in one page and never issues a cursor, so a request that brings
/// one gets -32602 in every revision (the specification's pagination page), not the first page
/// again (which a client paging through would take as more items).
#[tokio::test]
async fn a_list_cursor_the_server_never_issued_is_invalid_params() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for revision in REVISIONS {
        for cursor in [json!("abc"), json!(""), json!(7)] {
            let request = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"cursor": cursor}});
            let (status, body) = answer(send(&server, &fixture.token, revision, request).await).await;
            assert_eq!(status, 200, "{cursor} in {revision:?}: {body}");
            assert_eq!(body["error"]["code"], -32602, "{cursor} in {revision:?}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("invalid cursor"), "{message}");
        }
        let request = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}});
        let (_, body) = answer(send(&server, &fixture.token, revision, request).await).await;
        assert!(body["result"]["tools"].is_array(), "{revision:?}: {body}");
    }
}

/// A server offering every tool: the Postgres tools are registered against a database that is not
/// there, which argument checks never reach.
async fn all_tools(fixture: &Fixture) -> RunningServer {
    fixture
        .start_with(
            "mcp-a",
            "database:\n  url: postgres://mcp@127.0.0.1:1/db?sslmode=disable\n",
        )
        .await
}

#[tokio::test]
async fn invalid_arguments_name_field_and_rule_as_a_tool_error_from_2025_11_25_and_as_32602_before() {
    let fixture = Fixture::new();
    let server = all_tools(&fixture).await;
    let range = "expected an integer from 1 to 50";
    // (tool, arguments, what the message must say)
    let cases = [
        (
            "search_knowledgebase",
            json!({"query": "x", "products": "PostgreSQL"}),
            "`products`: invalid type: string \"PostgreSQL\", expected a sequence".to_string(),
        ),
        (
            "search_knowledgebase",
            json!({"query": 42}),
            "`query`: invalid type: integer `42`, expected a string".into(),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "limit": -1}),
            format!("`limit`: invalid value: integer `-1`, {range}"),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "limit": 0}),
            format!("`limit`: invalid value: integer `0`, {range}"),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "limit": 51}),
            format!("`limit`: invalid value: integer `51`, {range}"),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "limit": 5.5}),
            format!("`limit`: invalid type: floating point `5.5`, {range}"),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "limit": 51.0}),
            format!("`limit`: invalid value: floating point `51.0`, {range}"),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "limit": "five"}),
            format!("`limit`: invalid type: string \"five\", {range}"),
        ),
        (
            "search_knowledgebase",
            json!({"query": "x", "filter": "y"}),
            "unknown field `filter`, expected one of `query`, `limit`, `products`, `versions`, `source_prefix`, `all_sections`, `list_sources`".into(),
        ),
        ("query_database", json!({}), "missing field `sql`".into()),
        (
            "query_database",
            json!({"sql": ["SELECT 1"]}),
            "`sql`: invalid type: sequence, expected a string".into(),
        ),
        (
            "query_database",
            json!({"sql": "SELECT 1", "limit": 0}),
            "`limit`: invalid value: integer `0`, expected an integer of at least 1".into(),
        ),
        (
            "query_database",
            json!({"sql": "SELECT 1", "limit": 2.5}),
            "`limit`: invalid type: floating point `2.5`, expected an integer of at least 1".into(),
        ),
        (
            "query_database",
            json!({"sql": "SELECT 1", "limit": 0.0}),
            "`limit`: invalid value: floating point `0.0`, expected an integer of at least 1".into(),
        ),
        (
            "query_database",
            json!({"sql": "SELECT 1", "timeout": 5}),
            "unknown field `timeout`, expected `sql` or `limit`".into(),
        ),
        (
            "get_schema_info",
            json!({"schema": 5}),
            "`schema`: invalid type: integer `5`, expected a string".into(),
        ),
        (
            "get_schema_info",
            json!({"table": {"name": "t"}}),
            "`table`: invalid type: map, expected a string".into(),
        ),
        (
            "get_schema_info",
            json!({"tables": "t"}),
            "unknown field `tables`, expected `schema` or `table`".into(),
        ),
    ];
    for revision in REVISIONS {
        let as_tool_result = matches!(revision, Some("2025-11-25" | "2026-07-28"));
        for (tool, arguments, rule) in &cases {
            let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
            let (status, body) = answer(send(&server, &fixture.token, revision, call).await).await;
            assert_eq!(status, 200, "{tool} {arguments} in {revision:?}: {body}");
            let message = if as_tool_result {
                assert_eq!(
                    body["result"]["isError"], true,
                    "{tool} {arguments} in {revision:?}: {body}"
                );
                body["result"]["content"][0]["text"].as_str().unwrap().to_string()
            } else {
                assert_eq!(
                    body["error"]["code"], -32602,
                    "{tool} {arguments} in {revision:?}: {body}"
                );
                body["error"]["message"].as_str().unwrap().to_string()
            };
            assert!(message.contains(rule), "{tool} {arguments} in {revision:?}: {message}");
            assert!(
                message.starts_with(&format!("invalid arguments for `{tool}`: ")),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn unknown_tools_and_malformed_call_params_stay_32602_in_every_revision() {
    let fixture = Fixture::new();
    let server = all_tools(&fixture).await;
    // (params, what the message must say); the objects also go through 2026-07-28.
    let objects = [
        (
            json!({"name": "no_such_tool", "arguments": {}}),
            "unknown tool `no_such_tool`",
        ),
        (json!({"arguments": {"query": "x"}}), "missing field `name`"),
        (json!({}), "missing field `name`"),
        (json!({"name": 7}), "invalid tools/call params"),
        (
            json!({"name": "search_knowledgebase", "arguments": "query=x"}),
            "invalid tools/call params",
        ),
        (
            json!({"name": "search_knowledgebase", "arguments": [1]}),
            "invalid tools/call params",
        ),
    ];
    // Params that are not an object are the envelope's rule (-32600, HTTP 400): see
    // `params_present_but_not_an_object_are_400_32600_for_every_method_and_message_kind`.
    for revision in REVISIONS {
        for (params, rule) in &objects {
            let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params});
            let (status, body) = answer(send(&server, &fixture.token, revision, call).await).await;
            assert_eq!(status, 200, "{params} in {revision:?}: {body}");
            assert_eq!(body["error"]["code"], -32602, "{params} in {revision:?}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(rule), "{params} in {revision:?}: {message}");
        }
    }
}

/// POSTs `body` as it is, with the token and `headers`.
async fn post_raw(server: &RunningServer, token: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut request = client()
        .post(url(server, "/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.body(body.to_string()).send().await.unwrap()).await
}

#[tokio::test]
async fn a_message_with_a_method_and_a_result_or_error_is_400_32600_not_answered() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let rule = "a message is a request or notification (`method`) or a response (`result`/`error`), never both";
    // (body, the id the refusal echoes)
    let cases = [
        (r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#, json!(1)),
        (
            r#"{"jsonrpc":"2.0","id":"e","method":"ping","error":{"code":-1,"message":"m"}}"#,
            json!("e"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","result":null}"#,
            json!(2),
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_knowledgebase","arguments":{"query":"x"}},"result":{}}"#,
            json!(3),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","result":{}}"#,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"ping","result":{}}"#,
            Value::Null,
        ),
    ];
    for (body, id) in cases {
        let (status, answer) = post_raw(&server, &fixture.token, &[], body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], -32600, "{body}");
        assert_eq!(answer["error"]["message"], rule, "{body}");
        assert_eq!(answer["id"], id, "{body}");
    }
}

#[tokio::test]
async fn params_present_but_not_an_object_are_400_32600_for_every_method_and_message_kind() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let params = [
        ("[]", "an array"),
        ("[\"search_knowledgebase\",{}]", "an array"),
        ("1", "a number"),
        ("\"search_knowledgebase\"", "a string"),
        ("false", "a boolean"),
        ("null", "null"),
    ];
    let methods = [
        ("tools/list", ",\"id\":1"),
        ("tools/call", ",\"id\":1"),
        ("ping", ",\"id\":\"p\""),
        ("initialize", ",\"id\":1"),
        ("server/discover", ",\"id\":1"),
        ("no/such/method", ",\"id\":1"),
        ("notifications/initialized", ""),
    ];
    for revision in REVISIONS {
        let headers: Vec<(&str, &str)> = revision.map(|v| ("mcp-protocol-version", v)).into_iter().collect();
        for (method, id) in methods {
            for (value, named) in params {
                let body = format!(r#"{{"jsonrpc":"2.0"{id},"method":"{method}","params":{value}}}"#);
                let (status, answer) = post_raw(&server, &fixture.token, &headers, &body).await;
                assert_eq!(status, 400, "{body} in {revision:?}: {answer}");
                assert_eq!(answer["error"]["code"], -32600, "{body} in {revision:?}");
                let message = answer["error"]["message"].as_str().unwrap();
                assert_eq!(
                    message,
                    format!(
                        "`params` must be an object when present (MCP narrows JSON-RPC 2.0's structured params to objects; omit it for none); got {named}"
                    ),
                    "{body} in {revision:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_empty_version_header_is_400_32022_not_the_absent_default() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let rule = "unsupported protocol version (empty MCP-Protocol-Version header; omit the header for 2025-03-26); supported: 2025-06-18, 2025-11-25, 2026-07-28";
    let bodies = [
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    ];
    for value in ["", " ", "\t"] {
        for body in bodies {
            let (status, answer) = post_raw(&server, &fixture.token, &[("mcp-protocol-version", value)], body).await;
            assert_eq!(status, 400, "{value:?} {body}: {answer}");
            assert_eq!(answer["error"]["code"], -32022, "{value:?} {body}");
            assert_eq!(answer["error"]["message"], rule, "{value:?} {body}");
        }
    }
    // Without the header the same ping is 2025-03-26, and answered.
    let (status, answer) = post_raw(&server, &fixture.token, &[], bodies[0]).await;
    assert_eq!((status, answer["result"].clone()), (200, json!({})));
}

#[tokio::test]
async fn meta_version_and_capabilities_of_the_wrong_type_are_400_naming_the_field() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let version_rule = format!(
        "request _meta `{META_VERSION}` must be a string naming a served revision (2025-06-18, 2025-11-25, 2026-07-28); got"
    );
    let capabilities_rule = format!(
        "request _meta `{META_CAPABILITIES}` must be an object (the client's capabilities; `{{}}` for none); got"
    );
    let cases = [
        (
            json!({META_VERSION: 20260728, META_CAPABILITIES: {}}),
            &version_rule,
            "a number",
        ),
        (
            json!({META_VERSION: null, META_CAPABILITIES: {}}),
            &version_rule,
            "null",
        ),
        (
            json!({META_VERSION: {"version": "2026-07-28"}, META_CAPABILITIES: {}}),
            &version_rule,
            "an object",
        ),
        (
            json!({META_VERSION: "2026-07-28", META_CAPABILITIES: null}),
            &capabilities_rule,
            "null",
        ),
        (
            json!({META_VERSION: "2026-07-28", META_CAPABILITIES: true}),
            &capabilities_rule,
            "a boolean",
        ),
        (
            json!({META_VERSION: "2026-07-28", META_CAPABILITIES: ["tools"]}),
            &capabilities_rule,
            "an array",
        ),
    ];
    for method in ["tools/list", "server/discover"] {
        for (meta, rule, got) in &cases {
            let body = json!({"jsonrpc": "2.0", "id": 8, "method": method, "params": {"_meta": meta}}).to_string();
            let headers = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", method)];
            let (status, answer) = post_raw(&server, &fixture.token, &headers, &body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["error"]["code"], -32602, "{body}");
            assert_eq!(answer["error"]["message"], format!("{rule} {got}"), "{body}");
            assert_eq!(answer["id"], 8, "{body}");
        }
    }
}

#[tokio::test]
async fn an_integral_limit_spelled_as_a_float_is_an_integer() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    for revision in REVISIONS {
        for limit in [json!(5.0), json!(1.0), json!(50.0)] {
            let call = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "search_knowledgebase", "arguments": {"query": "vacuum", "limit": limit}}});
            let (status, body) = answer(send(&server, &fixture.token, revision, call).await).await;
            assert_eq!(status, 200, "{limit} in {revision:?}: {body}");
            assert!(body["error"].is_null(), "{limit} in {revision:?}: {body}");
            assert_ne!(body["result"]["isError"], true, "{limit} in {revision:?}: {body}");
        }
    }
}

#[tokio::test]
async fn every_route_answers_a_method_it_lacks_with_405_allow_and_the_json_body() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    use reqwest::Method;
    let routes: [(&str, &str, &[Method]); 6] = [
        (
            "/mcp",
            "POST",
            &[Method::GET, Method::DELETE, Method::PUT, Method::PATCH, Method::OPTIONS],
        ),
        (
            "/mcp/v1",
            "POST",
            &[Method::GET, Method::DELETE, Method::PUT, Method::PATCH],
        ),
        (
            "/api/login",
            "POST",
            &[Method::GET, Method::DELETE, Method::PUT, Method::PATCH],
        ),
        (
            "/health",
            "GET, HEAD",
            &[Method::POST, Method::DELETE, Method::PUT, Method::PATCH],
        ),
        (
            "/health/details",
            "GET, HEAD",
            &[Method::POST, Method::DELETE, Method::PUT, Method::PATCH],
        ),
        (
            "/metrics",
            "GET, HEAD",
            &[Method::POST, Method::DELETE, Method::PUT, Method::PATCH],
        ),
    ];
    for (path, allow, methods) in routes {
        for method in methods {
            let response = client()
                .request(method.clone(), url(&server, path))
                .bearer_auth(&fixture.token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.headers().get("allow").map(|v| v.to_str().unwrap()),
                Some(allow),
                "{method} {path}"
            );
            assert_http_error(response, 405, "method_not_allowed", &format!("{method} {path}")).await;
        }
    }
    // HEAD is the GET of a GET route.
    let head = client().head(url(&server, "/health")).send().await.unwrap();
    assert_eq!(head.status(), 200);
}

/// What the README says of browsers: no CORS headers and no preflight answer. A preflight carries
/// no credential, so an allowed Origin gets the auth gate's 401, a foreign one 403, and with a
/// token the route's 405 — none with an `Access-Control-*` header.
#[tokio::test]
async fn a_cors_preflight_gets_no_cors_headers_only_the_usual_refusals() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let same_origin = format!("http://{}", server.addr);
    let cases = [
        (same_origin.as_str(), None, 401),
        ("https://app.example.com", None, 403),
        (same_origin.as_str(), Some(fixture.token.as_str()), 405),
    ];
    for (origin, token, status) in cases {
        let mut request = client()
            .request(reqwest::Method::OPTIONS, url(&server, "/mcp"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{origin} {token:?}");
        let cors: Vec<_> = response
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{origin}: {cors:?}");
    }
}

#[tokio::test]
async fn every_http_error_the_readme_lists_has_the_json_body() {
    let fixture = Fixture::new();
    let server = fixture
        .start_with(
            "mcp-a",
            "http:\n  max_body: 1KiB\n  allowed_origins: [\"https://app.example.com\"]\n",
        )
        .await;
    let post = |path: &str| client().post(url(&server, path)).bearer_auth(&fixture.token);
    let cases = [
        (
            "401",
            client().post(url(&server, "/mcp")).json(&search_call(1, "x")),
            401,
            "invalid_request",
        ),
        (
            "403 origin",
            post("/mcp")
                .header("origin", "https://evil.example")
                .json(&search_call(1, "x")),
            403,
            "origin_not_allowed",
        ),
        ("404 path", post("/nope").json(&search_call(1, "x")), 404, "not_found"),
        ("404 sub-path", client().get(url(&server, "/mcp/v2")), 404, "not_found"),
        (
            "406",
            post("/mcp").header("accept", "text/html").json(&search_call(1, "x")),
            406,
            "not_acceptable",
        ),
        (
            "413",
            post("/mcp").json(&search_call(1, &"x".repeat(2048))),
            413,
            "payload_too_large",
        ),
        (
            "415",
            post("/mcp").header("content-type", "text/plain").body("{}"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (name, request, status, code) in cases {
        assert_http_error(request.send().await.unwrap(), status, code, name).await;
    }
}

/// An HTTP-level refusal with the project's JSON body: `{"error": code, "message": non-empty}`.
async fn assert_http_error(response: reqwest::Response, status: u16, code: &str, context: &str) {
    assert_eq!(response.status(), status, "{context}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8",
        "{context}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{context}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: {body}"
    );
}
