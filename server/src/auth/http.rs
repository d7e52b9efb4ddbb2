//! The HTTP side of auth: the [`Gate`] in front of `/mcp`, the [`Login`] endpoint behind
//! `POST /api/login`, and how both answer a refused credential.
//!
//! Bearer credentials: order matters, and it is the reverse of a classic lockout. The credential is
//! checked first (a SHA-256 and a map lookup, or one HMAC) and a valid one is served whatever the
//! limiter holds against its client address — see `limiter.rs` for why refusing it would protect
//! nothing. Only a failed check reaches the limiter, which turns the answer from 401 into 429 with
//! `Retry-After` once the client is locked out. A request without any credential is answered 401 and
//! not counted: it guesses nothing, and clients send one to discover how to authenticate. A refusal
//! is logged with its reason and the client IP, never with the credential.
//!
//! Passwords: the check is bcrypt on the blocking pool. Unlike a bearer token, a password can be
//! guessed and its check is expensive, so the limiter is asked *before* bcrypt runs: a locked-out
//! client gets 429 at once, and an admitted login holds a unit of its client's budget until bcrypt
//! answers. A wrong password counts towards the same per-IP budget as bad bearer tokens; a right one
//! counts nothing. The check itself waits for a slot in [`PasswordChecks`] (a bound on concurrent
//! bcrypt runs, issue #13 §B.10); a login that gets none in time is answered 503 with `Retry-After`
//! and counts neither way.

use std::{net::IpAddr, sync::Arc, time::Duration};

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode, web::Json};
use serde::Deserialize;
use tracing::Instrument;

use super::{
    authenticator::Authenticator,
    limiter::{FailedAuthLimiter, Verdict},
    oauth::resource::ResourceServer,
    password_checks::PasswordChecks,
    principal::{AuthFailure, Principal},
    proxies::{InvalidNetwork, TrustedProxies},
};
use crate::{
    config::AuthConfig,
    exchange::Exchange,
    http_error::{HttpError, read_body_limited, require_json_content_type},
    layer::Around,
};

/// Who may pass: the credential check, the failed-auth limiter and the proxies whose
/// `X-Forwarded-For` names the client. One gate per instance, shared by `/mcp`, `/mcp/v1` and
/// `POST /api/login`, so they count failures against one budget per client.
#[derive(Clone)]
pub struct Gate {
    authenticator: Arc<Authenticator>,
    limiter: Arc<FailedAuthLimiter>,
    proxies: Arc<TrustedProxies>,
    checks: PasswordChecks,
    /// OAuth access tokens, when `auth.oauth` is on: checked beside the other credentials, and
    /// named in every 401's `WWW-Authenticate` (RFC 9728 §5.1).
    oauth: Option<Arc<ResourceServer>>,
}

impl Gate {
    pub fn new(authenticator: Arc<Authenticator>, config: &AuthConfig) -> Result<Gate, InvalidNetwork> {
        Ok(Gate {
            authenticator,
            limiter: Arc::new(FailedAuthLimiter::new(&config.rate_limit)),
            proxies: Arc::new(TrustedProxies::parse(&config.trusted_proxies)?),
            checks: PasswordChecks::new(&config.password_checks),
            oauth: None,
        })
    }

    /// The gate also accepting OAuth access tokens for `oauth`'s resource.
    pub fn with_oauth(mut self, oauth: Option<Arc<ResourceServer>>) -> Gate {
        self.oauth = oauth;
        self
    }

    /// The failed-auth limiter, for every route that checks a password.
    pub(crate) fn limiter(&self) -> &FailedAuthLimiter {
        &self.limiter
    }

    /// The client address the limiter keys on, for the OAuth login page.
    pub(crate) fn client_address(&self, request: &Request) -> IpAddr {
        self.client_ip(request)
    }

    /// The instance's password-check slots, for every route that checks a password.
    pub fn password_checks(&self) -> &PasswordChecks {
        &self.checks
    }

    /// `POST /api/login`, counting against this gate's limiter and reading at most `max_body` bytes.
    pub fn login(&self, max_body: u64) -> Login {
        Login {
            gate: self.clone(),
            max_body,
        }
    }

    /// The proxies whose `X-Forwarded-For` names the client: the access log names the client as
    /// the limiter does.
    pub fn proxies(&self) -> Arc<TrustedProxies> {
        self.proxies.clone()
    }

    /// The client address the limiter keys on (see [`TrustedProxies`]).
    fn client_ip(&self, request: &Request) -> IpAddr {
        let peer = request
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.proxies.client_ip(peer, request.header("x-forwarded-for"))
    }

    /// Counts a refused bearer credential against `ip` and answers it: 401, or 429 while locked out.
    fn refuse(&self, ip: IpAddr, failure: AuthFailure) -> HttpError {
        let verdict = match failure {
            // Neither guesses anything: no credential, or a valid token without our scopes.
            AuthFailure::Missing | AuthFailure::InsufficientScope => Verdict::Unauthorized,
            _ => self.limiter.record_failure(ip),
        };
        let error = answer(ip, failure, verdict);
        match &self.oauth {
            Some(oauth) if error.status != StatusCode::TOO_MANY_REQUESTS => {
                let mut error = error;
                error.headers.retain(|(name, _)| *name != "www-authenticate");
                error.with_header("www-authenticate", oauth.challenge(failure))
            }
            _ => error,
        }
    }

    /// Checks the request's credential: an OAuth access token (JWT-shaped) when OAuth is on, else
    /// an API or session token.
    async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthFailure> {
        if let (Some(oauth), Some(token)) = (&self.oauth, header.and_then(bearer_token))
            && ResourceServer::is_jwt(token)
        {
            return oauth.authenticate(token).await;
        }
        self.authenticator.authenticate_header(header)
    }
}

/// The credential of an `Authorization: Bearer …` value (RFC 6750 §2.1; the scheme is
/// case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, credential) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credential.trim())
}

/// An endpoint behind the gate is reached only with a valid credential, whose
/// [`Principal`](super::Principal) it finds in the request's extensions.
impl Around for Gate {
    async fn around<E: Endpoint>(&self, next: &E, mut request: Request) -> Response {
        let span = tracing::info_span!("auth", error.type = tracing::field::Empty);
        let outcome = self
            .authenticate(request.header("authorization"))
            .instrument(span.clone())
            .await;
        if let Err(failure) = &outcome {
            span.record("error.type", failure.label());
        }
        match outcome {
            Ok(principal) => {
                Exchange::of(&request).set_principal(principal.name.clone());
                request.extensions_mut().insert(principal);
                next.get_response(request).await
            }
            Err(failure) => {
                let ip = self.client_ip(&request);
                self.refuse(ip, failure).into_response()
            }
        }
    }
}

/// `POST /api/login`: username and password in, a session token valid on every instance out.
pub struct Login {
    gate: Gate,
    max_body: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

impl Endpoint for Login {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        Ok(match self.login(&mut request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        })
    }
}

impl Login {
    async fn login(&self, request: &mut Request) -> Result<Response, HttpError> {
        let authenticator = &self.gate.authenticator;
        if !authenticator.logins_enabled() {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "logins_disabled",
                "logins are not enabled on this server (auth.users_file)",
            ));
        }
        require_json_content_type(request)?;
        let bytes = read_body_limited(request, self.max_body).await?;
        let login: LoginRequest = serde_json::from_slice(&bytes).map_err(|e| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("body must be {{\"username\": \"…\", \"password\": \"…\"}}: {e}"),
            )
        })?;
        // The name tried, right or wrong: the access log says who logged in, or tried to.
        Exchange::of(request).set_principal(login.username.as_str().into());
        // After the body is read (a malformed one guesses nothing), before bcrypt.
        let ip = self.gate.client_ip(request);
        let attempt = self.gate.limiter.begin_login(ip).map_err(too_many_attempts)?;
        match authenticator
            .login(&self.gate.checks, login.username.clone(), login.password)
            .await
        {
            Ok(session) => {
                attempt.passed();
                metrics::counter!("pgmcp_logins_total", "outcome" => "success").increment(1);
                tracing::info!(user.name = %login.username, expires_at = %session.expires_at, "login");
                Ok(Json(session).into_response())
            }
            Err(AuthFailure::Busy) => {
                // Nothing was checked: the attempt counts neither way.
                attempt.passed();
                metrics::counter!("pgmcp_logins_total", "outcome" => "busy").increment(1);
                Err(HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "login_busy",
                    format!(
                        "too many password logins in progress on this instance; retry in {BUSY_RETRY_AFTER_SECS} s"
                    ),
                )
                .with_header("retry-after", BUSY_RETRY_AFTER_SECS.to_string()))
            }
            Err(failure @ AuthFailure::NotConfigured) => {
                attempt.passed();
                Err(HttpError::new(
                    StatusCode::NOT_FOUND,
                    "logins_disabled",
                    failure.to_string(),
                ))
            }
            Err(failure) => {
                metrics::counter!("pgmcp_logins_total", "outcome" => "failure").increment(1);
                Err(answer(ip, failure, attempt.failed()))
            }
        }
    }
}

/// `Retry-After` of a login refused for want of a password-check slot: about the time a few checks
/// take to finish.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// 429 for a locked-out client's failing attempt (or a login it may not start yet).
fn too_many_attempts(retry_after: Duration) -> HttpError {
    metrics::counter!("pgmcp_rate_limited_total").increment(1);
    // Rounded up: a client that waits exactly this long is not refused again.
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_attempts",
        format!("too many authentication attempts from this address; retry in {seconds} s"),
    )
    .with_header("retry-after", seconds.to_string())
}

/// The answer to a refused credential, once the limiter has given its verdict.
fn answer(ip: IpAddr, failure: AuthFailure, verdict: Verdict) -> HttpError {
    metrics::counter!("pgmcp_auth_failures_total", "reason" => failure.label()).increment(1);
    let locked_out = match verdict {
        Verdict::TooManyAttempts { retry_after } => return too_many_attempts(retry_after),
        Verdict::LockoutStarts => true,
        Verdict::Unauthorized => false,
    };
    tracing::warn!(client.address = %ip, error.r#type = failure.label(), locked_out, "authentication refused");
    let (code, message) = match failure {
        AuthFailure::BadCredentials | AuthFailure::Disabled => {
            ("invalid_grant", "wrong username or password".to_string())
        }
        AuthFailure::Missing => (
            "invalid_request",
            "an Authorization: Bearer token is required".to_string(),
        ),
        other => ("invalid_token", format!("the bearer token was refused: {other}")),
    };
    if failure == AuthFailure::InsufficientScope {
        // RFC 6750 §3.1: a valid token without the scope the resource needs.
        return HttpError::new(StatusCode::FORBIDDEN, "insufficient_scope", message);
    }
    let error = HttpError::new(StatusCode::UNAUTHORIZED, code, message);
    if failure == AuthFailure::Missing {
        error.with_header("www-authenticate", r#"Bearer realm="postgres-mcp""#)
    } else {
        error.with_header(
            "www-authenticate",
            r#"Bearer realm="postgres-mcp", error="invalid_token""#,
        )
    }
}
