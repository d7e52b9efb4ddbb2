//! Why a served file cannot be read, in words an operator can act on.
//!
//! The servers run as an unprivileged user (uid 10001 in our images) and read files that operators
//! write as someone else — root on an admin host, a CI job, a sync sidecar. When those two stop
//! agreeing, the kernel only says `Permission denied (os error 13)`, and the operator is left to
//! guess which side is wrong. Both sides are cheap to state: who owns the file and with what mode,
//! and who this process is. So every reader of a watched file (the reload engine, `config check`,
//! `sync`'s verification) describes a failed read with [`describe_read_error`].

use std::{io, path::Path};

#[cfg(unix)]
use std::os::unix::fs::MetadataExt;

/// One line: `cannot read PATH: permission denied (file owner 0:0 mode 0640; this process runs as
/// uid 10001 gid 10001)`, or `cannot read PATH: ERROR` for anything but a permission error.
pub fn describe_read_error(path: &Path, error: &io::Error) -> String {
    if error.kind() != io::ErrorKind::PermissionDenied {
        return format!("cannot read {}: {error}", path.display());
    }
    format!(
        "cannot read {}: permission denied ({}; this process runs as {})",
        path.display(),
        describe_obstacle(path),
        process_identity()
    )
}

/// Reads a whole file, describing a failure with [`describe_read_error`].
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| describe_read_error(path, &error))
}

/// The effective uid, gid and (when there are others) the supplementary groups: what the kernel
/// checks a file's mode against.
pub fn process_identity() -> String {
    #[cfg(unix)]
    {
        use rustix::process::{getegid, geteuid, getgroups};
        let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
        let others: Vec<String> = getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.as_raw())
            .filter(|&g| g != gid)
            .map(|g| g.to_string())
            .collect();
        if others.is_empty() {
            format!("uid {uid} gid {gid}")
        } else {
            format!("uid {uid} gid {gid} groups {}", others.join(","))
        }
    }
    #[cfg(not(unix))]
    {
        "the current user".to_string()
    }
}

/// The file's owner and mode, or, when the file itself cannot even be looked at, those of the
/// nearest directory that can (a directory without search permission hides everything below).
fn describe_obstacle(path: &Path) -> String {
    #[cfg(unix)]
    {
        if let Ok(meta) = std::fs::metadata(path) {
            return format!(
                "file owner {}:{} mode {:04o}",
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            );
        }
        for dir in path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(meta) = std::fs::metadata(dir) {
                return format!(
                    "directory {} owner {}:{} mode {:04o}",
                    dir.display(),
                    meta.uid(),
                    meta.gid(),
                    meta.mode() & 0o7777
                );
            }
        }
        "owner and mode unknown".to_string()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        "owner and mode unknown".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_permission_error_names_the_file_owner_mode_and_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        std::fs::write(&path, "tokens: []").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        // Root reads any file, so the error is made by hand; the description stats the real file.
        let error = io::Error::from(io::ErrorKind::PermissionDenied);
        let text = describe_read_error(&path, &error);
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        assert!(
            text.starts_with(&format!("cannot read {}: permission denied (", path.display())),
            "{text}"
        );
        assert!(
            text.contains(&format!("file owner {}:{} mode 0640", meta.uid(), meta.gid())),
            "{text}"
        );
        assert!(
            text.contains(&format!("this process runs as uid {uid} gid {gid}")),
            "{text}"
        );
    }

    #[test]
    fn a_file_hidden_by_its_directory_is_described_by_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/tokens.yaml");
        let text = describe_read_error(&path, &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(
            text.contains(&format!("directory {} owner", dir.path().display())),
            "{text}"
        );
    }

    #[test]
    fn other_errors_are_reported_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.yaml");
        let error = read(&path).unwrap_err();
        assert!(
            error.starts_with(&format!("cannot read {}: ", path.display())),
            "{error}"
        );
        assert!(!error.contains("permission denied"), "{error}");
    }

    #[test]
    fn an_unreadable_file_is_described_when_the_kernel_refuses_it() {
        if rustix::process::geteuid().is_root() {
            println!("skipped: root reads files whatever their mode");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        std::fs::write(&path, "secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        let error = read(&path).unwrap_err();
        assert!(error.contains("permission denied (file owner"), "{error}");
        assert!(error.contains("mode 0000"), "{error}");
    }
}
