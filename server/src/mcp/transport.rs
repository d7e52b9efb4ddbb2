//! The `/mcp` endpoint: one POST, one JSON-RPC message, one JSON response.
//!
//! Stateless by construction: no `Mcp-Session-Id` is issued or needed, there is no server-to-client
//! SSE stream (any method but POST answers 405, [`STATELESS`]), and each request is answered from its own headers, body
//! and the current snapshots of the shared files — so a load balancer may send each request to a
//! different instance, and an instance may die between two requests of the same client.
//!
//! [`Endpoint`] holds what the route needs and nothing else: the tool and resource tables (whose
//! entries hold their own KB and database handles), the instance name for `initialize`, and the
//! body limit. The `resources` capability is declared exactly when the resource table has entries
//! (a server without a database has none), so `initialize`, `server/discover` and the methods
//! agree. The caller's [`Principal`] comes from the auth gate in front of it.

use poem::{
    IntoResponse, Request, Response,
    http::{HeaderMap, StatusCode},
};
use rmcp::model::{
    CallToolRequestParams, DiscoverResult, ErrorCode, ErrorData, Implementation, InitializeRequestParams,
    InitializeResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, ProtocolVersion,
    ReadResourceRequestParams, ServerCapabilities,
};
use serde_json::{Value, json};
use tracing::Instrument;

use super::{
    jsonrpc::{self, Message, Refused, RequestId},
    outcome,
    protocol::{self, ProtocolError, Revision},
    resources::{ReadError, ResourceTable},
    tools::{DispatchError, ToolTable, tool_error},
};
use crate::{
    auth::Principal,
    exchange::Exchange,
    http_error::{HttpError, read_body_limited, require_json_content_type},
    instance::InstanceId,
};

const INSTRUCTIONS: &str = "Tools for a PostgreSQL deployment and its documentation. Use \
    search_knowledgebase to find documentation sections relevant to a question.";

/// A JSON-RPC error response with the HTTP status it travels with, recorded in `exchange` (its
/// code and whose fault it is: [`outcome::of_jsonrpc_error`]).
fn rpc_error(exchange: &Exchange, status: StatusCode, id: Option<&Value>, error: ErrorData) -> Response {
    exchange.set_jsonrpc_error(error.code.0, outcome::of_jsonrpc_error(error.code));
    crate::trace_context::record_rpc_error(error.code.0);
    let body = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::to_vec(body).expect("JSON values serialize"))
}

/// A notification or a client response: nothing to answer (202), once the version it names is one
/// we serve — an unsupported one is 400 whatever the message kind (issue #13 §A.2).
fn accepted(exchange: &Exchange, headers: &HeaderMap, params: Option<&Value>) -> Response {
    match protocol::message_revision(headers, params) {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(ProtocolError { status, error }) => rpc_error(exchange, status, None, error),
    }
}

/// What a 405 on the MCP routes says (GET and DELETE are what other MCP servers answer with an SSE
/// stream and a session end).
pub const STATELESS: &str = "this server is stateless: POST JSON-RPC messages to this endpoint; there is no SSE stream or session to GET or DELETE";

/// The client must accept a JSON response (an absent Accept header accepts anything). Each media
/// range is parsed by the `mime` crate; the most specific range that matches `application/json`
/// decides, and a quality of 0 means "not acceptable" (RFC 9110 §12.5.1), so
/// `application/json;q=0, */*` refuses JSON while `application/json;q=0.5` accepts it.
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all("accept").iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    // (specificity, quality) of the best-matching range: 2 `application/json`, 1 `application/*`,
    // 0 `*/*`.
    let best = values
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        // RFC 9110 allows whitespace around `;` (`OWS ";" OWS`), which `mime` refuses.
        .filter_map(|range| {
            let range: Vec<&str> = range.split(';').map(str::trim).collect();
            range.join(";").parse::<mime::Mime>().ok()
        })
        .filter_map(|range| {
            let specificity = match (range.type_().as_str(), range.subtype().as_str()) {
                ("application", "json") => 2,
                ("application", "*") => 1,
                ("*", "*") => 0,
                _ => return None,
            };
            let quality = range
                .get_param("q")
                .map_or(Some(1.0), |q| q.as_str().parse::<f32>().ok())
                .unwrap_or(0.0);
            Some((specificity, quality))
        })
        .max_by_key(|(specificity, _)| *specificity);
    best.is_some_and(|(_, quality)| quality > 0.0)
}

/// `POST /mcp`: what the route needs to answer any MCP request.
pub struct Endpoint {
    tools: ToolTable,
    resources: ResourceTable,
    instance: InstanceId,
    max_body: u64,
}

impl Endpoint {
    pub fn new(tools: ToolTable, resources: ResourceTable, instance: InstanceId, max_body: u64) -> Endpoint {
        Endpoint {
            tools,
            resources,
            instance,
            max_body,
        }
    }
}

impl poem::Endpoint for Endpoint {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        Ok(self.handle(request).await)
    }
}

impl Endpoint {
    async fn handle(&self, mut request: Request) -> Response {
        let principal = request
            .extensions_mut()
            .remove::<Principal>()
            .expect("the auth gate runs in front of /mcp");
        let exchange = Exchange::of(&request);
        if !accepts_json(request.headers()) {
            return HttpError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                "Accept must include application/json",
            )
            .into_response();
        }
        if let Err(error) = require_json_content_type(&request) {
            return error.into_response();
        }
        let body = match read_body_limited(&mut request, self.max_body).await {
            Ok(body) => body,
            Err(error) => return error.into_response(),
        };
        let (id, method, params) = match jsonrpc::classify(&body) {
            Ok(Message::Request { id, method, params }) => (id, method, params),
            Ok(Message::Notification { method, params }) => {
                exchange.set_mcp_method(outcome::method_label(&method));
                return accepted(&exchange, request.headers(), params.as_ref());
            }
            Ok(Message::Response) => return accepted(&exchange, request.headers(), None),
            Err(Refused { id, error }) => {
                return rpc_error(
                    &exchange,
                    error.status,
                    id.as_ref().map(RequestId::as_value),
                    error.error,
                );
            }
        };
        exchange.set_mcp_method(outcome::method_label(&method));
        exchange.set_jsonrpc_id(id.as_value());
        let span = crate::trace_context::mcp_span(&method, id.as_value(), params.as_ref(), request.headers());
        self.dispatch(&exchange, &principal, request.headers(), &method, id.as_value(), params)
            .instrument(span)
            .await
    }

    async fn dispatch(
        &self,
        exchange: &Exchange,
        principal: &Principal,
        headers: &HeaderMap,
        method: &str,
        id: &Value,
        params: Option<Value>,
    ) -> Response {
        if method == "initialize" && !protocol::names_per_request_revision(headers, params.as_ref()) {
            return self.initialize(exchange, headers, id, params);
        }
        let revision = match protocol::request_revision(headers, method, params.as_ref()) {
            Ok(revision) => revision,
            Err(ProtocolError { status, error }) => return rpc_error(exchange, status, Some(id), error),
        };
        let outcome = match method {
            removed if protocol::removed(revision, removed) => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "method `{removed}` was removed in MCP {} (SEP-2575): use server/discover and per-request _meta",
                    revision.as_str()
                ),
                None,
            )),
            "ping" => Ok(json!({})),
            "server/discover" => Ok(self.discover()),
            "tools/list" => protocol::check_no_cursor(params.as_ref()).map(|()| {
                serde_json::to_value(ListToolsResult::with_all_items(self.tools.list_for(&principal.tools)))
                    .expect("tools serialize")
            }),
            "tools/call" => self.call_tool(exchange, principal, revision, params).await,
            // Without resources the capability is not declared, and the methods do not exist.
            "resources/list" if !self.resources.is_empty() => protocol::check_no_cursor(params.as_ref()).map(|()| {
                serde_json::to_value(ListResourcesResult::with_all_items(
                    self.resources.list_for(&principal.tools),
                ))
                .expect("resources serialize")
            }),
            "resources/templates/list" if !self.resources.is_empty() => {
                protocol::check_no_cursor(params.as_ref()).map(|()| {
                    serde_json::to_value(ListResourceTemplatesResult::with_all_items(
                        self.resources.templates_for(&principal.tools),
                    ))
                    .expect("resource templates serialize")
                })
            }
            "resources/read" if !self.resources.is_empty() => self.read_resource(principal, revision, params).await,
            other => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("method `{other}` is not supported by this server"),
                None,
            )),
        };
        match outcome {
            Ok(result) => {
                let body =
                    json!({"jsonrpc": "2.0", "id": id, "result": protocol::shape_result(revision, method, result)});
                json_response(StatusCode::OK, &body)
            }
            Err(error) => rpc_error(exchange, protocol::error_status(revision, error.code), Some(id), error),
        }
    }

    fn initialize(&self, exchange: &Exchange, headers: &HeaderMap, id: &Value, params: Option<Value>) -> Response {
        let params: InitializeRequestParams = match params.map(serde_json::from_value).transpose() {
            Ok(Some(params)) => params,
            Ok(None) => {
                return rpc_error(
                    exchange,
                    StatusCode::OK,
                    Some(id),
                    ErrorData::new(ErrorCode::INVALID_PARAMS, "initialize needs params", None),
                );
            }
            Err(error) => {
                return rpc_error(
                    exchange,
                    StatusCode::OK,
                    Some(id),
                    ErrorData::new(
                        ErrorCode::INVALID_PARAMS,
                        format!("invalid initialize params: {error}"),
                        None,
                    ),
                );
            }
        };
        let requested = params.protocol_version.as_str();
        if let Err(ProtocolError { status, error }) = protocol::check_initialize_header(headers, requested) {
            return rpc_error(exchange, status, Some(id), error);
        }
        let version: ProtocolVersion = protocol::negotiate_initialize(requested);
        tracing::debug!(requested, negotiated = version.as_str(), client = %params.client_info.name, "initialize");
        let mut result = InitializeResult::new(self.capabilities());
        result.protocol_version = version;
        result.server_info = server_info();
        result.instructions = Some(format!("{INSTRUCTIONS} Answered by instance {}.", self.instance));
        let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
        json_response(StatusCode::OK, &body)
    }

    /// `tools/call`. Params that are not a `tools/call` (no string `name`, `arguments` not an object;
    /// params that are not an object never get here: [`jsonrpc::classify`]) and an unknown or
    /// forbidden tool are -32602 in every revision; arguments the tool refuses are a tool result
    /// with `isError: true` from 2025-11-25 on, -32602 before ([`Revision::argument_errors_are_tool_results`]).
    async fn call_tool(
        &self,
        exchange: &Exchange,
        principal: &Principal,
        revision: Revision,
        params: Option<Value>,
    ) -> Result<Value, ErrorData> {
        let params: CallToolRequestParams = params
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                ErrorData::new(
                    ErrorCode::INVALID_PARAMS,
                    format!("invalid tools/call params: {e}"),
                    None,
                )
            })?
            .ok_or_else(|| {
                ErrorData::new(
                    ErrorCode::INVALID_PARAMS,
                    "tools/call needs params with a tool `name`",
                    None,
                )
            })?;
        let name = params.name.to_string();
        match self.tools.call(principal, &name, params.arguments).await {
            Ok(called) => {
                exchange.set_tool(called.tool);
                if let Some(failure) = called.failure {
                    exchange.fail(failure);
                }
                Ok(serde_json::to_value(called.result).expect("tool results serialize"))
            }
            Err(error @ DispatchError::UnknownTool(_)) => {
                Err(ErrorData::new(ErrorCode::INVALID_PARAMS, error.to_string(), None))
            }
            Err(error @ DispatchError::NotPermitted { .. }) => {
                if let Some(tool) = error.tool() {
                    exchange.set_tool(tool);
                }
                Err(ErrorData::new(ErrorCode::INVALID_PARAMS, error.to_string(), None))
            }
            Err(error @ DispatchError::InvalidArguments { .. }) => {
                if let Some(tool) = error.tool() {
                    exchange.set_tool(tool);
                }
                if revision.argument_errors_are_tool_results() {
                    exchange.fail(outcome::INVALID_ARGUMENTS);
                    Ok(serde_json::to_value(tool_error(error.to_string())).expect("tool results serialize"))
                } else {
                    Err(ErrorData::new(ErrorCode::INVALID_PARAMS, error.to_string(), None))
                }
            }
        }
    }
}

impl Endpoint {
    /// `resources/read`: the resource's JSON, or an error the spec names — not found (the code of
    /// the revision: [`Revision::resource_not_found`], with the URI in `data`) also for a resource
    /// this credential's scope does not reach, -32603 when reading it failed.
    async fn read_resource(
        &self,
        principal: &Principal,
        revision: Revision,
        params: Option<Value>,
    ) -> Result<Value, ErrorData> {
        let params: ReadResourceRequestParams = params
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                ErrorData::new(
                    ErrorCode::INVALID_PARAMS,
                    format!("invalid resources/read params: {e}"),
                    None,
                )
            })?
            .ok_or_else(|| {
                ErrorData::new(
                    ErrorCode::INVALID_PARAMS,
                    "resources/read needs params with a resource `uri`",
                    None,
                )
            })?;
        match self.resources.read(principal, &params.uri).await {
            Ok(result) => Ok(serde_json::to_value(result).expect("resource contents serialize")),
            Err(error) => {
                let data = Some(json!({"uri": error.uri()}));
                let code = match &error {
                    ReadError::NotFound { .. } | ReadError::NotPermitted { .. } => revision.resource_not_found(),
                    ReadError::Failed { error: cause, .. } => {
                        if cause.may_be_an_outage() {
                            tracing::warn!(error = %cause, "resource read failed: database unavailable or not answering");
                        }
                        ErrorCode::INTERNAL_ERROR
                    }
                };
                Err(ErrorData::new(code, error.to_string(), data))
            }
        }
    }

    /// Tools always (the table may be empty for a credential, not for the server); resources when
    /// any are registered — without subscriptions or change notifications, which need a stream.
    fn capabilities(&self) -> ServerCapabilities {
        let capabilities = ServerCapabilities::builder().enable_tools();
        if self.resources.is_empty() {
            capabilities.build()
        } else {
            capabilities.enable_resources().build()
        }
    }

    fn discover(&self) -> Value {
        let result = DiscoverResult::new(
            protocol::SUPPORTED.map(protocol::Revision::protocol_version).to_vec(),
            self.capabilities(),
        )
        .with_server_info(server_info());
        let mut value = serde_json::to_value(result).expect("discover result serializes");
        value["instructions"] = Value::String(INSTRUCTIONS.into());
        value
    }
}

fn server_info() -> Implementation {
    Implementation::new("postgres-mcp", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("accept", value.parse().unwrap());
        }
        accepts_json(&headers)
    }

    /// RFC 9110 §12.5.1: the most specific matching range decides, and q=0 is "not acceptable".
    #[test]
    fn json_is_acceptable_unless_its_most_specific_range_says_q_0() {
        for yes in [
            &[][..],
            &["application/json, text/event-stream"],
            &["Application/JSON"],
            &["application/json; charset=utf-8"],
            &["application/json;q=0.5"],
            &["*/*"],
            &["application/*;q=0.1"],
            &["text/html", "application/json"],
            &["application/json;q=1, */*;q=0"],
            &["application/json ; q=0.9"],
            &["text/html;level=1,\tapplication/json;\tq=0.8"],
        ] {
            assert!(accept(yes), "{yes:?}");
        }
        for no in [
            &["text/html"][..],
            &["text/event-stream"],
            &["application/json;q=0"],
            &["application/json;q=0.0, */*"],
            &["application/*;q=0, */*"],
            &["*/*;q=0"],
            &["application/json;q=nonsense"],
            &["not a media range"],
        ] {
            assert!(!accept(no), "{no:?}");
        }
    }
}
