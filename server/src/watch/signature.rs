//! The cheap "did this file change?" probe: one `stat(2)` instead of reading the file.
//!
//! A watched file is only read when its [`Signature`] differs from the one recorded at the last read.
//! That is what keeps an idle instance idle (issue #11 §0: re-reading on every event turned the reads'
//! own inotify events into an endless reload loop) and what keeps credential rotation at milliseconds
//! beside a kb.db of hundreds of MB in the same directory (§1): the KB is not even opened.
//!
//! The signature is device, inode, size, mtime and ctime. ctime cannot be set by a user (`touch -d`,
//! `cp -p` and `rsync -t` set mtime only), and every content write, chmod or rename updates it.
//!
//! It is taken by opening the file and `fstat`ing the handle, not by `stat(path)`: on NFS (EFS) a
//! plain `stat` answers from the client's attribute and name caches, which may be up to a minute old
//! (`acregmax`, `acdirmax`), while `open` revalidates both (close-to-open consistency). Nothing is
//! read, and the open's own inotify events are ignored by the engine.
//!
//! Timestamps have a granularity (a kernel tick locally, a second on some NFS/SMB servers), so a
//! file rewritten with the same size within one tick of our read would keep its signature: the
//! "racy" case git also has. A file whose timestamps are within [`RACY_WINDOW`] of the moment we read
//! it is therefore re-read once more after the window has passed ([`Signature::racy_until`]); any
//! write after that gets a newer timestamp.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

/// Longer than the coarsest timestamp granularity we support (1 s on ext3, some NFS and SMB
/// servers), with margin for clock skew between an NFS client and its server.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// What `stat(2)` says about a file, through symlinks (a Kubernetes `..data` swap changes the inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
    changed: Option<SystemTime>,
}

impl Signature {
    /// The signature of `path` now; an error if it cannot be stat'ed (missing, no search permission).
    /// A file this process may not open is stat'ed by path instead, so that a permission fix (a
    /// chmod changes ctime) is noticed at once.
    pub fn of(path: &Path) -> std::io::Result<Signature> {
        let meta = std::fs::File::open(path)
            .and_then(|file| file.metadata())
            .or_else(|_| std::fs::metadata(path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let changed = SystemTime::UNIX_EPOCH.checked_add(Duration::new(
                meta.ctime().max(0) as u64,
                meta.ctime_nsec().clamp(0, 999_999_999) as u32,
            ));
            Ok(Signature {
                device: meta.dev(),
                inode: meta.ino(),
                len: meta.len(),
                modified: meta.modified().ok(),
                changed,
            })
        }
        #[cfg(not(unix))]
        Ok(Signature {
            device: 0,
            inode: 0,
            len: meta.len(),
            modified: meta.modified().ok(),
            changed: None,
        })
    }

    /// When a file with this signature, read at `read_at`, must be read once more because a write
    /// within the timestamp granularity could have left the signature unchanged; `None` if its
    /// timestamps are older than [`RACY_WINDOW`] (the signature can be trusted) .
    pub fn racy_until(&self, read_at: SystemTime) -> Option<SystemTime> {
        let newest = self.modified.max(self.changed)?;
        let settled_at = newest + RACY_WINDOW;
        (read_at < settled_at).then_some(settled_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_changes_the_signature_and_a_read_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "one").unwrap();
        let first = Signature::of(&path).unwrap();
        std::fs::read(&path).unwrap();
        assert_eq!(Signature::of(&path).unwrap(), first);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, "two").unwrap();
        assert_ne!(Signature::of(&path).unwrap(), first, "same size, later mtime/ctime");
        let replacement = dir.path().join("g");
        std::fs::write(&replacement, "two").unwrap();
        let before = Signature::of(&path).unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_ne!(Signature::of(&path).unwrap(), before, "a rename brings another inode");
    }

    #[test]
    fn a_fresh_file_is_racy_and_an_old_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "x").unwrap();
        let signature = Signature::of(&path).unwrap();
        let now = SystemTime::now();
        let until = signature.racy_until(now).expect("just written");
        assert!(until > now && until <= now + RACY_WINDOW + Duration::from_secs(1));
        assert_eq!(signature.racy_until(now + RACY_WINDOW + Duration::from_secs(1)), None);
    }
}
