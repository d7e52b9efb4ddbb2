//! Which MCP revision a request speaks, and the header rules that come with it.
//!
//! Three revisions are served side by side, because clients upgrade at their own pace:
//! - 2025-06-18 and 2025-11-25: `initialize` negotiates once; later requests name the version in the
//!   `MCP-Protocol-Version` header (absent means 2025-03-26, per the spec's compatibility rule).
//! - 2026-07-28: no handshake. Every request carries its version and client capabilities in
//!   `params._meta`, `server/discover` replaces `initialize`, and `Mcp-Method` / `Mcp-Name` headers
//!   must repeat the body so proxies can route without parsing it (mismatch: -32020).
//!
//! Nothing here depends on earlier requests, which is what lets any instance answer any request.

use base64::Engine;
use poem::http::{HeaderMap, StatusCode};
use rmcp::model::{ErrorCode, ErrorData, ProtocolVersion};
use serde_json::{Value, json};

/// The revision one request is answered in: one of the three served, or the one a request without
/// any version signal is taken to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Revision {
    /// What a request without any version signal speaks (the spec's compatibility rule); never
    /// served to a client that names it.
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    /// Per-request metadata and the standard headers; no `initialize`.
    V2026_07_28,
}

/// Revisions served, oldest first.
pub const SUPPORTED: [Revision; 3] = [Revision::V2025_06_18, Revision::V2025_11_25, Revision::V2026_07_28];
/// Answer to an `initialize` asking for a revision we do not serve (the handshake exists only
/// before 2026-07-28).
pub const LATEST_WITH_INITIALIZE: Revision = Revision::V2025_11_25;

impl Revision {
    /// A served revision by its name.
    pub fn served(version: &str) -> Option<Revision> {
        SUPPORTED.into_iter().find(|revision| revision.as_str() == version)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Revision::V2025_03_26 => "2025-03-26",
            Revision::V2025_06_18 => "2025-06-18",
            Revision::V2025_11_25 => "2025-11-25",
            Revision::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn protocol_version(self) -> ProtocolVersion {
        match self {
            Revision::V2025_03_26 => ProtocolVersion::V_2025_03_26,
            Revision::V2025_06_18 => ProtocolVersion::V_2025_06_18,
            Revision::V2025_11_25 => ProtocolVersion::V_2025_11_25,
            Revision::V2026_07_28 => ProtocolVersion::V_2026_07_28,
        }
    }

    /// Per-request metadata and standard headers instead of an `initialize` handshake.
    pub fn per_request(self) -> bool {
        self >= Revision::V2026_07_28
    }

    /// Whether arguments a tool refuses are a tool result with `isError: true` rather than a
    /// JSON-RPC -32602. SEP-1303 made them tool execution errors from 2025-11-25 on, so the model
    /// sees what to correct. 2025-06-18's tools page lists "invalid arguments" among the protocol
    /// errors, so that revision (and the 2025-03-26 default) keeps -32602 for every argument the
    /// tool's input schema refuses — type, range, required and unknown fields alike.
    pub fn argument_errors_are_tool_results(self) -> bool {
        self >= Revision::V2025_11_25
    }

    /// The JSON-RPC code of "resource not found": `-32002` up to 2025-11-25 (server/resources,
    /// "Error Handling"), `-32602` Invalid Params from 2026-07-28 on (its changelog, SEP-2164: the
    /// server-error range is for implementations, not protocol semantics).
    pub fn resource_not_found(self) -> ErrorCode {
        if self.per_request() {
            ErrorCode::INVALID_PARAMS
        } else {
            ErrorCode::RESOURCE_NOT_FOUND
        }
    }
}

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
const HEADER_METHOD: &str = "mcp-method";
const HEADER_NAME: &str = "mcp-name";

/// What a JSON value is, for a refusal's message ("got an array").
pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A protocol-level refusal: the JSON-RPC error and the HTTP status to send it with.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    pub status: StatusCode,
    pub error: ErrorData,
}

impl ProtocolError {
    pub(super) fn bad_request(code: ErrorCode, message: impl Into<String>, data: Option<Value>) -> Self {
        ProtocolError {
            status: StatusCode::BAD_REQUEST,
            error: ErrorData::new(code, message.into(), data),
        }
    }

    fn unsupported(requested: &str) -> Self {
        let supported: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
        // Only an absent header means 2025-03-26: an empty one names no version, so it is refused
        // like any version we do not serve, saying what to do instead.
        let named = if requested.trim().is_empty() {
            "(empty MCP-Protocol-Version header; omit the header for 2025-03-26)"
        } else {
            requested
        };
        Self::bad_request(
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
            format!(
                "unsupported protocol version {named}; supported: {}",
                supported.join(", ")
            ),
            Some(json!({"requested": requested, "supported": supported})),
        )
    }

    /// A `_meta` field of 2026-07-28 present with the wrong JSON type (a version given as an
    /// integer, capabilities as `null`): named with the rule, not taken for an absent field.
    fn meta_field(key: &str, rule: &str, got: &Value) -> Self {
        let got = json_type(got);
        Self::bad_request(
            ErrorCode::INVALID_PARAMS,
            format!("request _meta `{key}` must be {rule}; got {got}"),
            None,
        )
    }
}

/// The version `initialize` answers with: the requested one when served, else the latest revision
/// that still has a handshake (the client then decides whether it can speak it).
pub fn negotiate_initialize(requested: &str) -> ProtocolVersion {
    Revision::served(requested)
        .filter(|revision| !revision.per_request())
        .unwrap_or(LATEST_WITH_INITIALIZE)
        .protocol_version()
}

fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ProtocolError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProtocolError::bad_request(
            ErrorCode::HEADER_MISMATCH,
            format!("duplicate {name} header"),
            None,
        ));
    }
    first.to_str().map(Some).map_err(|_| {
        ProtocolError::bad_request(
            ErrorCode::HEADER_MISMATCH,
            format!("{name} header is not valid text"),
            None,
        )
    })
}

/// The revision a message names — in the `MCP-Protocol-Version` header, or in `params._meta` with
/// the same value in the header — checked to be served; a message naming none speaks 2025-03-26.
///
/// Every kind of message goes through this (requests, notifications, responses): a version the
/// server does not serve is refused with 400 whatever the message is, since the client would
/// otherwise take an unanswered notification as understood (issue #13 §A.2; the transports page's
/// "If the server receives a request with an invalid or unsupported MCP-Protocol-Version, it MUST
/// respond with 400 Bad Request").
pub fn message_revision(headers: &HeaderMap, params: Option<&Value>) -> Result<Revision, ProtocolError> {
    let header = single_header(headers, HEADER_PROTOCOL_VERSION)?;
    let meta_version = meta_protocol_version(params)?;

    if let Some(version) = meta_version {
        let Some(header) = header else {
            return Err(ProtocolError::bad_request(
                ErrorCode::HEADER_MISMATCH,
                "request _meta names a protocolVersion but the MCP-Protocol-Version header is missing",
                None,
            ));
        };
        if header != version {
            return Err(ProtocolError::bad_request(
                ErrorCode::HEADER_MISMATCH,
                format!(
                    "MCP-Protocol-Version header ({header}) does not match request _meta protocolVersion ({version})"
                ),
                None,
            ));
        }
    }
    // A version in `_meta` comes with the same one in the header (checked above), so a message
    // names a version exactly when it has the header.
    match meta_version.or(header) {
        None => Ok(Revision::V2025_03_26),
        Some(version) => Revision::served(version).ok_or_else(|| ProtocolError::unsupported(version)),
    }
}

/// `_meta`'s protocol version: absent, or a string (whether it is served is decided with the
/// header); any other JSON type, `null` included, is refused naming the field.
fn meta_protocol_version(params: Option<&Value>) -> Result<Option<&str>, ProtocolError> {
    let Some(value) = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
    else {
        return Ok(None);
    };
    value.as_str().map(Some).ok_or_else(|| {
        let served: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
        ProtocolError::meta_field(
            META_PROTOCOL_VERSION,
            &format!("a string naming a served revision ({})", served.join(", ")),
            value,
        )
    })
}

/// Whether a message names (in its header or `_meta`) a served revision without the handshake —
/// then an `initialize` in it is a method that revision removed, not a handshake to negotiate.
pub fn names_per_request_revision(headers: &HeaderMap, params: Option<&Value>) -> bool {
    let header = headers.get(HEADER_PROTOCOL_VERSION).and_then(|v| v.to_str().ok());
    [meta_protocol_version(params).ok().flatten(), header]
        .into_iter()
        .flatten()
        .any(|version| Revision::served(version).is_some_and(Revision::per_request))
}

/// Methods a revision no longer has: 2026-07-28 removed the `initialize` handshake (replaced by
/// `server/discover` and per-request `_meta`) and `ping` (any request shows liveness) — its
/// changelog, SEP-2575. They are answered like every method the server lacks (-32601, 404 in that
/// revision); earlier revisions keep both.
pub fn removed(revision: Revision, method: &str) -> bool {
    revision.per_request() && matches!(method, "initialize" | "ping")
}

/// Works out the revision of a request and checks its version signals agree
/// ([`message_revision`]), then the per-request `_meta` fields and standard headers of 2026-07-28.
pub fn request_revision(headers: &HeaderMap, method: &str, params: Option<&Value>) -> Result<Revision, ProtocolError> {
    let revision = message_revision(headers, params)?;
    // `server/discover` is a method of the per-request revisions only: a request that names an
    // earlier one (its header) asks for a method that revision does not have, -32601 like any
    // other. Unnamed, it is taken as a per-request client probing, and its `_meta` is checked.
    if method == "server/discover" && !revision.per_request() && headers.contains_key(HEADER_PROTOCOL_VERSION) {
        return Err(ProtocolError {
            status: error_status(revision, ErrorCode::METHOD_NOT_FOUND),
            error: ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "method `server/discover` does not exist in MCP {} (named by the MCP-Protocol-Version \
                     header): that revision starts with `initialize`",
                    revision.as_str()
                ),
                None,
            ),
        });
    }
    let meta = params.and_then(|p| p.get("_meta"));
    if revision.per_request() || method == "server/discover" {
        let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
            .into_iter()
            .filter(|key| meta.and_then(|m| m.get(*key)).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ProtocolError::bad_request(
                ErrorCode::INVALID_PARAMS,
                format!("request _meta is missing required fields: {}", missing.join(", ")),
                None,
            ));
        }
        // ClientCapabilities is an object in the schema; present as anything else it is refused.
        if let Some(capabilities) = meta
            .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
            .filter(|c| !c.is_object())
        {
            return Err(ProtocolError::meta_field(
                META_CLIENT_CAPABILITIES,
                "an object (the client's capabilities; `{}` for none)",
                capabilities,
            ));
        }
    }
    if revision.per_request() {
        check_standard_headers(headers, method, params)?;
    }
    Ok(revision)
}

/// List requests (`tools/list`, `resources/list`, `resources/templates/list`) answer every item in
/// one page and never issue a `nextCursor`, so any `params.cursor` is one this server did not
/// give: -32602, as the pagination page of the specification asks of an invalid cursor ("Invalid
/// cursors SHOULD result in an error with code -32602"), rather than the first page again, which a
/// client paging through would read as more items.
pub fn check_no_cursor(params: Option<&Value>) -> Result<(), ErrorData> {
    match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => Ok(()),
        Some(cursor) => Err(ErrorData::new(
            ErrorCode::INVALID_PARAMS,
            format!(
                "invalid cursor ({} given): this server lists every item in one page and never issues a nextCursor",
                json_type(cursor)
            ),
            None,
        )),
    }
}

/// An `initialize` may carry the version header; if it does, it must agree with the body.
pub fn check_initialize_header(headers: &HeaderMap, requested: &str) -> Result<(), ProtocolError> {
    match single_header(headers, HEADER_PROTOCOL_VERSION)? {
        Some(header) if header.trim().is_empty() => Err(ProtocolError::unsupported(header)),
        Some(header) if header != requested => Err(ProtocolError::bad_request(
            ErrorCode::HEADER_MISMATCH,
            format!(
                "MCP-Protocol-Version header ({header}) does not match initialize params.protocolVersion ({requested})"
            ),
            None,
        )),
        _ => Ok(()),
    }
}

/// The body value `Mcp-Name` must repeat, for the methods that have one.
fn name_in_body<'a>(method: &str, params: Option<&'a Value>) -> Option<&'a str> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return None,
    };
    params?.get(key)?.as_str()
}

/// Header values that are not plain ASCII travel as `=?base64?…?=`.
fn decode_header_value(raw: &str) -> Option<String> {
    match raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(raw.to_string()),
    }
}

fn check_standard_headers(headers: &HeaderMap, method: &str, params: Option<&Value>) -> Result<(), ProtocolError> {
    let mismatch = |message: String| ProtocolError::bad_request(ErrorCode::HEADER_MISMATCH, message, None);
    match single_header(headers, HEADER_METHOD)? {
        None => return Err(mismatch("missing required Mcp-Method header".into())),
        Some(value) if value != method => {
            return Err(mismatch(format!(
                "Mcp-Method header `{value}` does not match body method `{method}`"
            )));
        }
        Some(_) => {}
    }
    if let Some(expected) = name_in_body(method, params) {
        match single_header(headers, HEADER_NAME)? {
            None => {
                return Err(mismatch(format!("missing required Mcp-Name header for `{method}`")));
            }
            Some(raw) => {
                let decoded =
                    decode_header_value(raw).ok_or_else(|| mismatch("Mcp-Name header is not valid Base64".into()))?;
                if decoded != expected {
                    return Err(mismatch(format!(
                        "Mcp-Name header `{decoded}` does not match body value `{expected}`"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Methods whose 2026-07-28 results carry caching directives (`ttlMs`, `cacheScope`).
const CACHEABLE: &[&str] = &[
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Results of 2026-07-28 carry `resultType` (and, for cacheable methods, `ttlMs`/`cacheScope`);
/// older revisions must not see those fields. Caching defaults to "immediately stale, private":
/// the tool list may differ per principal and changes with configuration.
pub fn shape_result(revision: Revision, method: &str, mut result: Value) -> Value {
    if let Value::Object(map) = &mut result {
        if revision.per_request() {
            map.entry("resultType")
                .or_insert_with(|| Value::String("complete".into()));
            if CACHEABLE.contains(&method) {
                map.entry("ttlMs").or_insert_with(|| Value::from(0));
                map.entry("cacheScope")
                    .or_insert_with(|| Value::String("private".into()));
            }
        } else {
            for key in ["resultType", "ttlMs", "cacheScope"] {
                map.remove(key);
            }
        }
    }
    result
}

/// HTTP status for a JSON-RPC error answered in-band: legacy revisions always use 200; 2026-07-28
/// maps "method not found" to 404 so proxies can see it.
pub fn error_status(revision: Revision, code: ErrorCode) -> StatusCode {
    if !revision.per_request() {
        return StatusCode::OK;
    }
    match code {
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        ErrorCode::HEADER_MISMATCH
        | ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn new_params(name: &str) -> Value {
        json!({"name": name, "_meta": {META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: {}}})
    }

    #[test]
    fn initialize_negotiates_served_versions_and_falls_back_to_the_latest_handshake() {
        assert_eq!(negotiate_initialize("2025-06-18"), ProtocolVersion::V_2025_06_18);
        assert_eq!(negotiate_initialize("2025-11-25"), ProtocolVersion::V_2025_11_25);
        assert_eq!(negotiate_initialize("2026-07-28"), ProtocolVersion::V_2025_11_25);
        assert_eq!(negotiate_initialize("1999-01-01"), ProtocolVersion::V_2025_11_25);
    }

    #[test]
    fn legacy_requests_use_the_header_or_the_compatibility_default() {
        let rev = request_revision(&headers(&[("MCP-Protocol-Version", "2025-06-18")]), "tools/list", None).unwrap();
        assert_eq!(rev.as_str(), "2025-06-18");
        assert_eq!(
            request_revision(&headers(&[]), "tools/list", None).unwrap().as_str(),
            "2025-03-26"
        );
        let err =
            request_revision(&headers(&[("MCP-Protocol-Version", "2024-01-01")]), "tools/list", None).unwrap_err();
        assert_eq!(
            (err.status, err.error.code),
            (StatusCode::BAD_REQUEST, ErrorCode::UNSUPPORTED_PROTOCOL_VERSION)
        );
    }

    #[test]
    fn per_request_revision_needs_matching_headers() {
        let good = headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "search_knowledgebase"),
        ]);
        assert!(
            request_revision(&good, "tools/call", Some(&new_params("search_knowledgebase")))
                .unwrap()
                .per_request()
        );

        let wrong_name = headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "other"),
        ]);
        let err = request_revision(&wrong_name, "tools/call", Some(&new_params("search_knowledgebase"))).unwrap_err();
        assert_eq!(
            (err.status, err.error.code),
            (StatusCode::BAD_REQUEST, ErrorCode::HEADER_MISMATCH)
        );

        let wrong_method = headers(&[("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/list")]);
        assert_eq!(
            request_revision(&wrong_method, "tools/call", Some(&new_params("x")))
                .unwrap_err()
                .error
                .code,
            ErrorCode::HEADER_MISMATCH
        );

        let no_method = headers(&[("MCP-Protocol-Version", "2026-07-28")]);
        assert_eq!(
            request_revision(&no_method, "tools/call", Some(&new_params("x")))
                .unwrap_err()
                .error
                .code,
            ErrorCode::HEADER_MISMATCH
        );

        let mismatched_version = headers(&[
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "x"),
        ]);
        assert_eq!(
            request_revision(&mismatched_version, "tools/call", Some(&new_params("x")))
                .unwrap_err()
                .error
                .code,
            ErrorCode::HEADER_MISMATCH
        );
    }

    #[test]
    fn base64_names_are_decoded() {
        let encoded = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode("naïve")
        );
        let h = headers(&[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", &encoded),
        ]);
        assert!(request_revision(&h, "tools/call", Some(&new_params("naïve"))).is_ok());
    }

    #[test]
    fn per_request_revision_needs_its_meta_fields() {
        let h = headers(&[("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/list")]);
        let err = request_revision(&h, "tools/list", Some(&json!({}))).unwrap_err();
        assert_eq!(
            (err.status, err.error.code),
            (StatusCode::BAD_REQUEST, ErrorCode::INVALID_PARAMS)
        );
        assert!(err.error.message.contains("clientCapabilities"));
    }

    #[test]
    fn an_empty_version_header_is_unsupported_not_absent() {
        for value in ["", " ", "\t"] {
            let h = headers(&[("MCP-Protocol-Version", value)]);
            for params in [None, Some(json!({}))] {
                let err = message_revision(&h, params.as_ref()).unwrap_err();
                assert_eq!(
                    (err.status, err.error.code),
                    (StatusCode::BAD_REQUEST, ErrorCode::UNSUPPORTED_PROTOCOL_VERSION),
                    "{value:?}"
                );
                assert!(
                    err.error.message.starts_with(
                        "unsupported protocol version (empty MCP-Protocol-Version header; omit the header for 2025-03-26); supported: 2025-06-18"
                    ),
                    "{}",
                    err.error.message
                );
            }
            let err = check_initialize_header(&h, "2025-11-25").unwrap_err();
            assert_eq!(err.error.code, ErrorCode::UNSUPPORTED_PROTOCOL_VERSION);
        }
        // Only an absent header means 2025-03-26.
        assert_eq!(message_revision(&headers(&[]), None).unwrap(), Revision::V2025_03_26);
    }

    #[test]
    fn meta_fields_of_the_wrong_type_are_refused_naming_the_field_and_the_rule() {
        let h = headers(&[("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/list")]);
        let version_rule = format!(
            "request _meta `{META_PROTOCOL_VERSION}` must be a string naming a served revision (2025-06-18, 2025-11-25, 2026-07-28); got"
        );
        let capabilities_rule = format!(
            "request _meta `{META_CLIENT_CAPABILITIES}` must be an object (the client's capabilities; `{{}}` for none); got"
        );
        for (meta, rule, got) in [
            (
                json!({META_PROTOCOL_VERSION: 20260728, META_CLIENT_CAPABILITIES: {}}),
                &version_rule,
                "a number",
            ),
            (
                json!({META_PROTOCOL_VERSION: null, META_CLIENT_CAPABILITIES: {}}),
                &version_rule,
                "null",
            ),
            (
                json!({META_PROTOCOL_VERSION: {"v": "2026-07-28"}, META_CLIENT_CAPABILITIES: {}}),
                &version_rule,
                "an object",
            ),
            (
                json!({META_PROTOCOL_VERSION: ["2026-07-28"], META_CLIENT_CAPABILITIES: {}}),
                &version_rule,
                "an array",
            ),
            (
                json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: null}),
                &capabilities_rule,
                "null",
            ),
            (
                json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: []}),
                &capabilities_rule,
                "an array",
            ),
            (
                json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: "all"}),
                &capabilities_rule,
                "a string",
            ),
        ] {
            let params = json!({"_meta": meta});
            let err = request_revision(&h, "tools/list", Some(&params)).unwrap_err();
            assert_eq!(
                (err.status, err.error.code),
                (StatusCode::BAD_REQUEST, ErrorCode::INVALID_PARAMS),
                "{params}"
            );
            assert_eq!(err.error.message, format!("{rule} {got}"), "{params}");
        }
    }

    #[test]
    fn result_type_only_for_the_new_revision() {
        let new = Revision::V2026_07_28;
        let old = Revision::V2025_11_25;
        let listed = shape_result(new, "tools/list", json!({"tools": []}));
        assert_eq!(listed["resultType"], "complete");
        assert_eq!(listed["ttlMs"], 0);
        assert_eq!(listed["cacheScope"], "private");
        assert!(
            shape_result(new, "tools/call", json!({"content": []}))
                .get("ttlMs")
                .is_none()
        );
        let old_listed = shape_result(
            old,
            "tools/list",
            json!({"tools": [], "resultType": "complete", "ttlMs": 0}),
        );
        assert!(old_listed.get("resultType").is_none() && old_listed.get("ttlMs").is_none());
    }
}
