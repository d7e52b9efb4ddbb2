//! reqsign's I/O hooks (file reads for the profile files, HTTP for the container and instance
//! metadata credential endpoints) through tokio and our own rustls reqwest clients, so that
//! credential lookups use the same TLS stack, timeouts and error redaction as the downloads.

use bytes::Bytes;

use super::error::describe_reqwest_error;

/// reqsign's file access (profile files), through tokio.
#[derive(Debug)]
pub struct TokioFileRead;

impl reqsign_core::FileRead for TokioFileRead {
    async fn file_read(&self, path: &str) -> reqsign_core::Result<Vec<u8>> {
        tokio::fs::read(path)
            .await
            .map_err(|e| reqsign_core::Error::unexpected(format!("cannot read {path}: {e}")))
    }
}

/// reqsign's HTTP access (container credentials), through our rustls reqwest client.
#[derive(Debug)]
pub struct ReqwestSend(pub reqwest::Client);

impl reqsign_core::HttpSend for ReqwestSend {
    async fn http_send(&self, request: http::Request<Bytes>) -> reqsign_core::Result<http::Response<Bytes>> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| reqsign_core::Error::unexpected(describe_reqwest_error(e)))?;
        let response = self
            .0
            .execute(request)
            .await
            .map_err(|e| reqsign_core::Error::unexpected(describe_reqwest_error(e)).set_retryable(true))?;
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| reqsign_core::Error::unexpected(describe_reqwest_error(e)))?;
        builder
            .body(body)
            .map_err(|e| reqsign_core::Error::unexpected(e.to_string()))
    }
}
