//! The file edits behind the CLI's `token`, `user` and `session-key` commands.
//!
//! Each command reads the whole file, changes one entry, validates the result with the same parser the
//! server uses, and replaces the file atomically — so other entries are kept, a running server never
//! reads a half-written file, and the CLI can never write a file the server would reject. The file
//! keeps its mode, owner and group (`atomic_file`); a new one gets the defaults below, or
//! the operator's `--mode`/`--group` (`atomic_file::Target`). Each edit holds the file's
//! [`edit_lock`] from its read to its rename, so edits run at once are applied one after the other
//! rather than the last one undoing the others.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::{
    scope::ToolScope,
    session::{SessionKeys, generate_key_file},
    tokens::{TokenEntry, TokenSet, generate_token},
    users::{UserEntry, UserSet},
};
use crate::atomic_file::{Permissions, Target, write_atomic};
use crate::edit_lock;
use crate::file_access::describe_read_error;

/// Mode of a new tokens.yaml or users.yaml: they hold only hashes (SHA-256 of 256-bit tokens,
/// bcrypt), so any local user may read them, including a server running as another uid.
pub const HASH_FILE_MODE: u32 = 0o644;
/// Mode of a new session key: a secret, readable by its owner and group only (`--group` the
/// servers' group, or write it as the servers' user).
pub const SESSION_KEY_MODE: u32 = 0o640;
const MIN_PASSWORD_CHARS: usize = 8;

fn read_or_empty(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => bail!("{}", describe_read_error(path, &e)),
    }
}

/// Replaces the file at `target` with `text`, keeping its mode, owner and group.
fn write(target: Target, text: &str, new_file_mode: u32) -> anyhow::Result<()> {
    let permissions = Permissions::new_file(new_file_mode).with(target.requested);
    write_atomic(target.path, text.as_bytes(), permissions)
        .with_context(|| format!("cannot write {}", target.path.display()))
}

fn write_tokens(target: Target, entries: &[TokenEntry]) -> anyhow::Result<()> {
    let text = TokenEntry::render_file(entries);
    TokenSet::parse(&text).map_err(|e| anyhow::anyhow!("refusing to write an invalid tokens file: {e}"))?;
    write(target, &text, HASH_FILE_MODE)
}

fn read_tokens(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    TokenEntry::parse_file(&read_or_empty(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Adds a token and returns it (the only time it is ever shown).
pub fn token_create<'a>(
    file: impl Into<Target<'a>>,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    note: Option<String>,
) -> anyhow::Result<String> {
    token_create_scoped(file, name, expires_at, note, None)
}

/// Like [`token_create`], for a token limited to `tools` (None: every tool). The scope is written
/// with the token in one atomic write, so no instance ever sees the token without its limits.
pub fn token_create_scoped<'a>(
    file: impl Into<Target<'a>>,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    note: Option<String>,
    tools: Option<Vec<String>>,
) -> anyhow::Result<String> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    ToolScope::from_entry(tools.as_deref())?;
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let mut entries = read_tokens(path)?;
    if entries.iter().any(|e| e.name == name) {
        bail!(
            "a token named `{name}` already exists in {} (revoke it first, or pick another name)",
            path.display()
        );
    }
    let token = generate_token();
    entries.push(TokenEntry {
        tools,
        ..TokenEntry::new(name, &token, expires_at, note)
    });
    write_tokens(target, &entries)?;
    Ok(token)
}

pub fn token_revoke<'a>(file: impl Into<Target<'a>>, name: &str) -> anyhow::Result<()> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    let mut entries = read_tokens(path)?;
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        bail!("no token named `{name}` in {}", path.display());
    }
    write_tokens(target, &entries)
}

pub fn token_list(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    read_tokens(path)
}

fn read_users(path: &Path) -> anyhow::Result<Vec<UserEntry>> {
    UserEntry::parse_file(&read_or_empty(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn write_users(target: Target, entries: &[UserEntry]) -> anyhow::Result<()> {
    let text = UserEntry::render_file(entries);
    UserSet::parse(&text).map_err(|e| anyhow::anyhow!("refusing to write an invalid users file: {e}"))?;
    write(target, &text, HASH_FILE_MODE)
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(())
}

pub fn user_add<'a>(file: impl Into<Target<'a>>, username: &str, password: &str, cost: u32) -> anyhow::Result<()> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    if username.trim().is_empty() {
        bail!("username must not be empty");
    }
    check_password(password)?;
    let mut entries = read_users(path)?;
    if entries.iter().any(|e| e.username == username) {
        bail!(
            "user `{username}` already exists in {} (use `user passwd`)",
            path.display()
        );
    }
    entries.push(UserEntry::with_password(username, password, cost).context("cannot hash password")?);
    write_users(target, &entries)
}

/// Sets a new password; the user's existing sessions stop working at the next reload.
pub fn user_passwd<'a>(file: impl Into<Target<'a>>, username: &str, password: &str, cost: u32) -> anyhow::Result<()> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    check_password(password)?;
    let mut entries = read_users(path)?;
    let entry = entries
        .iter_mut()
        .find(|e| e.username == username)
        .with_context(|| format!("no user `{username}` in {}", path.display()))?;
    entry.password_hash = UserEntry::with_password(username, password, cost)
        .context("cannot hash password")?
        .password_hash;
    write_users(target, &entries)
}

pub fn user_set_disabled<'a>(file: impl Into<Target<'a>>, username: &str, disabled: bool) -> anyhow::Result<()> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    let mut entries = read_users(path)?;
    let entry = entries
        .iter_mut()
        .find(|e| e.username == username)
        .with_context(|| format!("no user `{username}` in {}", path.display()))?;
    entry.disabled = disabled;
    write_users(target, &entries)
}

pub fn user_remove<'a>(file: impl Into<Target<'a>>, username: &str) -> anyhow::Result<()> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    let mut entries = read_users(path)?;
    let before = entries.len();
    entries.retain(|e| e.username != username);
    if entries.len() == before {
        bail!("no user `{username}` in {}", path.display());
    }
    write_users(target, &entries)
}

pub fn user_list(path: &Path) -> anyhow::Result<Vec<UserEntry>> {
    read_users(path)
}

/// Writes a new session key file; refuses to overwrite one unless `force` (that logs everyone out).
pub fn session_key_create<'a>(file: impl Into<Target<'a>>, force: bool) -> anyhow::Result<()> {
    let target = file.into();
    let path = target.path;
    let _edit = edit_lock::lock(path)?;
    if path.exists() && !force {
        bail!(
            "{} exists; replacing it logs every user out (use --force, or prepend a key line to rotate)",
            path.display()
        );
    }
    let text = generate_key_file();
    SessionKeys::parse(&text).map_err(|e| anyhow::anyhow!("generated an invalid session key: {e}"))?;
    write(target, &text, SESSION_KEY_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edits run at once are all applied (an operator's review: of five `token create` run
    /// together one was kept, and a `revoke` racing a `create` brought the token back).
    #[test]
    fn edits_run_at_once_are_all_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        // Enough entries that each read-modify-write takes a while.
        for i in 0..300 {
            token_create(&path, &format!("seed{i}"), None, None).unwrap();
        }
        let path = std::sync::Arc::new(path);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    if i == 0 {
                        token_revoke(path.as_path(), "seed0").unwrap();
                    } else {
                        token_create(path.as_path(), &format!("concurrent{i}"), None, None).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let names: Vec<String> = token_list(&path).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names.len(), 300 - 1 + 7, "{names:?}");
        assert!(!names.contains(&"seed0".to_string()));
        assert!((1..8).all(|i| names.contains(&format!("concurrent{i}"))));
    }

    #[test]
    fn token_commands_keep_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        let first = token_create(&path, "first", None, None).unwrap();
        let second = token_create(&path, "second", None, Some("ci".into())).unwrap();
        assert!(
            token_create(&path, "first", None, None)
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
        token_revoke(&path, "first").unwrap();
        let set = TokenSet::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(set.verify(&first, Utc::now()).is_err());
        assert!(set.verify(&second, Utc::now()).is_ok());
        assert!(
            !std::fs::read_to_string(&path).unwrap().contains(&second),
            "the token itself is never stored"
        );
        assert!(token_revoke(&path, "nope").is_err());
    }

    #[test]
    fn user_commands_validate_and_keep_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yaml");
        user_add(&path, "alice", "correct horse", 4).unwrap();
        user_add(&path, "bob", "battery staple", 4).unwrap();
        assert!(
            user_add(&path, "carol", "short", 4)
                .unwrap_err()
                .to_string()
                .contains("at least 8")
        );
        user_passwd(&path, "alice", "new password", 4).unwrap();
        user_remove(&path, "bob").unwrap();
        let set = UserSet::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(set.verify_password("alice", "new password").is_ok());
        assert!(set.get("bob").is_none());
        assert!(!std::fs::read_to_string(&path).unwrap().contains("new password"));
    }

    #[test]
    fn new_files_get_their_kinds_default_mode_and_keep_theirs_afterwards() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        let users = dir.path().join("users.yaml");
        let key = dir.path().join("session.key");
        token_create(&tokens, "a", None, None).unwrap();
        user_add(&users, "alice", "correct horse", 4).unwrap();
        session_key_create(&key, false).unwrap();
        assert_eq!((mode(&tokens), mode(&users), mode(&key)), (0o644, 0o644, 0o640));

        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
        token_create(&tokens, "b", None, None).unwrap();
        token_revoke(&tokens, "a").unwrap();
        assert_eq!(mode(&tokens), 0o600, "an existing file keeps its mode");

        let requested = crate::atomic_file::Requested {
            mode: Some(0o640),
            group: None,
        };
        user_remove(Target::new(&users, requested), "alice").unwrap();
        assert_eq!(mode(&users), 0o640, "unless the operator asks for another");
    }

    #[test]
    fn session_key_is_not_overwritten_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        session_key_create(&path, false).unwrap();
        assert!(session_key_create(&path, false).is_err());
        session_key_create(&path, true).unwrap();
    }
}
