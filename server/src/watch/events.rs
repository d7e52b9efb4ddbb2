//! Which inotify events concern which watched file.
//!
//! The engine watches parent directories, so it hears about everything that happens in them: our own
//! reads (`OPEN`, `ACCESS`, `CLOSE_NOWRITE`), a log file being appended to, `sync`'s temp files. Only
//! an event that can change a watched file's content may wake that file's worker: reacting to reads
//! made a reload read the file, raise events, and reload again, forever (issue #11 §0: ~130 reloads a
//! second on an idle instance, 75-99 % of a core with a large kb.db or tokens.yaml).
//!
//! - An event naming a watched file (create, write, close-after-write, rename to or from, delete,
//!   attribute change) wakes that file only.
//! - An event naming anything else in the directory wakes the watched files there that are symbolic
//!   links: their target may have moved (Kubernetes renames a `..data` symlink over the old one when a
//!   Secret or ConfigMap changes; no event ever names `tokens.yaml` itself).
//! - A queue overflow or a watch error wakes every file: events may have been lost.
//!
//! Waking a file is cheap by construction: its worker compares a `stat` signature before reading.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    sync::Arc,
};

use notify::{
    Event, EventKind,
    event::{AccessKind, AccessMode},
};
use tokio::sync::Notify;

/// Whether an event kind can change what a path holds.
pub fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        // Backends that cannot tell say Any/Other; a needless stat is cheap, a missed change is not.
        EventKind::Any | EventKind::Other => true,
    }
}

/// The directory and file name a watched path is known by in events.
pub fn split(path: &Path) -> (PathBuf, OsString) {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(OsString::from).unwrap_or_default();
    (dir, name)
}

/// One watched file as the router knows it: where it lives and how to wake its worker.
#[derive(Clone)]
pub struct Target {
    pub path: PathBuf,
    pub wake: Arc<Notify>,
}

/// Maps events to the workers they concern.
pub struct Router {
    by_dir: BTreeMap<PathBuf, BTreeMap<OsString, Target>>,
}

impl Router {
    pub fn new(targets: &[Target]) -> Router {
        let mut by_dir: BTreeMap<PathBuf, BTreeMap<OsString, Target>> = BTreeMap::new();
        for target in targets {
            let (dir, name) = split(&target.path);
            by_dir.entry(dir).or_default().insert(name, target.clone());
        }
        Router { by_dir }
    }

    /// The directories to watch.
    pub fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.by_dir.keys()
    }

    fn all(&self) -> impl Iterator<Item = &Target> {
        self.by_dir.values().flat_map(|files| files.values())
    }

    /// Wakes the workers `event` concerns (see the module docs for the rules).
    pub fn route(&self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) if !event.need_rescan() => event,
            // An overflow or a watch error: anything may have changed.
            _ => return self.all().for_each(|t| t.wake.notify_one()),
        };
        if !changes_content(&event.kind) {
            return;
        }
        for path in &event.paths {
            let (dir, name) = split(path);
            let Some(files) = self.by_dir.get(&dir) else { continue };
            match files.get(&name) {
                Some(target) => target.wake.notify_one(),
                None => files
                    .values()
                    .filter(|t| std::fs::symlink_metadata(&t.path).is_ok_and(|m| m.file_type().is_symlink()))
                    .for_each(|t| t.wake.notify_one()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, paths: &[&Path]) -> notify::Result<Event> {
        let mut event = Event::new(kind);
        for path in paths {
            event = event.add_path(path.to_path_buf());
        }
        Ok(event)
    }

    async fn woken(target: &Target) -> bool {
        tokio::time::timeout(Duration::from_millis(20), target.wake.notified())
            .await
            .is_ok()
    }

    fn target(path: PathBuf) -> Target {
        Target {
            path,
            wake: Arc::new(Notify::new()),
        }
    }

    #[tokio::test]
    async fn reads_wake_nothing_and_a_write_wakes_only_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (tokens, kb) = (target(dir.path().join("tokens.yaml")), target(dir.path().join("kb.db")));
        let router = Router::new(&[tokens.clone(), kb.clone()]);
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            router.route(event(kind, &[&tokens.path, &kb.path]));
        }
        assert!(!woken(&tokens).await && !woken(&kb).await);

        router.route(event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[&dir.path().join(".tokens.yaml.tmp-1"), &tokens.path],
        ));
        assert!(woken(&tokens).await);
        assert!(!woken(&kb).await, "a token rotation must not touch kb.db");

        router.route(event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &[&dir.path().join("server.log")],
        ));
        assert!(!woken(&tokens).await && !woken(&kb).await, "an unrelated file's writes");
    }

    #[tokio::test]
    async fn a_kubernetes_data_swap_wakes_the_symlinked_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..2026_01")).unwrap();
        std::fs::write(dir.path().join("..2026_01/tokens.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("..2026_01", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/tokens.yaml", dir.path().join("tokens.yaml")).unwrap();
        std::fs::write(dir.path().join("plain.yaml"), "x").unwrap();
        let (linked, plain) = (
            target(dir.path().join("tokens.yaml")),
            target(dir.path().join("plain.yaml")),
        );
        let router = Router::new(&[linked.clone(), plain.clone()]);
        router.route(event(
            EventKind::Create(CreateKind::Any),
            &[&dir.path().join("..data_tmp")],
        ));
        assert!(woken(&linked).await);
        assert!(!woken(&plain).await);
    }

    #[tokio::test]
    async fn an_overflow_wakes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (target(dir.path().join("a")), target(PathBuf::from("b")));
        let router = Router::new(&[a.clone(), b.clone()]);
        router.route(Ok(Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)));
        assert!(woken(&a).await && woken(&b).await);
    }
}
