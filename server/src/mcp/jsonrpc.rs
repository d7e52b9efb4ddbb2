//! The JSON-RPC 2.0 envelope of one MCP message: body bytes in, a classified [`Message`] or the
//! refusal to answer with out, before any method or revision rule is looked at.
//!
//! Kept apart from the transport so the one function every body goes through ([`classify`]) can be
//! tested and fuzzed on its own (`fuzz/fuzz_targets/jsonrpc.rs`). The rules and their sources:
//!
//! - a request has an `id` that is a string or an integer, never `null` (MCP basic protocol,
//!   "Requests": "Unlike base JSON-RPC, the ID MUST NOT be null"); a *missing* `id` makes a
//!   notification, a *present* one of any other JSON type (null, boolean, fraction, array, object,
//!   an integer beyond 64 bits) is refused with -32600 rather than taken for a notification and
//!   silently dropped (issue #13 §A.1);
//! - a response has exactly one of `result` and `error`, and the id of the request it answers (an
//!   error response may carry `null` when the id could not be read: JSON-RPC 2.0 §5);
//! - a message is a request or notification (`method`) or a response (`result`/`error`), never
//!   both: `{"method":"ping","result":{}}` is refused rather than answered as a ping;
//! - `params`, when present, is an object: JSON-RPC 2.0 §4.2 allows an array or an object, and MCP's
//!   schema narrows it to an object for every request and notification, so an array, a scalar or
//!   `null` makes the message an invalid MCP request (-32600) — whatever the method, before any
//!   method's own params rules (-32602) are looked at;
//! - batches (a top-level array) were removed in 2025-06-18, the oldest revision served, so they
//!   are refused whole (-32600) rather than half-answered;
//! - the body is UTF-8 throughout (RFC 8259 §8.1), also inside fields nobody reads (found by the
//!   fuzz target);
//! - a key given twice (`{"id":1,"id":null}`) is refused: which one a proxy in front reads is not
//!   ours to guess.

use poem::http::StatusCode;
use rmcp::model::ErrorCode;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::protocol::{ProtocolError, json_type};

/// A request id as MCP allows it: a string or a 64-bit integer, kept as the JSON value to echo.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestId(Value);

impl RequestId {
    /// The id if `value` is one MCP allows, or what it is instead (for the refusal's message).
    pub fn parse(value: Value) -> Result<RequestId, &'static str> {
        match &value {
            Value::String(_) => Ok(RequestId(value)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(RequestId(value)),
            // serde_json reads an integer beyond 64 bits as a float, so both land here.
            Value::Number(_) => Err("a number that is not a 64-bit integer"),
            other => Err(json_type(other)),
        }
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }
}

/// One message, classified by the fields it has.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// A `method` and an `id`: answered with a result or an error.
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    /// A `method` and no `id`: never answered (202).
    Notification { method: String, params: Option<Value> },
    /// A `result` or an `error`: the client answering a server request (202; this server sends none).
    Response,
}

/// A body that is not one valid message: the error to answer with, and the id to echo when the
/// body had a valid one.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub id: Option<RequestId>,
    pub error: ProtocolError,
}

/// The fields every JSON-RPC message is made of; `Some(Value::Null)` is a field present as `null`,
/// `None` an absent one.
#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// Keeps an explicit `null` as a value: `Option<Value>` alone reads it as absent.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn refuse(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Refused {
    Refused {
        id,
        error: ProtocolError::bad_request(code, message, None),
    }
}

fn invalid(id: Option<RequestId>, message: impl Into<String>) -> Refused {
    refuse(id, ErrorCode::INVALID_REQUEST, message)
}

/// Classifies one POSTed body. Errors are 400 with -32700 (not JSON) or -32600 (JSON, but not one
/// valid message), their message naming the rule broken.
pub fn classify(body: &[u8]) -> Result<Message, Refused> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(invalid(
            None,
            "JSON-RPC batches are not supported (MCP removed them in 2025-06-18): send one message per request",
        ));
    }
    // RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8. Checked over the whole body
    // because serde skips the fields we do not read (`"x":"\xff"`) without looking inside them.
    let body = std::str::from_utf8(body).map_err(|error| {
        refuse(
            None,
            ErrorCode::PARSE_ERROR,
            format!("body is not valid JSON: not UTF-8 ({error})"),
        )
    })?;
    let envelope: Envelope = serde_json::from_str(body).map_err(|error| {
        if error.is_syntax() || error.is_eof() {
            refuse(None, ErrorCode::PARSE_ERROR, format!("body is not valid JSON: {error}"))
        } else {
            invalid(None, format!("not a JSON-RPC 2.0 message: {error}"))
        }
    })?;
    // The id to echo in a refusal, when it is one we may echo.
    let echo = envelope.id.clone().and_then(|id| RequestId::parse(id).ok());
    if envelope.jsonrpc.as_deref() != Some("2.0") {
        return Err(invalid(echo, "`jsonrpc` must be \"2.0\""));
    }
    if envelope.method.is_some() && (envelope.result.is_some() || envelope.error.is_some()) {
        return Err(invalid(
            echo,
            "a message is a request or notification (`method`) or a response (`result`/`error`), never both",
        ));
    }
    if let Some(params) = envelope
        .params
        .as_ref()
        .filter(|params| envelope.method.is_some() && !params.is_object())
    {
        return Err(invalid(
            echo,
            format!(
                "`params` must be an object when present (MCP narrows JSON-RPC 2.0's structured params to objects; omit it for none); got {}",
                json_type(params)
            ),
        ));
    }
    let id = |rule: &str| -> Result<Option<RequestId>, Refused> {
        envelope
            .id
            .clone()
            .map(RequestId::parse)
            .transpose()
            .map_err(|got| invalid(None, format!("`id` must be a string or an integer ({rule}); got {got}")))
    };
    match (envelope.method, &envelope.result, &envelope.error) {
        (Some(method), _, _) => match id("MCP requests never have a null id; omit it for a notification")? {
            Some(id) => Ok(Message::Request {
                id,
                method,
                params: envelope.params,
            }),
            None => Ok(Message::Notification {
                method,
                params: envelope.params,
            }),
        },
        (None, Some(_), Some(_)) => Err(invalid(echo, "a response has `result` or `error`, never both")),
        (None, Some(_), None) => match id("a response carries the id of the request it answers")? {
            Some(_) => Ok(Message::Response),
            None => Err(invalid(None, "a response must carry the id of the request it answers")),
        },
        // An error response may carry a null id: the peer could not read the request's.
        (None, None, Some(_)) if envelope.id == Some(Value::Null) => Ok(Message::Response),
        (None, None, Some(_)) => id("a response carries the id of the request it answers").map(|_| Message::Response),
        (None, None, None) => Err(invalid(echo, "message has neither `method` nor `result`/`error`")),
    }
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        self.error.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: &str) -> (ErrorCode, String) {
        let refused = classify(body.as_bytes()).unwrap_err();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{body}");
        (refused.error.error.code, refused.error.error.message.to_string())
    }

    #[test]
    fn a_present_id_of_any_type_but_string_or_integer_is_refused_not_taken_for_a_notification() {
        for (id, named) in [
            ("null", "null"),
            ("true", "a boolean"),
            ("1.5", "a number that is not a 64-bit integer"),
            ("1.0", "a number that is not a 64-bit integer"),
            ("1e3", "a number that is not a 64-bit integer"),
            ("18446744073709551616", "a number that is not a 64-bit integer"),
            ("[1]", "an array"),
            ("{\"a\":1}", "an object"),
        ] {
            for method in [
                "tools/list",
                "tools/call",
                "ping",
                "initialize",
                "notifications/initialized",
            ] {
                let body = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{method}\"}}");
                let (code, message) = refused(&body);
                assert_eq!(code, ErrorCode::INVALID_REQUEST, "{body}");
                assert!(message.contains("`id` must be a string or an integer"), "{message}");
                assert!(message.ends_with(&format!("got {named}")), "{message}");
            }
        }
    }

    #[test]
    fn string_and_integer_ids_make_requests_and_a_missing_id_a_notification() {
        for id in [
            json!("a"),
            json!(""),
            json!(0),
            json!(-7),
            json!(i64::MIN),
            json!(u64::MAX),
        ] {
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string();
            assert_eq!(
                classify(body.as_bytes()).unwrap(),
                Message::Request {
                    id: RequestId(id),
                    method: "tools/list".into(),
                    params: None
                }
            );
        }
        let body = br#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#;
        assert_eq!(
            classify(body).unwrap(),
            Message::Notification {
                method: "notifications/initialized".into(),
                params: Some(json!({}))
            }
        );
    }

    #[test]
    fn responses_have_one_of_result_and_error_and_a_valid_id() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","error":{"code":-1,"message":"m"}}"#,
        ] {
            assert_eq!(classify(body.as_bytes()).unwrap(), Message::Response, "{body}");
        }
        for (body, rule) in [
            (r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#, "never both"),
            (r#"{"jsonrpc":"2.0","id":null,"result":{}}"#, "got null"),
            (r#"{"jsonrpc":"2.0","result":{}}"#, "must carry the id"),
            (r#"{"jsonrpc":"2.0","id":true,"error":{}}"#, "got a boolean"),
            (r#"{"jsonrpc":"2.0","id":1}"#, "neither `method`"),
        ] {
            let (code, message) = refused(body);
            assert_eq!(code, ErrorCode::INVALID_REQUEST, "{body}");
            assert!(message.contains(rule), "{body}: {message}");
        }
    }

    #[test]
    fn envelopes_that_are_not_one_message_name_the_rule() {
        for (body, code, rule) in [
            ("{not json", ErrorCode::PARSE_ERROR, "not valid JSON"),
            ("", ErrorCode::PARSE_ERROR, "not valid JSON"),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping""#,
                ErrorCode::PARSE_ERROR,
                "not valid JSON",
            ),
            (" [ ]", ErrorCode::INVALID_REQUEST, "batches"),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                ErrorCode::INVALID_REQUEST,
                "batches",
            ),
            ("42", ErrorCode::INVALID_REQUEST, "not a JSON-RPC 2.0 message"),
            (r#""ping""#, ErrorCode::INVALID_REQUEST, "not a JSON-RPC 2.0 message"),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
                ErrorCode::INVALID_REQUEST,
                "not a JSON-RPC 2.0 message",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"id":null,"method":"ping"}"#,
                ErrorCode::INVALID_REQUEST,
                "duplicate field `id`",
            ),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                ErrorCode::INVALID_REQUEST,
                "\"2.0\"",
            ),
            (r#"{"id":1,"method":"ping"}"#, ErrorCode::INVALID_REQUEST, "\"2.0\""),
        ] {
            let (got, message) = refused(body);
            assert_eq!(got, code, "{body}");
            assert!(message.contains(rule), "{body}: {message}");
        }
        for body in [
            &b"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"unread\":\"\xff\"}"[..],
            b"{\"a\":\"\xc3\"}",
            b"\xff",
        ] {
            let refused = classify(body).unwrap_err();
            assert_eq!(refused.error.error.code, ErrorCode::PARSE_ERROR, "{body:?}");
            assert!(refused.error.error.message.contains("not UTF-8"), "{body:?}");
        }
        // The id is echoed only when it is a valid one.
        let refused = classify(br#"{"jsonrpc":"1.0","id":9,"method":"ping"}"#).unwrap_err();
        assert_eq!(refused.id, Some(RequestId(json!(9))));
    }

    #[test]
    fn a_message_with_a_method_and_a_result_or_error_is_refused_not_answered() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","error":{"code":-1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","result":null}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{},"error":{}}"#,
        ] {
            let (code, message) = refused(body);
            assert_eq!(code, ErrorCode::INVALID_REQUEST, "{body}");
            assert_eq!(
                message,
                "a message is a request or notification (`method`) or a response (`result`/`error`), never both",
                "{body}"
            );
        }
        // The id is echoed when it is a valid one.
        let refused = classify(br#"{"jsonrpc":"2.0","id":"a","method":"ping","result":{}}"#).unwrap_err();
        assert_eq!(refused.id, Some(RequestId(json!("a"))));
    }

    #[test]
    fn params_present_but_not_an_object_are_refused_for_requests_and_notifications() {
        for (params, named) in [
            ("[]", "an array"),
            ("[1,2]", "an array"),
            ("1", "a number"),
            ("\"x\"", "a string"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            for (method, id) in [
                ("tools/list", ",\"id\":1"),
                ("tools/call", ",\"id\":1"),
                ("ping", ",\"id\":\"p\""),
                ("initialize", ",\"id\":1"),
                ("notifications/initialized", ""),
            ] {
                let body = format!("{{\"jsonrpc\":\"2.0\"{id},\"method\":\"{method}\",\"params\":{params}}}");
                let (code, message) = refused(&body);
                assert_eq!(code, ErrorCode::INVALID_REQUEST, "{body}");
                assert!(
                    message.starts_with("`params` must be an object when present")
                        && message.ends_with(&format!("got {named}")),
                    "{body}: {message}"
                );
            }
        }
        // An object, or no params at all, is a message.
        assert!(classify(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}"#).is_ok());
        assert!(classify(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
    }

    /// `fuzz/artifacts/jsonrpc/crash-8c1c0c77…` (headers, blank line, body): invalid UTF-8 inside
    /// an unknown field made the body a notification though it is not JSON.
    #[test]
    fn fuzz_crash_invalid_utf8_in_an_unread_field_is_a_parse_error() {
        use base64::Engine;
        let input = base64::engine::general_purpose::STANDARD
            .decode(
                "bWNwLXByb3RvY29sLXZlcnNpb246IDIwMjYtMDctMjgKbWNwLW1ldGhvZDogaW5pdGlhbGl6ZQoKeyJqc29ucnBjIjoiMi4wIiwic2Qi\
                 OjIsIm1ldGhvZCI6ImluaTxpYWxpemUiLCJwYXRhbXMiOnsiXyNqdGEiOnsiaW8ubW9kZWxjb250ZXh0cHJvdG9jb2wvcHJvdG9jb2xW\
                 ////////////////////////////////ZXJzaW9uIjoiMjAyNi0wNy0yOCIsImlvLm1vZGVsY29udGV4dHByb3RvY29sL2NsaWVudENh\
                 cGFiaWxpdGllcyI6e319fX0=",
            )
            .unwrap();
        let body = &input[input.windows(2).position(|w| w == b"\n\n").unwrap() + 2..];
        assert_eq!(classify(body).unwrap_err().error.error.code, ErrorCode::PARSE_ERROR);
    }
}
