//! The outermost middleware: request id, tracing span, timeout, `X-Instance-Id`, request metrics and
//! the access log line.
//!
//! Every response — including 401s, 413s and timeouts produced further in — leaves through here, so
//! every one carries `X-Instance-Id` (operators and the integration suite use it to see the balancing)
//! and `X-Request-Id` (to find the request's log lines), and is counted and logged once. What the
//! layers inside learnt (principal, MCP method, tool, whose fault a failure was) comes back in the
//! request's [`Exchange`]: the RED metrics per MCP method and per tool are counted here from it, by
//! outcome class, so a model's bad SQL (`caller_error`) never looks like an outage
//! (`server_error`) — JSON-RPC errors travel in HTTP 200s and tool failures in results, where the
//! HTTP metrics cannot see them.
//!
//! While the instance drains, every response also carries `Connection: close`: a proxy in front
//! keeps idle keep-alive connections to each instance, and one it writes a POST onto as the server
//! closes it cannot be retried (the rule is in `connections.rs`). Closing each connection after its
//! response during `drain_delay` leaves no idle connection to race with: at the stop, only requests
//! in flight remain, and those finish within `grace`.

use std::time::{Duration, Instant};

use std::{net::IpAddr, sync::Arc};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use tracing::{Instrument, field::Empty};

use crate::{
    access_log::{AccessLog, Finished},
    auth::proxies::TrustedProxies,
    correlation::{self, Correlation},
    exchange::{Exchange, Facts},
    http_error::HttpError,
    instance::InstanceId,
    layer::Around,
    shutdown::Draining,
};

/// Route label for metrics: a fixed set, never the raw path.
fn route_label(path: &str) -> &'static str {
    match path {
        "/mcp" | "/mcp/" => "/mcp",
        "/mcp/v1" | "/mcp/v1/" => "/mcp/v1",
        "/health" => "/health",
        "/health/details" => "/health/details",
        "/livez" => "/livez",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/api/login" => "/api/login",
        _ => "other",
    }
}

/// A client-supplied request id is kept when it is short and plain (so it cannot inject log lines).
fn request_id(request: &Request) -> String {
    request
        .header("x-request-id")
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// A random (version 4) UUID in its simple form. The bytes come from the thread's generator
/// (`rand::rng()`, a CSPRNG seeded once per thread), not from `Uuid::new_v4`, which asks the kernel
/// (`getrandom(2)`) on every call: one system call per request, seen in a trace of `make bench` §7.
fn new_request_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().simple().to_string()
}

/// What the outermost middleware stamps on every request and response.
#[derive(Clone)]
pub struct RequestContext {
    pub instance: InstanceId,
    pub draining: Draining,
    /// `http.request_timeout`.
    pub timeout: Duration,
    /// `log.access`.
    pub access_log: AccessLog,
    /// Who may name the client in `X-Forwarded-For` (the same rule as the failed-auth limiter's).
    pub proxies: Arc<TrustedProxies>,
}

impl Around for RequestContext {
    async fn around<E: Endpoint>(&self, next: &E, mut request: Request) -> Response {
        let started = Instant::now();
        let route = route_label(request.uri().path());
        let id = request_id(&request);
        let span = tracing::info_span!(
            "request",
            http.request.id = %id,
            http.request.method = %request.method(),
            http.route = route,
            trace.id = Empty,
            span.id = Empty,
            otel.name = format!("{} {route}", request.method()),
            otel.kind = "server"
        );
        crate::trace_context::adopt_http(&span, request.headers());
        let exchange = Exchange::default();
        request.extensions_mut().insert(exchange.clone());
        let path = request.uri().path().to_string();
        let peer = request.remote_addr().as_socket_addr().map(|a| a.ip());
        let client = self.proxies.client_ip(
            peer.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            request.header("x-forwarded-for"),
        );
        let user_agent = request.header(header::USER_AGENT).map(str::to_string);
        // A body is coming unless Content-Length says 0 (or neither header is sent).
        let has_body = match request.header(header::CONTENT_LENGTH) {
            Some(length) => length.trim() != "0",
            None => request.headers().contains_key(header::TRANSFER_ENCODING),
        };
        metrics::gauge!("pgmcp_http_requests_in_flight").increment(1.0);

        let timeout = self.timeout;
        let correlation = Correlation::new(self.instance.clone(), &id);
        let outcome = correlation::scope(correlation, tokio::time::timeout(timeout, next.get_response(request)))
            .instrument(span.clone())
            .await;
        let mut response = match outcome {
            Ok(response) => response,
            Err(_) => {
                span.in_scope(|| tracing::warn!(timeout = ?timeout, "request timed out"));
                HttpError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    format!("request took longer than {timeout:?} (http.request_timeout)"),
                )
                .into_response()
            }
        };

        metrics::gauge!("pgmcp_http_requests_in_flight").decrement(1.0);
        let status = response.status().as_u16();
        let duration = started.elapsed();
        let facts = exchange.facts();
        if has_body && !facts.body_read {
            // Refused from its head (401, 429, 413, …): the body's bytes are still on the
            // connection, so it is closed, and the client told so rather than finding it dead on its
            // next request (an operator's review: 9 in 300 refused requests' next request failed).
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let finished = Finished {
            route,
            path: &path,
            status,
            client,
            peer,
            user_agent: user_agent.as_deref(),
            duration,
            facts: &facts,
        };
        record_metrics(&finished);
        span.in_scope(|| self.access_log.write(&finished));

        let headers = response.headers_mut();
        if let Ok(value) = self.instance.as_str().parse() {
            headers.insert("x-instance-id", value);
        }
        if let Ok(value) = id.parse() {
            headers.insert("x-request-id", value);
        }
        if self.draining.is_draining() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The request's metrics: HTTP by route and status; MCP by method and tool, by outcome class and
/// `error.type` (every label from a fixed set: see `exchange` and `mcp::outcome`).
fn record_metrics(finished: &Finished<'_>) {
    let route = finished.route;
    let seconds = finished.duration.as_secs_f64();
    metrics::counter!("pgmcp_http_requests_total", "route" => route, "status" => finished.status.to_string())
        .increment(1);
    metrics::histogram!("pgmcp_http_request_duration_seconds", "route" => route).record(seconds);
    let Facts { mcp_method, tool, .. } = finished.facts;
    let Some(method) = *mcp_method else {
        return;
    };
    let outcome = finished.outcome();
    let error_type = finished.failure().map_or("", |f| f.error_type);
    metrics::counter!(
        "pgmcp_mcp_requests_total",
        "method" => method,
        "outcome" => outcome,
        "error_type" => error_type,
    )
    .increment(1);
    metrics::histogram!("pgmcp_mcp_request_duration_seconds", "method" => method).record(seconds);
    if let Some(tool) = *tool {
        metrics::counter!(
            "pgmcp_tool_calls_total",
            "tool" => tool,
            "outcome" => outcome,
            "error_type" => error_type,
        )
        .increment(1);
        metrics::histogram!("pgmcp_tool_call_duration_seconds", "tool" => tool).record(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated ids are version-4 UUIDs (32 hex digits), distinct from call to call.
    #[test]
    fn a_generated_request_id_is_a_fresh_v4_uuid() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(10) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(id.len(), 32);
        }
    }
}
