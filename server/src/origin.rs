//! Origin and Host validation for the routes a browser could be tricked into calling.
//!
//! A web page can make a victim's browser POST to an MCP server it can reach (DNS rebinding, or a
//! server on the victim's network). The MCP transport spec therefore asks servers to validate
//! `Origin`; checking `Host` against a list closes the rebinding variant. Non-browser clients send no
//! `Origin` and are unaffected. Both lists come from config, with loopback and `public_url`'s host
//! and origin always allowed, so an empty config is safe rather than open (a loopback Origin only
//! together with a loopback Host: see [`Policy::check`]). Headers and settings are compared after
//! the one normalisation in `authority`. The lists are computed once, into a [`Policy`] the routes
//! share.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use crate::{
    authority::{HostName, HostPattern, OriginPattern, WebOrigin},
    config::Config,
    http_error::HttpError,
    layer::Around,
};

/// The allowed `Origin` and `Host` values, as configured plus `public_url`'s; loopback is decided
/// by [`Policy::check`] itself.
#[derive(Clone, Debug)]
pub struct Policy {
    lists: Arc<Lists>,
}

#[derive(Debug)]
struct Lists {
    origins: Vec<OriginPattern>,
    hosts: Vec<HostPattern>,
}

impl Policy {
    /// `http.allowed_origins` and `http.allowed_hosts`, each with `public_url`'s origin or host.
    pub fn new(config: &Config) -> Policy {
        let mut origins = config.http.allowed_origins.clone();
        let mut hosts = config.http.allowed_hosts.clone();
        if let Some(public) = config.public_origin() {
            hosts.push(HostPattern::exactly(public.host().clone()));
            origins.push(OriginPattern::exactly(public));
        }
        Policy {
            lists: Arc::new(Lists { origins, hosts }),
        }
    }

    /// Refuses a request whose `Origin` or `Host` is not allowed (403, naming the setting).
    ///
    /// Host: a configured pattern, `public_url`'s host, or loopback (`localhost`, 127.0.0.0/8,
    /// `::1`). Origin, when present: a configured pattern, `public_url`'s origin, or a loopback
    /// `http(s)` page calling a loopback Host. The last rule is what lets a browser tool on this
    /// machine (an inspector on `http://localhost:6274`) call a local server with the default
    /// configuration (issue #13 §A.3), and it stays safe against DNS rebinding: a rebound page has a
    /// foreign origin, and a loopback page calling a name that resolves elsewhere sends that name as
    /// Host, so neither passes. `null` and unparsable origins never pass a non-`*` list.
    pub fn check(&self, request: &Request) -> Result<(), HttpError> {
        let host_header = request
            .header("host")
            .or_else(|| request.uri().host())
            .unwrap_or_default();
        let host = HostName::parse_authority(host_header).ok().map(|(host, _port)| host);
        if let Some(origin) = request.header("origin") {
            let allowed = &self.lists.origins;
            let pass = match WebOrigin::parse(origin) {
                Ok(parsed) => {
                    allowed.iter().any(|a| a.matches(&parsed))
                        || (parsed.is_loopback_web_page() && host.as_ref().is_some_and(HostName::is_loopback))
                }
                // `null`, or not an origin at all: only `*` lets it through.
                Err(_) => allowed.iter().any(OriginPattern::is_any),
            };
            if !pass {
                return Err(HttpError::new(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    format!("Origin `{origin}` is not allowed (http.allowed_origins)"),
                ));
            }
        }
        let allowed = host
            .as_ref()
            .is_some_and(|host| host.is_loopback() || self.lists.hosts.iter().any(|a| a.matches(host)));
        if !allowed {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!("Host `{host_header}` is not allowed (add it to http.allowed_hosts or set public_url)"),
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
