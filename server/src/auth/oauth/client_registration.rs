//! Dynamic client registration (RFC 7591) without a client database: the client id *is* the
//! registration.
//!
//! `POST /oauth/register` validates the redirect URIs and answers with a client id that seals them
//! (`pgmcc_` + AES-GCM under the `ClientId` key derived from the session key, `keys.rs`). Any instance
//! opens it at `/oauth/authorize` and `/oauth/token` and learns exactly which redirect URIs were
//! registered; nobody can forge or edit one without the key. Clients are public (OAuth 2.1 §2.1:
//! `token_endpoint_auth_method: none`, PKCE instead of a secret), which is what MCP clients
//! register as. A registration cannot be deleted; it grants nothing by itself (a user still signs
//! in), and rotating the session key retires all of them.
//!
//! Redirect URIs (OAuth 2.1 §2.3.1, RFC 8252 §7): absolute, no fragment, no user info; `https://`
//! with a host, or `http://` only on a loopback host (127.0.0.1, [::1], localhost, §7.3), or a
//! private-use scheme of a native app: reverse DNS, so containing a dot (`com.example.app:/cb`,
//! §7.1), or one of the few undotted schemes of known MCP clients ([`NATIVE_APP_SCHEMES`]). An
//! allowlist, not a denylist: browsers keep adding schemes (`view-source:`, `filesystem:`,
//! `jar:`, `chrome-extension:`…) that a denylist would let through. Matching is exact string comparison, except that
//! for a registered `http` loopback IP literal any port is accepted (RFC 8252 §7.3: native apps
//! bind an ephemeral port at each sign-in).

use chrono::Utc;
use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode, web::Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use url::{Host, Url};

use super::{
    authorization_server::AuthorizationServer,
    keys::{Purpose, PurposeKeys},
};
use crate::{
    auth::session::SessionKeys,
    http_error::{HttpError, read_body_limited, require_json_content_type},
};

/// Prefix of a client id, so that one is recognisable in logs and by secret scanners.
pub const CLIENT_ID_PREFIX: &str = "pgmcc_";
/// Most redirect URIs one registration may hold (the client id carries them all).
pub const MAX_REDIRECT_URIS: usize = 8;
/// Longest redirect URI accepted, in bytes.
pub const MAX_REDIRECT_URI_BYTES: usize = 512;
/// Longest `client_name` kept, in characters.
const MAX_CLIENT_NAME_CHARS: usize = 100;

/// Private-use schemes without a dot (RFC 8252 §7.1 asks for reverse DNS) that known MCP clients
/// register: Cursor (`cursor://anysphere.cursor-retrieval/oauth/callback`) and VS Code.
pub const NATIVE_APP_SCHEMES: &[&str] = &["cursor", "vscode", "vscode-insiders"];

/// What a client id seals.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registration {
    /// The registered redirect URIs, exactly as registered.
    #[serde(rename = "r")]
    pub redirect_uris: Vec<String>,
    /// Issued at, Unix seconds.
    #[serde(rename = "t")]
    pub issued_at: i64,
}

/// A registered client: its id (as presented) and what it registered.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub registration: Registration,
}

impl Client {
    /// Opens a client id. `None`: not one of ours (or the session key it was sealed with is gone).
    pub fn open(session_keys: &SessionKeys, client_id: &str) -> Option<Client> {
        let sealed = client_id.strip_prefix(CLIENT_ID_PREFIX)?;
        let registration = PurposeKeys::new(session_keys, Purpose::ClientId).open(sealed).ok()?;
        Some(Client {
            id: client_id.to_string(),
            registration,
        })
    }

    /// A short, stable digest of the client id: what codes, refresh and access tokens bind to.
    pub fn digest(&self) -> String {
        client_digest(&self.id)
    }

    /// The registered redirect URI `presented` matches (RFC 8252 §7.3 for loopback IPs), or `None`.
    /// Without `presented`, the only registered one (OAuth 2.1 §4.1.1: required when several).
    pub fn redirect_uri(&self, presented: Option<&str>) -> Option<String> {
        let registered = &self.registration.redirect_uris;
        match presented {
            None if registered.len() == 1 => Some(registered[0].clone()),
            None => None,
            Some(presented) => registered
                .iter()
                .any(|r| redirect_matches(r, presented))
                .then(|| presented.to_string()),
        }
    }
}

/// SHA-256 of a client id, 32 hex characters.
pub fn client_digest(client_id: &str) -> String {
    hex::encode(&Sha256::digest(client_id.as_bytes())[..16])
}

/// Why a redirect URI cannot be registered.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err(format!("a redirect URI is longer than {MAX_REDIRECT_URI_BYTES} bytes"));
    }
    let url = Url::parse(uri).map_err(|e| format!("redirect URI `{uri}` is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "redirect URI `{uri}` has a fragment (OAuth 2.1 §2.3.1 forbids one)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI `{uri}` carries user info"));
    }
    let scheme = url.scheme();
    // `https:evil.example.com` parses as `https://evil.example.com/`: require the written form.
    let authority_written = uri[scheme.len() + 1..].starts_with("//");
    match scheme {
        "https" | "http" if !authority_written || url.host().is_none() => Err(format!(
            "redirect URI `{uri}`: an {scheme} redirect URI is `{scheme}://host/path`"
        )),
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "redirect URI `{uri}`: http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https"
        )),
        scheme if scheme.contains('.') || NATIVE_APP_SCHEMES.contains(&scheme) => Ok(()),
        scheme => Err(format!(
            "redirect URI `{uri}`: the `{scheme}` scheme is not a redirect target here; use https, http on \
             loopback, or a private-use scheme in reverse-DNS form such as `com.example.app:` (RFC 8252 §7)"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Exact match, or for a registered `http` loopback IP literal the same URI with any port.
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(registered), Ok(presented)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback_ip = |url: &Url| {
        url.scheme() == "http"
            && match url.host() {
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    loopback_ip(&registered)
        && loopback_ip(&presented)
        && registered.host() == presented.host()
        && registered.path() == presented.path()
        && registered.query() == presented.query()
        && presented.fragment().is_none()
        && presented.username().is_empty()
        && presented.password().is_none()
}

/// The fields of RFC 7591 §2 this server reads; others are ignored, as §3.2.1 allows.
#[derive(Deserialize)]
struct RegistrationRequest {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
}

/// `POST /oauth/register`.
pub struct Register {
    pub server: std::sync::Arc<AuthorizationServer>,
}

impl Endpoint for Register {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        Ok(match self.register(&mut request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        })
    }
}

/// RFC 7591 §3.2.2 error: 400 with `error` and `error_description`.
fn registration_error(code: &'static str, description: impl Into<String>) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": description.into()})),
    )
        .into_response();
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().expect("static header"));
    response
}

impl Register {
    async fn register(&self, request: &mut Request) -> Result<Response, HttpError> {
        require_json_content_type(request)?;
        let body = read_body_limited(request, self.server.max_body()).await?;
        let Ok(registration) = serde_json::from_slice::<RegistrationRequest>(&body) else {
            return Ok(registration_error(
                "invalid_client_metadata",
                "the body must be a JSON object of client metadata (RFC 7591 §2)",
            ));
        };
        let redirect_uris = registration.redirect_uris.unwrap_or_default();
        if redirect_uris.is_empty() || redirect_uris.len() > MAX_REDIRECT_URIS {
            return Ok(registration_error(
                "invalid_redirect_uri",
                format!("redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"),
            ));
        }
        for uri in &redirect_uris {
            if let Err(message) = check_redirect_uri(uri) {
                return Ok(registration_error("invalid_redirect_uri", message));
            }
        }
        let method = registration.token_endpoint_auth_method.as_deref().unwrap_or("none");
        if method != "none" {
            return Ok(registration_error(
                "invalid_client_metadata",
                format!(
                    "token_endpoint_auth_method `{method}` is not supported: clients are public (`none`) and use PKCE"
                ),
            ));
        }
        let grant_types = registration
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        if let Some(grant) = grant_types
            .iter()
            .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
        {
            return Ok(registration_error(
                "invalid_client_metadata",
                format!("grant type `{grant}` is not supported (authorization_code, refresh_token)"),
            ));
        }
        let response_types = registration.response_types.unwrap_or_else(|| vec!["code".into()]);
        if response_types.iter().any(|t| t != "code") {
            return Ok(registration_error(
                "invalid_client_metadata",
                "only the `code` response type is supported",
            ));
        }
        let keys = self.server.session_keys()?;
        let issued_at = Utc::now().timestamp();
        let sealed = Registration {
            redirect_uris: redirect_uris.clone(),
            issued_at,
        };
        let client_id = format!(
            "{CLIENT_ID_PREFIX}{}",
            PurposeKeys::new(&keys, Purpose::ClientId).seal(&sealed)
        );
        let client_name: Option<String> = registration
            .client_name
            .map(|name| name.chars().take(MAX_CLIENT_NAME_CHARS).collect());
        tracing::info!(client.digest = %client_digest(&client_id), redirect_uris = redirect_uris.len(), "oauth client registered");
        let mut body = json!({
            "client_id": client_id,
            "client_id_issued_at": issued_at,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": grant_types,
            "response_types": response_types,
        });
        if let Some(name) = client_name {
            body["client_name"] = json!(name);
        }
        let mut response = (StatusCode::CREATED, Json(body)).into_response();
        response
            .headers_mut()
            .insert("cache-control", "no-store".parse().expect("static header"));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::generate_key_file;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_a_native_scheme() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:33418/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("http://localhost:3030/callback").is_ok());
        assert!(check_redirect_uri("cursor://anysphere.cursor-retrieval/oauth/callback").is_ok());
        assert!(check_redirect_uri("com.example.app:/oauth2redirect").is_ok());
        assert!(check_redirect_uri("vscode://vscode.github-authentication/did-authenticate").is_ok());
        for bad in [
            "filesystem:https://app.example.com/temporary/x",
            "view-source:https://app.example.com/",
            "jar:https://app.example.com/a.jar!/",
            "chrome-extension://abcdefghijklmnop/cb",
            "mailto:someone@example.com",
            "https:evil.example.com",
            "https:/evil.example.com/cb",
            "http:127.0.0.1/cb",
            "ws://127.0.0.1/cb",
            "ftp://example.com/cb",
            "vbscript:msgbox(1)",
            "about:blank",
            "blob:https://app.example.com/uuid",
            "file:///etc/passwd",
            "http://evil.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative/path",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn matching_is_exact_except_the_port_of_a_loopback_ip() {
        assert!(redirect_matches("https://a.example.com/cb", "https://a.example.com/cb"));
        assert!(!redirect_matches(
            "https://a.example.com/cb",
            "https://a.example.com/cb/"
        ));
        assert!(!redirect_matches(
            "https://a.example.com/cb",
            "https://a.example.com/cb?x=1"
        ));
        assert!(!redirect_matches(
            "https://a.example.com/cb",
            "https://a.example.com:8443/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example.com/cb",
            "https://A.example.com/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback"
        ));
        assert!(redirect_matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/other"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.2:51234/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://localhost:51234/callback"
        ));
        // localhost is a name, not an IP literal: exact match only (RFC 8252 §7.3 / §8.3).
        assert!(!redirect_matches(
            "http://localhost:3030/cb",
            "http://localhost:3031/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb@evil.example.com"
        ));
    }

    #[test]
    fn a_client_id_carries_its_redirect_uris_to_any_instance_and_cannot_be_edited() {
        let file = generate_key_file();
        let keys = SessionKeys::parse(&file).unwrap();
        let registration = Registration {
            redirect_uris: vec!["https://a.example.com/cb".into()],
            issued_at: 1,
        };
        let id = format!(
            "{CLIENT_ID_PREFIX}{}",
            PurposeKeys::new(&keys, Purpose::ClientId).seal(&registration)
        );
        let other_instance = SessionKeys::parse(&file).unwrap();
        let client = Client::open(&other_instance, &id).unwrap();
        assert_eq!(client.registration, registration);
        assert_eq!(client.redirect_uri(None).as_deref(), Some("https://a.example.com/cb"));
        assert_eq!(client.redirect_uri(Some("https://evil.example.com/cb")), None);
        assert!(Client::open(&SessionKeys::parse(&generate_key_file()).unwrap(), &id).is_none());
        assert!(Client::open(&keys, "pgmcc_forged").is_none());
    }
}
