//! One watched file: its current validated value, and the rules for replacing it.
//!
//! [`Watched::check`] is the whole reload decision for a file, whoever asks (a change event, the
//! periodic check, a test):
//! 1. `stat` it; an unchanged [`Signature`] means unchanged content — nothing is read;
//! 2. otherwise the [`Loader`] reads it, and stops early if the content digest equals the served one
//!    (a `touch`, or the same bytes written again): no parse, no kb.db copy, no integrity check;
//! 3. new content is validated whole and swapped in with one atomic pointer store; invalid content
//!    leaves the last good value serving and is reported once (log, `/health`, metrics).
//!
//! A check holds this file's reload lock only, never the status lock `/health` reads, so a kb.db
//! being verified for seconds delays neither `/health` nor another file's reload.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::signature::Signature;

/// How long a rejected file whose signature has not changed waits before it is tried again: a
/// failure may be transient (a full local disk for the kb.db copy, an I/O error on the volume).
const RETRY_REJECTED_AFTER: Duration = Duration::from_secs(30);

/// The content a file's current value came from: what a reload compares against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// SHA-256 of the whole file.
    pub digest: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
}

/// A value and the content it came from.
pub struct Loaded<T> {
    pub value: T,
    pub served: Served,
}

/// A file that cannot be served at start-up, when there is no last good version to fall back to.
#[derive(Debug, thiserror::Error)]
#[error("{kind} ({}): {reason}", path.display())]
pub struct OpenError {
    pub kind: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// Turns the bytes at a path into a validated value. One implementation per kind of file.
///
/// A loader's error is a sentence for the operator — it becomes `last_error` in `/health`, the
/// reload log line and [`OpenError::reason`] — so it is text, naming the file and what is wrong.
pub trait Loader: Send + Sync + 'static {
    type Value: Send + Sync + 'static;

    /// Reads and validates the file (start-up, and tools such as `sync` that check a download).
    fn load(&self, path: &Path) -> Result<Loaded<Self::Value>, String>;

    /// Reads the file again; `Ok(None)` when its content is still `served`. Loaders override this to
    /// stop before the expensive part (parsing, copying, verifying) when the digest is unchanged.
    fn reload(&self, path: &Path, served: &Served) -> Result<Option<Loaded<Self::Value>>, String> {
        let loaded = self.load(path)?;
        Ok((loaded.served != *served).then_some(loaded))
    }

    /// Called when `value` becomes the served one: at [`Watched::open`] and at every swap, never for
    /// a load that only checks a file (`sync` verifying a download, `config check`). The place for
    /// gauges that describe what is served (KB size, the earliest token expiry), which a checking load
    /// must not touch.
    fn serving(&self, _value: &Self::Value) {}
}

/// Loads a small text file with a parse function (YAML auth files, the session key, a database URL).
pub struct TextLoader<T> {
    parse: fn(&str) -> Result<T, String>,
    serving: Option<fn(&T)>,
}

impl<T> TextLoader<T> {
    pub fn new(parse: fn(&str) -> Result<T, String>) -> Self {
        Self { parse, serving: None }
    }

    /// The same loader, calling `serving` whenever a value becomes the served one ([`Loader::serving`]).
    pub fn on_serving(self, serving: fn(&T)) -> Self {
        Self {
            serving: Some(serving),
            ..self
        }
    }

    fn read(path: &Path) -> Result<(Vec<u8>, Served), String> {
        let bytes = crate::file_access::read(path)?;
        let served = Served {
            digest: Sha256::digest(&bytes).into(),
            len: bytes.len() as u64,
        };
        Ok((bytes, served))
    }

    fn parse(&self, path: &Path, bytes: &[u8]) -> Result<T, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
        // An empty file is what an in-place write looks like between truncate and write, and what a
        // failed copy leaves behind. Taking it as "no entries" would drop every credential, so it is
        // refused like any invalid file (to remove all entries, write an explicit empty list).
        if text.trim().is_empty() {
            return Err(format!(
                "{} is empty (a write in progress or a truncated file); keeping the last good version",
                path.display()
            ));
        }
        (self.parse)(text)
    }
}

impl<T: Send + Sync + 'static> Loader for TextLoader<T> {
    type Value = T;

    fn load(&self, path: &Path) -> Result<Loaded<T>, String> {
        let (bytes, served) = Self::read(path)?;
        Ok(Loaded {
            value: self.parse(path, &bytes)?,
            served,
        })
    }

    fn reload(&self, path: &Path, previous: &Served) -> Result<Option<Loaded<T>>, String> {
        let (bytes, served) = Self::read(path)?;
        if served == *previous {
            return Ok(None);
        }
        Ok(Some(Loaded {
            value: self.parse(path, &bytes)?,
            served,
        }))
    }

    fn serving(&self, value: &T) {
        if let Some(serving) = self.serving {
            serving(value);
        }
    }
}

/// A content generation: the first 12 hex characters of the content's SHA-256. Equal generations on
/// every instance mean they all serve the same file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Generation([u8; 6]);

impl Generation {
    fn of(digest: &[u8; 32]) -> Self {
        let mut prefix = [0u8; 6];
        prefix.copy_from_slice(&digest[..6]);
        Generation(prefix)
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Generation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What one reload check did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The signature is unchanged: the file was not read.
    NotRead,
    /// Read, and the content is the one already served.
    Unchanged,
    /// New valid content is now served.
    Swapped(Generation),
    /// The file is unreadable or invalid; the last good content is still served.
    Rejected(String),
}

impl ReloadOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            ReloadOutcome::NotRead => "not_read",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Swapped(_) => "swapped",
            ReloadOutcome::Rejected(_) => "rejected",
        }
    }
}

/// What `/health` reports for a watched file.
#[derive(Clone, Debug, Serialize)]
pub struct FileStatus {
    pub generation: Generation,
    pub loaded_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// What the last read established, so the next check can skip reading.
struct ReadState {
    served: Served,
    /// The signature the last read's outcome (served or rejected) belongs to; `None` if unknown.
    signature: Option<Signature>,
    /// Read once more at this moment even with the same signature (see [`Signature::racy_until`]).
    racy_until: Option<SystemTime>,
    /// Set after a rejection: try again at this moment even with the same signature.
    retry_at: Option<Instant>,
}

impl ReadState {
    fn must_read(&self, signature: &std::io::Result<Signature>) -> bool {
        let Ok(signature) = signature else { return true };
        self.signature.as_ref() != Some(signature)
            || self.racy_until.is_some_and(|until| SystemTime::now() >= until)
            || self.retry_at.is_some_and(|at| Instant::now() >= at)
    }

    fn record(&mut self, signature: std::io::Result<Signature>, read_at: SystemTime, rejected: bool) {
        let signature = signature.ok();
        self.racy_until = signature.and_then(|s| s.racy_until(read_at));
        self.signature = signature;
        self.retry_at = rejected.then(|| Instant::now() + RETRY_REJECTED_AFTER);
    }
}

/// A file's current validated value, swapped atomically when the file changes.
pub struct Watched<L: Loader> {
    kind: &'static str,
    path: PathBuf,
    loader: L,
    current: ArcSwap<L::Value>,
    /// Serializes checks of this file (its engine worker and tests may both run one). Held while the
    /// file is read; `status` is never taken while reading.
    read: Mutex<ReadState>,
    status: Mutex<FileStatus>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<L: Loader> Watched<L> {
    /// Loads the file for the first time; start-up fails if it is missing or invalid, because there
    /// is no last good value to fall back to.
    pub fn open(kind: &'static str, path: &Path, loader: L) -> Result<Arc<Self>, OpenError> {
        let signature = Signature::of(path);
        let read_at = SystemTime::now();
        let loaded = loader.load(path).map_err(|reason| OpenError {
            kind,
            path: path.to_path_buf(),
            reason,
        })?;
        let status = FileStatus {
            generation: Generation::of(&loaded.served.digest),
            loaded_at: Utc::now(),
            last_error: None,
        };
        record_generation(kind, &status);
        loader.serving(&loaded.value);
        let mut read = ReadState {
            served: loaded.served,
            signature: None,
            racy_until: None,
            retry_at: None,
        };
        read.record(signature, read_at, false);
        Ok(Arc::new(Watched {
            kind,
            path: path.to_path_buf(),
            loader,
            current: ArcSwap::from_pointee(loaded.value),
            read: Mutex::new(read),
            status: Mutex::new(status),
        }))
    }

    /// The value to use for one request. Keep the `Arc` for the whole request.
    pub fn current(&self) -> Arc<L::Value> {
        self.current.load_full()
    }

    pub fn status(&self) -> FileStatus {
        lock(&self.status).clone()
    }

    /// Reloads if the file's signature changed since the last read (or a re-read is due).
    pub fn check(&self) -> ReloadOutcome {
        self.reload(false)
    }

    /// Re-reads the file; `forced` reads it even when its signature is unchanged.
    pub fn reload(&self, forced: bool) -> ReloadOutcome {
        let mut read = lock(&self.read);
        let signature = Signature::of(&self.path);
        if !forced && !read.must_read(&signature) {
            // Refreshed on every check, so the gauge is right even after a restart of the scrape.
            let failing = lock(&self.status).last_error.is_some();
            metrics::gauge!("pgmcp_reload_error", "file" => self.kind).set(if failing { 1.0 } else { 0.0 });
            return ReloadOutcome::NotRead;
        }
        let read_at = SystemTime::now();
        let outcome = match self.loader.reload(&self.path, &read.served) {
            Err(error) => {
                let mut status = lock(&self.status);
                if status.last_error.as_deref() != Some(error.as_str()) {
                    tracing::error!(file = self.kind, path = %self.path.display(), %error, "reload rejected; still serving the last good version");
                }
                status.last_error = Some(error.clone());
                read.record(signature, read_at, true);
                ReloadOutcome::Rejected(error)
            }
            Ok(None) => {
                read.record(signature, read_at, false);
                let mut status = lock(&self.status);
                if status.last_error.take().is_some() {
                    tracing::info!(file = self.kind, generation = %status.generation, "file is valid again (content unchanged)");
                }
                ReloadOutcome::Unchanged
            }
            Ok(Some(loaded)) => {
                let generation = Generation::of(&loaded.served.digest);
                self.loader.serving(&loaded.value);
                self.current.store(Arc::new(loaded.value));
                read.served = loaded.served;
                read.record(signature, read_at, false);
                let mut status = lock(&self.status);
                *status = FileStatus {
                    generation,
                    loaded_at: Utc::now(),
                    last_error: None,
                };
                record_generation(self.kind, &status);
                tracing::info!(file = self.kind, %generation, "reloaded");
                ReloadOutcome::Swapped(generation)
            }
        };
        metrics::counter!("pgmcp_reloads_total", "file" => self.kind, "outcome" => outcome.label()).increment(1);
        let failing = matches!(outcome, ReloadOutcome::Rejected(_));
        metrics::gauge!("pgmcp_reload_error", "file" => self.kind).set(if failing { 1.0 } else { 0.0 });
        outcome
    }
}

fn record_generation(kind: &'static str, status: &FileStatus) {
    metrics::gauge!("pgmcp_file_loaded_timestamp_seconds", "file" => kind).set(status.loaded_at.timestamp() as f64);
    metrics::gauge!("pgmcp_file_generation", "file" => kind)
        .set(u32::from_be_bytes(status.generation.0[..4].try_into().expect("4 bytes")) as f64);
}

/// A watched file as the engine sees it, whatever its value type.
pub trait Reloadable: Send + Sync {
    fn kind(&self) -> &'static str;
    fn path(&self) -> &Path;
    /// [`Watched::check`]: reads the file only if its signature changed. Blocking.
    fn check(&self) -> ReloadOutcome;
}

impl<L: Loader> Reloadable for Watched<L> {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn check(&self) -> ReloadOutcome {
        Watched::check(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_number(text: &str) -> Result<u32, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number", text.trim()))
    }

    fn watched(dir: &Path, content: &str) -> Arc<Watched<TextLoader<u32>>> {
        let path = dir.join("value.txt");
        std::fs::write(&path, content).unwrap();
        Watched::open("value", &path, TextLoader::new(parse_number)).unwrap()
    }

    #[test]
    fn a_valid_change_swaps_and_an_identical_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "1");
        let first = file.status().generation;
        assert_eq!(file.reload(true), ReloadOutcome::Unchanged);
        // Another size: a same-size rewrite within the timestamp granularity is only seen after the
        // racy window (a_racy_signature_is_read_once_more_after_the_window).
        std::fs::write(dir.path().join("value.txt"), "12").unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Swapped(g) if g != first));
        assert_eq!(*file.current(), 12);
    }

    #[test]
    fn an_unchanged_signature_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value.txt");
        let file = watched(dir.path(), "3");
        // As if the racy window had passed without a change.
        lock(&file.read).racy_until = None;
        assert_eq!(file.check(), ReloadOutcome::NotRead);
        std::fs::read(&path).unwrap();
        assert_eq!(file.check(), ReloadOutcome::NotRead, "reading the file is not a change");
        std::fs::write(&path, "40").unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Swapped(_)));
    }

    #[test]
    fn a_racy_signature_is_read_once_more_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "5");
        let until = lock(&file.read).racy_until.expect("a file just written is racy");
        assert_eq!(
            file.check(),
            ReloadOutcome::NotRead,
            "within the window the same signature is trusted"
        );
        // Pretend the window has passed.
        lock(&file.read).racy_until = Some(until - Duration::from_secs(10));
        assert_eq!(file.check(), ReloadOutcome::Unchanged);
    }

    #[test]
    fn an_empty_file_is_a_write_in_progress_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "5");
        std::fs::write(dir.path().join("value.txt"), "").unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Rejected(e) if e.contains("is empty")));
        assert_eq!(*file.current(), 5);
    }

    #[test]
    fn a_rejected_file_is_not_reread_until_it_changes_or_the_retry_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "6");
        std::fs::write(dir.path().join("value.txt"), "six").unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Rejected(_)));
        lock(&file.read).racy_until = None;
        assert_eq!(file.check(), ReloadOutcome::NotRead);
        lock(&file.read).retry_at = Some(Instant::now());
        assert!(matches!(file.check(), ReloadOutcome::Rejected(_)));
        assert_eq!(*file.current(), 6);
    }

    #[test]
    fn an_invalid_change_keeps_the_last_good_value_until_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "7");
        let held = file.current();
        std::fs::write(dir.path().join("value.txt"), "seven").unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Rejected(e) if e.contains("not a number")));
        assert_eq!(*file.current(), 7);
        assert!(file.status().last_error.unwrap().contains("seven"));
        std::fs::remove_file(dir.path().join("value.txt")).unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Rejected(e) if e.contains("cannot read")));
        std::fs::write(dir.path().join("value.txt"), "8").unwrap();
        assert!(matches!(file.check(), ReloadOutcome::Swapped(_)));
        assert_eq!(*file.current(), 8);
        assert!(file.status().last_error.is_none());
        assert_eq!(*held, 7, "a reader keeps the snapshot it took");
    }

    #[test]
    fn startup_fails_on_an_invalid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value.txt");
        std::fs::write(&path, "x").unwrap();
        let error = Watched::open("value", &path, TextLoader::new(parse_number))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("value") && error.contains("not a number"));
    }
}
