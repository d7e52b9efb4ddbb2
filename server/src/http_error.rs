//! HTTP-level errors with a JSON body that names what is wrong, and body reading with a size limit.
//!
//! Every refusal a client can get before a JSON-RPC message is parsed (auth, size, content type,
//! origin, an unknown path or a method the route lacks) goes through [`HttpError`], so status codes
//! and bodies are consistent across routes: `{"error": "<code>", "message": "<what to fix>"}`.
//! poem's own 404 and 405 have an empty or text body and no `Allow`; the routes answer them with
//! [`not_found`] and [`method_not_allowed`] instead (issue #13 §A.7).

use poem::{IntoResponse, Request, Response, http::StatusCode, web::Json};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra headers (WWW-Authenticate, Retry-After, Allow).
    pub headers: Vec<(&'static str, String)>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"error": self.code, "message": self.message}))).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl From<HttpError> for poem::Error {
    fn from(error: HttpError) -> Self {
        poem::Error::from_response(error.into_response())
    }
}

/// 405 for a method the route lacks, with `Allow` listing the ones it has (RFC 9110 §15.5.6: a
/// 405 MUST carry `Allow`). `allow` is the header value, e.g. `"GET, HEAD"`.
pub fn method_not_allowed(allow: &'static str, message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message).with_header("allow", allow)
}

/// 404 for a path no route serves.
pub fn not_found() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route: MCP is POST /mcp (or /mcp/v1); see also POST /api/login, GET /health, GET /health/details, GET /metrics",
    )
}

/// How long a request body may take to arrive once its head has: as long as a head may
/// (`http.header_read_timeout`'s default). A client that stalls its body is answered
/// `408 Request Timeout`, its fault, where the request deadline (`http.request_timeout`) would have
/// answered 504 and counted it as ours — a red-team review raised the 5xx alarm without a
/// credential by stalling `/api/login` bodies.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the whole body, refusing more than `max` bytes (whether or not Content-Length was sent)
/// and a body not received within [`BODY_READ_TIMEOUT`] (408; the connection is closed, as the
/// rest of the body may still arrive).
pub async fn read_body_limited(request: &mut Request, max: u64) -> Result<bytes::Bytes, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds the limit of {max} bytes (http.max_body)"),
        )
    };
    if let Some(length) = request.header("content-length").and_then(|v| v.parse::<u64>().ok())
        && length > max
    {
        return Err(too_large());
    }
    let body = request.take_body().into_bytes_limit(max as usize);
    match tokio::time::timeout(BODY_READ_TIMEOUT, body).await {
        Err(_) => Err(HttpError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("request body not received within {BODY_READ_TIMEOUT:?} of its head"),
        )
        .with_header("connection", "close")),
        Ok(Ok(bytes)) => {
            crate::exchange::Exchange::of(request).set_body_read();
            Ok(bytes)
        }
        Ok(Err(error)) => Err(match error {
            poem::error::ReadBodyError::PayloadTooLarge => too_large(),
            other => HttpError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("cannot read request body: {other}"),
            ),
        }),
    }
}

/// Requires `Content-Type: application/json` (parameters such as charset allowed).
pub fn require_json_content_type(request: &Request) -> Result<(), HttpError> {
    let content_type = request.header("content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, got `{content_type}`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that never comes is the client's fault, answered within [`BODY_READ_TIMEOUT`] (a
    /// real wait: the test does not pause time).
    #[tokio::test]
    async fn a_stalled_body_is_a_408_that_closes_the_connection() {
        let stalled =
            poem::Body::from_bytes_stream(futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>());
        let mut request = Request::builder().header("content-length", "100").body(stalled);
        let refused = read_body_limited(&mut request, 1024).await.unwrap_err().into_response();
        assert_eq!(refused.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(refused.headers().get("connection").unwrap(), "close");
    }
}
