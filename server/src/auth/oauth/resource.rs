//! The protected-resource side of OAuth (RFC 9728, RFC 6750, RFC 8707): what `/mcp` tells a client
//! that has no valid token, and how it checks one it has.
//!
//! A client without a token gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"`; the
//! metadata document names the authorization server (the built-in one at `public_url`, or the
//! organisation's IdP); the client gets a token there for *this* resource (`resource`, RFC 8707) and
//! presents it. The check is local and stateless in both modes: a built-in token against a key
//! derived from the shared session key and the current users.yaml, an IdP token against its cached
//! JWKS. API tokens and session tokens are untouched: a credential reaches this module only when
//! it is shaped like a JWT (three base64url segments), which neither of them is.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    access_token,
    external::ExternalIdp,
    scopes::{ScopeMap, intersect},
};
use crate::{
    auth::{
        authenticator::Authenticator,
        principal::{AuthFailure, Principal, PrincipalKind},
    },
    config::{OAuthConfig, OAuthMode},
};

/// The well-known path of protected resource metadata (RFC 9728 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Who issues the tokens this resource accepts.
enum Issuer {
    /// The built-in authorization server at `public_url`: tokens checked against users.yaml too.
    Builtin {
        authenticator: Arc<Authenticator>,
    },
    External(ExternalIdp),
}

/// This server as an OAuth protected resource.
pub struct ResourceServer {
    resource: String,
    metadata_url: String,
    issuer_url: String,
    scopes: ScopeMap,
    leeway_secs: u64,
    issuer: Issuer,
}

impl ResourceServer {
    /// `None` when `auth.oauth.mode` is off. `public_url` is required by the config check when it
    /// is on. Errors name the setting that is wrong.
    pub fn new(
        config: &OAuthConfig,
        public_url: Option<&str>,
        authenticator: Arc<Authenticator>,
    ) -> Result<Option<Arc<ResourceServer>>, String> {
        if config.mode == OAuthMode::Off {
            return Ok(None);
        }
        let public_url = public_url
            .ok_or("public_url is required when auth.oauth.mode is set")?
            .trim_end_matches('/');
        let resource = config.resource.clone().unwrap_or_else(|| format!("{public_url}/mcp"));
        let leeway = config.leeway.get();
        let (issuer_url, issuer) = match config.mode {
            OAuthMode::External => {
                let idp = ExternalIdp::new(&config.external, &resource, leeway)?;
                (idp.issuer().to_string(), Issuer::External(idp))
            }
            _ => (public_url.to_string(), Issuer::Builtin { authenticator }),
        };
        Ok(Some(Arc::new(ResourceServer {
            metadata_url: metadata_url(&resource),
            resource,
            issuer_url,
            scopes: ScopeMap::new(&config.scope_prefix),
            leeway_secs: leeway.as_secs(),
            issuer,
        })))
    }

    /// The resource identifier tokens must name in `aud`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The issuer of the tokens (the built-in server's is `public_url`).
    pub fn issuer(&self) -> &str {
        &self.issuer_url
    }

    pub fn scopes(&self) -> &ScopeMap {
        &self.scopes
    }

    /// Whether a bearer credential is a JWT, i.e. this module's to check.
    pub fn is_jwt(credential: &str) -> bool {
        let mut parts = credential.split('.');
        let jwt = parts
            .by_ref()
            .take(3)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        jwt && credential.split('.').count() == 3
    }

    /// Checks an access token: the [`Principal`] it stands for, or why not.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthFailure> {
        match &self.issuer {
            Issuer::Builtin { authenticator } => {
                let keys = authenticator.session_keys().ok_or(AuthFailure::NotConfigured)?;
                let users = authenticator.users().ok_or(AuthFailure::NotConfigured)?;
                let claims = access_token::verify(&keys, token, &self.issuer_url, &self.resource, self.leeway_secs)?;
                let user = users.get(&claims.sub).ok_or(AuthFailure::Revoked)?;
                if user.disabled {
                    return Err(AuthFailure::Disabled);
                }
                if user.version != claims.ver {
                    return Err(AuthFailure::Revoked);
                }
                let granted = self
                    .scopes
                    .tools(claims.scope.split_ascii_whitespace())
                    .ok_or(AuthFailure::InsufficientScope)?;
                Ok(Principal {
                    kind: PrincipalKind::OAuth,
                    name: user.username.clone(),
                    tools: intersect(granted, &user.tools),
                })
            }
            Issuer::External(idp) => {
                let claims = idp.verify(token).await?;
                let tools = self
                    .scopes
                    .tools(claims.scopes.iter().map(String::as_str))
                    .ok_or(AuthFailure::InsufficientScope)?;
                Ok(Principal {
                    kind: PrincipalKind::OAuth,
                    name: claims.name.into(),
                    tools,
                })
            }
        }
    }

    /// The protected resource metadata document (RFC 9728 §2).
    pub fn metadata(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer_url],
            "scopes_supported": self.scopes.supported(),
            "bearer_methods_supported": ["header"],
            "resource_name": "postgres-mcp",
        })
    }

    /// The `WWW-Authenticate` value for a refused request (RFC 6750 §3, RFC 9728 §5.1): the error
    /// code for a refused token, none for a request without one, and always where the metadata is.
    pub fn challenge(&self, failure: AuthFailure) -> String {
        let metadata = &self.metadata_url;
        match failure {
            AuthFailure::Missing => format!(r#"Bearer realm="postgres-mcp", resource_metadata="{metadata}""#),
            AuthFailure::InsufficientScope => format!(
                r#"Bearer realm="postgres-mcp", error="insufficient_scope", scope="{}", resource_metadata="{metadata}""#,
                self.scopes.default_scope()
            ),
            other => format!(
                r#"Bearer realm="postgres-mcp", error="invalid_token", error_description="{}", resource_metadata="{metadata}""#,
                other.label()
            ),
        }
    }
}

/// RFC 9728 §3.1: the well-known path inserted between the resource's authority and its path.
pub fn metadata_url(resource: &str) -> String {
    match resource.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let path = path.trim_end_matches('/');
            let suffix = if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            };
            format!("{scheme}://{authority}{METADATA_PATH}{suffix}")
        }
        None => format!("{resource}{METADATA_PATH}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn only_jwt_shaped_credentials_are_oauth_tokens() {
        assert!(ResourceServer::is_jwt("eyJh.eyJi.c2ln"));
        assert!(!ResourceServer::is_jwt(
            "pgmcp_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
        ));
        assert!(!ResourceServer::is_jwt("pgmcs_eyJzdWIi.c2ln"));
        assert!(!ResourceServer::is_jwt("a.b.c.d"));
        assert!(!ResourceServer::is_jwt("a..c"));
    }
}
