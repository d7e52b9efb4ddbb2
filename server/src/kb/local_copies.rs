//! Where an instance keeps its private kb.db copies, and the removal of copies a crash left behind.
//!
//! Each served KB version is copied to local disk (see `store.rs` for why) and the copy is deleted
//! when its last reader drops it. A process killed by SIGKILL or the OOM killer deletes nothing: on
//! Kubernetes the container restarts into the same pod, whose `/tmp` (an `emptyDir`) keeps the dead
//! process's copy — hundreds of MB per crash until the volume's `sizeLimit` evicts the pod.
//!
//! So each process keeps its copies in a directory of its own, `$TMPDIR/postgres-mcp-kb-<uid>/<id>`,
//! and holds an advisory lock (`flock`) on `<id>.lock` beside it for as long as it lives; the kernel
//! releases the lock when the process dies, however it dies. At start-up a process removes every
//! directory whose lock it can take: nobody alive owns it. Unlike process ids, locks work across PID
//! namespaces (two containers sharing a host `/tmp` are both pid 1) and cannot be reused. The root
//! is per user, so a root-owned directory left by an operator's `config check` never stops the
//! server's user from starting.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
};

use rustix::fs::{FlockOperation, flock};

/// Creates this process's copy directory (stale siblings removed) and returns its path. The lock
/// that marks it as in use is held until the process exits.
pub fn private_copy_dir() -> io::Result<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    let root = std::env::temp_dir().join(format!("postgres-mcp-kb-{uid}"));
    let (dir, lock) = claim(&root)?;
    // Deliberately never closed: the open descriptor is the lock, released by the kernel at exit.
    std::mem::forget(lock);
    Ok(dir)
}

/// Removes unowned directories under `root`, then creates and locks a new one.
fn claim(root: &Path) -> io::Result<(PathBuf, File)> {
    std::fs::create_dir_all(root)?;
    remove_unowned(root);
    let id = uuid::Uuid::new_v4().simple().to_string();
    // Lock first, then create the directory, so no directory ever exists without a held lock.
    let lock = File::create(root.join(format!("{id}.lock")))?;
    flock(&lock, FlockOperation::NonBlockingLockExclusive)?;
    let dir = root.join(&id);
    std::fs::create_dir(&dir)?;
    Ok((dir, lock))
}

fn remove_unowned(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        let Ok(lock) = File::open(&path) else { continue };
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live process owns it
        }
        let dir = path.with_extension("");
        let removed = match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => std::fs::remove_file(&path),
        };
        match removed {
            Ok(()) => tracing::info!(dir = %dir.display(), "removed KB copies left by a stopped process"),
            Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot remove stale KB copies"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_a_live_owner_are_kept_and_of_a_dead_one_removed() {
        let root = tempfile::tempdir().unwrap();
        let (live_dir, live_lock) = claim(root.path()).unwrap();
        let (dead_dir, dead_lock) = claim(root.path()).unwrap();
        std::fs::write(live_dir.join("kb-1.db"), "copy").unwrap();
        std::fs::write(dead_dir.join("kb-2.db"), "copy").unwrap();
        drop(dead_lock); // as the kernel does when its process dies
        let (own, _own_lock) = claim(root.path()).unwrap();
        assert!(live_dir.join("kb-1.db").exists(), "a live owner's copy is kept");
        assert!(!dead_dir.exists(), "a dead owner's copies are removed");
        assert!(!dead_dir.with_extension("lock").exists());
        assert!(own.is_dir() && own != live_dir);
        drop(live_lock);
    }
}
