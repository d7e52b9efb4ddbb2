//! Conformance with rmcp's own client (the Rust SDK), over streamable HTTP with a bearer token, in
//! both lifecycles it implements: the `initialize` handshake and 2026-07-28 `server/discover`.

mod common;

use common::*;
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ServiceExt,
    model::{CallToolRequestParams, ClientConfig, ProtocolVersion},
    transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig},
};
use serde_json::json;

fn transport(
    server: &postgres_mcp::server::RunningServer,
    token: &str,
) -> StreamableHttpClientTransport<reqwest::Client> {
    // rmcp builds its own reqwest client: the process needs a TLS provider first.
    postgres_mcp::tls::install_crypto_provider();
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url(server, "/mcp")).auth_header(token.to_string()),
    )
}

fn search(query: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("search_knowledgebase")
        .with_arguments(json!({"query": query, "limit": 2}).as_object().unwrap().clone())
}

#[tokio::test]
async fn rmcp_client_with_the_initialize_handshake() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-rs").await;
    let client = ().serve(transport(&server, &fixture.token)).await.expect("rmcp client initializes");
    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(info.server_info.as_ref().unwrap().name, "postgres-mcp");
    let tools = client.list_tools(None).await.unwrap();
    assert_eq!(tools.tools[0].name, "search_knowledgebase");
    let result = client.call_tool(search("CREATE INDEX CONCURRENTLY")).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(result.structured_content.unwrap()["results"][0]["source"], "indexes.md");
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rmcp_client_with_discover_and_per_request_metadata() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-rs").await;
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport(&server, &fixture.token),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("rmcp client discovers");
    let tools = client.list_tools(None).await.unwrap();
    assert_eq!(tools.tools.len(), 1);
    let result = client.call_tool(search("pg_basebackup point in time")).await.unwrap();
    assert_eq!(
        result.structured_content.unwrap()["results"][0]["source"],
        "backup-and-recovery.md"
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rmcp_client_is_refused_without_a_valid_token() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-rs").await;
    let outcome = ().serve(transport(&server, "pgmcp_wrong")).await;
    assert!(outcome.is_err(), "initialize with a bad token must fail");
    server.stop().await.unwrap();
}
