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
//!
//! Before step 1 the destination's directory is checked ([`dest_dir`]: it must exist unless
//! `--create-dest-dirs`, and be writable, or the error names the uid and the fix). After step 3 a
//! tokens or users file with no entries may not replace one with entries unless the item allows it.
//! A version refused at step 3 is remembered ([`rejected`]) and not downloaded again until the
//! object changes.
//!
//! Items are independent: `--once` syncs them concurrently, interval mode runs one loop per item
//! with its own [`schedule`] (interval ±10 % after a success, backoff after failures) and its own
//! [`health`] record, so a hung kb.db download never delays a tokens.yaml rotation. Every round of
//! an item is bounded by the per-item deadline (`--item-timeout`, default 10 min). Without it a
//! round could last, in the worst case, `attempts × (10 s connect + 60 s per read)` plus the retry
//! pauses (at most 0.5 + 1 + 2 + 4 s): 357.5 s with the default 5 attempts — longer still for a
//! body that trickles, since the 60 s read timeout is per read, not per body.

pub mod dest_dir;
pub mod error;
pub mod fetch;
pub mod health;
pub mod imds;
pub mod manifest;
pub mod rejected;
pub mod reqsign_io;
pub mod s3;
pub mod schedule;
pub mod state;
pub mod verify;

use std::{collections::HashMap, path::Path, time::Duration};

use sha2::{Digest, Sha256};

pub use error::{InvalidItem, ManifestError, SyncError};
pub use fetch::RetryPolicy;
pub use manifest::{Item, Kind, Source};

use error::describe_reqwest_error;
use fetch::{Download, Fetched, Fetcher};
use health::SyncHealth;
use rejected::{RejectedVersion, RejectedVersions};
use schedule::RoundSchedule;
use state::SyncState;

/// The default per-item deadline of one round (`--item-timeout`).
pub const DEFAULT_ITEM_TIMEOUT: Duration = Duration::from_secs(600);

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
    rejected: RejectedVersions,
    create_dest_dirs: bool,
    item_timeout: Duration,
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
            rejected: RejectedVersions::default(),
            create_dest_dirs: false,
            item_timeout: DEFAULT_ITEM_TIMEOUT,
        })
    }

    /// Whether a missing destination directory is created (default: refused, naming it).
    pub fn with_create_dest_dirs(self, create_dest_dirs: bool) -> Syncer {
        Syncer {
            create_dest_dirs,
            ..self
        }
    }

    /// The deadline of one item's round (default [`DEFAULT_ITEM_TIMEOUT`]).
    pub fn with_item_timeout(self, item_timeout: Duration) -> Syncer {
        Syncer { item_timeout, ..self }
    }

    pub fn item_timeout(&self) -> Duration {
        self.item_timeout
    }

    pub fn s3(&self) -> &s3::S3Access {
        self.fetcher.s3()
    }

    /// Syncs one item, logs the outcome and records metrics.
    pub async fn sync(&self, item: &Item) -> Result<Outcome, SyncError> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.item_timeout, self.sync_quietly(item)).await {
            Ok(result) => result,
            // Dropping the sync drops its temp file (deleted) and leaves the destination as it was.
            Err(_) => Err(SyncError::Deadline {
                from: item.source.redacted(),
                after: self.item_timeout,
            }),
        };
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
                // A failure seen before (same error, same version refused) is logged at debug: a
                // schedule retrying every minute must not fill the log with one error per minute.
                macro_rules! failed {
                    ($level:expr, $message:literal) => {
                        tracing::event!(
                            $level,
                            dest = %dest,
                            source = %item.source,
                            kind = item.kind.label(),
                            outcome = "failed",
                            error = %error,
                            elapsed_ms,
                            $message
                        )
                    };
                }
                if error.is_repeat() {
                    failed!(tracing::Level::DEBUG, "sync failed again; destination left as it was");
                } else {
                    failed!(tracing::Level::ERROR, "sync failed; destination left as it was");
                }
            }
        }
        record_metrics(item, &result);
        result
    }

    /// Syncs every item concurrently (each with its own deadline); results in `items` order.
    pub async fn sync_all(&self, items: &[Item]) -> Vec<Result<Outcome, SyncError>> {
        futures_util::future::join_all(items.iter().map(|item| self.sync(item))).await
    }

    /// Whether `item`'s destination already holds a file the servers accept (its pin, then its
    /// kind's loader): what `--keep-local` serves when a sync fails.
    pub async fn verify_local(&self, item: &Item) -> Result<verify::Verified, String> {
        let item = item.clone();
        tokio::task::spawn_blocking(move || verify::verify_installed(&item))
            .await
            .map_err(|e| format!("verification did not finish: {e}"))?
    }

    /// Remembers the downloaded version as refused for `error`; a version refused before comes
    /// back as [`SyncError::StillRejected`] (logged quietly), a new one is counted.
    fn reject(&self, item: &Item, download: &Download, error: SyncError) -> SyncError {
        let version = RejectedVersion {
            etag: download.etag.clone(),
            last_modified: download.last_modified.clone(),
            size: download.size,
            sha256: download.sha256,
            reason: error.to_string(),
        };
        if self.rejected.remember(&item.dest, version) {
            metrics::counter!("pgmcp_sync_rejected_versions_total", "kind" => item.kind.label()).increment(1);
            error
        } else {
            SyncError::StillRejected {
                reason: error.to_string(),
            }
        }
    }

    async fn sync_quietly(&self, item: &Item) -> Result<Outcome, SyncError> {
        let source = item.source.redacted();
        let (dir_of, create) = (item.dest.clone(), self.create_dest_dirs);
        tokio::task::spawn_blocking(move || dest_dir::prepare(&dir_of, create))
            .await
            .map_err(|e| SyncError::Destination(e.to_string()))?
            .map_err(SyncError::Destination)?;
        // A pinned hash that differs from what we recorded means "fetch that version", not "304 ok".
        let state = SyncState::load_current(&item.dest, &source)
            .filter(|s| item.sha256.is_none_or(|pin| hex::encode(pin) == s.sha256));
        // After a refusal the request is conditional on the refused version: 304 = still that one.
        let rejected = self.rejected.get(&item.dest);
        let rejected_validators = rejected.as_ref().and_then(RejectedVersion::validators);
        let validators = rejected_validators
            .clone()
            .or_else(|| state.as_ref().and_then(SyncState::validators));
        let download = match self
            .fetcher
            .fetch(item, validators.as_ref())
            .await
            .map_err(|error| SyncError::Fetch {
                from: source.clone(),
                error,
            })? {
            Fetched::NotModified => {
                return match (rejected_validators, rejected) {
                    (Some(_), Some(rejected)) => Err(SyncError::StillRejected {
                        reason: rejected.reason,
                    }),
                    _ => Ok(Outcome::Unchanged(Unchanged::NotModified)),
                };
            }
            Fetched::Downloaded(download) => download,
        };
        if let Some(rejected) = rejected.filter(|r| r.sha256 == download.sha256) {
            // Same bytes as the refused version (a source without validators, or re-uploaded).
            return Err(SyncError::StillRejected {
                reason: rejected.reason,
            });
        }
        if let Some(pin) = item.sha256
            && pin != download.sha256
        {
            let error = SyncError::ChecksumMismatch {
                from: source,
                expected: hex::encode(pin),
                actual: hex::encode(download.sha256),
                size: download.size,
            };
            return Err(self.reject(item, &download, error));
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
            self.rejected.forget(&item.dest);
            return Ok(Outcome::Unchanged(Unchanged::SameContent));
        }

        let (kind, temp) = (item.kind, download.file.path().to_path_buf());
        let verified = match tokio::task::spawn_blocking(move || verify::verify(kind, &temp))
            .await
            .map_err(|e| SyncError::Verification(e.to_string()))?
        {
            Ok(verified) => verified,
            Err(reason) => {
                let error = SyncError::Refused {
                    from: source.clone(),
                    kind: kind.label(),
                    reason,
                };
                return Err(self.reject(item, &download, error));
            }
        };
        if verified.entries == Some(0) && !item.allow_empty {
            let dest = item.dest.clone();
            let current = tokio::task::spawn_blocking(move || verify::verify(kind, &dest).ok())
                .await
                .ok()
                .flatten()
                .filter(|current| current.entries.is_some_and(|n| n > 0));
            if let Some(current) = current {
                let error = SyncError::EmptyRefused {
                    from: source.clone(),
                    kind: kind.label(),
                    current: current.detail,
                    dest: item.dest.clone(),
                };
                return Err(self.reject(item, &download, error));
            }
        }
        download.file.commit().map_err(|error| SyncError::Install {
            dest: item.dest.clone(),
            error,
        })?;
        record(&download.sha256)?;
        self.rejected.forget(&item.dest);
        Ok(Outcome::Downloaded {
            size: download.size,
            sha256: hex::encode(download.sha256),
            detail: verified.detail,
        })
    }

    /// Runs one loop per item until `stop` resolves: sync now, then again after the item's
    /// [`RoundSchedule`] pause (the interval ±10 % after a success, a growing backoff capped at the
    /// interval after failures). Each round is recorded in `health`. A sync in progress when
    /// `stop` resolves is abandoned; its temp file is removed and the destination is untouched.
    pub async fn run_every(
        &self,
        items: &[Item],
        interval: Duration,
        health: &SyncHealth,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let loops = items
            .iter()
            .enumerate()
            .map(|(index, item)| self.run_item(index, item, interval, health));
        tokio::select! {
            _ = stop => {}
            _ = futures_util::future::join_all(loops) => {}
        }
    }

    async fn run_item(&self, index: usize, item: &Item, interval: Duration, health: &SyncHealth) {
        let mut schedule = RoundSchedule::new(interval);
        loop {
            health.round_started(index);
            let result = self.sync(item).await;
            match &result {
                Ok(_) => health.succeeded(index),
                Err(error) => health.failed(index, error),
            }
            let pause = schedule.after_round(result.is_ok());
            if result.is_err() {
                tracing::info!(
                    dest = %item.dest_label(),
                    consecutive_failures = schedule.consecutive_failures(),
                    next_in_s = pause.as_secs_f64(),
                    "item backs off before its next round"
                );
            } else {
                tracing::debug!(dest = %item.dest_label(), next_in_s = pause.as_secs_f64(), "item round finished");
            }
            tokio::time::sleep(pause).await;
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
    describe_counter!(
        "pgmcp_sync_rejected_versions_total",
        "Object versions refused by verification (sha256 pin, loader, empty-list guard), per file kind; each version counted once and not downloaded again until the object changes"
    );
    describe_gauge!(
        "pgmcp_sync_stale",
        "1 when a destination of this kind has not been confirmed current within --stale-after, else 0"
    );
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
