//! `postgres-mcp sync`: keep local copies of files that live in object storage (S3 or any
//! S3-compatible store, or any http(s) URL such as a pre-signed one), replacing each destination
//! atomically and only with content the servers will accept.
//!
//! The seed pattern (an init container running `wget` into the shared volume) lets instances read a
//! half-written kb.db and replaces good credentials with whatever arrived. Here, for every item:
//!
//! 1. a conditional GET (`If-None-Match` / `If-Modified-Since` from the [`state`] sidecar) — an
//!    unchanged object costs one 304 and touches nothing;
//! 2. the body streams into a temp file beside the destination, hashed on the way ([`fetch`]);
//!    network errors, 5xx, 429 and short bodies are retried with exponential backoff and jitter;
//! 3. size against Content-Length, the pinned SHA-256 if any, then the server's own loader for the
//!    file's kind ([`verify`]);
//! 4. fsync, rename over the destination, fsync the directory (`atomic_file`), then the
//!    new state is recorded. The servers' reload engine sees the rename and swaps the new version in.
//!
//! Any failure before step 4 deletes the temp file and leaves the destination exactly as it was
//! ([`SyncError`] says which step failed); identical content (a server without validators) is not
//! renamed, so it causes no reload. What to sync comes from the command line or a [`manifest`].
//! The command line itself, logging and the metrics listener are `cli::sync`.

pub mod error;
pub mod fetch;
pub mod manifest;
pub mod s3;
pub mod state;
pub mod verify;

use std::{collections::HashMap, path::Path, time::Duration};

use sha2::{Digest, Sha256};

pub use error::{InvalidItem, ManifestError, SyncError};
pub use fetch::RetryPolicy;
pub use manifest::{Item, Kind, Source};

use error::describe_reqwest_error;
use fetch::{Fetched, Fetcher};
use state::SyncState;

/// What a successful sync of one item did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new version was verified and renamed into place.
    Downloaded {
        size: u64,
        sha256: String,
        /// What verification found ("knowledge base: 12 documents, 40 chunks", "3 tokens").
        detail: String,
    },
    /// The destination already holds the current version.
    Unchanged(Unchanged),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unchanged {
    /// The server answered 304 to our conditional request: nothing was downloaded.
    NotModified,
    /// Downloaded, but byte-for-byte what the destination holds: not replaced.
    SameContent,
}

impl Outcome {
    /// The `outcome` label of `pgmcp_sync_total` (with `failed` for errors).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Downloaded { .. } => "downloaded",
            Outcome::Unchanged(_) => "unchanged",
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Outcome::Downloaded { .. } => "new version verified and renamed into place",
            Outcome::Unchanged(Unchanged::NotModified) => "not modified (HTTP 304)",
            Outcome::Unchanged(Unchanged::SameContent) => "identical content, destination kept",
        }
    }
}

/// Syncs items: one HTTP client and one S3 signer for the whole run.
pub struct Syncer {
    fetcher: Fetcher,
}

impl Syncer {
    /// `env` holds the AWS variables (the process environment in the CLI).
    pub fn new(env: &HashMap<String, String>, retry: RetryPolicy) -> Result<Syncer, SyncError> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("postgres-mcp-sync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SyncError::Client(describe_reqwest_error(e)))?;
        let s3 = s3::S3Access::from_env(env, client.clone());
        Ok(Syncer {
            fetcher: Fetcher::new(client, s3, retry),
        })
    }

    pub fn s3(&self) -> &s3::S3Access {
        self.fetcher.s3()
    }

    /// Syncs one item, logs the outcome and records metrics.
    pub async fn sync(&self, item: &Item) -> Result<Outcome, SyncError> {
        let started = std::time::Instant::now();
        let result = self.sync_quietly(item).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let dest = item.dest_label();
        match &result {
            Ok(outcome) => {
                let (bytes, sha256, detail) = match outcome {
                    Outcome::Downloaded { size, sha256, detail } => {
                        (Some(*size), Some(sha256.as_str()), detail.as_str())
                    }
                    Outcome::Unchanged(_) => (None, None, ""),
                };
                tracing::info!(
                    dest = %dest,
                    source = %item.source,
                    kind = item.kind.label(),
                    outcome = outcome.label(),
                    reason = outcome.reason(),
                    bytes,
                    sha256,
                    detail,
                    elapsed_ms,
                    "sync {}",
                    outcome.label()
                );
            }
            Err(error) => {
                tracing::error!(
                    dest = %dest,
                    source = %item.source,
                    kind = item.kind.label(),
                    outcome = "failed",
                    error = %error,
                    elapsed_ms,
                    "sync failed; destination left as it was"
                );
            }
        }
        record_metrics(item, &result);
        result
    }

    /// Syncs every item in order (all of them, even after a failure).
    pub async fn sync_all(&self, items: &[Item]) -> Vec<Result<Outcome, SyncError>> {
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(self.sync(item).await);
        }
        results
    }

    async fn sync_quietly(&self, item: &Item) -> Result<Outcome, SyncError> {
        let source = item.source.redacted();
        // A pinned hash that differs from what we recorded means "fetch that version", not "304 ok".
        let state = SyncState::load_current(&item.dest, &source)
            .filter(|s| item.sha256.is_none_or(|pin| hex::encode(pin) == s.sha256));
        let validators = state.as_ref().and_then(SyncState::validators);
        let download = match self
            .fetcher
            .fetch(item, validators.as_ref())
            .await
            .map_err(|error| SyncError::Fetch {
                from: source.clone(),
                error,
            })? {
            Fetched::NotModified => return Ok(Outcome::Unchanged(Unchanged::NotModified)),
            Fetched::Downloaded(download) => download,
        };
        if let Some(pin) = item.sha256
            && pin != download.sha256
        {
            return Err(SyncError::ChecksumMismatch {
                from: source,
                expected: hex::encode(pin),
                actual: hex::encode(download.sha256),
                size: download.size,
            });
        }
        let record = |sha256: &[u8; 32]| {
            SyncState::save(
                &item.dest,
                &source,
                sha256,
                download.etag.clone(),
                download.last_modified.clone(),
            )
            .map_err(|error| SyncError::State {
                dest: item.dest.clone(),
                error,
            })
        };
        let current_sha256 = match &state {
            Some(state) => Some(state.sha256.clone()),
            None => {
                let dest = item.dest.clone();
                tokio::task::spawn_blocking(move || sha256_of(&dest))
                    .await
                    .ok()
                    .flatten()
            }
        };
        if current_sha256.as_deref() == Some(hex::encode(download.sha256).as_str()) {
            record(&download.sha256)?;
            return Ok(Outcome::Unchanged(Unchanged::SameContent));
        }

        let (kind, temp) = (item.kind, download.file.path().to_path_buf());
        let detail = tokio::task::spawn_blocking(move || verify::verify(kind, &temp))
            .await
            .map_err(|e| SyncError::Verification(e.to_string()))?
            .map_err(|reason| SyncError::Refused {
                from: source.clone(),
                kind: kind.label(),
                reason,
            })?;
        download.file.commit().map_err(|error| SyncError::Install {
            dest: item.dest.clone(),
            error,
        })?;
        record(&download.sha256)?;
        Ok(Outcome::Downloaded {
            size: download.size,
            sha256: hex::encode(download.sha256),
            detail,
        })
    }

    /// Syncs every item now and then every `interval` (±10 % jitter, so replicas spread their
    /// requests), until `stop` resolves. A sync in progress when `stop` resolves is abandoned; its
    /// temp file is removed and the destination is untouched.
    pub async fn run_every(&self, items: &[Item], interval: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                results = self.sync_all(items) => {
                    let failed = results.iter().filter(|r| r.is_err()).count();
                    tracing::info!(items = items.len(), failed, next_in_s = interval.as_secs_f64(), "sync round finished");
                }
            }
            let pause = interval.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.9..=1.1));
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Hex SHA-256 of a file, if it can be read.
fn sha256_of(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex::encode(hasher.finalize()))
}

/// Registers the sync metrics' help texts (the recorder itself is [`crate::metrics::handle`]).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pgmcp_sync_total",
        "Sync attempts per destination by outcome (downloaded, unchanged, failed)"
    );
    describe_gauge!(
        "pgmcp_sync_last_success_timestamp_seconds",
        "When the destination was last confirmed current (downloaded or unchanged)"
    );
    describe_gauge!(
        "pgmcp_sync_last_failure_timestamp_seconds",
        "When a sync of the destination last failed"
    );
    describe_gauge!("pgmcp_sync_file_bytes", "Size of the destination's current version");
}

fn record_metrics(item: &Item, result: &Result<Outcome, SyncError>) {
    let dest = item.dest_label();
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let outcome = result.as_ref().map_or("failed", Outcome::label);
    metrics::counter!("pgmcp_sync_total", "dest" => dest.clone(), "outcome" => outcome).increment(1);
    match result {
        Ok(_) => {
            metrics::gauge!("pgmcp_sync_last_success_timestamp_seconds", "dest" => dest.clone()).set(now);
            if let Some((size, _)) = state::stat(&item.dest) {
                metrics::gauge!("pgmcp_sync_file_bytes", "dest" => dest).set(size as f64);
            }
        }
        Err(_) => metrics::gauge!("pgmcp_sync_last_failure_timestamp_seconds", "dest" => dest).set(now),
    }
}
