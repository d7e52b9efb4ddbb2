//! The [`Authenticator`]: checks bearer credentials and passwords against the current snapshot of
//! the watched auth files (tokens.yaml, users.yaml, the session key), and reports them to `/health`.

use std::{path::Path, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    password_checks::PasswordChecks,
    principal::{AuthFailure, Principal, PrincipalKind},
    session::{SESSION_PREFIX, SessionClaims, SessionKeys},
    tokens::TokenSet,
    users::UserSet,
};
use crate::config::AuthConfig;
use crate::watch::{FileStatus, OpenError, Reloadable, TextLoader, Watched};

pub type TokensFile = Watched<TextLoader<TokenSet>>;
pub type UsersFile = Watched<TextLoader<UserSet>>;
pub type SessionKeyFile = Watched<TextLoader<SessionKeys>>;

/// A freshly issued session.
#[derive(Debug, Serialize)]
pub struct IssuedSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Checks credentials against the current content of the auth files.
pub struct Authenticator {
    tokens: Option<Arc<TokensFile>>,
    users: Option<Arc<UsersFile>>,
    session_keys: Option<Arc<SessionKeyFile>>,
    session_ttl: Duration,
}

/// The `auth` section of `/health`.
#[derive(Debug, Serialize)]
pub struct AuthHealth {
    /// One generation for all auth files together: equal on every instance once all converged.
    pub generation: String,
    pub tokens: usize,
    pub users: usize,
    pub loaded_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub files: std::collections::BTreeMap<&'static str, FileStatus>,
}

impl Authenticator {
    /// Loads every configured auth file; any missing or invalid file fails start-up.
    pub fn open(config: &AuthConfig) -> Result<Authenticator, OpenError> {
        fn open_file<T: Send + Sync + 'static>(
            kind: &'static str,
            path: &Option<std::path::PathBuf>,
            loader: TextLoader<T>,
        ) -> Result<Option<Arc<Watched<TextLoader<T>>>>, OpenError> {
            path.as_deref()
                .map(|p: &Path| Watched::open(kind, p, loader))
                .transpose()
        }
        let tokens = TextLoader::new(TokenSet::parse).on_serving(TokenSet::record_earliest_expiry);
        if config.users_file.is_some() {
            // At startup, not at the first sign-in of an unknown user (which would take 2×); on its
            // own thread, so startup does not wait for the bcrypt (a sign-in meanwhile waits for it).
            std::thread::spawn(crate::auth::users::prepare_unknown_user_check);
        }
        Ok(Authenticator {
            tokens: open_file("tokens", &config.tokens_file, tokens)?,
            users: open_file("users", &config.users_file, TextLoader::new(UserSet::parse))?,
            session_keys: open_file(
                "session_key",
                &config.session_secret_file,
                TextLoader::new(SessionKeys::parse),
            )?,
            session_ttl: config.session_ttl.get(),
        })
    }

    /// The files the reload engine should watch.
    pub fn watched_files(&self) -> Vec<Arc<dyn Reloadable>> {
        let mut files: Vec<Arc<dyn Reloadable>> = Vec::new();
        if let Some(f) = &self.tokens {
            files.push(f.clone());
        }
        if let Some(f) = &self.users {
            files.push(f.clone());
        }
        if let Some(f) = &self.session_keys {
            files.push(f.clone());
        }
        files
    }

    pub fn logins_enabled(&self) -> bool {
        self.users.is_some() && self.session_keys.is_some()
    }

    /// The current session keys, when `auth.session_secret_file` is set.
    pub(crate) fn session_keys(&self) -> Option<Arc<SessionKeys>> {
        self.session_keys.as_ref().map(|f| f.current())
    }

    /// The current users.yaml, when `auth.users_file` is set.
    pub(crate) fn users(&self) -> Option<Arc<UserSet>> {
        self.users.as_ref().map(|f| f.current())
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate_header(&self, header: Option<&str>) -> Result<Principal, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        let (scheme, credential) = header.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::Malformed);
        }
        self.authenticate_bearer(credential.trim())
    }

    pub fn authenticate_bearer(&self, credential: &str) -> Result<Principal, AuthFailure> {
        if credential.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let now = Utc::now();
        if credential.starts_with(SESSION_PREFIX) {
            return self.authenticate_session(credential, now);
        }
        let tokens = self.tokens.as_ref().ok_or(AuthFailure::UnknownToken)?.current();
        let record = tokens.verify(credential, now)?;
        Ok(Principal {
            kind: PrincipalKind::ApiToken,
            name: record.name.clone(),
            tools: record.tools.clone(),
        })
    }

    fn authenticate_session(&self, credential: &str, now: DateTime<Utc>) -> Result<Principal, AuthFailure> {
        let (Some(keys), Some(users)) = (&self.session_keys, &self.users) else {
            return Err(AuthFailure::NotConfigured);
        };
        let claims = keys.current().verify(credential, now)?;
        let users = users.current();
        let user = users.get(&claims.sub).ok_or(AuthFailure::Revoked)?;
        if user.disabled {
            return Err(AuthFailure::Disabled);
        }
        if user.version != claims.ver {
            return Err(AuthFailure::Revoked);
        }
        Ok(Principal {
            kind: PrincipalKind::User,
            name: user.username.clone(),
            tools: user.tools.clone(),
        })
    }

    /// Checks a password (bcrypt, in one of `checks`' slots) and issues a session token.
    pub async fn login(
        &self,
        checks: &PasswordChecks,
        username: String,
        password: String,
    ) -> Result<IssuedSession, AuthFailure> {
        let (Some(keys), Some(users)) = (&self.session_keys, &self.users) else {
            return Err(AuthFailure::NotConfigured);
        };
        let users = users.current();
        let version = checks
            .run(move || {
                users
                    .verify_password(&username, &password)
                    .map(|u| (u.username.clone(), u.version.clone()))
            })
            .await?;
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(self.session_ttl).unwrap_or(chrono::Duration::hours(12));
        let claims = SessionClaims {
            sub: version.0.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            ver: version.1,
        };
        Ok(IssuedSession {
            token: keys.current().mint(&claims),
            expires_at,
        })
    }

    pub fn health(&self) -> AuthHealth {
        let mut files = std::collections::BTreeMap::new();
        if let Some(f) = &self.tokens {
            files.insert("tokens", f.status());
        }
        if let Some(f) = &self.users {
            files.insert("users", f.status());
        }
        if let Some(f) = &self.session_keys {
            files.insert("session_key", f.status());
        }
        let mut hasher = Sha256::new();
        for status in files.values() {
            hasher.update(status.generation.to_string().as_bytes());
        }
        AuthHealth {
            generation: hex::encode(&hasher.finalize()[..6]),
            tokens: self.tokens.as_ref().map_or(0, |f| f.current().len()),
            users: self.users.as_ref().map_or(0, |f| f.current().len()),
            loaded_at: files.values().map(|s| s.loaded_at).max(),
            last_error: files
                .iter()
                .find_map(|(kind, s)| s.last_error.as_ref().map(|e| format!("{kind}: {e}"))),
            files,
        }
    }
}
