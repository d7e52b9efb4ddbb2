//! The outermost middleware: request id, tracing span, timeout, `X-Instance-Id`, request metrics.
//!
//! Every response — including 401s, 413s and timeouts produced further in — leaves through here, so
//! every one carries `X-Instance-Id` (operators and the integration suite use it to see the balancing)
//! and `X-Request-Id` (to find the request's log lines), and is counted once.
//!
//! While the instance drains, every response also carries `Connection: close`: a proxy in front
//! keeps idle keep-alive connections to each instance, and one it writes a POST onto as the server
//! closes it cannot be retried (the rule is in `connections.rs`). Closing each connection after its
//! response during `drain_delay` leaves no idle connection to race with: at the stop, only requests
//! in flight remain, and those finish within `grace`.

use std::time::{Duration, Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use tracing::{Instrument, field::Empty};

use crate::{
    correlation::{self, Correlation},
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
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// What the outermost middleware stamps on every request and response.
#[derive(Clone)]
pub struct RequestContext {
    pub instance: InstanceId,
    pub draining: Draining,
    /// `http.request_timeout`.
    pub timeout: Duration,
}

impl Around for RequestContext {
    async fn around<E: Endpoint>(&self, next: &E, request: Request) -> Response {
        let started = Instant::now();
        let route = route_label(request.uri().path());
        let id = request_id(&request);
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route,
            trace.id = Empty,
            span.id = Empty,
            otel.name = format!("{} {route}", request.method()),
            otel.kind = "server"
        );
        crate::trace_context::adopt_http(&span, request.headers());
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
        metrics::counter!("pgmcp_http_requests_total", "route" => route, "status" => status.to_string()).increment(1);
        metrics::histogram!("pgmcp_http_request_duration_seconds", "route" => route)
            .record(started.elapsed().as_secs_f64());
        span.in_scope(|| tracing::debug!(status, elapsed_us = started.elapsed().as_micros() as u64, "served"));

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
