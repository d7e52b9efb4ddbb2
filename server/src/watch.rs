//! The reload engine shared by every watched file: tokens.yaml, users.yaml, the session key and kb.db.
//!
//! Instances share these files read-only on a volume; an operator (or `postgres-mcp sync`, or the
//! kubelet) replaces them, and every instance must pick the change up quickly, without a restart, and
//! without ever serving a broken file. One mechanism does that for all of them:
//!
//! 1. inotify (via notify) watches the *parent directory*, not the file: editors and our CLI replace
//!    files by rename, and Kubernetes swaps a `..data` symlink, which a watch on the file would miss;
//! 2. events are settled for a few milliseconds, then every file in that directory is re-read;
//! 3. a reload parses and validates the whole new content and swaps it in with one atomic pointer
//!    store only if it is valid and its content hash differs; otherwise the last good value stays and
//!    the error is recorded for `/health`, metrics and one log line;
//! 4. a periodic check (`watch.poll_interval`) re-reads regardless, because inotify is blind to writes
//!    made by other NFS/EFS/SMB clients, can overflow, and loses its watch when a directory is replaced.
//!
//! Readers take an `Arc` snapshot per request ([`Watched::current`]), so in-flight requests finish on
//! the content they started with and a reload never waits for them.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::{WatchConfig, WatchMode};
use crate::shutdown::Shutdown;

/// Turns the bytes at a path into a validated value. One implementation per kind of file.
pub trait Loader: Send + Sync + 'static {
    type Value: Send + Sync + 'static;

    /// Reads and validates the file. The digest identifies the content: equal digests mean no swap.
    fn load(&self, path: &Path) -> Result<Loaded<Self::Value>, String>;

    /// Whether the periodic check may skip files whose size and mtime are unchanged. Text files are
    /// small and always re-hashed (timestamps on network filesystems can be coarse); a large kb.db
    /// is only re-read when its metadata changes.
    fn trust_metadata(&self) -> bool {
        false
    }
}

/// A value and the digest of the content it came from.
pub struct Loaded<T> {
    pub value: T,
    pub digest: [u8; 32],
}

/// Loads a small text file with a parse function (YAML auth files, the session key).
pub struct TextLoader<T> {
    parse: fn(&str) -> Result<T, String>,
}

impl<T> TextLoader<T> {
    pub fn new(parse: fn(&str) -> Result<T, String>) -> Self {
        Self { parse }
    }
}

impl<T: Send + Sync + 'static> Loader for TextLoader<T> {
    type Value = T;

    fn load(&self, path: &Path) -> Result<Loaded<T>, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
        // An empty file is what an in-place write looks like between truncate and write, and what a
        // failed copy leaves behind. Taking it as "no entries" would drop every credential, so it is
        // refused like any invalid file (to remove all entries, write an explicit empty list).
        if text.trim().is_empty() {
            return Err(format!(
                "{} is empty (a write in progress or a truncated file); keeping the last good version",
                path.display()
            ));
        }
        let value = (self.parse)(text)?;
        Ok(Loaded {
            value,
            digest: Sha256::digest(&bytes).into(),
        })
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

/// What one reload attempt did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Same content as before (or metadata unchanged where that is trusted).
    Unchanged,
    /// New valid content is now served.
    Swapped(Generation),
    /// The file is unreadable or invalid; the last good content is still served.
    Rejected(String),
}

impl ReloadOutcome {
    pub fn label(&self) -> &'static str {
        match self {
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

/// Size and modification time: the cheap "did anything change" probe.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Metadata {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn metadata(path: &Path) -> Option<Metadata> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Metadata {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

struct State {
    digest: [u8; 32],
    metadata: Option<Metadata>,
    status: FileStatus,
}

/// A file's current validated value, swapped atomically when the file changes.
pub struct Watched<L: Loader> {
    kind: &'static str,
    path: PathBuf,
    loader: L,
    current: ArcSwap<L::Value>,
    /// Serializes reloads of this file (the watcher task and tests may both trigger one).
    state: Mutex<State>,
}

impl<L: Loader> Watched<L> {
    /// Loads the file for the first time; start-up fails if it is missing or invalid, because there
    /// is no last good value to fall back to.
    pub fn open(kind: &'static str, path: &Path, loader: L) -> Result<Arc<Self>, String> {
        let meta = metadata(path);
        let loaded = loader
            .load(path)
            .map_err(|e| format!("{kind} ({}): {e}", path.display()))?;
        let status = FileStatus {
            generation: Generation::of(&loaded.digest),
            loaded_at: Utc::now(),
            last_error: None,
        };
        record_generation(kind, &status);
        Ok(Arc::new(Watched {
            kind,
            path: path.to_path_buf(),
            loader,
            current: ArcSwap::from_pointee(loaded.value),
            state: Mutex::new(State {
                digest: loaded.digest,
                metadata: meta,
                status,
            }),
        }))
    }

    /// The value to use for one request. Keep the `Arc` for the whole request.
    pub fn current(&self) -> Arc<L::Value> {
        self.current.load_full()
    }

    pub fn status(&self) -> FileStatus {
        self.lock().status.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-reads the file now. `forced` skips the metadata shortcut (used after a change event).
    pub fn reload(&self, forced: bool) -> ReloadOutcome {
        let mut state = self.lock();
        let meta = metadata(&self.path);
        if !forced
            && self.loader.trust_metadata()
            && meta.is_some()
            && meta == state.metadata
            && state.status.last_error.is_none()
        {
            return ReloadOutcome::Unchanged;
        }
        let outcome = match self.loader.load(&self.path) {
            Err(error) => {
                if state.status.last_error.as_deref() != Some(error.as_str()) {
                    tracing::error!(file = self.kind, path = %self.path.display(), %error, "reload rejected; still serving the last good version");
                }
                state.status.last_error = Some(error.clone());
                ReloadOutcome::Rejected(error)
            }
            Ok(loaded) if loaded.digest == state.digest => {
                state.metadata = meta;
                if state.status.last_error.take().is_some() {
                    tracing::info!(file = self.kind, generation = %state.status.generation, "file is valid again (content unchanged)");
                }
                ReloadOutcome::Unchanged
            }
            Ok(loaded) => {
                let generation = Generation::of(&loaded.digest);
                self.current.store(Arc::new(loaded.value));
                state.digest = loaded.digest;
                state.metadata = meta;
                state.status = FileStatus {
                    generation,
                    loaded_at: Utc::now(),
                    last_error: None,
                };
                record_generation(self.kind, &state.status);
                tracing::info!(file = self.kind, %generation, "reloaded");
                ReloadOutcome::Swapped(generation)
            }
        };
        metrics::counter!("pgmcp_reloads_total", "file" => self.kind, "outcome" => outcome.label()).increment(1);
        metrics::gauge!("pgmcp_reload_error", "file" => self.kind).set(if state.status.last_error.is_some() {
            1.0
        } else {
            0.0
        });
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
    fn reload(&self, forced: bool) -> ReloadOutcome;
}

impl<L: Loader> Reloadable for Watched<L> {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn reload(&self, forced: bool) -> ReloadOutcome {
        Watched::reload(self, forced)
    }
}

/// Filesystems on which inotify does not see other clients' writes.
pub fn is_network_filesystem(path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        const NETWORK_MAGICS: &[u64] = &[
            0x6969,      // NFS
            0x517B,      // SMB
            0xFF53_4D42, // CIFS
            0xFE53_4D42, // SMB2
            0x6573_5546, // FUSE (s3fs, gcsfuse, ...)
            0x0102_1997, // 9p
            0x0BD0_0BD0, // Lustre
        ];
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(stat) = rustix::fs::statfs(dir) {
            #[allow(clippy::unnecessary_cast)]
            return NETWORK_MAGICS.contains(&(stat.f_type as u64));
        }
        false
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}

/// Whether change events are used for the files under `dirs` in this mode.
fn use_notify(mode: WatchMode, files: &[Arc<dyn Reloadable>]) -> bool {
    match mode {
        WatchMode::Poll => false,
        WatchMode::Notify => true,
        WatchMode::Auto => {
            let network: Vec<_> = files
                .iter()
                .filter(|f| is_network_filesystem(f.path()))
                .map(|f| f.path().display().to_string())
                .collect();
            if !network.is_empty() {
                tracing::info!(files = ?network, "network filesystem detected: watch.mode auto uses periodic checks only");
            }
            network.is_empty()
        }
    }
}

/// The running engine; dropping it stops the inotify watches.
pub struct WatchEngine {
    _watcher: Option<notify::RecommendedWatcher>,
}

impl WatchEngine {
    /// Starts watching `files` until `shutdown` fires.
    pub fn start(files: Vec<Arc<dyn Reloadable>>, config: &WatchConfig, shutdown: Shutdown) -> WatchEngine {
        let (events_tx, events_rx) = mpsc::unbounded_channel::<()>();
        let dirs: BTreeSet<PathBuf> = files.iter().map(|f| watch_dir(f.path())).collect();
        let watcher = if use_notify(config.mode, &files) {
            start_notify(&dirs, events_tx.clone())
        } else {
            None
        };
        let by_dir: BTreeMap<PathBuf, Vec<Arc<dyn Reloadable>>> = dirs
            .iter()
            .map(|dir| {
                (
                    dir.clone(),
                    files.iter().filter(|f| &watch_dir(f.path()) == dir).cloned().collect(),
                )
            })
            .collect();
        tokio::spawn(run(
            by_dir,
            events_rx,
            config.poll_interval.get(),
            config.settle.get(),
            watcher.is_some(),
            shutdown,
        ));
        WatchEngine { _watcher: watcher }
    }
}

fn watch_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn start_notify(dirs: &BTreeSet<PathBuf>, events: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    // Every event (and every error, e.g. a queue overflow) just says "look again": the reload
    // itself decides whether anything changed, so no event kind needs interpreting.
    let handler = move |_event: notify::Result<notify::Event>| {
        let _ = events.send(());
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "file change notifications unavailable; relying on periodic checks");
            return None;
        }
    };
    for dir in dirs {
        if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), %error, "cannot watch directory; relying on periodic checks");
        }
    }
    Some(watcher)
}

async fn run(
    by_dir: BTreeMap<PathBuf, Vec<Arc<dyn Reloadable>>>,
    mut events: mpsc::UnboundedReceiver<()>,
    poll_interval: Duration,
    settle: Duration,
    notify_active: bool,
    mut shutdown: Shutdown,
) {
    let all: Vec<Arc<dyn Reloadable>> = by_dir.values().flatten().cloned().collect();
    let mut ticker = tokio::time::interval(poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    tracing::info!(files = all.len(), notify = notify_active, poll_interval = ?poll_interval, "watching files for changes");
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = ticker.tick() => reload_all(&all, false).await,
            Some(()) = events.recv() => {
                // Settle: wait until the burst of events (write, chmod, rename, symlink swap) is
                // over, bounded so a file rewritten continuously still gets reloaded.
                let deadline = Instant::now() + settle * 10;
                loop {
                    match tokio::time::timeout(settle, events.recv()).await {
                        Ok(Some(())) if Instant::now() < deadline => continue,
                        _ => break,
                    }
                }
                reload_all(&all, true).await;
            }
        }
    }
}

/// Reloads on the blocking pool: a kb.db copy and integrity check can take a while.
async fn reload_all(files: &[Arc<dyn Reloadable>], forced: bool) {
    let files = files.to_vec();
    let _ = tokio::task::spawn_blocking(move || {
        for file in files {
            file.reload(forced);
        }
    })
    .await;
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
        std::fs::write(dir.path().join("value.txt"), "2").unwrap();
        assert!(matches!(file.reload(false), ReloadOutcome::Swapped(g) if g != first));
        assert_eq!(*file.current(), 2);
    }

    #[test]
    fn an_empty_file_is_a_write_in_progress_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "5");
        std::fs::write(dir.path().join("value.txt"), "").unwrap();
        assert!(matches!(file.reload(true), ReloadOutcome::Rejected(e) if e.contains("is empty")));
        assert_eq!(*file.current(), 5);
    }

    #[test]
    fn an_invalid_change_keeps_the_last_good_value_until_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched(dir.path(), "7");
        let held = file.current();
        std::fs::write(dir.path().join("value.txt"), "seven").unwrap();
        assert!(matches!(file.reload(true), ReloadOutcome::Rejected(e) if e.contains("not a number")));
        assert_eq!(*file.current(), 7);
        assert!(file.status().last_error.unwrap().contains("seven"));
        std::fs::remove_file(dir.path().join("value.txt")).unwrap();
        assert!(matches!(file.reload(true), ReloadOutcome::Rejected(e) if e.contains("cannot read")));
        std::fs::write(dir.path().join("value.txt"), "8").unwrap();
        assert!(matches!(file.reload(true), ReloadOutcome::Swapped(_)));
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
            .unwrap();
        assert!(error.contains("value") && error.contains("not a number"));
    }
}
