//! The running engine: inotify watches on the parent directories, and one worker per watched file.
//!
//! Each file has its own worker, so a kb.db being copied and verified for seconds never delays a
//! tokens.yaml change queued behind it (issue #11 §1: auth and KB reloads must not wait on each
//! other). A worker wakes on the events that concern its file ([`Router`]) or on its periodic tick,
//! settles briefly so a burst of events (truncate, write, close, chmod, rename) becomes one check,
//! then runs [`Reloadable::check`] on the blocking pool: a `stat`, and a read only if the signature
//! changed.
//!
//! The periodic tick (`watch.poll_interval`) is what NFS/EFS/SMB get instead of events (inotify does
//! not see other clients' writes), and in notify mode it catches what inotify misses: a replaced
//! watched directory, a symlink target changed elsewhere. It costs a `stat` per file.

use std::{sync::Arc, time::Duration};

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::{
    events::{Router, Target, Writing},
    watched::Reloadable,
};
use crate::config::{WatchConfig, WatchMode};
use crate::shutdown::Shutdown;

/// Filesystems on which inotify does not see other clients' writes.
pub fn is_network_filesystem(path: &std::path::Path) -> bool {
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
        let (dir, _) = super::events::split(path);
        if let Ok(stat) = rustix::fs::statfs(&dir) {
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

/// Whether change events are used for `files` in this mode.
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

/// The running engine; dropping it stops the inotify watches (the workers stop with `shutdown`).
pub struct WatchEngine {
    _watcher: Option<notify::RecommendedWatcher>,
}

impl WatchEngine {
    /// Starts watching `files` until `shutdown` fires. Must be called within a tokio runtime.
    pub fn start(files: Vec<Arc<dyn Reloadable>>, config: &WatchConfig, shutdown: Shutdown) -> WatchEngine {
        let targets: Vec<Target> = files.iter().map(|f| Target::new(f.path().to_path_buf())).collect();
        let router = Router::new(&targets);
        let watcher = if use_notify(config.mode, &files) {
            start_notify(router)
        } else {
            None
        };
        // A link re-pointed between `Target::new` and the watches starting raised no event: read
        // the links again now that every change from here on does.
        targets.iter().for_each(Target::read_link_head);
        tracing::info!(
            files = files.len(),
            notify = watcher.is_some(),
            poll_interval = ?config.poll_interval.get(),
            "watching files for changes"
        );
        for (file, target) in files.into_iter().zip(targets) {
            let worker = Worker {
                file,
                wake: target.wake,
                writing: target.writing,
                poll_interval: config.poll_interval.get(),
                settle: config.settle.get(),
            };
            tokio::spawn(worker.run(shutdown.clone()));
        }
        WatchEngine { _watcher: watcher }
    }
}

fn start_notify(router: Router) -> Option<notify::RecommendedWatcher> {
    let dirs: Vec<_> = router.dirs().cloned().collect();
    let mut watcher = match notify::recommended_watcher(move |event| router.route(event)) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "file change notifications unavailable; relying on periodic checks");
            return None;
        }
    };
    for dir in dirs {
        if let Err(error) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), %error, "cannot watch directory; relying on periodic checks");
        }
    }
    Some(watcher)
}

/// Checks one file when woken and on every tick.
struct Worker {
    file: Arc<dyn Reloadable>,
    wake: Arc<Notify>,
    writing: Arc<Writing>,
    poll_interval: Duration,
    settle: Duration,
}

impl Worker {
    async fn run(self, mut shutdown: Shutdown) {
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = ticker.tick() => {}
                _ = self.wake.notified() => self.settle().await,
            }
            if self.writing.in_progress() {
                // Half a file is not a file: its writer's close wakes this worker again.
                continue;
            }
            let file = self.file.clone();
            // A panic in a loader is contained to this check; the worker goes on.
            let _ = tokio::task::spawn_blocking(move || file.check()).await;
        }
    }

    /// Waits until the burst of events is over, bounded so a file rewritten continuously is still
    /// checked.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + self.settle * 10;
        while tokio::time::Instant::now() < deadline {
            if tokio::time::timeout(self.settle, self.wake.notified()).await.is_err() {
                break;
            }
        }
    }
}
