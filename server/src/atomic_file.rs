//! Atomic replacement of a file: write a temp file beside the target, fsync it, rename it over the
//! target, fsync the directory.
//!
//! Every file the servers watch (tokens.yaml, users.yaml, the session key, kb.db) is read by several
//! instances at any moment. A reader must see either the old file or the new one, never a half-written
//! one, and a crash mid-write must leave the old file intact. `rename(2)` within one directory gives
//! exactly that on local filesystems and on NFS; the temp file lives in the same directory so the
//! rename never crosses a filesystem boundary.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

/// A temp file beside `target` that becomes `target` on [`PendingFile::commit`], or disappears if
/// dropped first.
pub struct PendingFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Reserves a unique temp path beside `target`. The file itself is created by the caller
    /// (directly, or by a library such as SQLite) at [`PendingFile::path`].
    pub fn beside(target: &Path) -> io::Result<Self> {
        let dir = parent_dir(target);
        fs::create_dir_all(&dir)?;
        let name = target
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a file path", target.display()),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let temp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
        Ok(Self {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// fsyncs the temp file, renames it over the target and fsyncs the directory so the rename
    /// itself survives a crash.
    pub fn commit(mut self) -> io::Result<()> {
        File::open(&self.temp)?.sync_all()?;
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

/// Writes `contents` to `target` atomically with the given Unix permission bits (secrets use 0600;
/// files read by a server running as another user use 0640 or 0644).
pub fn write_atomic(target: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let pending = PendingFile::beside(target)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode);
    let mut file = options.open(pending.path())?;
    file.write_all(contents)?;
    #[cfg(unix)]
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    drop(file);
    pending.commit()
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

    #[test]
    fn replaces_the_target_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokens.yaml");
        fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn an_uncommitted_pending_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("kb.db");
        let pending = PendingFile::beside(&target).unwrap();
        fs::write(pending.path(), "partial").unwrap();
        drop(pending);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
