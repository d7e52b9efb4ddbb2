//! Access tokens issued by the organisation's identity provider (Cognito, Entra ID, Keycloak, Okta,
//! Auth0 …): JWTs checked against the IdP's published keys ([`Jwks`]).
//!
//! Stateless by nature: every instance checks a token alone with the public keys it cached. The
//! checks, in order: the header names an asymmetric algorithm the key allows (never `none`, never a
//! symmetric key); the signature; `iss` equals the configured issuer; `aud` holds one of the
//! accepted audiences — by default this server's resource identifier (RFC 8707, MCP
//! authorization §"Token Audience Binding"); `exp`/`nbf` with the configured leeway. The principal
//! name and the scopes come from configurable claims, since IdPs differ (`scope` as a string in
//! Keycloak and Okta, `scp` in Entra ID, `cognito:groups`…).

use std::{sync::Arc, time::Duration};

use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::{access_token::failure_of, jwks::Jwks};
use crate::{auth::principal::AuthFailure, config::ExternalIdpConfig};

/// The identity provider whose tokens `/mcp` accepts.
pub struct ExternalIdp {
    issuer: String,
    audiences: Vec<String>,
    principal_claim: String,
    scopes_claim: String,
    leeway_secs: u64,
    jwks: Arc<Jwks>,
}

/// What a valid IdP token says about its bearer.
#[derive(Debug, PartialEq, Eq)]
pub struct ExternalClaims {
    pub name: String,
    pub scopes: Vec<String>,
}

impl ExternalIdp {
    /// `resource` is the default audience. Starts a first key fetch in the background: start-up
    /// never waits on (or fails because of) the IdP.
    pub fn new(config: &ExternalIdpConfig, resource: &str, leeway: Duration) -> Result<ExternalIdp, String> {
        let issuer = config.issuer.clone().ok_or("auth.oauth.external.issuer is required")?;
        let jwks = Jwks::new(
            &issuer,
            config.jwks_refresh_interval.get(),
            config.request_timeout.get(),
        )
        .map_err(|e| e.to_string())?;
        let audiences = if config.audiences.is_empty() {
            vec![resource.to_string()]
        } else {
            config.audiences.clone()
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let jwks = jwks.clone();
            runtime.spawn(async move { jwks.refresh().await });
        }
        Ok(ExternalIdp {
            issuer,
            audiences,
            principal_claim: config.principal_claim.clone(),
            scopes_claim: config.scopes_claim.clone(),
            leeway_secs: leeway.as_secs(),
            jwks,
        })
    }

    /// The issuer, as the protected resource metadata names it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks a token; the caller maps the scopes to tools.
    pub async fn verify(&self, token: &str) -> Result<ExternalClaims, AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        let key = self
            .jwks
            .key(header.kid.as_deref())
            .await
            .ok_or(AuthFailure::UnknownKey)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(AuthFailure::BadSignature);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| failure_of(e.kind()))?;
        let claims = data.claims;
        let name = match claims.get(&self.principal_claim) {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => return Err(AuthFailure::Malformed),
        };
        let scopes = match claims.get(&self.scopes_claim) {
            Some(Value::String(text)) => text.split_ascii_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        Ok(ExternalClaims { name, scopes })
    }
}
