//! One writer at a time for the CLI's read-modify-write edits of a file (`token create`,
//! `user disable`, …).
//!
//! Each edit reads the whole file, changes one entry and renames a new file over it
//! ([`crate::atomic_file`]). Two edits at once both read the same old file and the second rename
//! wins: the first edit is lost though both commands reported success — with 100k tokens a write
//! takes ~330 ms, and a `token revoke` racing a `token create` brought the revoked token back
//! (found by an operator's review, run from automation). An edit therefore holds an exclusive
//! `flock` from before its read until after its rename.
//!
//! The lock is taken on a file of its own beside the edited one (`.tokens.yaml.lock`), not on the
//! edited file: the rename replaces that file's inode, and a lock on the old inode would not stop
//! the next writer. The lock file is never removed (removing it would race a writer that has just
//! opened it) and holds nothing. It is resolved through symbolic links like the rename is, so two
//! paths to one file share one lock. Locking needs only read access to the lock file: operators
//! running as different users (one group) share it once it exists. On NFS, Linux maps `flock` to
//! the protocol's byte-range locks (NFSv4, or NLM on v3), so the lock holds across hosts too.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic_file;

/// An exclusive lock on edits of one file, released when dropped.
#[derive(Debug)]
pub struct EditLock {
    _file: File,
}

/// The lock file of `target`: `.NAME.lock` in the directory of the file `target` resolves to.
fn lock_path(target: &Path) -> io::Result<PathBuf> {
    atomic_file::hidden_sibling(&atomic_file::resolve_link(target)?, ".lock")
}

/// Blocks until no other edit of `target` runs, then holds the lock until the returned value is
/// dropped. Errors name the lock file (its directory missing or not writable, say).
pub fn lock(target: &Path) -> io::Result<EditLock> {
    let path = lock_path(target)?;
    let described = |e: io::Error| io::Error::new(e.kind(), format!("cannot lock {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(described)?;
    }
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(described)?,
        Err(e) => return Err(described(e)),
    };
    file.lock().map_err(described)?;
    Ok(EditLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    #[test]
    fn a_second_edit_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.yaml");
        let held = lock(&target).unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let waiter = {
            let (target, barrier) = (target.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let _second = lock(&target).unwrap();
                started.elapsed()
            })
        };
        barrier.wait();
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        let waited = waiter.join().unwrap();
        assert!(
            waited >= Duration::from_millis(150),
            "the second lock did not wait: {waited:?}"
        );
        assert!(dir.path().join(".tokens.yaml.lock").is_file());
    }

    #[test]
    fn paths_through_a_symbolic_link_share_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("users.yaml"), "").unwrap();
        std::os::unix::fs::symlink(real.join("users.yaml"), dir.path().join("users.yaml")).unwrap();
        assert_eq!(
            lock_path(&dir.path().join("users.yaml")).unwrap(),
            fs::canonicalize(&real).unwrap().join(".users.yaml.lock")
        );
    }
}
