//! Why a sync failed, as values: what the command line and the sidecar's log report, and what the
//! tests match on.
//!
//! Every message names the source redacted (see `manifest::Source::redacted`) and never carries a
//! URL from a reqwest error: a pre-signed URL's query string is a credential.

use std::path::PathBuf;

/// A sync that did not install a new version; the destination is as it was.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
    /// The download failed (after retries, when the failure was transient).
    #[error("{from}: {error}")]
    Fetch { from: String, error: FetchError },
    #[error("{from}: sha256 mismatch: expected {expected}, downloaded {actual} ({size} bytes); not installed")]
    ChecksumMismatch {
        from: String,
        expected: String,
        actual: String,
        size: u64,
    },
    /// The server's own loader refused the download.
    #[error("{from}: downloaded file refused as {kind}: {reason}; not installed")]
    Refused {
        from: String,
        kind: &'static str,
        reason: String,
    },
    #[error("verification did not finish: {0}")]
    Verification(String),
    #[error("cannot rename the download over {}: {error}", dest.display())]
    Install { dest: PathBuf, error: std::io::Error },
    #[error("cannot record sync state beside {}: {error}", dest.display())]
    State { dest: PathBuf, error: std::io::Error },
    /// The destination's directory is missing, not writable, or not a directory (see `dest_dir`).
    #[error("{0}")]
    Destination(String),
    /// A tokens or users file with no entries would have replaced one with entries.
    #[error(
        "{from}: downloaded {kind} file has no entries and would replace {current} at {}; not installed \
         (to empty it on purpose: `allow_empty: true` in the manifest item, or --allow-empty-tokens)",
        dest.display()
    )]
    EmptyRefused {
        from: String,
        kind: &'static str,
        /// What the destination holds now ("3 tokens").
        current: String,
        dest: PathBuf,
    },
    /// The object is still a version refused earlier (see `rejected`): not downloaded or verified
    /// again. `reason` is the first refusal's text.
    #[error("{reason} [the same version as before: not downloaded again until the object changes]")]
    StillRejected { reason: String },
    /// The item's round did not finish within its deadline (`--item-timeout`).
    #[error("{from}: no result within the per-item deadline of {}s; abandoned, destination untouched", after.as_secs_f64())]
    Deadline { from: String, after: std::time::Duration },
}

impl SyncError {
    /// A refusal already reported: logged at debug level, not counted again as a rejected version.
    pub fn is_repeat(&self) -> bool {
        matches!(self, SyncError::StillRejected { .. })
    }
}

/// Why a fetch failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

impl FetchError {
    pub fn retry(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// A source, destination or pinned hash that cannot be synced (command line or manifest entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidItem(pub String);

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("manifest {}: {error}", path.display())]
    Invalid { path: PathBuf, error: InvalidItem },
}

/// A reqwest error as one line, without its URL (which may be pre-signed).
pub fn describe_reqwest_error(error: reqwest::Error) -> String {
    error_chain(&error.without_url())
}

/// An error and its causes as one line, each cause once (libraries often repeat their source's
/// message in their own).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
