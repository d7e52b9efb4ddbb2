//! `POST /api/login`: username and password in, a session token valid on every instance out.
//!
//! The password check is bcrypt on the blocking pool. Unlike a bearer token, a password can be
//! guessed and its check is expensive, so the failed-auth limiter is asked *before* bcrypt runs: a
//! locked-out client gets 429 at once, and an admitted login holds a unit of its client's budget
//! until bcrypt answers (see `auth/limiter.rs`). A wrong password counts towards the same per-IP
//! budget as bad bearer tokens; a right one counts nothing.

use std::sync::Arc;

use poem::{IntoResponse, Request, Response, http::StatusCode, web::Json};
use serde::Deserialize;

use crate::{
    auth::{
        AuthFailure,
        middleware::{answer, client_ip, too_many_attempts},
    },
    http_error::{HttpError, read_body_limited, require_json_content_type},
    state::AppState,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

pub async fn login(mut request: Request) -> Response {
    match login_inner(&mut request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn login_inner(request: &mut Request) -> Result<Response, HttpError> {
    let state = request.data::<Arc<AppState>>().cloned().expect("AppState attached");
    if !state.auth.logins_enabled() {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "logins_disabled",
            "logins are not enabled on this server (auth.users_file)",
        ));
    }
    require_json_content_type(request)?;
    let max = state.config.http.max_body.bytes();
    let bytes = read_body_limited(request, max).await?;
    let login: LoginRequest = serde_json::from_slice(&bytes).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("body must be {{\"username\": \"…\", \"password\": \"…\"}}: {e}"),
        )
    })?;
    // After the body is read (a malformed one guesses nothing), before bcrypt.
    let ip = client_ip(&state, request);
    let attempt = state.limiter.begin_login(ip).map_err(too_many_attempts)?;
    match state.auth.login(login.username.clone(), login.password).await {
        Ok(session) => {
            attempt.passed();
            metrics::counter!("pgmcp_logins_total", "outcome" => "success").increment(1);
            tracing::info!(user = %login.username, expires_at = %session.expires_at, "login");
            Ok(Json(session).into_response())
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
