//! What a request turned out to be — who sent it, which MCP method and tool it called, and whose
//! fault a failure was — learnt by the layers it passes through and read once, on its way out, by
//! the access log line and the request metrics (`request_context.rs`).
//!
//! Why a record: the outermost layer answers "what was this request?" only after the inner ones
//! ran (a JSON-RPC error travels in an HTTP 200; a failed tool call is a *result* with
//! `isError: true`), and tracing span fields cannot be read back. Why in the request's extensions
//! rather than a task-local: each layer that learns something already holds the request, so the
//! path of every fact is visible in the code, and a layer run without the outer one (a unit test)
//! simply records into a detached [`Exchange`].
//!
//! Why classes: an SRE alerts on *our* failures (database unavailable, pool exhausted, timeouts,
//! internal errors), not on a model's bad SQL — thirty `42P01 undefined_table` answers from one
//! confused model must not look like an outage. Every failure is therefore [`ErrorClass::Caller`]
//! or [`ErrorClass::Server`], with an `error.type` from a fixed set of names (OpenTelemetry's
//! `error.type` attribute: low cardinality, safe as a metric label).

use std::sync::{Arc, Mutex};

/// Whose fault a failure was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request was wrong: bad JSON-RPC, unknown method or tool, invalid arguments, SQL that
    /// PostgreSQL refused, a credential that is not valid. Retrying the same request fails again.
    Caller,
    /// We could not serve a valid request: database unavailable or saturated, a timeout, an
    /// internal error. These are what alerts are for.
    Server,
}

impl ErrorClass {
    /// The metric label / log value: `caller_error` or `server_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Caller => "caller_error",
            ErrorClass::Server => "server_error",
        }
    }
}

/// A failure's class and its `error.type` (a name from a fixed set, e.g. `sql_rejected`,
/// `database_unavailable`, `-32602`; never text from the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: ErrorClass,
    pub error_type: &'static str,
}

impl Failure {
    pub const fn caller(error_type: &'static str) -> Failure {
        Failure {
            class: ErrorClass::Caller,
            error_type,
        }
    }

    pub const fn server(error_type: &'static str) -> Failure {
        Failure {
            class: ErrorClass::Server,
            error_type,
        }
    }
}

/// What the layers learnt about one request. Every field is optional: a `/health` request has none.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The credential's name (token name or username) — never the credential. For a refused
    /// login, the username that was tried.
    pub principal: Option<Arc<str>>,
    /// The JSON-RPC method, when it is one we know (`mcp.method.name`); `other` otherwise.
    pub mcp_method: Option<&'static str>,
    /// The JSON-RPC request id as text (`jsonrpc.request.id`), at most [`MAX_ID_CHARS`] characters.
    pub jsonrpc_id: Option<String>,
    /// The tool a `tools/call` named, when this server offers it (`gen_ai.tool.name`).
    pub tool: Option<&'static str>,
    /// The JSON-RPC error code of the answer (`rpc.response.status_code`).
    pub jsonrpc_error: Option<i32>,
    /// Why the request failed, if it did (at HTTP, JSON-RPC or tool level).
    pub failure: Option<Failure>,
    /// The request's body was read to its end (`http_error::read_body_limited`). A response to a
    /// request whose body was not read — a 401 or 429 refused from its head — closes the
    /// connection and says so: the unread bytes would otherwise be read as the next request's.
    pub body_read: bool,
}

/// Longest JSON-RPC id kept for the log line: ids are client text.
pub const MAX_ID_CHARS: usize = 64;

/// The shared record of one request: cloned into the request's extensions by the outermost layer,
/// written by the layers inside, read by the outermost one when the response leaves.
#[derive(Clone, Debug, Default)]
pub struct Exchange(Arc<Mutex<Facts>>);

impl Exchange {
    /// The record `request` carries, or a detached one (nobody reads it) when no outer layer put one.
    pub fn of(request: &poem::Request) -> Exchange {
        request.extensions().get::<Exchange>().cloned().unwrap_or_default()
    }

    /// A copy of what was learnt so far.
    pub fn facts(&self) -> Facts {
        self.lock().clone()
    }

    pub fn set_principal(&self, name: Arc<str>) {
        self.lock().principal = Some(name);
    }

    pub fn set_mcp_method(&self, method: &'static str) {
        self.lock().mcp_method = Some(method);
    }

    pub fn set_jsonrpc_id(&self, id: &serde_json::Value) {
        let text = match id {
            serde_json::Value::String(text) => text.chars().take(MAX_ID_CHARS).collect(),
            other => other.to_string().chars().take(MAX_ID_CHARS).collect(),
        };
        self.lock().jsonrpc_id = Some(text);
    }

    pub fn set_body_read(&self) {
        self.lock().body_read = true;
    }

    pub fn set_tool(&self, tool: &'static str) {
        self.lock().tool = Some(tool);
    }

    /// Records a JSON-RPC error answer: its code and what class of failure it is.
    pub fn set_jsonrpc_error(&self, code: i32, failure: Failure) {
        let mut facts = self.lock();
        facts.jsonrpc_error = Some(code);
        facts.failure = Some(failure);
    }

    /// Records why the request failed. The first failure recorded wins: the innermost layer that
    /// failed knows best (a tool's `database_unavailable` beats the generic `tool_error`).
    pub fn fail(&self, failure: Failure) {
        let mut facts = self.lock();
        if facts.failure.is_none() {
            facts.failure = Some(failure);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Facts> {
        // Held for a field copy, never across an await; a panic while holding it loses nothing
        // worth refusing the request for.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_failure_is_kept() {
        let exchange = Exchange::default();
        exchange.fail(Failure::server("database_unavailable"));
        exchange.fail(Failure::caller("tool_error"));
        assert_eq!(exchange.facts().failure, Some(Failure::server("database_unavailable")));
    }

    #[test]
    fn long_and_odd_ids_are_cut_to_a_bounded_text() {
        let exchange = Exchange::default();
        exchange.set_jsonrpc_id(&serde_json::Value::String("x".repeat(1000)));
        assert_eq!(exchange.facts().jsonrpc_id.unwrap().len(), MAX_ID_CHARS);
        exchange.set_jsonrpc_id(&serde_json::json!(7));
        assert_eq!(exchange.facts().jsonrpc_id.as_deref(), Some("7"));
    }
}
