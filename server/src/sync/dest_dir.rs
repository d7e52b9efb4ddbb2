//! The destination's directory, checked before anything is fetched: it must exist (or be created
//! only when asked) and be writable by this process, and when it is not the error says what to do.
//!
//! Why refuse a missing directory: the destination is normally a mounted volume
//! (`/app/config`, `/app/data`). A missing one is a typo or a volume that did not mount, and
//! creating it would write the files into the container's own layer, where no server ever looks.
//! `--create-dest-dirs` is for the cases where creating it is the point (a fresh host directory).
//!
//! Why name the uid: the image runs as uid 10001, and a host directory created by root is the
//! commonest first-run failure of the Compose variant. "Permission denied" alone sends people
//! looking at S3 credentials; the owner, mode and the uid to grant tell them the fix.

use std::{
    io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// The directory a destination's temp file and rename live in (a symlinked destination is
/// replaced at its target, as `atomic_file` does).
pub fn dir_of(dest: &Path) -> PathBuf {
    let dest = if std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf())
    } else {
        dest.to_path_buf()
    };
    match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks (and with `create`, creates) the directory of `dest`. Blocking but cheap (a stat and an
/// `access(2)`). The error is one line for the log and the exit message.
pub fn prepare(dest: &Path, create: bool) -> Result<(), String> {
    let dir = dir_of(dest);
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("destination directory {} is not a directory", dir.display())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if !create {
                return Err(format!(
                    "destination directory {} does not exist (is the volume mounted?); create it, or pass \
                     --create-dest-dirs to have sync create it",
                    dir.display()
                ));
            }
            std::fs::create_dir_all(&dir).map_err(|error| describe_io_error(&dir, "cannot create", &error))?;
            tracing::info!(dir = %dir.display(), "created the destination directory (--create-dest-dirs)");
        }
        Err(error) => return Err(describe_io_error(&dir, "cannot inspect", &error)),
    }
    // Write and search: the temp file is created, renamed and the directory fsynced in it.
    let wanted = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
    match rustix::fs::access(&dir, wanted) {
        Ok(()) => Ok(()),
        Err(errno) => Err(describe_io_error(&dir, "cannot write to", &io::Error::from(errno))),
    }
}

/// An I/O error on `dir` as one line; a permission error also names who we are, who owns the
/// directory, and the fix.
pub fn describe_io_error(dir: &Path, doing: &str, error: &io::Error) -> String {
    let mut line = format!("{doing} destination directory {}: {error}", dir.display());
    if error.kind() == io::ErrorKind::PermissionDenied {
        line.push_str(&permission_hint(dir));
    }
    line
}

/// "; it is owned by uid 0 gid 0 with mode 0755 and sync runs as uid 10001 gid 10001: make … writable".
fn permission_hint(dir: &Path) -> String {
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    // The directory itself may not exist yet (create_dir_all failed on a parent): describe the
    // nearest existing ancestor, which is the one to fix.
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    let owner = match std::fs::metadata(existing) {
        Ok(meta) => format!(
            "{} is owned by uid {} gid {} with mode {:04o}",
            existing.display(),
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        ),
        Err(_) => format!("{} cannot be inspected", existing.display()),
    };
    format!(
        "; {owner} and sync runs as uid {uid} gid {gid}: make {} writable by uid {uid} \
         (e.g. `chown -R {uid}:{gid} {}` on the host or volume)",
        existing.display(),
        existing.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_refused_unless_creation_is_asked_for() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("config/sub/tokens.yaml");
        let error = prepare(&dest, false).unwrap_err();
        assert!(
            error.contains("does not exist") && error.contains("--create-dest-dirs"),
            "{error}"
        );
        assert!(!root.path().join("config").exists());
        prepare(&dest, true).unwrap();
        assert!(root.path().join("config/sub").is_dir());
        prepare(&dest, false).unwrap();
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("config"), "").unwrap();
        let error = prepare(&root.path().join("config/tokens.yaml"), true).unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
    }

    #[test]
    fn a_permission_error_names_the_uid_the_owner_and_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let line = describe_io_error(root.path(), "cannot write to", &denied);
        let uid = rustix::process::geteuid().as_raw();
        assert!(line.contains(&format!("sync runs as uid {uid}")), "{line}");
        assert!(line.contains("with mode 0700"), "{line}");
        assert!(
            line.contains(&format!("writable by uid {uid}")) && line.contains("chown"),
            "{line}"
        );
    }
}
