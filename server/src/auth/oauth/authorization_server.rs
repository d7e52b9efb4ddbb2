//! The built-in authorization server's shared handle: its settings, where its keys come from, and
//! the per-instance single-use memories. Its endpoints live one per file (`client_registration`,
//! `authorization`, `tokens`, `metadata`); this is what they have in common.
//!
//! Nothing here is needed by a later request: the keys are re-derived from the *current* session
//! key file on every use (so a rotated key file applies at its next reload, like sessions), and the
//! replay memories only narrow what the sealed values already bound (see `replay.rs`).

use std::{sync::Arc, time::Duration};

use poem::http::StatusCode;
use serde_json::{Value, json};

use super::{replay::UsedOnce, resource::ResourceServer, scopes::ScopeMap};
use crate::{
    auth::{authenticator::Authenticator, http::Gate, session::SessionKeys, users::UserSet},
    config::{BuiltinAsConfig, OAuthConfig},
    http_error::HttpError,
};

/// How many codes (and, separately, refresh tokens) each instance remembers as used.
const USED_CAPACITY: usize = 100_000;

/// The built-in authorization server.
pub struct AuthorizationServer {
    issuer: String,
    resource: String,
    scopes: ScopeMap,
    authenticator: Arc<Authenticator>,
    gate: Gate,
    settings: BuiltinAsConfig,
    max_body: u64,
    /// `Secure` on the login cookie: the issuer is served over https.
    secure_cookies: bool,
    pub(super) used_codes: UsedOnce,
    pub(super) used_refresh_tokens: UsedOnce,
}

impl AuthorizationServer {
    /// The built-in server for `resource` (its issuer is the resource server's). `gate` provides the
    /// failed-auth limiter and the password-check slots, shared with `POST /api/login`.
    pub fn new(
        config: &OAuthConfig,
        resource: &ResourceServer,
        authenticator: Arc<Authenticator>,
        gate: Gate,
        max_body: u64,
    ) -> Arc<AuthorizationServer> {
        Arc::new(AuthorizationServer {
            issuer: resource.issuer().to_string(),
            resource: resource.resource().to_string(),
            scopes: resource.scopes().clone(),
            secure_cookies: resource.issuer().starts_with("https://"),
            authenticator,
            gate,
            settings: config.builtin.clone(),
            max_body,
            used_codes: UsedOnce::new(USED_CAPACITY),
            used_refresh_tokens: UsedOnce::new(USED_CAPACITY),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub fn scopes(&self) -> &ScopeMap {
        &self.scopes
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    pub fn login_title(&self) -> &str {
        &self.settings.login_title
    }

    pub fn code_ttl(&self) -> Duration {
        self.settings.code_ttl.get()
    }

    pub fn access_token_ttl(&self) -> Duration {
        self.settings.access_token_ttl.get()
    }

    pub fn refresh_token_ttl(&self) -> Duration {
        self.settings.refresh_token_ttl.get()
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// The current session keys; 503 if the file is not configured (the config check prevents it).
    pub fn session_keys(&self) -> Result<Arc<SessionKeys>, HttpError> {
        self.authenticator.session_keys().ok_or_else(not_configured)
    }

    /// The current users.yaml.
    pub fn users(&self) -> Result<Arc<UserSet>, HttpError> {
        self.authenticator.users().ok_or_else(not_configured)
    }

    /// `url` under the issuer (`/oauth/token` → `https://mcp.example.com/oauth/token`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Authorization server metadata (RFC 8414 §2).
    pub fn metadata(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint(AUTHORIZE_PATH),
            "token_endpoint": self.endpoint(TOKEN_PATH),
            "registration_endpoint": self.endpoint(REGISTER_PATH),
            "scopes_supported": self.scopes.supported(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
        })
    }
}

/// The endpoint paths, under the issuer.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const REGISTER_PATH: &str = "/oauth/register";
/// RFC 8414 §3: the metadata path for an issuer without a path component.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

fn not_configured() -> HttpError {
    HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "oauth_not_configured",
        "the built-in authorization server needs auth.users_file and auth.session_secret_file",
    )
}
