//! The file edits behind the CLI's `token`, `user` and `session-key` commands.
//!
//! Each command reads the whole file, changes one entry, validates the result with the same parser the
//! server uses, and replaces the file atomically — so other entries are kept, a running server never
//! reads a half-written file, and the CLI can never write a file the server would reject.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use crate::atomic_file::write_atomic;
use crate::auth::session::{SessionKeys, generate_key_file};
use crate::auth::tokens::{TokenEntry, TokenSet, generate_token};
use crate::auth::users::{UserEntry, UserSet};

/// Permissions of files holding hashes and keys: readable by the owner and group (the server's
/// group in the container images), never by others.
const SECRET_FILE_MODE: u32 = 0o640;
const MIN_PASSWORD_CHARS: usize = 8;

fn read_or_empty(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_tokens(path: &Path, entries: &[TokenEntry]) -> anyhow::Result<()> {
    let text = TokenEntry::render_file(entries);
    TokenSet::parse(&text).map_err(|e| anyhow::anyhow!("refusing to write an invalid tokens file: {e}"))?;
    write_atomic(path, text.as_bytes(), SECRET_FILE_MODE).with_context(|| format!("cannot write {}", path.display()))
}

fn read_tokens(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    TokenEntry::parse_file(&read_or_empty(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Adds a token and returns it (the only time it is ever shown).
pub fn token_create(
    path: &Path,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    note: Option<String>,
) -> anyhow::Result<String> {
    token_create_scoped(path, name, expires_at, note, None)
}

/// Like [`token_create`], for a token limited to `tools` (None: every tool). The scope is written
/// with the token in one atomic write, so no instance ever sees the token without its limits.
pub fn token_create_scoped(
    path: &Path,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    note: Option<String>,
    tools: Option<Vec<String>>,
) -> anyhow::Result<String> {
    crate::auth::ToolScope::from_entry(tools.as_deref()).map_err(anyhow::Error::msg)?;
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
    write_tokens(path, &entries)?;
    Ok(token)
}

pub fn token_revoke(path: &Path, name: &str) -> anyhow::Result<()> {
    let mut entries = read_tokens(path)?;
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        bail!("no token named `{name}` in {}", path.display());
    }
    write_tokens(path, &entries)
}

pub fn token_list(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    read_tokens(path)
}

fn read_users(path: &Path) -> anyhow::Result<Vec<UserEntry>> {
    UserEntry::parse_file(&read_or_empty(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn write_users(path: &Path, entries: &[UserEntry]) -> anyhow::Result<()> {
    let text = UserEntry::render_file(entries);
    UserSet::parse(&text).map_err(|e| anyhow::anyhow!("refusing to write an invalid users file: {e}"))?;
    write_atomic(path, text.as_bytes(), SECRET_FILE_MODE).with_context(|| format!("cannot write {}", path.display()))
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(())
}

pub fn user_add(path: &Path, username: &str, password: &str, cost: u32) -> anyhow::Result<()> {
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
    entries.push(UserEntry::with_password(username, password, cost).map_err(anyhow::Error::msg)?);
    write_users(path, &entries)
}

/// Sets a new password; the user's existing sessions stop working at the next reload.
pub fn user_passwd(path: &Path, username: &str, password: &str, cost: u32) -> anyhow::Result<()> {
    check_password(password)?;
    let mut entries = read_users(path)?;
    let entry = entries
        .iter_mut()
        .find(|e| e.username == username)
        .with_context(|| format!("no user `{username}` in {}", path.display()))?;
    entry.password_hash = UserEntry::with_password(username, password, cost)
        .map_err(anyhow::Error::msg)?
        .password_hash;
    write_users(path, &entries)
}

pub fn user_set_disabled(path: &Path, username: &str, disabled: bool) -> anyhow::Result<()> {
    let mut entries = read_users(path)?;
    let entry = entries
        .iter_mut()
        .find(|e| e.username == username)
        .with_context(|| format!("no user `{username}` in {}", path.display()))?;
    entry.disabled = disabled;
    write_users(path, &entries)
}

pub fn user_remove(path: &Path, username: &str) -> anyhow::Result<()> {
    let mut entries = read_users(path)?;
    let before = entries.len();
    entries.retain(|e| e.username != username);
    if entries.len() == before {
        bail!("no user `{username}` in {}", path.display());
    }
    write_users(path, &entries)
}

pub fn user_list(path: &Path) -> anyhow::Result<Vec<UserEntry>> {
    read_users(path)
}

/// Writes a new session key file; refuses to overwrite one unless `force` (that logs everyone out).
pub fn session_key_create(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} exists; replacing it logs every user out (use --force, or prepend a key line to rotate)",
            path.display()
        );
    }
    let text = generate_key_file();
    SessionKeys::parse(&text).map_err(anyhow::Error::msg)?;
    write_atomic(path, text.as_bytes(), SECRET_FILE_MODE).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn session_key_is_not_overwritten_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        session_key_create(&path, false).unwrap();
        assert!(session_key_create(&path, false).is_err());
        session_key_create(&path, true).unwrap();
    }
}
