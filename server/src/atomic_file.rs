//! Atomic replacement of a file: write a temp file beside the target, give it the target's mode,
//! owner and group, fsync it, rename it over the target, fsync the directory.
//!
//! Every file the servers watch (tokens.yaml, users.yaml, the session key, kb.db) is read by several
//! instances at any moment. A reader must see either the old file or the new one, never a half-written
//! one, and a crash mid-write must leave the old file intact. `rename(2)` within one directory gives
//! exactly that on local filesystems and on NFS; the temp file lives in the same directory so the
//! rename never crosses a filesystem boundary.
//!
//! A rename also replaces the inode, and with it the mode, owner and group: a temp file created by
//! an operator's root shell is `root:root` and umask-shaped, and the servers (uid 10001 in our
//! images) could no longer read what they read a moment ago. So the temp file is given the target's
//! mode, owner and group *before* the rename ([`Permissions`]), here and nowhere else, so every
//! writer (the CLI's token/user/session-key commands, `kb build`, `sync`) gets it. Only the
//! operator's explicit `--mode`/`--group` ([`Requested`]) changes them. A new file gets the writer's
//! default mode for its kind. An unprivileged writer cannot give a file to another user; it keeps
//! the group where it may and says on stderr (or in the log) what it could not keep.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

/// The operator's explicit choices (`--mode`, `--group`): applied to a new file and to an existing
/// one alike. Without them an existing file keeps its mode and group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requested {
    /// Permission bits, e.g. `0o640`.
    pub mode: Option<u32>,
    /// A numeric group id.
    pub group: Option<u32>,
}

/// How the written file's permissions are chosen: the target's own if it exists, else
/// `new_file_mode`; an explicit request wins over both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub new_file_mode: u32,
    pub requested: Requested,
}

impl Permissions {
    /// Keeps an existing file's mode, owner and group; a new file gets `mode`.
    pub const fn new_file(mode: u32) -> Permissions {
        Permissions {
            new_file_mode: mode,
            requested: Requested {
                mode: None,
                group: None,
            },
        }
    }

    pub const fn with(self, requested: Requested) -> Permissions {
        Permissions { requested, ..self }
    }

    /// What the file written over `existing` (None: no file yet) should have.
    fn plan(&self, existing: Option<&fs::Metadata>) -> Plan {
        #[cfg(unix)]
        let (mode, owner, group) = match existing {
            Some(meta) => (meta.mode() & 0o7777, Some(meta.uid()), Some(meta.gid())),
            None => (self.new_file_mode, None, None),
        };
        #[cfg(not(unix))]
        let (mode, owner, group) = {
            let _ = existing;
            (self.new_file_mode, None, None)
        };
        Plan {
            mode: self.requested.mode.unwrap_or(mode),
            owner,
            group: self.requested.group.or(group),
        }
    }
}

/// The mode, owner and group the temp file is given before it is renamed. `None`: leave as created
/// (a new file belongs to whoever wrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    mode: u32,
    owner: Option<u32>,
    group: Option<u32>,
}

/// A file to write and the operator's explicit choices for it. A plain path converts into a target
/// without choices, so library callers and tests pass paths as before.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub path: &'a Path,
    pub requested: Requested,
}

impl<'a> Target<'a> {
    pub fn new(path: &'a Path, requested: Requested) -> Target<'a> {
        Target { path, requested }
    }
}

impl<'a> From<&'a Path> for Target<'a> {
    fn from(path: &'a Path) -> Target<'a> {
        Target::new(path, Requested::default())
    }
}

impl<'a> From<&'a PathBuf> for Target<'a> {
    fn from(path: &'a PathBuf) -> Target<'a> {
        Target::new(path, Requested::default())
    }
}

/// The file `target` names: the file a symbolic link points to, else `target` itself. Edits
/// replace (and lock, `crate::edit_lock`) that file, so the link stays a link.
pub fn resolve_link(target: &Path) -> io::Result<PathBuf> {
    if fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::canonicalize(target)
    } else {
        Ok(target.to_path_buf())
    }
}

/// `.NAME{suffix}` in `target`'s directory, for the files an edit of `target` keeps beside it (its
/// temp file, its [`crate::edit_lock`]). Refuses a `target` without a file name.
pub fn hidden_sibling(target: &Path, suffix: &str) -> io::Result<PathBuf> {
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", target.display()),
        )
    })?;
    Ok(parent_dir(target).join(format!(".{}{suffix}", name.to_string_lossy())))
}

/// A temp file beside `target` that becomes `target` on [`PendingFile::commit`], or disappears if
/// dropped first.
pub struct PendingFile {
    temp: PathBuf,
    target: PathBuf,
    permissions: Permissions,
    committed: bool,
}

impl PendingFile {
    /// Reserves a unique temp path beside `target`. The file itself is created by the caller
    /// (directly, or by a library such as SQLite) at [`PendingFile::path`]; `permissions` are
    /// applied to it at commit.
    ///
    /// A `target` that is a symbolic link is resolved first: the file it points to is replaced and
    /// the link stays. Renaming over the link itself would turn it into a regular file and leave
    /// the real file, the one the servers may read through another path, unchanged.
    pub fn beside(target: &Path, permissions: Permissions) -> io::Result<Self> {
        let resolved = resolve_link(target)?;
        let target = resolved.as_path();
        fs::create_dir_all(parent_dir(target))?;
        let temp = hidden_sibling(target, &format!(".tmp-{}", uuid::Uuid::new_v4().simple()))?;
        Ok(Self {
            temp,
            target: target.to_path_buf(),
            permissions,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Gives the temp file the target's mode, owner and group (or the requested ones), fsyncs it,
    /// renames it over the target and fsyncs the directory so the rename itself survives a crash.
    /// The target is looked at now, not when the temp file was reserved: a download or a kb build
    /// may take minutes, and whatever the operator changed meanwhile is what is kept.
    pub fn commit(mut self) -> io::Result<()> {
        let file = File::open(&self.temp)?;
        let existing = match fs::metadata(&self.target) {
            Ok(meta) => Some(meta),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        let plan = self.permissions.plan(existing.as_ref());
        apply(&file, &self.target, plan, self.permissions.requested)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        // Directory fsync is best effort: some filesystems (and all of Windows) refuse it.
        if let Ok(dir) = File::open(parent_dir(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `contents` to `target` atomically, keeping an existing file's mode, owner and group
/// (see [`Permissions`]).
pub fn write_atomic(target: &Path, contents: &[u8], permissions: Permissions) -> io::Result<()> {
    let pending = PendingFile::beside(target, permissions)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    // Private until commit gives it its final mode: nobody reads a temp file.
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(pending.path())?;
    file.write_all(contents)?;
    drop(file);
    pending.commit()
}

/// Owner and group first, then the mode: `chown` clears the set-id bits, and an unprivileged
/// process can no longer `chmod` a file it gave away.
#[cfg(unix)]
fn apply(file: &File, target: &Path, plan: Plan, requested: Requested) -> io::Result<()> {
    let created = file.metadata()?;
    let owner = plan.owner.filter(|&uid| uid != created.uid());
    let group = plan.group.filter(|&gid| gid != created.gid());
    if owner.is_some() || group.is_some() {
        match std::os::unix::fs::fchown(file, owner, group) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                // Not root: the file stays ours. Keeping the group is still possible when we are a
                // member of it, and often enough (0640 files read through the servers' group).
                let group_kept = group.is_none() || std::os::unix::fs::fchown(file, None, group).is_ok();
                if !group_kept && requested.group.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "cannot give {} to group {}: only root or a member of that group may ({})",
                            target.display(),
                            group.unwrap_or_default(),
                            crate::file_access::process_identity()
                        ),
                    ));
                }
                let actual = file.metadata()?;
                let wanted = format!(
                    "{}:{}",
                    plan.owner.unwrap_or(actual.uid()),
                    plan.group.unwrap_or(actual.gid())
                );
                warn(&format!(
                    "{} belonged to {wanted} (uid:gid) but the new version belongs to {}:{}: this process \
                     ({}) may not give a file away. Servers running as {wanted} may be unable to read it \
                     (mode {:04o}): run `chown {wanted} {}` as root, or write the file as root or as its owner",
                    target.display(),
                    actual.uid(),
                    actual.gid(),
                    crate::file_access::process_identity(),
                    plan.mode,
                    target.display(),
                ));
            }
            Err(error) => return Err(error),
        }
    }
    file.set_permissions(fs::Permissions::from_mode(plan.mode))
}

#[cfg(not(unix))]
fn apply(_file: &File, _target: &Path, _plan: Plan, _requested: Requested) -> io::Result<()> {
    Ok(())
}

/// A warning for the operator: in the log when one is set up (the sync sidecar), else on stderr
/// (the CLI's file commands print their results there too).
fn warn(message: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!("{message}");
    } else {
        eprintln!("warning: {message}");
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.yaml");
        fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new", Permissions::new_file(0o600)).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_replaced_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.yaml");
        for mode in [0o644, 0o600, 0o640, 0o444] {
            fs::write(&target, "old").unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
            // The new-file default differs from every mode above: it must not be used.
            write_atomic(&target, b"new", Permissions::new_file(0o604)).unwrap();
            assert_eq!(mode_of(&target), mode, "mode {mode:04o} not kept");
            assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        }
    }

    #[test]
    fn a_new_file_gets_the_default_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mode) in [("tokens.yaml", 0o644), ("session.key", 0o640)] {
            let target = dir.path().join(name);
            write_atomic(&target, b"x", Permissions::new_file(mode)).unwrap();
            assert_eq!(mode_of(&target), mode, "{name}");
        }
    }

    #[test]
    fn an_explicit_mode_applies_to_new_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("session.key");
        let requested = Requested {
            mode: Some(0o600),
            group: None,
        };
        write_atomic(&target, b"1", Permissions::new_file(0o640).with(requested)).unwrap();
        assert_eq!(mode_of(&target), 0o600);
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&target, b"2", Permissions::new_file(0o640).with(requested)).unwrap();
        assert_eq!(mode_of(&target), 0o600);
    }

    #[test]
    fn a_replaced_file_keeps_its_owner_and_group() {
        if !is_root() {
            println!("skipped: only root can hand a file to uid 10001 to set the scene");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.yaml");
        fs::write(&target, "old").unwrap();
        std::os::unix::fs::chown(&target, Some(10001), Some(10001)).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&target, b"new", Permissions::new_file(0o644)).unwrap();
        let meta = fs::metadata(&target).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (10001, 10001));
        assert_eq!(meta.mode() & 0o7777, 0o640);
    }

    #[test]
    fn the_current_group_is_kept_by_an_unprivileged_writer_too() {
        // Whoever runs this owns the file and is in its group: the kept group must be that one,
        // not whatever the temp file was created with (a setgid directory, say).
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("users.yaml");
        fs::write(&target, "old").unwrap();
        let before = fs::metadata(&target).unwrap();
        write_atomic(&target, b"new", Permissions::new_file(0o644)).unwrap();
        let after = fs::metadata(&target).unwrap();
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    }

    #[test]
    fn an_explicit_group_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("session.key");
        // Root may pick any group; anyone else their own primary group.
        let gid = if is_root() {
            10001
        } else {
            rustix::process::getegid().as_raw()
        };
        let requested = Requested {
            mode: None,
            group: Some(gid),
        };
        write_atomic(&target, b"k", Permissions::new_file(0o640).with(requested)).unwrap();
        let meta = fs::metadata(&target).unwrap();
        assert_eq!(meta.gid(), gid);
        assert_eq!(meta.mode() & 0o7777, 0o640);
    }

    #[test]
    fn a_group_that_cannot_be_given_is_an_error_and_the_target_is_untouched() {
        if is_root() {
            println!("skipped: root may give a file to any group");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("session.key");
        fs::write(&target, "old").unwrap();
        let requested = Requested {
            mode: None,
            group: Some(0),
        };
        let error = write_atomic(&target, b"new", Permissions::new_file(0o640).with(requested)).unwrap_err();
        assert!(error.to_string().contains("group 0"), "{error}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp file left behind");
    }

    #[test]
    fn a_pending_file_takes_the_mode_the_target_has_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("kb.db");
        fs::write(&target, "v1").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let pending = PendingFile::beside(&target, Permissions::new_file(0o644)).unwrap();
        fs::write(pending.path(), "v2").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        pending.commit().unwrap();
        assert_eq!(mode_of(&target), 0o640);
        assert_eq!(fs::read_to_string(&target).unwrap(), "v2");
    }

    #[cfg(unix)]
    #[test]
    fn writing_through_a_symlink_replaces_its_target_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let real = dir.path().join("real/tokens.yaml");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("tokens.yaml");
        std::os::unix::fs::symlink("real/tokens.yaml", &link).unwrap();
        write_atomic(&link, b"new", Permissions::new_file(0o644)).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn an_uncommitted_pending_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("kb.db");
        let pending = PendingFile::beside(&target, Permissions::new_file(0o644)).unwrap();
        fs::write(pending.path(), "partial").unwrap();
        drop(pending);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
