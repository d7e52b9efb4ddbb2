//! `POST /oauth/token` (OAuth 2.1 §3.2, §4.1.3, §4.3) and the two grants it redeems, each carried by
//! the client and sealed with a key derived from the session key:
//!
//! - **authorization code** (`pgmca_…`, `Purpose::Code`): client, redirect URI (and whether the
//!   authorization request named it), PKCE challenge, user, password version, granted scope, expiry
//!   (`code_ttl`) and a random id. Redeemed with the PKCE verifier (S256); single use per instance,
//!   and why that suffices across instances: `replay.rs`.
//! - **refresh token** (`pgmcr_…`, `Purpose::RefreshToken`): client, user, password version, scope,
//!   the family's absolute expiry (set at sign-in, never extended) and a random id. Every refresh
//!   rotates it (OAuth 2.1 §4.3.1 for public clients). It dies with the user's password version: a
//!   removed or disabled user, or a changed password, ends every refresh token of that user at the
//!   next reload of users.yaml, on every instance.
//!
//! Both grants are checked against the *current* users.yaml at redemption, and every answer carries
//! `Cache-Control: no-store` (RFC 6749 §5.1).
//!
//! A grant is marked used only once every check passed, so a refused request (a refresh asking for
//! a wider scope, a code redeemed without its `redirect_uri`) leaves it usable for a correct retry.
//! That includes a wrong PKCE verifier, though it is what a stolen code looks like: burning the
//! code then would let whoever intercepted it (without the verifier) cancel the real client's
//! sign-in, while it protects little: a verifier is 43–128 characters (RFC 7636 §4.1 asks for 256
//! bits of entropy), not guessable online, and the used-code sets are per instance (`replay.rs`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode, web::Json};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    access_token::{self, AccessClaims},
    authorization_server::AuthorizationServer,
    client_registration::Client,
    keys::{Purpose, PurposeKeys},
    params::Params,
};
use crate::auth::session::SessionKeys;
use crate::auth::users::UserSet;

pub const CODE_PREFIX: &str = "pgmca_";
pub const REFRESH_PREFIX: &str = "pgmcr_";

fn random_id() -> String {
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    URL_SAFE_NO_PAD.encode(id)
}

/// What an authorization code seals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    c: String,
    r: String,
    /// The authorization request named `r` (absent in codes from older versions: not required).
    #[serde(default)]
    rq: bool,
    ch: String,
    u: String,
    v: String,
    sc: String,
    exp: i64,
    j: String,
}

impl CodeGrant {
    /// A code for `user` (password version `version`), to client digest `client`.
    pub fn new(
        server: &AuthorizationServer,
        client: &str,
        redirect_uri: &str,
        challenge: &str,
        user: &str,
        version: &str,
        scope: String,
    ) -> CodeGrant {
        CodeGrant {
            c: client.to_string(),
            r: redirect_uri.to_string(),
            rq: false,
            ch: challenge.to_string(),
            u: user.to_string(),
            v: version.to_string(),
            sc: scope,
            exp: Utc::now().timestamp() + server.code_ttl().as_secs() as i64,
            j: random_id(),
        }
    }

    /// Records that the authorization request named the redirect URI (rather than relying on the
    /// client's only registered one): the token request must then repeat it (OAuth 2.1 §4.1.3).
    pub fn redirect_uri_named(mut self, named: bool) -> CodeGrant {
        self.rq = named;
        self
    }

    pub fn seal(&self, keys: &SessionKeys) -> String {
        format!("{CODE_PREFIX}{}", PurposeKeys::new(keys, Purpose::Code).seal(self))
    }
}

/// What a refresh token seals.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RefreshGrant {
    c: String,
    u: String,
    v: String,
    sc: String,
    /// The family's absolute expiry.
    exp: i64,
    j: String,
}

/// An OAuth error answer (RFC 6749 §5.2).
struct TokenError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

fn invalid_grant(description: impl Into<String>) -> TokenError {
    TokenError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_grant",
        description: description.into(),
    }
}

fn invalid_request(description: impl Into<String>) -> TokenError {
    TokenError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        description: description.into(),
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("cache-control", "no-store".parse().expect("static header"));
    headers.insert("pragma", "no-cache".parse().expect("static header"));
    response
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let mut response = no_store(
            (
                self.status,
                Json(json!({"error": self.code, "error_description": self.description})),
            )
                .into_response(),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                "Basic realm=\"postgres-mcp\"".parse().expect("static header"),
            );
        }
        response
    }
}

/// `POST /oauth/token`.
pub struct Token {
    pub server: Arc<AuthorizationServer>,
}

impl Endpoint for Token {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        Ok(match self.token(&mut request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::info!(error.r#type = error.code, reason = %error.description, "oauth token request refused");
                error.into_response()
            }
        })
    }
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) equals the challenge; the verifier is 43–128
/// unreserved characters (§4.1).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

impl Token {
    async fn token(&self, request: &mut Request) -> Result<Response, TokenError> {
        let server = &self.server;
        let form = request
            .header("content-type")
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form {
            return Err(invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let body = crate::http_error::read_body_limited(request, server.max_body())
            .await
            .map_err(|e| invalid_request(e.message))?;
        let params = Params::parse(&body).map_err(|e| invalid_request(e.0))?;
        let keys = server.session_keys().map_err(|e| invalid_request(e.message))?;
        let users = server.users().map_err(|e| invalid_request(e.message))?;
        // Public clients identify themselves with client_id (OAuth 2.1 §3.2.1).
        let client_id = params.require("client_id").map_err(|e| invalid_request(e.0))?;
        let client = Client::open(&keys, client_id).ok_or(TokenError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "unknown client_id: register again".into(),
        })?;
        if let Some(resource) = params.get("resource")
            && resource != server.resource()
        {
            return Err(TokenError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_target",
                description: "this server issues tokens only for its own resource (RFC 8707)".into(),
            });
        }
        let now = Utc::now().timestamp();
        let grant = match params.require("grant_type").map_err(|e| invalid_request(e.0))? {
            "authorization_code" => self.redeem_code(&params, &client, &keys, &users, now)?,
            "refresh_token" => self.redeem_refresh(&params, &client, &keys, &users, now)?,
            other => {
                return Err(TokenError {
                    status: StatusCode::BAD_REQUEST,
                    code: "unsupported_grant_type",
                    description: format!("grant_type `{other}` is not supported (authorization_code, refresh_token)"),
                });
            }
        };
        Ok(self.issue(&keys, &client, grant, now))
    }

    /// Checks a code grant; marks the code used only when every check passed (see the module doc).
    fn redeem_code(
        &self,
        params: &Params,
        client: &Client,
        keys: &SessionKeys,
        users: &UserSet,
        now: i64,
    ) -> Result<RefreshGrant, TokenError> {
        let code = params.require("code").map_err(|e| invalid_request(e.0))?;
        let verifier = params
            .require("code_verifier")
            .map_err(|_| invalid_request("code_verifier is required (PKCE)"))?;
        let grant: CodeGrant = code
            .strip_prefix(CODE_PREFIX)
            .and_then(|sealed| PurposeKeys::new(keys, Purpose::Code).open(sealed).ok())
            .ok_or_else(|| invalid_grant("the authorization code is not valid"))?;
        if grant.exp <= now {
            return Err(invalid_grant("the authorization code expired: sign in again"));
        }
        if !bool::from(grant.c.as_bytes().ct_eq(client.digest().as_bytes())) {
            return Err(invalid_grant("the authorization code was issued to another client"));
        }
        // OAuth 2.1 §4.1.3: the redirect URI is required if the authorization request named one; we
        // always bound the code to the one used, so require it to match whenever given.
        match params.get("redirect_uri") {
            None if grant.rq => {
                return Err(invalid_request(
                    "redirect_uri is required: the authorization request named one (OAuth 2.1 §4.1.3)",
                ));
            }
            Some(redirect_uri) if redirect_uri != grant.r => {
                return Err(invalid_grant("redirect_uri differs from the authorization request's"));
            }
            _ => {}
        }
        if !pkce_matches(verifier, &grant.ch) {
            tracing::warn!(user.name = %grant.u, "authorization code presented with a wrong PKCE verifier");
            return Err(invalid_grant("code_verifier does not match the code_challenge (PKCE)"));
        }
        check_user(users, &grant.u, &grant.v)?;
        if !self.server.used_codes.first_use(&grant.j, grant.exp, now) {
            tracing::warn!(user.name = %grant.u, "authorization code replayed");
            return Err(invalid_grant("the authorization code was already used"));
        }
        Ok(RefreshGrant {
            c: grant.c,
            u: grant.u,
            v: grant.v,
            sc: grant.sc,
            exp: now + self.server.refresh_token_ttl().as_secs() as i64,
            j: String::new(),
        })
    }

    /// Checks a refresh token; marks it used (rotation) only when every check passed.
    fn redeem_refresh(
        &self,
        params: &Params,
        client: &Client,
        keys: &SessionKeys,
        users: &UserSet,
        now: i64,
    ) -> Result<RefreshGrant, TokenError> {
        let token = params.require("refresh_token").map_err(|e| invalid_request(e.0))?;
        let mut grant: RefreshGrant = token
            .strip_prefix(REFRESH_PREFIX)
            .and_then(|sealed| PurposeKeys::new(keys, Purpose::RefreshToken).open(sealed).ok())
            .ok_or_else(|| invalid_grant("the refresh token is not valid"))?;
        if grant.exp <= now {
            return Err(invalid_grant("the refresh token expired: sign in again"));
        }
        if !bool::from(grant.c.as_bytes().ct_eq(client.digest().as_bytes())) {
            return Err(invalid_grant("the refresh token was issued to another client"));
        }
        // OAuth 2.1 §4.3.1: a narrower scope may be asked for, never a wider one.
        if let Some(scope) = params.get("scope") {
            let granted: Vec<&str> = grant.sc.split_ascii_whitespace().collect();
            if scope.split_ascii_whitespace().any(|s| !granted.contains(&s)) {
                return Err(TokenError {
                    status: StatusCode::BAD_REQUEST,
                    code: "invalid_scope",
                    description: "a refresh cannot widen the granted scope".into(),
                });
            }
            grant.sc = scope.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
        }
        check_user(users, &grant.u, &grant.v)?;
        if !self.server.used_refresh_tokens.first_use(&grant.j, grant.exp, now) {
            tracing::warn!(user.name = %grant.u, "rotated refresh token reused");
            return Err(invalid_grant("the refresh token was already used (rotation)"));
        }
        Ok(grant)
    }

    /// A new access token and a new (rotated) refresh token of the same family.
    fn issue(&self, keys: &SessionKeys, client: &Client, mut grant: RefreshGrant, now: i64) -> Response {
        let server = &self.server;
        // The access token never outlives the family it came from.
        let expires_in = (server.access_token_ttl().as_secs() as i64).min(grant.exp - now).max(1);
        let claims = AccessClaims {
            iss: server.issuer().to_string(),
            sub: grant.u.clone(),
            aud: server.resource().to_string(),
            exp: now + expires_in,
            iat: now,
            scope: grant.sc.clone(),
            client_id: client.digest(),
            ver: grant.v.clone(),
            jti: random_id(),
        };
        let access_token = access_token::mint(keys, &claims);
        grant.j = random_id();
        let refresh_token = format!(
            "{REFRESH_PREFIX}{}",
            PurposeKeys::new(keys, Purpose::RefreshToken).seal(&grant)
        );
        no_store(
            Json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": expires_in,
                "refresh_token": refresh_token,
                "scope": grant.sc,
            }))
            .into_response(),
        )
    }
}

/// The user still exists, is enabled and has the password (`version`) the grant was made under.
fn check_user(users: &UserSet, name: &str, version: &str) -> Result<(), TokenError> {
    match users.get(name) {
        Some(user) if !user.disabled && user.version == version => Ok(()),
        _ => Err(invalid_grant(
            "the grant was revoked (the user was removed or disabled, or changed password): sign in again",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example_only() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX", challenge));
        assert!(!pkce_matches("short", "short"));
    }
}
