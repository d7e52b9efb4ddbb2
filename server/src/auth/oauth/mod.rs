//! OAuth 2.1 for MCP clients (MCP authorization specification 2025-06-18 and later), stateless
//! across instances like everything else here.
//!
//! This server is always an OAuth *protected resource* when `auth.oauth.mode` is set; in `builtin`
//! mode it is also the *authorization server* for the users in users.yaml. Every piece of state a
//! later step needs is carried by the client, sealed with keys derived from the shared session key,
//! so a round-robin balancer may send each step to a different instance:
//!
//! | step | standard | what the client carries |
//! |---|---|---|
//! | discovery | RFC 9728, RFC 8414 | nothing (documents derived from config) |
//! | registration | RFC 7591 | client id sealing its redirect URIs |
//! | authorize + sign-in | OAuth 2.1 §4.1, RFC 7636, RFC 9207 | the request sealed in the form, CSRF nonce in a cookie |
//! | token | OAuth 2.1 §4.1.3 | code sealing client, redirect URI, PKCE challenge, user, password version, scope |
//! | refresh | OAuth 2.1 §4.3 | refresh token sealing client, user, password version, scope, family expiry |
//! | `/mcp` | RFC 6750, RFC 8707, RFC 9068 | access token (HS256 JWT, `aud` = this resource) |
//!
//! - `resource`: [`ResourceServer`] — metadata, `WWW-Authenticate`, access-token checks;
//! - `external`, `jwks`: tokens of an external IdP, its keys discovered and cached;
//! - `authorization_server`: [`AuthorizationServer`], the built-in server's handle; its endpoints
//!   `client_registration` ([`Register`]), `authorization` ([`Authorize`], with the page of
//!   `login`), `tokens` ([`Token`]) and `metadata`;
//! - `access_token`, `keys`, `scopes`, `params`, `replay`: token format, key derivation, scope
//!   mapping, request parameters, per-instance single-use memory.

mod access_token;
mod authorization;
mod authorization_server;
mod client_registration;
mod external;
mod jwks;
mod keys;
mod login;
mod metadata;
mod params;
mod replay;
/// Token validation, imported on its own by [`crate::auth::http`]'s gate: the gate sits below the
/// authorization server's endpoints (which use the gate's limiter), so it must not import this
/// module's root, which re-exports them.
pub mod resource;
mod scopes;
mod tokens;

pub use authorization::Authorize;
pub use authorization_server::{
    AUTHORIZE_PATH, AuthorizationServer, METADATA_PATH as SERVER_METADATA_PATH, REGISTER_PATH, TOKEN_PATH,
};
pub use client_registration::Register;
pub use metadata::{ResourceMetadata, ServerMetadata};
pub use resource::{METADATA_PATH as RESOURCE_METADATA_PATH, ResourceServer};
pub use tokens::Token;
