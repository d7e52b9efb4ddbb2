//! Where an instance keeps its private kb.db copies, and the removal of copies a crash left behind.
//!
//! Each served KB version is copied to local disk (see `store.rs` for why) and the copy is deleted
//! when its last reader drops it. A process killed by SIGKILL or the OOM killer deletes nothing: on
//! Kubernetes the container restarts into the same pod, whose `/tmp` (an `emptyDir`) keeps the dead
//! process's copy — hundreds of MB per crash until the volume's `sizeLimit` evicts the pod. So copies
//! live in a directory per process, `$TMPDIR/postgres-mcp-kb/<pid>`, and at start-up a process
//! removes the directories of processes that no longer exist (and its own pid's, which can only be
//! a predecessor's: in a container every instance is pid 1). Live instances sharing `$TMPDIR` on one
//! host keep theirs.

use std::{
    io,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

/// `$TMPDIR/postgres-mcp-kb/<pid>`, created empty; stale siblings removed.
///
/// Only the first call in a process cleans up: a process that starts several servers (the tests
/// do, concurrently) must not remove the copies its other servers are serving from.
pub fn private_copy_dir() -> io::Result<PathBuf> {
    static CLEANED: Mutex<bool> = Mutex::new(false);
    let root = std::env::temp_dir().join("postgres-mcp-kb");
    let pid = std::process::id();
    let mut cleaned = CLEANED.lock().unwrap_or_else(PoisonError::into_inner);
    if !*cleaned {
        let dir = copy_dir_under(&root, pid)?;
        *cleaned = true;
        return Ok(dir);
    }
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn copy_dir_under(root: &Path, pid: u32) -> io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    for entry in std::fs::read_dir(root)?.flatten() {
        let stale = match entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            Some(owner) => owner == pid || !is_alive(owner),
            // Copies of versions before per-process directories: nobody can be reading them by
            // name any more once every instance runs this version, and a reader holds its handle.
            None => entry.file_name().to_string_lossy().starts_with("kb-"),
        };
        if stale {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => tracing::info!(path = %path.display(), "removed a KB copy left by a stopped process"),
                Err(error) => tracing::warn!(path = %path.display(), %error, "cannot remove a stale KB copy"),
            }
        }
    }
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn is_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    // EPERM means it exists but belongs to someone else: alive.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_processes_copies_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let live = std::process::id();
        // A pid above the kernel's maximum (4194304) is never alive.
        let dead = 4_194_305;
        for owner in [live, dead] {
            std::fs::create_dir_all(root.path().join(owner.to_string())).unwrap();
            std::fs::write(root.path().join(owner.to_string()).join("kb-x.db"), "copy").unwrap();
        }
        std::fs::write(root.path().join("kb-legacy.db"), "old layout").unwrap();
        std::fs::write(root.path().join("notes.txt"), "not ours").unwrap();
        // As another live process would see it: its own dir is new, `live`'s is kept.
        let own = copy_dir_under(root.path(), 1).unwrap();
        assert_eq!(own, root.path().join("1"));
        assert!(
            root.path().join(live.to_string()).join("kb-x.db").exists(),
            "a live instance's copy"
        );
        assert!(!root.path().join(dead.to_string()).exists(), "a dead process's copy");
        assert!(!root.path().join("kb-legacy.db").exists());
        assert!(root.path().join("notes.txt").exists());
        // Its own pid's leftovers (a predecessor with the same pid) go too.
        std::fs::write(own.join("kb-old.db"), "x").unwrap();
        copy_dir_under(root.path(), 1).unwrap();
        assert!(!own.join("kb-old.db").exists());
    }
}
