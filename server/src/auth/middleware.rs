//! The bearer-auth middleware in front of `/mcp`, and how refused credentials are answered (shared
//! with `POST /api/login`).
//!
//! Order matters, and it is the reverse of a classic lockout: the credential is checked first (a
//! SHA-256 and a map lookup, or one HMAC) and a valid one is served whatever the limiter holds
//! against its client address — see `limiter.rs` for why refusing it would protect nothing. Only a
//! failed check reaches the limiter, which turns the answer from 401 into 429 with `Retry-After`
//! once the client is locked out. A request without any credential is answered 401 and not counted:
//! it guesses nothing, and clients send one to discover how to authenticate. A refusal is logged
//! with its reason and the client IP, never with the credential.

use std::{net::IpAddr, sync::Arc, time::Duration};

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use super::{AuthFailure, limiter::Verdict};
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

/// 429 for a locked-out client's failing attempt (or a login it may not start yet).
pub fn too_many_attempts(retry_after: Duration) -> HttpError {
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

/// Counts a refused bearer credential against `ip` and answers it: 401, or 429 while locked out.
pub fn refuse(state: &AppState, ip: IpAddr, failure: AuthFailure) -> HttpError {
    let verdict = match failure {
        AuthFailure::Missing => Verdict::Unauthorized,
        _ => state.limiter.record_failure(ip),
    };
    answer(ip, failure, verdict)
}

/// The answer to a refused credential, once the limiter has given its verdict.
pub fn answer(ip: IpAddr, failure: AuthFailure, verdict: Verdict) -> HttpError {
    metrics::counter!("pgmcp_auth_failures_total", "reason" => failure.label()).increment(1);
    let locked_out = match verdict {
        Verdict::TooManyAttempts { retry_after } => return too_many_attempts(retry_after),
        Verdict::LockoutStarts => true,
        Verdict::Unauthorized => false,
    };
    tracing::warn!(client_ip = %ip, reason = failure.label(), locked_out, "authentication refused");
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
    match state.auth.authenticate_header(request.header("authorization")) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            Ok(next.get_response(request).await)
        }
        Err(failure) => {
            let ip = client_ip(&state, &request);
            Ok(refuse(&state, ip, failure).into_response())
        }
    }
}
