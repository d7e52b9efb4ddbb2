//! `--mode` and `--group`: the permissions an operator asks for on the commands that write served
//! files (`token`, `user`, `session-key`, `kb build`).
//!
//! Without them an existing file keeps its mode, owner and group ([`crate::atomic_file`]) and a new
//! one gets its kind's default, so the flags are only needed to set up a new file for servers that
//! run as another user, typically `session-key create --group <servers' group>` (the key is 0640).
//! Groups are given by name or number. Names are looked up in `/etc/group` only: there is no NSS
//! (LDAP, sssd) lookup without libc's resolver, and a gid always works.

use std::path::Path;

use clap::Args;

use crate::atomic_file::Requested;

#[derive(Args, Clone, Debug, Default)]
pub struct PermissionFlags {
    /// Permission bits in octal (e.g. 0640) for the written file, new or existing. Without it an
    /// existing file keeps its mode and a new one gets the command's default.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<u32>,
    /// Group (name from /etc/group, or numeric gid) for the written file, new or existing, e.g. the
    /// servers' group so that they can read a 0640 file. Without it an existing file keeps its group.
    #[arg(long, value_parser = parse_group)]
    pub group: Option<u32>,
}

impl PermissionFlags {
    pub fn requested(&self) -> Requested {
        Requested {
            mode: self.mode,
            group: self.group,
        }
    }
}

/// `0640`, `640` or `0o640`; at most `7777`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    let mode = u32::from_str_radix(digits, 8).map_err(|_| format!("`{text}` is not an octal mode (e.g. 0640)"))?;
    if mode > 0o7777 {
        return Err(format!("`{text}` is not a file mode: at most 7777"));
    }
    Ok(mode)
}

/// A numeric gid, or a group name looked up in `/etc/group`.
pub fn parse_group(text: &str) -> Result<u32, String> {
    let name = text.trim();
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let path = Path::new("/etc/group");
    let table = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot look up group `{name}`: {} (give a numeric gid instead)",
            crate::file_access::describe_read_error(path, &e)
        )
    })?;
    gid_in(&table, name).ok_or_else(|| format!("no group `{name}` in /etc/group (give a numeric gid instead)"))
}

/// The gid of `name` in the text of an `/etc/group` file (`name:password:gid:members`).
fn gid_in(table: &str, name: &str) -> Option<u32> {
    table
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| line.split(':'))
        .find_map(|mut fields| {
            (fields.next()? == name)
                .then(|| fields.nth(1)?.trim().parse().ok())
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_with_or_without_prefix() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0648").is_err());
        assert!(parse_mode("rw-r-----").is_err());
        assert!(parse_mode("17777").is_err());
    }

    #[test]
    fn group_names_are_found_in_the_group_table() {
        let table = "# comment\nroot:x:0:\nwheel:x:10:alice,bob\napp:x:10001:\n";
        assert_eq!(gid_in(table, "app"), Some(10001));
        assert_eq!(gid_in(table, "wheel"), Some(10));
        assert_eq!(gid_in(table, "whee"), None);
        assert_eq!(gid_in("broken:x:notanumber:\n", "broken"), None);
    }

    #[test]
    fn numeric_groups_need_no_lookup() {
        assert_eq!(parse_group("10001"), Ok(10001));
        assert!(parse_group("surely-no-such-group-here").is_err());
    }
}
