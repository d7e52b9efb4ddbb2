//! The route table and the middleware order — the whole request path on one screen.
//!
//! ```text
//! TCP -> poem -> request_context (request id, span, timeout, X-Instance-Id, metrics)
//!     -> GET  /health                       no auth, no I/O
//!     -> GET  /metrics                      Prometheus text (keep it off the public listener: nginx does)
//!     -> POST /api/login   origin/host  -> login (body limit, limiter admits, bcrypt)
//!     -> POST /mcp, /mcp/v1 origin/host -> bearer auth (credential first; only failures reach the
//!                                          limiter) -> mcp::transport (body limit)
//!        GET/DELETE /mcp -> 405 (stateless: no SSE stream, no session to delete)
//! ```

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, IntoResponse, Route, get, handler, post};

use crate::{auth, health, login, mcp, origin, request_context, state::AppState};

/// `GET /metrics`: this process's Prometheus text (also served by the `sync` sidecar).
#[handler]
pub fn metrics_text() -> impl IntoResponse {
    crate::metrics::handle()
        .render()
        .with_content_type("text/plain; version=0.0.4")
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let mcp_endpoint = || {
        post(poem::endpoint::make(mcp::transport::handle))
            .get(mcp::transport::method_not_allowed)
            .delete(mcp::transport::method_not_allowed)
            .around(auth::middleware::around)
            .around(origin::around)
    };
    Route::new()
        .at("/health", get(health::health))
        .at("/metrics", get(metrics_text))
        .at(
            "/api/login",
            post(poem::endpoint::make(login::login)).around(origin::around),
        )
        .at("/mcp", mcp_endpoint())
        .at("/mcp/v1", mcp_endpoint())
        .around(request_context::around)
        .data(state)
}
