//! Origin and Host validation for the routes a browser could be tricked into calling.
//!
//! A web page can make a victim's browser POST to an MCP server it can reach (DNS rebinding, or a
//! server on the victim's network). The MCP transport spec therefore asks servers to validate
//! `Origin`; checking `Host` against a list closes the rebinding variant. Non-browser clients send no
//! `Origin` and are unaffected. Both lists come from config, with loopback names and `public_url`'s
//! host always included, so an empty config is safe rather than open.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use crate::{http_error::HttpError, net::strip_port, state::AppState};

pub fn check(state: &AppState, request: &Request) -> Result<(), HttpError> {
    if let Some(origin) = request.header("origin") {
        let allowed = &state.config.http.allowed_origins;
        if !allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("Origin `{origin}` is not allowed (http.allowed_origins)"),
            ));
        }
    }
    let host = request
        .header("host")
        .or_else(|| request.uri().host())
        .unwrap_or_default();
    let host = strip_port(host).to_ascii_lowercase();
    if !state.allowed_hosts.iter().any(|a| a == "*" || *a == host) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!("Host `{host}` is not allowed (add it to http.allowed_hosts or set public_url)"),
        ));
    }
    Ok(())
}

pub async fn around<E: Endpoint>(next: Arc<E>, request: Request) -> poem::Result<Response> {
    let state = request.data::<Arc<AppState>>().cloned().expect("AppState attached");
    match check(&state, &request) {
        Ok(()) => Ok(next.get_response(request).await),
        Err(error) => Ok(error.into_response()),
    }
}
