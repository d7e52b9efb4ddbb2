//! The JSON-RPC classifier and the revision rules `POST /mcp` applies to every body, with the MCP
//! headers: no input may panic, and the answers must hold the rules of `server/src/mcp/jsonrpc.rs`
//! (a request's id is a string or an integer; a refusal is a 400 with -32700 only for bodies that
//! are not JSON, -32600 otherwise; a notification has no `id`).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use postgres_mcp::{
    fuzzing::{HeaderMap, HeaderName, HeaderValue},
    mcp::{
        jsonrpc::{self, Message},
        protocol,
    },
};
use serde::de::IgnoredAny;

/// An input is laid out like an HTTP request without its first line, so seeds and crashes read
/// as one: `name: value` header lines, a blank line, the body. Without a blank line it is all body.
struct Input<'a> {
    headers: HeaderMap,
    body: &'a [u8],
}

impl<'a> Input<'a> {
    fn split(data: &'a [u8]) -> Input<'a> {
        let mut headers = HeaderMap::new();
        let Some(end) = data.windows(2).position(|w| w == b"\n\n") else {
            return Input { headers, body: data };
        };
        for line in data[..end].split(|&b| b == b'\n') {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
                headers.append(name, value);
            }
        }
        Input {
            headers,
            body: &data[end + 2..],
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::split(data);
    let headers = input.headers;
    // What a JSON parser sees, leniently: whether the body is JSON text, and its top-level keys.
    // Values are skipped, not decoded: JSON's grammar allows a lone surrogate escape ("\ud800")
    // that serde_json's `Value` refuses, and the classifier rightly skips it in a field it does
    // not read.
    let json_text = serde_json::from_slice::<IgnoredAny>(input.body).is_ok();
    let keys: Option<BTreeMap<String, IgnoredAny>> = serde_json::from_slice(input.body).ok();
    match jsonrpc::classify(input.body) {
        Ok(Message::Request { id, method, params }) => {
            assert!(json_text, "a body that is not JSON taken for a request");
            let id = id.as_value();
            assert!(id.is_string() || id.is_i64() || id.is_u64(), "request id {id}");
            if let Ok(revision) = protocol::request_revision(&headers, &method, params.as_ref()) {
                // A removed method is only ever one of a revision without the handshake.
                assert!(!protocol::removed(revision, &method) || revision.per_request());
            }
            let _ = protocol::names_per_request_revision(&headers, params.as_ref());
        }
        Ok(Message::Notification { params, .. }) => {
            let keys = keys.expect("a notification is a JSON object");
            assert!(
                !keys.contains_key("id"),
                "a message with an id taken for a notification"
            );
            let _ = protocol::message_revision(&headers, params.as_ref());
        }
        Ok(Message::Response) => {
            assert!(keys.is_some(), "a response is a JSON object");
            let _ = protocol::message_revision(&headers, None);
        }
        Err(refused) => {
            assert_eq!(refused.status().as_u16(), 400);
            let code = refused.error.error.code.0;
            assert!(code == -32700 || code == -32600, "code {code}");
            // (serde_json's strict reading: a lone surrogate in a field we read is a parse error.)
            if serde_json::from_slice::<serde_json::Value>(input.body).is_ok() {
                assert_eq!(code, -32600, "valid JSON refused as a parse error");
            }
        }
    }
});
