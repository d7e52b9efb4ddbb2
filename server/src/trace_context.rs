//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the trace a request belongs to, taken
//! from its `traceparent` (HTTP header, or an MCP request's `params._meta`) and written into the
//! spans whose fields every log line carries.
//!
//! Two readers need the trace: the log pipeline (`trace.id`/`span.id` on every line of a request, so
//! a log search and a trace view meet) and, when export is on, the OpenTelemetry layer (the exported
//! server span must be a child of the caller's span). One function serves both: it hands the
//! caller's context to the OpenTelemetry layer, then records on the span the ids that layer gave it.
//! With export off there is no such layer, and the ids are made here instead — the caller's trace id
//! (or a new one) and a new span id — so log lines look the same either way.
//!
//! Parsing is opentelemetry's [`TraceContextPropagator`] (version, lengths, hex, all-zero ids and the
//! `ff` version are refused as the specification says); an invalid or absent `traceparent` starts a
//! new trace, as the specification asks of a receiver. No response header is added: W3C
//! `traceresponse` is a draft, and the response's `X-Request-Id` already leads to the request's log
//! lines, which carry the trace id.
//!
//! MCP (SEP-414, semantic conventions `gen-ai/mcp.md`): a client may put `traceparent`/`tracestate`
//! in `params._meta`; the MCP server span then uses that as its parent, since it names the client
//! operation the request belongs to, and keeps the HTTP span's parent otherwise.

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{IdGenerator, RandomIdGenerator},
};
use poem::http::HeaderMap;
use serde_json::Value;
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request span gets its trace from the HTTP `traceparent`/`tracestate` headers: it becomes the
/// exported span's parent, and `trace.id`/`span.id` (32 and 16 lowercase hex digits) are recorded on
/// `span`, which must declare both fields (`trace.id = Empty, span.id = Empty`).
pub fn adopt_http(span: &Span, headers: &HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    adopt(span, parent);
}

/// The MCP server span of one JSON-RPC request: named `{mcp.method.name} {gen_ai.tool.name}` (the
/// tool only for `tools/call`), with the MCP semantic-convention attributes, and a child of
/// `params._meta.traceparent` when that is valid (else of the current span, the HTTP request's).
/// `error.type` and `rpc.response.status_code` are declared for [`record_rpc_error`].
pub fn mcp_span(method: &str, id: &Value, params: Option<&Value>, headers: &HeaderMap) -> Span {
    let tool = (method == "tools/call")
        .then(|| params?.get("name")?.as_str())
        .flatten();
    let name = match tool {
        Some(tool) => format!("{method} {tool}"),
        None => method.to_string(),
    };
    let span = tracing::info_span!(
        "mcp",
        otel.name = %name,
        otel.kind = "server",
        mcp.method.name = %method,
        gen_ai.tool.name = tool,
        gen_ai.operation.name = tool.map(|_| "execute_tool"),
        jsonrpc.request.id = %request_id_text(id),
        mcp.protocol.version = protocol_version(headers, params),
        error.type = Empty,
        rpc.response.status_code = Empty,
        trace.id = Empty,
        span.id = Empty,
    );
    let meta = params.and_then(|p| p.get("_meta")).and_then(Value::as_object);
    if let Some(meta) = meta {
        let parent = TraceContextPropagator::new().extract(&Meta(meta));
        if parent.span().span_context().is_valid() {
            // A trace of its own (the client's operation), so its lines carry its ids.
            adopt(&span, parent);
        }
    }
    span
}

/// Marks the current MCP span (if any) as failed with JSON-RPC error `code` (`error.type` is the
/// code as text, as the MCP conventions ask; `rpc.response.status_code` the number).
pub fn record_rpc_error(code: i32) {
    let span = Span::current();
    span.record("error.type", code.to_string());
    span.record("rpc.response.status_code", code);
}

/// Hands `parent` to the OpenTelemetry layer (if there is one) and records the span's ids.
fn adopt(span: &Span, parent: Context) {
    let remote = parent.span().span_context().clone();
    // Fails only without the OpenTelemetry layer (export off), handled below.
    let _ = span.set_parent(parent);
    let own = span.context().span().span_context().clone();
    let (trace_id, span_id) = if own.is_valid() {
        (own.trace_id(), own.span_id())
    } else {
        let ids = RandomIdGenerator::default();
        let trace_id = if remote.is_valid() {
            remote.trace_id()
        } else {
            ids.new_trace_id()
        };
        (trace_id, ids.new_span_id())
    };
    span.record("trace.id", trace_id.to_string());
    span.record("span.id", span_id.to_string());
}

/// `jsonrpc.request.id`: a string id as is, a number as its digits.
fn request_id_text(id: &Value) -> String {
    match id {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `mcp.protocol.version` as the request names it: the `MCP-Protocol-Version` header, `_meta` (2026
/// revisions) or `initialize`'s `protocolVersion`; absent otherwise. Only recorded, never trusted:
/// the transport decides which revision is served.
fn protocol_version<'a>(headers: &'a HeaderMap, params: Option<&'a Value>) -> Option<&'a str> {
    if let Some(header) = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()) {
        return Some(header);
    }
    let params = params?;
    params
        .get("_meta")
        .and_then(|meta| meta.get("io.modelcontextprotocol/protocolVersion"))
        .or_else(|| params.get("protocolVersion"))
        .and_then(Value::as_str)
}

/// The exact `traceparent` layout (`vv-<32 hex>-<16 hex>-ff`, lowercase; a later version may add
/// `-…`): the propagator checks the values (zero ids, version `ff`, case) but not every length.
fn well_formed(traceparent: &str) -> bool {
    let b = traceparent.trim().as_bytes();
    let hex = |part: &[u8]| part.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    b.len() >= 55
        && hex(&b[0..2])
        && b[2] == b'-'
        && hex(&b[3..35])
        && b[35] == b'-'
        && hex(&b[36..52])
        && b[52] == b'-'
        && hex(&b[53..55])
        && (b.len() == 55 || (&b[0..2] != b"00" && b[55] == b'-'))
}

/// What the propagator may read: `traceparent` only when [`well_formed`].
fn checked<'a>(key: &str, value: Option<&'a str>) -> Option<&'a str> {
    value.filter(|value| !key.eq_ignore_ascii_case("traceparent") || well_formed(value))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        checked(key, self.0.get(key).and_then(|value| value.to_str().ok()))
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct Meta<'a>(&'a serde_json::Map<String, Value>);

impl Extractor for Meta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        checked(key, self.0.get(key).and_then(Value::as_str))
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(traceparent: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        headers
    }

    #[test]
    fn a_valid_traceparent_header_gives_its_trace_id() {
        let parent = TraceContextPropagator::new().extract(&Headers(&headers(TRACEPARENT)));
        let context = parent.span().span_context().clone();
        assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled() && context.is_remote());
    }

    #[test]
    fn an_invalid_traceparent_is_no_parent() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let parent = TraceContextPropagator::new().extract(&Headers(&headers(bad)));
            assert!(!parent.span().span_context().is_valid(), "{bad}");
        }
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let parent = TraceContextPropagator::new().extract(&Headers(&headers(later)));
        assert!(parent.span().span_context().is_valid());
    }

    #[test]
    fn meta_traceparent_is_read_from_the_params() {
        let params = serde_json::json!({"name": "x", "_meta": {"traceparent": TRACEPARENT, "tracestate": "k=v"}});
        let meta = params["_meta"].as_object().unwrap();
        let parent = TraceContextPropagator::new().extract(&Meta(meta));
        assert_eq!(
            parent.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span().span_context().trace_state().get("k"), Some("v"));
    }

    #[test]
    fn mcp_attributes_follow_the_conventions() {
        assert_eq!(request_id_text(&serde_json::json!(7)), "7");
        assert_eq!(request_id_text(&serde_json::json!("a-1")), "a-1");
        let none = HeaderMap::new();
        let params = serde_json::json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        assert_eq!(protocol_version(&none, Some(&params)), Some("2026-07-28"));
        let params = serde_json::json!({"protocolVersion": "2025-06-18"});
        assert_eq!(protocol_version(&none, Some(&params)), Some("2025-06-18"));
        let mut header = HeaderMap::new();
        header.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
        assert_eq!(protocol_version(&header, Some(&params)), Some("2025-11-25"));
        assert_eq!(protocol_version(&none, None), None);
    }
}
