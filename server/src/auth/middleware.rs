//! The bearer-auth middleware in front of `/mcp`, and the shared failed-auth handling.
//!
//! Order matters: a locked-out client is refused (429) before any credential check, so a brute-force
//! attempt costs this instance one atomic load and a table lookup, not a hash or a bcrypt. A refusal
//! is logged with its reason and the client IP, never with the credential.

use std::{net::IpAddr, sync::Arc};

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use super::AuthFailure;
use crate::{http_error::HttpError, state::AppState};

/// The client address the limiter keys on (see `net::TrustedProxies`).
pub fn client_ip(state: &AppState, request: &Request) -> IpAddr {
    let peer = request
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    state.trusted_proxies.client_ip(peer, request.header("x-forwarded-for"))
}

/// 429 while the client is locked out.
pub fn check_not_locked(state: &AppState, ip: IpAddr) -> Result<(), HttpError> {
    state.limiter.check(ip).map_err(|retry_after| {
        metrics::counter!("pgmcp_rate_limited_total").increment(1);
        let seconds = retry_after.as_secs().max(1);
        HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_attempts",
            format!("too many failed authentication attempts; retry in {seconds} s"),
        )
        .with_header("retry-after", seconds.to_string())
    })
}

/// Counts and logs a refusal; returns the response to send.
pub fn refuse(state: &AppState, ip: IpAddr, failure: AuthFailure) -> HttpError {
    metrics::counter!("pgmcp_auth_failures_total", "reason" => failure.label()).increment(1);
    let locked = state.limiter.record_failure(ip);
    tracing::warn!(client_ip = %ip, reason = failure.label(), locked_out = locked.is_some(), "authentication refused");
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

pub async fn around<E: Endpoint>(next: Arc<E>, mut request: Request) -> poem::Result<Response> {
    let state = request.data::<Arc<AppState>>().cloned().expect("AppState attached");
    let ip = client_ip(&state, &request);
    if let Err(error) = check_not_locked(&state, ip) {
        return Ok(error.into_response());
    }
    match state.auth.authenticate_header(request.header("authorization")) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            Ok(next.get_response(request).await)
        }
        Err(failure) => Ok(refuse(&state, ip, failure).into_response()),
    }
}
