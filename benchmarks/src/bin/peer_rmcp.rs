//! The peer: rmcp's own stateless streamable-HTTP server with one tool, as DESIGN.md measured it.
//!
//! `peer-rmcp --listen ADDR --tokens tokens.yaml --kb kb.db`
//!
//! rmcp 3.11's `StreamableHttpService` (`legacy_session_mode: false`, `json_response: true`: no
//! session, one JSON answer per POST) served by hyper-util, behind the same bearer check our server
//! runs (`TokenSet::verify`: one SHA-256 and a lookup among the sorted digests) and with
//! `search_knowledgebase` answering through the same library call ours makes
//! (`KnowledgeBase::search_async` on a kb.db opened by `KbLoader`) and formatting its result the
//! same way. Auth and the search being identical, the difference between this process and ours is
//! the MCP transport alone. `GET /health` is a small JSON answer outside rmcp, to compare the bare
//! HTTP path.

use std::{borrow::Cow, convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc, time::Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use postgres_mcp::{
    auth::tokens::TokenSet,
    kb::store::{KbLoader, KnowledgeBase},
    mcp::kb_tool::SearchArgs,
    watch::Loader,
};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::common::schema_for_input,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    /// tokens.yaml (read once; no reload).
    #[arg(long)]
    tokens: PathBuf,
    #[arg(long)]
    kb: PathBuf,
}

/// The rmcp handler: one tool over one loaded knowledge base. Cloned per request by rmcp's factory.
#[derive(Clone)]
struct KbServer {
    kb: Arc<KnowledgeBase>,
    tool: Arc<Tool>,
}

impl KbServer {
    async fn search(&self, args: SearchArgs) -> CallToolResult {
        // The range (1–50) is checked while `SearchArgs` is deserialized, as in ours.
        let limit = args.limit.map_or(5, |limit| limit.get());
        // The benchmark's calls are plain searches: no filters, no `list_sources`.
        let Some(query) = args.query else {
            return CallToolResult::error(vec![ContentBlock::text("`query` is required")]);
        };
        let hits = match self.kb.clone().search_async(query, limit as usize).await {
            Ok(hits) => hits,
            Err(error) => return CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
        };
        // Ours renders the result (`mcp/kb_tool.rs`), so both answers carry the same bytes of content.
        postgres_mcp::mcp::kb_tool::search_result(&hits)
    }
}

impl ServerHandler for KbServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("peer-rmcp", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![(*self.tool).clone()]))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == self.tool.name).then(|| (*self.tool).clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != self.tool.name {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        }
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let args: SearchArgs =
            serde_json::from_value(arguments).map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        Ok(self.search(args).await.into())
    }
}

type Body = BoxBody<Bytes, Infallible>;

struct Peer {
    tokens: TokenSet,
    mcp: StreamableHttpService<KbServer, LocalSessionManager>,
    started: Instant,
    documents: usize,
}

fn small(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("static response parts are valid")
}

async fn route(peer: Arc<Peer>, request: Request<Incoming>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => small(
            StatusCode::OK,
            json!({"status": "ok", "uptime_s": peer.started.elapsed().as_secs(), "kb": {"documents": peer.documents}})
                .to_string(),
        ),
        (_, "/mcp") => {
            let token = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let authorized = token.is_some_and(|t| peer.tokens.verify(t, chrono::Utc::now()).is_ok());
            if !authorized {
                return small(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_token"}"#.into());
            }
            peer.mcp.handle(request).await
        }
        _ => small(StatusCode::NOT_FOUND, "{}".into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text =
        std::fs::read_to_string(&args.tokens).with_context(|| format!("cannot read {}", args.tokens.display()))?;
    let tokens = TokenSet::parse(&text).map_err(anyhow::Error::msg)?;
    let loader = KbLoader {
        copy_to_local: true,
        copy_dir: std::env::temp_dir().join("peer-rmcp-kb"),
    };
    let kb = Arc::new(loader.load(&args.kb).map_err(anyhow::Error::msg)?.value);
    let documents = kb.documents;
    let schema = schema_for_input::<SearchArgs>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tool = Arc::new(Tool::new(
        Cow::Borrowed("search_knowledgebase"),
        Cow::Borrowed("Search the documentation knowledge base (full text, ranked by relevance)."),
        schema,
    ));
    let server = KbServer { kb, tool };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let mcp = StreamableHttpService::new(move || Ok(server.clone()), Arc::default(), config);
    let peer = Arc::new(Peer {
        tokens,
        mcp,
        started: Instant::now(),
        documents,
    });

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        let peer = peer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(route(peer, request).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
