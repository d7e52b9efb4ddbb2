//! What the last successful sync of a destination saw, in a small sidecar file beside it
//! (`.NAME.sync-state`, JSON, written atomically).
//!
//! It lets a restarted sidecar (or the next `--once` run) send `If-None-Match` /
//! `If-Modified-Since` instead of downloading an unchanged kb.db again. The state only counts while
//! it still describes the destination on disk (same size and modification time) and the same
//! source: if someone replaced the file by hand or the manifest now points elsewhere, the next sync
//! downloads unconditionally. It never holds secrets: the source is stored redacted.

use std::{
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{Permissions, write_atomic};

/// Conditional-request validators from the last successful sync.
#[derive(Clone, Debug, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncState {
    /// The redacted source.
    pub source: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Hex SHA-256 of the destination's content.
    pub sha256: String,
    pub size: u64,
    /// The destination's mtime in nanoseconds since the epoch, right after it was written.
    pub mtime_ns: u128,
    /// When this sync happened (RFC 3339), for people reading the file.
    pub synced_at: String,
}

/// The sidecar path for `dest`: `.NAME.sync-state` in the same directory.
pub fn path_for(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.sync-state"))
}

/// The destination's size and mtime, if it exists.
pub fn stat(dest: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(dest).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), mtime))
}

impl SyncState {
    /// The recorded state of `dest` if it still describes the file on disk and `source`.
    pub fn load_current(dest: &Path, source: &str) -> Option<SyncState> {
        let text = std::fs::read_to_string(path_for(dest)).ok()?;
        let state: SyncState = serde_json::from_str(&text).ok()?;
        let (size, mtime_ns) = stat(dest)?;
        (state.source == source && state.size == size && state.mtime_ns == mtime_ns).then_some(state)
    }

    pub fn validators(&self) -> Option<Validators> {
        (self.etag.is_some() || self.last_modified.is_some()).then(|| Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        })
    }

    /// Records the state of `dest` as it is now on disk.
    pub fn save(
        dest: &Path,
        source: &str,
        sha256: &[u8; 32],
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> std::io::Result<SyncState> {
        let (size, mtime_ns) = stat(dest).ok_or_else(|| std::io::Error::other("destination vanished"))?;
        let state = SyncState {
            source: source.to_string(),
            etag,
            last_modified,
            sha256: hex::encode(sha256),
            size,
            mtime_ns,
            synced_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let text = serde_json::to_string_pretty(&state).map_err(std::io::Error::other)?;
        write_atomic(&path_for(dest), text.as_bytes(), Permissions::new_file(0o644))?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_only_counts_for_the_same_source_and_untouched_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("kb.db");
        std::fs::write(&dest, "v1").unwrap();
        SyncState::save(&dest, "s3://b/kb.db", &[1; 32], Some("\"e1\"".into()), None).unwrap();
        assert_eq!(path_for(&dest), dir.path().join(".kb.db.sync-state"));
        let state = SyncState::load_current(&dest, "s3://b/kb.db").unwrap();
        assert_eq!(state.validators().unwrap().etag.as_deref(), Some("\"e1\""));
        assert!(SyncState::load_current(&dest, "s3://b/other.db").is_none());
        std::fs::write(&dest, "changed by hand").unwrap();
        assert!(SyncState::load_current(&dest, "s3://b/kb.db").is_none());
    }
}
