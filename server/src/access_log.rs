//! The access log: one line per request (logger `access`, level info) answering "who did what,
//! when, from where, and how did it end" — and the per-request metrics, which need the same facts.
//!
//! Field names are OpenTelemetry's semantic conventions (HTTP, client, user, and the MCP conventions
//! of `semantic-conventions-genai`: `mcp.method.name`, `gen_ai.tool.name`, `jsonrpc.request.id`,
//! `rpc.response.status_code`, `error.type`), so a log platform maps them without a parser and they
//! match the attributes of our trace spans. Our own fields carry the `pgmcp.` prefix, as those
//! conventions ask of attributes they do not define. The instance, request id and trace id come
//! from the request span the line is written in (`telemetry.rs` flattens span fields into lines).
//!
//! Probes and `/metrics` are logged only when they fail: a kubelet and a Prometheus scrape every
//! few seconds, and a line per probe would drown the requests an operator looks for. With
//! `log.access.mode: sampled`, every failure is still logged (those are the lines anyone reads) and
//! only `sample_ratio` of the successes.
//!
//! Nothing secret is written: the principal is the credential's *name*; the path, user agent and
//! JSON-RPC id are client text, so they are cut to a bounded length (the formatters escape them).

use std::{net::IpAddr, time::Duration};

use crate::{
    config::{AccessLogConfig, AccessLogMode},
    exchange::{Facts, Failure},
    log_text::bounded,
};

/// Longest path and user agent written to a line (client text: bounded like the JSON-RPC id).
const MAX_CLIENT_TEXT: usize = 256;

/// Routes that are polled by machines and logged only when they fail.
const POLLED_ROUTES: &[&str] = &["/health", "/health/details", "/livez", "/readyz", "/metrics"];

/// Which requests get a line (`log.access`).
#[derive(Clone, Copy, Debug)]
pub struct AccessLog {
    mode: AccessLogMode,
    sample_ratio: f64,
}

/// One finished request, as the outermost layer saw it.
pub struct Finished<'a> {
    /// The route template (`/mcp`, `other` ...), never the raw path.
    pub route: &'static str,
    pub path: &'a str,
    pub status: u16,
    /// The client as the failed-auth limiter sees it: `X-Forwarded-For` read through the trusted
    /// proxies, else the peer.
    pub client: IpAddr,
    /// The TCP peer (the proxy, behind one).
    pub peer: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub duration: Duration,
    pub facts: &'a Facts,
}

impl Finished<'_> {
    /// A route machines poll (probes, scrapes).
    fn polled(&self) -> bool {
        POLLED_ROUTES.contains(&self.route)
    }

    /// The request's failure: recorded by a layer inside, or read from an HTTP error status
    /// (4xx the caller's, 5xx ours). A probe's 503 is its answer, not a failure: `/readyz` says
    /// "draining" through every rollout, and counting that as a server error would page someone
    /// at each deploy.
    pub fn failure(&self) -> Option<Failure> {
        if self.polled() {
            return self.facts.failure;
        }
        self.facts.failure.or(match self.status {
            400..=499 => Some(Failure::caller(http_error_type(self.status))),
            500..=599 => Some(Failure::server(http_error_type(self.status))),
            _ => None,
        })
    }

    /// `ok`, `caller_error` or `server_error`: the `outcome` label and `pgmcp.outcome` field.
    pub fn outcome(&self) -> &'static str {
        self.failure().map_or("ok", |failure| failure.class.as_str())
    }
}

/// `error.type` of a failure known only by its HTTP status: the status code, as OpenTelemetry's
/// HTTP conventions record it.
fn http_error_type(status: u16) -> &'static str {
    match status {
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        408 => "408",
        413 => "413",
        415 => "415",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        other if other < 500 => "4xx",
        _ => "5xx",
    }
}

impl AccessLog {
    pub fn new(config: &AccessLogConfig) -> AccessLog {
        AccessLog {
            mode: config.mode,
            sample_ratio: config.sample_ratio,
        }
    }

    /// Whether `request` gets a line: `draw` is a uniform sample in [0, 1) (injected for tests).
    fn wanted(&self, request: &Finished<'_>, draw: impl FnOnce() -> f64) -> bool {
        let failed = request.status >= 400 || request.failure().is_some();
        if request.polled() && !failed {
            return false;
        }
        match self.mode {
            AccessLogMode::Off => false,
            AccessLogMode::All => true,
            AccessLogMode::Sampled => failed || draw() < self.sample_ratio,
        }
    }

    /// Writes `request`'s line if the mode wants it. Call inside the request's span.
    pub fn write(&self, request: &Finished<'_>) {
        if !self.wanted(request, rand::random::<f64>) {
            return;
        }
        let facts = request.facts;
        let failure = request.failure();
        let path = bounded(request.path, MAX_CLIENT_TEXT);
        let user_agent = request.user_agent.map(|agent| bounded(agent, MAX_CLIENT_TEXT));
        let seconds = request.duration.as_secs_f64();
        let message = match (facts.mcp_method, facts.tool) {
            (Some(method), Some(tool)) => format!("{} {} {method} {tool}", request.route, request.status),
            (Some(method), None) => format!("{} {} {method}", request.route, request.status),
            _ => format!("{} {}", request.route, request.status),
        };
        tracing::event!(
            target: "access",
            tracing::Level::INFO,
            url.path = path,
            http.response.status_code = request.status,
            client.address = %request.client,
            network.peer.address = request.peer.map(tracing::field::display),
            user_agent.original = user_agent,
            // The name a login tried is the client's text too (red-team review: a 1 MB name wrote
            // 1 MB of log per refused login).
            user.name = facts.principal.as_deref().map(|name| bounded(name, MAX_CLIENT_TEXT)),
            mcp.method.name = facts.mcp_method,
            jsonrpc.request.id = facts.jsonrpc_id.as_deref(),
            gen_ai.tool.name = facts.tool,
            rpc.response.status_code = facts.jsonrpc_error,
            error.r#type = failure.map(|f| f.error_type),
            pgmcp.outcome = request.outcome(),
            http.server.request.duration = seconds,
            "{message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished<'a>(route: &'static str, status: u16, facts: &'a Facts) -> Finished<'a> {
        Finished {
            route,
            path: route,
            status,
            client: IpAddr::from([127, 0, 0, 1]),
            peer: None,
            user_agent: None,
            duration: Duration::from_millis(3),
            facts,
        }
    }

    fn log(mode: AccessLogMode, sample_ratio: f64) -> AccessLog {
        AccessLog { mode, sample_ratio }
    }

    #[test]
    fn probes_are_logged_only_when_they_fail() {
        let facts = Facts::default();
        let all = log(AccessLogMode::All, 1.0);
        assert!(!all.wanted(&finished("/health", 200, &facts), || 0.0));
        assert!(!all.wanted(&finished("/metrics", 200, &facts), || 0.0));
        assert!(all.wanted(&finished("/health", 503, &facts), || 0.0));
        assert!(all.wanted(&finished("/mcp", 200, &facts), || 0.0));
    }

    #[test]
    fn sampling_keeps_every_failure_and_a_share_of_successes() {
        let sampled = log(AccessLogMode::Sampled, 0.25);
        let ok = Facts::default();
        assert!(sampled.wanted(&finished("/mcp", 200, &ok), || 0.1));
        assert!(!sampled.wanted(&finished("/mcp", 200, &ok), || 0.3));
        assert!(sampled.wanted(&finished("/mcp", 401, &ok), || 0.99));
        let tool_failed = Facts {
            failure: Some(Failure::caller("sql_rejected")),
            ..Facts::default()
        };
        assert!(sampled.wanted(&finished("/mcp", 200, &tool_failed), || 0.99));
        assert!(!log(AccessLogMode::Off, 1.0).wanted(&finished("/mcp", 500, &ok), || 0.0));
    }

    #[test]
    fn an_http_error_status_is_classed_by_whose_fault_it_is() {
        let facts = Facts::default();
        assert_eq!(finished("/mcp", 200, &facts).outcome(), "ok");
        assert_eq!(finished("/mcp", 401, &facts).outcome(), "caller_error");
        assert_eq!(finished("/mcp", 504, &facts).outcome(), "server_error");
        assert_eq!(finished("/mcp", 504, &facts).failure().unwrap().error_type, "504");
        assert_eq!(
            finished("/readyz", 503, &facts).outcome(),
            "ok",
            "a probe answering 'draining'"
        );
    }
}
