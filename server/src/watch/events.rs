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
//!   links through that name: their target may have moved (Kubernetes renames a `..data_tmp`
//!   symlink to `..data` when a Secret or ConfigMap changes, and `tokens.yaml -> ..data/tokens.yaml`;
//!   no event ever names `tokens.yaml` itself).
//! - A queue overflow or a watch error wakes every file: events may have been lost.
//!
//! Waking a file is cheap by construction: its worker compares a `stat` signature before reading.
//!
//! A file written in place (`cat > tokens.yaml`, an editor without backup, `cp` over kb.db) is
//! incomplete until its writer closes it, and a prefix of a YAML file is often valid YAML: cut before
//! an `expires_at:` or `tools:` line, it would serve a token without its expiry or scope. So a data
//! write naming a file marks it [`Writing`] until the close-after-write (which the kernel also sends
//! when a writer crashes); its worker does not read it in between, up to [`Writing::MAX_WAIT`].
//! Writers on other NFS clients raise no events at all: they must replace files by rename, as our
//! CLI and `sync` do.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    sync::Arc,
};

use notify::{
    Event, EventKind,
    event::{AccessKind, AccessMode, ModifyKind},
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

/// `dir` as the events under it name it: joined to the current directory when relative, as notify's
/// inotify backend does with a relative watch (`notify` 8, `INotifyWatcher::watch_inner`). Keyed as
/// written, a file given as `--kb kb.db` never matched an event and waited for the periodic check
/// (1.3 s instead of 0.09 s with the default `watch.poll_interval`; found by trying the README's
/// own command line). Symlinks are not resolved: events name the path that was watched.
fn as_watched(dir: PathBuf) -> PathBuf {
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Whether a writer has the file open for an in-place write (seen: a data write, not yet the close).
#[derive(Default)]
pub struct Writing(std::sync::Mutex<Option<std::time::Instant>>);

impl Writing {
    /// How long a read waits for a writer that never closes (a writer stuck on a hung volume).
    pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn started(&self) {
        self.slot().get_or_insert_with(std::time::Instant::now);
    }

    fn finished(&self) {
        *self.slot() = None;
    }

    /// True while a write is in progress and has not been waited for longer than [`Self::MAX_WAIT`].
    pub fn in_progress(&self) -> bool {
        self.slot().is_some_and(|since| since.elapsed() < Self::MAX_WAIT)
    }
}

/// One watched file as the router knows it: where it lives, how to wake its worker, and whether
/// it is being written in place.
#[derive(Clone)]
pub struct Target {
    pub path: PathBuf,
    pub wake: Arc<Notify>,
    pub writing: Arc<Writing>,
    /// The first component of the symbolic link at `path` (`..data` for Kubernetes'
    /// `tokens.yaml -> ..data/tokens.yaml`), `None` when `path` is not a link. Read once and again
    /// whenever an event names `path` (a link is only changed by replacing it, which names it) or
    /// events may have been lost, not on every sibling's event: a log file written beside the
    /// watched files raised one `readlink` per watched file per write (a trace of `make bench` §7
    /// saw ~1,800 a second).
    link_head: Arc<std::sync::Mutex<Option<OsString>>>,
}

impl Target {
    pub fn new(path: PathBuf) -> Target {
        let target = Target {
            path,
            wake: Arc::new(Notify::new()),
            writing: Arc::default(),
            link_head: Arc::default(),
        };
        target.read_link_head();
        target
    }

    /// Reads the link at `path` again (see [`Target::link_head`]).
    pub fn read_link_head(&self) {
        let head = std::fs::read_link(&self.path)
            .ok()
            .and_then(|link| link.components().next().map(|first| first.as_os_str().to_os_string()));
        *self.link_head.lock().unwrap_or_else(|p| p.into_inner()) = head;
    }

    /// Notes what `kind` says about an in-place write, then wakes the worker.
    fn changed(&self, kind: &EventKind) {
        self.read_link_head();
        match kind {
            EventKind::Modify(ModifyKind::Data(_)) => self.writing.started(),
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_)) => self.writing.finished(),
            _ => {}
        }
        self.wake.notify_one();
    }

    /// Whether an event on `name`, a sibling in the directory, can change what this path resolves
    /// to: only if this path is a symlink whose target starts with `name` (Kubernetes' `..data`).
    fn resolves_through(&self, name: &OsString) -> bool {
        self.link_head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|head| head == name)
    }
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
            by_dir.entry(as_watched(dir)).or_default().insert(name, target.clone());
        }
        Router { by_dir }
    }

    /// The directories to watch, absolute (see [`as_watched`]).
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
            _ => {
                return self.all().for_each(|t| {
                    t.read_link_head();
                    t.wake.notify_one()
                });
            }
        };
        if !changes_content(&event.kind) {
            return;
        }
        for path in &event.paths {
            let (dir, name) = split(path);
            let Some(files) = self.by_dir.get(&dir) else { continue };
            match files.get(&name) {
                Some(target) => target.changed(&event.kind),
                None => files
                    .values()
                    .filter(|t| t.resolves_through(&name))
                    .for_each(|t| t.wake.notify_one()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use notify::event::{DataChange, ModifyKind, RenameMode};

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
        Target::new(path)
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

    /// notify reports events under a relative watch as absolute paths: a file given relative to the
    /// working directory (`--kb kb.db`, `--tokens ./tokens.yaml`, `../config/x`) is still woken.
    #[tokio::test]
    async fn files_given_as_relative_paths_are_woken_by_absolute_events() {
        let cwd = std::env::current_dir().unwrap();
        let parent = cwd.file_name().unwrap().to_os_string();
        let relative = [
            PathBuf::from("kb.db"),
            PathBuf::from("./tokens.yaml"),
            PathBuf::from("..").join(&parent).join("users.yaml"),
        ];
        let targets: Vec<Target> = relative.iter().cloned().map(target).collect();
        let router = Router::new(&targets);
        assert!(router.dirs().all(|dir| dir.is_absolute()));
        for (target, path) in targets.iter().zip(&relative) {
            let seen_as = cwd.join(path);
            router.route(event(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[&seen_as]));
            assert!(woken(target).await, "{} seen as {}", path.display(), seen_as.display());
        }
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
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &[&dir.path().join("server.log")],
        ));
        assert!(!woken(&linked).await, "a name the link does not go through");
        router.route(event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            &[&dir.path().join("..data")],
        ));
        assert!(woken(&linked).await);
        assert!(!woken(&plain).await);
    }

    /// The link's first component is remembered, and read again when an event names the link: a
    /// plain file later replaced by a Kubernetes-style link is woken by the next `..data` swap.
    #[tokio::test]
    async fn a_file_replaced_by_a_link_is_followed_through_its_new_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..2026_01")).unwrap();
        std::fs::write(dir.path().join("..2026_01/tokens.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("..2026_01", dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("tokens.yaml"), "x").unwrap();
        let tokens = target(dir.path().join("tokens.yaml"));
        let router = Router::new(std::slice::from_ref(&tokens));
        let swap = || {
            router.route(event(
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                &[&dir.path().join("..data")],
            ))
        };
        swap();
        assert!(!woken(&tokens).await, "a plain file does not go through ..data");

        std::fs::remove_file(dir.path().join("tokens.yaml")).unwrap();
        std::os::unix::fs::symlink("..data/tokens.yaml", dir.path().join("tokens.yaml")).unwrap();
        router.route(event(
            EventKind::Create(notify::event::CreateKind::Any),
            &[&tokens.path],
        ));
        assert!(woken(&tokens).await);
        swap();
        assert!(woken(&tokens).await, "the new link goes through ..data");
    }

    #[tokio::test]
    async fn an_in_place_write_is_in_progress_until_its_writer_closes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = target(dir.path().join("tokens.yaml"));
        let router = Router::new(std::slice::from_ref(&tokens));
        router.route(event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &[&tokens.path],
        ));
        assert!(woken(&tokens).await && tokens.writing.in_progress());
        router.route(event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &[&tokens.path],
        ));
        assert!(woken(&tokens).await && !tokens.writing.in_progress());
        router.route(event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &[&tokens.path],
        ));
        *tokens.writing.slot() = Some(std::time::Instant::now() - Writing::MAX_WAIT);
        assert!(
            !tokens.writing.in_progress(),
            "a writer that never closes is waited for only so long"
        );
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
