//! The fetcher: one source into a temp file beside its destination — conditional GETs, streaming
//! with a running SHA-256, size checks, and retries with exponential backoff and jitter.
//!
//! Nothing here touches the destination. A download lands in a `PendingFile` (`.NAME.tmp-…` in
//! the destination's directory, so the later rename never crosses a filesystem); every failure path
//! drops it, which deletes it. Whether it may replace the destination is decided by the caller after
//! verification.
//!
//! URLs are logged redacted ([`Source::redacted`]): pre-signed URLs carry their signature (and for
//! temporary credentials a session token) in the query string, so no query string, user info or
//! reqwest error text with a URL in it ever reaches a log line or an error message.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::{StatusCode, header};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{
    dest_dir,
    error::{FetchError, describe_reqwest_error},
    manifest::{Item, Source},
    s3::{S3Access, describe_error, describe_signing_error},
    state::Validators,
};
use crate::atomic_file::{PendingFile, Permissions};

/// How often and how patiently a fetch is retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first delay; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based): exponential, then "equal jitter" (a
    /// uniform pick in the upper half), so replicas that failed together do not retry together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let half = exponential / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// What a fetch produced.
pub enum Fetched {
    /// 304: the destination is current.
    NotModified,
    Downloaded(Download),
}

/// A complete download (its length matched Content-Length) in a temp file beside the destination.
pub struct Download {
    pub file: PendingFile,
    pub size: u64,
    pub sha256: [u8; 32],
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Error bodies are read only this far (S3's XML errors are far smaller).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The HTTP side of a sync run: one connection pool, one S3 signer.
pub struct Fetcher {
    client: reqwest::Client,
    s3: S3Access,
    retry: RetryPolicy,
}

impl Fetcher {
    pub fn new(client: reqwest::Client, s3: S3Access, retry: RetryPolicy) -> Fetcher {
        Fetcher { client, s3, retry }
    }

    pub fn s3(&self) -> &S3Access {
        &self.s3
    }

    /// Fetches `item` with retries. `validators` make the request conditional.
    pub async fn fetch(&self, item: &Item, validators: Option<&Validators>) -> Result<Fetched, FetchError> {
        let mut attempt = 1;
        loop {
            match self.fetch_once(item, validators).await {
                Ok(fetched) => return Ok(fetched),
                Err(error) if error.retryable && attempt < self.retry.attempts => {
                    let delay = self.retry.delay(attempt);
                    tracing::warn!(
                        dest = %item.dest.display(),
                        source = %item.source,
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %error.message,
                        "sync attempt failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(mut error) => {
                    if error.retryable && attempt > 1 {
                        error.message = format!("{} (after {attempt} attempts)", error.message);
                    }
                    return Err(error);
                }
            }
        }
    }

    async fn request(&self, item: &Item, validators: Option<&Validators>) -> Result<reqwest::Request, FetchError> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        // The ETag alone when there is one: RFC 9110 has servers ignore If-Modified-Since next to
        // If-None-Match, but some S3-compatible servers evaluate both, and Last-Modified has
        // one-second resolution, so an object replaced within the same second would look unchanged.
        match validators {
            Some(Validators { etag: Some(etag), .. }) => headers.push(("if-none-match", etag)),
            Some(Validators {
                last_modified: Some(date),
                ..
            }) => headers.push(("if-modified-since", date)),
            _ => {}
        }
        match &item.source {
            Source::Http(url) => {
                let mut request = self.client.get(url.clone());
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                request
                    .build()
                    .map_err(|e| FetchError::fatal(describe_reqwest_error(e)))
            }
            Source::S3(location) => {
                let url = self.s3.object_url(location);
                let mut builder = http::Request::builder().method(http::Method::GET).uri(&url);
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                let (mut parts, ()) = builder
                    .body(())
                    .map_err(|e| FetchError::fatal(format!("invalid request for {location}: {e}")))?
                    .into_parts();
                self.s3.sign(&mut parts).await.map_err(|e| FetchError {
                    message: describe_signing_error(&e),
                    retryable: e.is_retryable(),
                })?;
                reqwest::Request::try_from(http::Request::from_parts(parts, Bytes::new()))
                    .map_err(|e| FetchError::fatal(describe_reqwest_error(e)))
            }
        }
    }

    async fn fetch_once(&self, item: &Item, validators: Option<&Validators>) -> Result<Fetched, FetchError> {
        let request = self.request(item, validators).await?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| FetchError::retry(describe_reqwest_error(e)))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return match validators {
                Some(_) => Ok(Fetched::NotModified),
                None => Err(FetchError::fatal("HTTP 304 Not Modified to an unconditional request")),
            };
        }
        if !status.is_success() {
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while body.len() < MAX_ERROR_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let retryable = status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT;
            return Err(FetchError {
                message: describe_error(status, &headers, &body),
                retryable,
            });
        }
        if status != StatusCode::OK {
            return Err(FetchError::fatal(format!("unexpected HTTP {status} (expected 200)")));
        }
        let header_text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let expected = header_text(header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        let etag = header_text(header::ETAG);
        let last_modified = header_text(header::LAST_MODIFIED);

        let pending = PendingFile::beside(&item.dest, Permissions::new_file(item.kind.mode())).map_err(|e| {
            FetchError::fatal(dest_dir::describe_io_error(
                &dest_dir::dir_of(&item.dest),
                "cannot create a temp file in",
                &e,
            ))
        })?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Private until the commit gives it the destination's mode, owner and group.
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(pending.path()).await.map_err(|e| {
            FetchError::fatal(dest_dir::describe_io_error(
                &dest_dir::dir_of(&item.dest),
                "cannot create a temp file in",
                &e,
            ))
        })?;
        let write_error =
            |e: std::io::Error| FetchError::fatal(format!("cannot write {}: {e}", pending.path().display()));

        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        let of_expected = || expected.map(|n| format!(" of {n}")).unwrap_or_default();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    return Err(FetchError::retry(format!(
                        "download interrupted after {received}{} bytes: {}",
                        of_expected(),
                        describe_reqwest_error(e)
                    )));
                }
            };
            received += chunk.len() as u64;
            if let Some(expected) = expected.filter(|&n| received > n) {
                return Err(FetchError::retry(format!(
                    "received more than the announced Content-Length of {expected} bytes"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
        }
        if let Some(expected) = expected.filter(|&n| n != received) {
            return Err(FetchError::retry(format!(
                "truncated download: received {received} of {expected} bytes (Content-Length)"
            )));
        }
        file.flush().await.map_err(write_error)?;
        drop(file);
        Ok(Fetched::Downloaded(Download {
            file: pending,
            size: received,
            sha256: hasher.finalize().into(),
            etag,
            last_modified,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(policy.delay(9) <= Duration::from_secs(1));
        }
    }
}
