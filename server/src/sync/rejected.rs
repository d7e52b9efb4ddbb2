//! Object versions that failed verification, remembered per destination so that a bad upload is
//! downloaded once, not once per round.
//!
//! Without this, a corrupt 176 MB kb.db in the bucket is fetched in full every interval (≈ 250 GB a
//! day per pod at 60 s) and logs the same error every round. With it, the next round asks for the
//! object *conditionally on the rejected version* (`If-None-Match: <rejected ETag>`, else
//! `If-Modified-Since: <rejected Last-Modified>`): a 304 means "still the version we refused" and
//! costs no body. A source without validators (a plain web server) is still downloaded, but a body
//! whose SHA-256 equals the rejected one is recognised without running the loaders again. Either
//! way the refusal is logged and counted once per version (`pgmcp_sync_rejected_versions_total`).
//!
//! The memory lives in the process (the sidecar runs for days; a `--once` init container runs
//! once), keyed by destination, which the manifest guarantees unique. A version that installs, or
//! a new version of the object, forgets the old rejection.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use super::state::Validators;

/// One refused version of an object, and why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedVersion {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub size: u64,
    pub sha256: [u8; 32],
    /// The refusal as first reported (already redacted: it is a `SyncError`'s text).
    pub reason: String,
}

impl RejectedVersion {
    /// Validators that make the next request conditional on this version: a 304 answer means the
    /// object is still this version.
    pub fn validators(&self) -> Option<Validators> {
        match (&self.etag, &self.last_modified) {
            (Some(etag), _) => Some(Validators {
                etag: Some(etag.clone()),
                last_modified: None,
            }),
            (None, Some(date)) => Some(Validators {
                etag: None,
                last_modified: Some(date.clone()),
            }),
            (None, None) => None,
        }
    }
}

/// The rejected version of each destination, shared by the items' tasks (each touches only its
/// own destination; the lock is held for a map operation, never across an await).
#[derive(Debug, Default)]
pub struct RejectedVersions(Mutex<HashMap<PathBuf, RejectedVersion>>);

impl RejectedVersions {
    pub fn get(&self, dest: &Path) -> Option<RejectedVersion> {
        self.lock().get(dest).cloned()
    }

    /// Remembers `version` as refused for `dest`; returns `true` when it is news (a version not
    /// already remembered), which is when the refusal is logged as an error and counted.
    pub fn remember(&self, dest: &Path, version: RejectedVersion) -> bool {
        let mut map = self.lock();
        let known = map
            .get(dest)
            .is_some_and(|old| old.sha256 == version.sha256 && old.etag == version.etag);
        map.insert(dest.to_path_buf(), version);
        !known
    }

    /// Forgets the refusal for `dest` (a version installed or found current).
    pub fn forget(&self, dest: &Path) {
        self.lock().remove(dest);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, RejectedVersion>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(etag: Option<&str>, sha: u8) -> RejectedVersion {
        RejectedVersion {
            etag: etag.map(str::to_string),
            last_modified: Some("Mon, 30 Nov 2026 10:00:00 GMT".into()),
            size: 3,
            sha256: [sha; 32],
            reason: "refused".into(),
        }
    }

    #[test]
    fn a_version_is_news_once_and_forgotten_when_something_installs() {
        let rejected = RejectedVersions::default();
        let dest = Path::new("/d/kb.db");
        assert!(rejected.remember(dest, version(Some("\"a\""), 1)));
        assert!(
            !rejected.remember(dest, version(Some("\"a\""), 1)),
            "same version again"
        );
        assert!(rejected.remember(dest, version(Some("\"b\""), 2)), "a new bad version");
        assert_eq!(rejected.get(dest).unwrap().etag.as_deref(), Some("\"b\""));
        rejected.forget(dest);
        assert!(rejected.get(dest).is_none());
    }

    #[test]
    fn the_next_request_is_conditional_on_the_rejected_etag_else_its_date() {
        let with_etag = version(Some("\"a\""), 1).validators().unwrap();
        assert_eq!(
            (with_etag.etag.as_deref(), with_etag.last_modified),
            (Some("\"a\""), None)
        );
        let dated = version(None, 1).validators().unwrap();
        assert!(dated.etag.is_none() && dated.last_modified.is_some());
        let bare = RejectedVersion {
            last_modified: None,
            ..version(None, 1)
        };
        assert!(bare.validators().is_none());
    }
}
