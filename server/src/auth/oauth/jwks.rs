//! The external identity provider's signing keys: discovered from its metadata, cached, refreshed
//! when a token names a key the cache lacks.
//!
//! Every instance fetches and caches the keys on its own: nothing is shared, and a JWKS is public.
//! Two rules shape the cache:
//! - **An unreachable IdP never fails a request whose key is cached.** Lookups read an `ArcSwap`
//!   snapshot; only a miss can wait on the network, and a failed fetch keeps the last good set.
//! - **Unknown `kid`s cannot turn into a flood of fetches.** A miss may fetch only when the last
//!   fetch is old enough: `jwks_refresh_interval` after a success, and after failures an
//!   exponential backoff (1 s, 2 s, 4 s, … capped at 16 × the interval). One fetch runs at a time;
//!   misses arriving meanwhile wait for it and then look again. This is how a key rotation at the IdP
//!   is picked up without a restart: the first token signed with the new key triggers the fetch.
//!
//! A set older than [`MAX_AGE`] is refreshed in the background on the next lookup, so a key the IdP
//! withdrew stops being accepted within about an hour even if no token ever misses.
//!
//! Discovery (RFC 8414 §3, OpenID Connect Discovery 1.0 §4): `/.well-known/oauth-authorization-server`
//! inserted before the issuer's path, then `<issuer>/.well-known/openid-configuration`; the document's
//! `issuer` must equal the configured one (RFC 8414 §3.3), and its `jwks_uri` is used.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, Jwk, JwkSet},
};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Largest metadata or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Age after which a lookup refreshes the set in the background.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// First backoff after a failed fetch.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// One verification key and the algorithms it may verify.
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

/// The keys of one fetch, by `kid` (a key without one is kept under "").
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
}

/// When the next fetch may run.
struct FetchState {
    last_attempt: Option<Instant>,
    consecutive_failures: u32,
    jwks_uri: Option<String>,
}

/// Why the keys could not be fetched (logged, never sent to clients).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: {message}")]
    Document { url: String, message: String },
}

/// The IdP's keys, cached per instance.
pub struct Jwks {
    client: reqwest::Client,
    issuer: String,
    refresh_interval: Duration,
    keys: ArcSwap<KeySet>,
    fetch: Mutex<FetchState>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: Option<String>,
}

impl Jwks {
    pub fn new(issuer: &str, refresh_interval: Duration, request_timeout: Duration) -> Result<Arc<Jwks>, FetchError> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("postgres-mcp/", env!("CARGO_PKG_VERSION")))
            .timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Http {
                url: issuer.to_string(),
                message: e.to_string(),
            })?;
        Ok(Arc::new(Jwks {
            client,
            issuer: issuer.trim_end_matches('/').to_string(),
            refresh_interval,
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetch: Mutex::new(FetchState {
                last_attempt: None,
                consecutive_failures: 0,
                jwks_uri: None,
            }),
        }))
    }

    /// The key named `kid` (`None`: the token names none, which only matches a set's key without
    /// a kid). Waits on the network only on a miss that the backoff allows to fetch.
    pub async fn key(self: &Arc<Self>, kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
        let kid = kid.unwrap_or_default();
        {
            let snapshot = self.keys.load();
            if let Some(key) = snapshot.by_kid.get(kid) {
                if snapshot.fetched_at.is_some_and(|at| at.elapsed() > MAX_AGE) {
                    self.refresh_in_background();
                }
                return Some(key.clone());
            }
        }
        let mut state = self.fetch.lock().await;
        // Another miss may have fetched while this one waited.
        if let Some(key) = self.keys.load().by_kid.get(kid) {
            return Some(key.clone());
        }
        if !self.may_fetch(&state) {
            return None;
        }
        self.fetch_locked(&mut state).await;
        self.keys.load().by_kid.get(kid).cloned()
    }

    /// Fetches now, whatever the backoff says (start-up).
    pub async fn refresh(&self) {
        let mut state = self.fetch.lock().await;
        self.fetch_locked(&mut state).await;
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let jwks = self.clone();
        tokio::spawn(async move {
            // Only one refresh at a time; a lookup never waits for this one.
            let Ok(mut state) = jwks.fetch.try_lock() else {
                return;
            };
            if jwks.may_fetch(&state) {
                jwks.fetch_locked(&mut state).await;
            }
        });
    }

    fn may_fetch(&self, state: &FetchState) -> bool {
        let Some(last) = state.last_attempt else {
            return true;
        };
        let wait = match state.consecutive_failures {
            0 => self.refresh_interval,
            n => FIRST_BACKOFF
                .saturating_mul(1 << (n - 1).min(16))
                .min(self.refresh_interval.saturating_mul(16)),
        };
        last.elapsed() >= wait
    }

    async fn fetch_locked(&self, state: &mut FetchState) {
        state.last_attempt = Some(Instant::now());
        match self.fetch_keys(&mut state.jwks_uri).await {
            Ok(set) => {
                if state.consecutive_failures > 0 {
                    tracing::info!(issuer = %self.issuer, keys = set.by_kid.len(), "identity provider keys fetched again");
                }
                state.consecutive_failures = 0;
                self.keys.store(Arc::new(set));
            }
            Err(error) => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                tracing::warn!(
                    issuer = %self.issuer,
                    failures = state.consecutive_failures,
                    error = %error,
                    "identity provider keys could not be fetched; the cached keys stay in use"
                );
                // The JWKS URL itself may have moved: discover again next time.
                state.jwks_uri = None;
            }
        }
    }

    async fn fetch_keys(&self, jwks_uri: &mut Option<String>) -> Result<KeySet, FetchError> {
        let uri = match jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                *jwks_uri = Some(uri.clone());
                uri
            }
        };
        let body = self.get(&uri).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| FetchError::Document {
            url: uri.clone(),
            message: format!("not a JWK set (RFC 7517 §5): {e}"),
        })?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            match verifying_key(jwk) {
                Some(key) => {
                    by_kid.insert(jwk.common.key_id.clone().unwrap_or_default(), Arc::new(key));
                }
                None => tracing::debug!(kid = ?jwk.common.key_id, "JWK skipped: not an asymmetric signing key"),
            }
        }
        Ok(KeySet {
            by_kid,
            fetched_at: Some(Instant::now()),
        })
    }

    /// The `jwks_uri` from the first metadata document that answers for this issuer.
    async fn discover(&self) -> Result<String, FetchError> {
        let mut last_error = None;
        for url in discovery_urls(&self.issuer) {
            let document = match self.get(&url).await {
                Ok(body) => body,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            let metadata: Metadata = serde_json::from_slice(&document).map_err(|e| FetchError::Document {
                url: url.clone(),
                message: format!("not authorization server metadata: {e}"),
            })?;
            if metadata.issuer.trim_end_matches('/') != self.issuer {
                return Err(FetchError::Document {
                    url,
                    message: format!(
                        "names issuer `{}`, not the configured `{}` (RFC 8414 §3.3)",
                        metadata.issuer, self.issuer
                    ),
                });
            }
            return metadata.jwks_uri.ok_or(FetchError::Document {
                url,
                message: "has no jwks_uri".into(),
            });
        }
        Err(last_error.unwrap_or(FetchError::Document {
            url: self.issuer.clone(),
            message: "no metadata URL".into(),
        }))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let http = |message: String| FetchError::Http {
            url: url.to_string(),
            message,
        };
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| http(e.to_string()))?;
        if !response.status().is_success() {
            return Err(http(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| http(e.to_string()))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(http(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// RFC 8414 §3.1 (well-known inserted before the issuer's path), then OIDC Discovery §4 (appended).
pub fn discovery_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let mut urls = Vec::new();
    if let Some((scheme, rest)) = issuer.split_once("://") {
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let suffix = if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        };
        urls.push(format!(
            "{scheme}://{authority}/.well-known/oauth-authorization-server{suffix}"
        ));
    }
    urls.push(format!("{issuer}/.well-known/openid-configuration"));
    urls
}

/// A JWK usable to verify signatures, with the algorithms its type allows (narrowed to its `alg`
/// when it names one). Symmetric keys (`oct`) are never taken from a JWKS: a public document
/// cannot hold a secret, and accepting one would let anyone sign.
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| !matches!(u, jsonwebtoken::jwk::PublicKeyUse::Signature))
    {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(_) => &[Algorithm::ES256, Algorithm::ES384],
        AlgorithmParameters::OctetKeyPair(_) => &[Algorithm::EdDSA],
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let named = jwk
        .common
        .key_algorithm
        .as_ref()
        .and_then(|a| serde_json::to_value(a).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    let algorithms: Vec<Algorithm> = family
        .iter()
        .copied()
        .filter(|alg| match &named {
            None => true,
            Some(name) => {
                serde_json::to_value(alg)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| s == name))
                    == Some(true)
            }
        })
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { key, algorithms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_inserts_the_well_known_path_before_the_issuer_path_then_appends_oidc() {
        assert_eq!(
            discovery_urls("https://idp.example.com/realms/acme/"),
            vec![
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/acme",
                "https://idp.example.com/realms/acme/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example.com")[0],
            "https://idp.example.com/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_verification_keys() {
        let oct: Jwk = serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"})).unwrap();
        assert!(verifying_key(&oct).is_none());
        let enc: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "enc", "kid": "e",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }))
        .unwrap();
        assert!(verifying_key(&enc).is_none());
        let sig: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": "s", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }))
        .unwrap();
        assert_eq!(verifying_key(&sig).unwrap().algorithms, vec![Algorithm::ES256]);
    }
}
