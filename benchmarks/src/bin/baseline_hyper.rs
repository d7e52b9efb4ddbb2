//! The ceiling: bare hyper answering our server's exact response bytes, with nothing in between.
//!
//! `baseline-hyper --listen ADDR --token-file F --health F --mcp F --ping F`
//!
//! The runner captures what our server answers to `GET /health`, to the benchmark's `tools/call` and
//! to `ping`, and this server replays those bytes (with the same Content-Type) after one bearer check:
//! a constant-time compare against a single token. Whatever our server spends beyond this is the
//! cost of routing, middleware, JSON-RPC handling and the tool itself, so the ratio ours/baseline says
//! how close to the HTTP stack's limit we are. `POST /mcp` reads the whole body (as any server must)
//! and picks the ping answer when the body is a ping; everything else gets the tools/call bytes.

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use subtle::ConstantTimeEq;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    /// A file holding the one accepted bearer token.
    #[arg(long)]
    token_file: PathBuf,
    /// Body to answer `GET /health` with.
    #[arg(long)]
    health: PathBuf,
    /// Body to answer `POST /mcp` with (the captured tools/call response).
    #[arg(long)]
    mcp: PathBuf,
    /// Body to answer a `ping` on `POST /mcp` with.
    #[arg(long)]
    ping: PathBuf,
}

/// The fixed answers, read once.
struct Answers {
    authorization: Vec<u8>,
    health: Bytes,
    mcp: Bytes,
    ping: Bytes,
}

fn respond(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("static response parts are valid")
}

fn is_ping(body: &[u8]) -> bool {
    const NEEDLE: &[u8] = br#""method":"ping""#;
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

async fn handle(answers: Arc<Answers>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => respond(StatusCode::OK, answers.health.clone()),
        (&Method::POST, "/mcp") => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !bool::from(presented.ct_eq(&answers.authorization)) {
                return Ok(respond(
                    StatusCode::UNAUTHORIZED,
                    Bytes::from_static(b"{\"error\":\"unauthorized\"}"),
                ));
            }
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, Bytes::new())),
            };
            if is_ping(&body) {
                respond(StatusCode::OK, answers.ping.clone())
            } else {
                respond(StatusCode::OK, answers.mcp.clone())
            }
        }
        _ => respond(StatusCode::NOT_FOUND, Bytes::new()),
    };
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let token = String::from_utf8(read(&args.token_file)?).context("token file is not UTF-8")?;
    let answers = Arc::new(Answers {
        authorization: format!("Bearer {}", token.trim()).into_bytes(),
        health: read(&args.health)?.into(),
        mcp: read(&args.mcp)?.into(),
        ping: read(&args.ping)?.into(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        let answers = answers.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(answers.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
