//! Origin and Host validation for the routes a browser could be tricked into calling.
//!
//! A web page can make a victim's browser POST to an MCP server it can reach (DNS rebinding, or a
//! server on the victim's network). The MCP transport spec therefore asks servers to validate
//! `Origin`; checking `Host` against a list closes the rebinding variant. Non-browser clients send no
//! `Origin` and are unaffected. Both lists come from config, with loopback names and `public_url`'s
//! host always included, so an empty config is safe rather than open. They are computed once, into
//! a [`Policy`] the routes share.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use crate::{config::Config, http_error::HttpError, layer::Around, net::strip_port};

/// The allowed `Origin` and `Host` values (`*` allows any).
#[derive(Clone, Debug)]
pub struct Policy {
    lists: Arc<Lists>,
}

#[derive(Debug)]
struct Lists {
    origins: Vec<String>,
    hosts: Vec<String>,
}

impl Policy {
    /// `http.allowed_origins` as given; `http.allowed_hosts` plus loopback and `public_url`'s host.
    pub fn new(config: &Config) -> Policy {
        Policy {
            lists: Arc::new(Lists {
                origins: config.http.allowed_origins.clone(),
                hosts: config.effective_allowed_hosts(),
            }),
        }
    }

    pub fn check(&self, request: &Request) -> Result<(), HttpError> {
        if let Some(origin) = request.header("origin") {
            let allowed = &self.lists.origins;
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
        if !self.lists.hosts.iter().any(|a| a == "*" || *a == host) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!("Host `{host}` is not allowed (add it to http.allowed_hosts or set public_url)"),
            ));
        }
        Ok(())
    }
}

impl Around for Policy {
    async fn around<E: Endpoint>(&self, next: &E, request: Request) -> Response {
        match self.check(&request) {
            Ok(()) => next.get_response(request).await,
            Err(error) => error.into_response(),
        }
    }
}
