//! The two discovery documents, served as JSON by every instance alike (they are derived from the
//! configuration only): protected resource metadata (RFC 9728 §3) at
//! `/.well-known/oauth-protected-resource` and its path-suffixed form for `/mcp`, and — in built-in
//! mode — authorization server metadata (RFC 8414 §3) at `/.well-known/oauth-authorization-server`.
//! Public, unauthenticated and cacheable for a while, like any other well-known document.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, web::Json};

use super::{authorization_server::AuthorizationServer, resource::ResourceServer};

/// How long clients and caches may keep a document (seconds).
const MAX_AGE_SECS: u32 = 300;

fn cacheable(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = format!("public, max-age={MAX_AGE_SECS}").parse() {
        response.headers_mut().insert("cache-control", value);
    }
    response
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub struct ResourceMetadata(pub Arc<ResourceServer>);

impl Endpoint for ResourceMetadata {
    type Output = Response;

    async fn call(&self, _request: Request) -> poem::Result<Response> {
        Ok(cacheable(self.0.metadata()))
    }
}

/// `GET /.well-known/oauth-authorization-server` (and the OpenID Connect discovery path, which some
/// clients try first; the document is the same, RFC 8414 §1 and §5).
pub struct ServerMetadata(pub Arc<AuthorizationServer>);

impl Endpoint for ServerMetadata {
    type Output = Response;

    async fn call(&self, _request: Request) -> poem::Result<Response> {
        Ok(cacheable(self.0.metadata()))
    }
}
