//! How an MCP answer is classed for the access log and the metrics (see `crate::exchange`): the
//! method as a label from a fixed set, and a JSON-RPC error as the caller's fault or ours.
//!
//! `error.type` of a JSON-RPC error is its code as text, as OpenTelemetry's MCP conventions ask
//! (`semantic-conventions-genai`, docs/gen-ai/mcp.md). Only `-32603 Internal error` is ours: every
//! other code this server answers says the request was wrong (malformed, an unknown method or tool,
//! invalid params, a protocol revision we do not serve).

use rmcp::model::ErrorCode;

use crate::exchange::Failure;

/// Methods named as themselves in labels and logs; any other is `other` (a client can send any
/// method name, and a label must not take client text).
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// `mcp.method.name` as a bounded label.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

/// Arguments a tool refused, answered as a tool result (2025-11-25 and later).
pub const INVALID_ARGUMENTS: Failure = Failure::caller("invalid_arguments");

/// Whose fault a JSON-RPC error answer is, with its code as `error.type`.
pub fn of_jsonrpc_error(code: ErrorCode) -> Failure {
    match code.0 {
        -32700 => Failure::caller("-32700"),
        -32600 => Failure::caller("-32600"),
        -32601 => Failure::caller("-32601"),
        -32602 => Failure::caller("-32602"),
        // Resource not found (before 2026-07-28): the URI the client asked for.
        -32002 => Failure::caller("-32002"),
        -32022 => Failure::caller("-32022"),
        // A client capability the request needs but did not declare (2026-07-28).
        -32021 => Failure::caller("-32021"),
        // MCP-Protocol-Version / Mcp-Method / Mcp-Name headers that contradict the body (2026-07-28):
        // the client's request (red-team review: these were counted as ours).
        -32020 => Failure::caller("-32020"),
        -32603 => Failure::server("-32603"),
        // Codes we never answer with today: a new one is assumed ours until classed here.
        _ => Failure::server("jsonrpc_error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ErrorClass;

    #[test]
    fn client_method_names_never_become_labels() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("tools/call\n{\"x\":1}"), "other");
        assert_eq!(method_label(&"a".repeat(10_000)), "other");
    }

    #[test]
    fn only_internal_errors_are_ours() {
        // Every code the MCP library defines, which are the codes this server answers with.
        for code in [
            ErrorCode::PARSE_ERROR,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::METHOD_NOT_FOUND,
            ErrorCode::INVALID_PARAMS,
            ErrorCode::RESOURCE_NOT_FOUND,
            ErrorCode::HEADER_MISMATCH,
            ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
        ] {
            let failure = of_jsonrpc_error(code);
            assert_eq!(failure.class, ErrorClass::Caller, "{code:?}");
            assert_eq!(failure.error_type, code.0.to_string(), "{code:?}");
        }
        assert_eq!(of_jsonrpc_error(ErrorCode::INTERNAL_ERROR).class, ErrorClass::Server);
    }
}
