//! Users for `POST /api/login`: the `users.yaml` format and bcrypt password checks.
//!
//! Passwords are low-entropy, so they are stored as bcrypt (cost 12 by default: ~0.28 s a check on a
//! small machine). That cost is the point — and also why checks run on the blocking pool, why an
//! unknown user still pays for one bcrypt (so response time does not reveal which names exist), and
//! why failed logins feed the rate limiter.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{principal::AuthFailure, scope::ToolScope};

/// bcrypt cost used by the CLI.
pub const DEFAULT_COST: u32 = 12;

/// One user who may log in (or is listed as disabled).
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub username: Arc<str>,
    password_hash: String,
    pub disabled: bool,
    /// The tools this user may use.
    pub tools: ToolScope,
    /// A short digest of the current password hash, embedded in session tokens: a password change
    /// changes it and so revokes that user's sessions, and nobody else's.
    pub version: String,
}

/// The parsed, validated content of users.yaml.
#[derive(Debug, Default)]
pub struct UserSet {
    by_name: HashMap<String, UserRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    pub password_hash: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Only these tools; absent: every tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserEntry>,
}

/// The session version for a password hash: 16 hex characters of its SHA-256.
pub fn password_version(password_hash: &str) -> String {
    hex::encode(&Sha256::digest(password_hash.as_bytes())[..8])
}

impl UserEntry {
    pub fn parse_file(text: &str) -> Result<Vec<UserEntry>, String> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let file: UsersFile = serde_yaml::from_str(text).map_err(|e| format!("not a valid users file: {e}"))?;
        Ok(file.users)
    }

    pub fn render_file(entries: &[UserEntry]) -> String {
        let body = serde_yaml::to_string(&UsersFile {
            users: entries.to_vec(),
        })
        .expect("user entries serialize");
        format!("# Users for postgres-mcp (bcrypt hashes only). Edit with `postgres-mcp user`.\n{body}")
    }

    /// Hashes a new password (blocking: ~0.3 s at the default cost).
    pub fn with_password(username: &str, password: &str, cost: u32) -> Result<UserEntry, bcrypt::BcryptError> {
        let password_hash = bcrypt::hash(password, cost)?;
        Ok(UserEntry {
            username: username.to_string(),
            password_hash,
            disabled: false,
            tools: None,
        })
    }
}

fn is_bcrypt_hash(hash: &str) -> bool {
    hash.len() == 60 && ["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| hash.starts_with(p))
}

/// Verified against when the user does not exist, so that case costs the same time as a wrong
/// password. Computing it is itself one bcrypt hash: done by [`prepare_unknown_user_check`].
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn dummy_hash() -> &'static str {
    DUMMY_HASH.get_or_init(|| bcrypt::hash("not a real password", DEFAULT_COST).expect("bcrypt hashes a constant"))
}

/// Computes the hash an unknown user's password is checked against (one bcrypt, ~0.3 s), so the
/// first sign-in with an unknown name does not pay for it and stand out by taking twice as long.
/// Called at startup when a users file is configured; idempotent.
pub fn prepare_unknown_user_check() {
    dummy_hash();
}

impl UserSet {
    pub fn parse(text: &str) -> Result<UserSet, String> {
        let mut by_name = HashMap::new();
        for (index, entry) in UserEntry::parse_file(text)?.into_iter().enumerate() {
            if entry.username.trim().is_empty() {
                return Err(format!("users[{index}]: empty username"));
            }
            if !is_bcrypt_hash(&entry.password_hash) {
                return Err(format!(
                    "users[{index}] ({}): password_hash is not a bcrypt hash ($2b$...)",
                    entry.username
                ));
            }
            let tools = ToolScope::from_entry(entry.tools.as_deref())
                .map_err(|e| format!("users[{index}] ({}): {e}", entry.username))?;
            let record = UserRecord {
                tools,
                username: entry.username.clone().into(),
                version: password_version(&entry.password_hash),
                password_hash: entry.password_hash,
                disabled: entry.disabled,
            };
            if by_name.insert(entry.username.clone(), record).is_some() {
                return Err(format!("users[{index}]: duplicate username `{}`", entry.username));
            }
        }
        Ok(UserSet { by_name })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn get(&self, username: &str) -> Option<&UserRecord> {
        self.by_name.get(username)
    }

    /// Checks a username and password. Blocking (bcrypt): call it from `spawn_blocking`.
    pub fn verify_password(&self, username: &str, password: &str) -> Result<&UserRecord, AuthFailure> {
        match self.by_name.get(username) {
            None => {
                let _ = bcrypt::verify(password, dummy_hash());
                Err(AuthFailure::BadCredentials)
            }
            Some(user) => {
                let matches = bcrypt::verify(password, &user.password_hash).unwrap_or(false);
                if !matches {
                    Err(AuthFailure::BadCredentials)
                } else if user.disabled {
                    Err(AuthFailure::Disabled)
                } else {
                    Ok(user)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cost 4 keeps the tests fast; the format is the same.
    fn users(entries: &[UserEntry]) -> UserSet {
        UserSet::parse(&UserEntry::render_file(entries)).unwrap()
    }

    #[test]
    fn right_password_logs_in_wrong_one_does_not() {
        let set = users(&[UserEntry::with_password("alice", "s3cret-pass", 4).unwrap()]);
        assert_eq!(&*set.verify_password("alice", "s3cret-pass").unwrap().username, "alice");
        assert_eq!(
            set.verify_password("alice", "wrong").unwrap_err(),
            AuthFailure::BadCredentials
        );
        assert_eq!(
            set.verify_password("bob", "s3cret-pass").unwrap_err(),
            AuthFailure::BadCredentials
        );
    }

    #[test]
    fn the_unknown_user_hash_is_ready_before_the_first_sign_in() {
        prepare_unknown_user_check();
        let hash = DUMMY_HASH.get().expect("computed by prepare_unknown_user_check");
        assert!(is_bcrypt_hash(hash));
        let set = users(&[]);
        assert!(matches!(
            set.verify_password("nobody", "x"),
            Err(AuthFailure::BadCredentials)
        ));
    }

    #[test]
    fn disabled_users_cannot_log_in() {
        let mut entry = UserEntry::with_password("carol", "pw-pw-pw-pw", 4).unwrap();
        entry.disabled = true;
        assert_eq!(
            users(&[entry]).verify_password("carol", "pw-pw-pw-pw").unwrap_err(),
            AuthFailure::Disabled
        );
    }

    #[test]
    fn broken_files_are_rejected_with_the_reason() {
        assert!(
            UserSet::parse("users: {")
                .unwrap_err()
                .contains("not a valid users file")
        );
        assert!(
            UserSet::parse("users:\n  - username: a\n    password_hash: plain\n")
                .unwrap_err()
                .contains("bcrypt")
        );
        let entry = UserEntry::with_password("a", "pw", 4).unwrap();
        let text = UserEntry::render_file(&[entry.clone(), entry]);
        assert!(UserSet::parse(&text).unwrap_err().contains("duplicate username"));
        assert!(
            UserSet::parse("users:\n  - username: a\n    password: x\n")
                .unwrap_err()
                .contains("password")
        );
    }

    #[test]
    fn a_password_change_changes_the_version() {
        let a = UserEntry::with_password("a", "one", 4).unwrap();
        let b = UserEntry::with_password("a", "two", 4).unwrap();
        assert_ne!(password_version(&a.password_hash), password_version(&b.password_hash));
        assert_eq!(password_version(&a.password_hash).len(), 16);
    }
}
