//! `postgres-mcp config check`, second half: every file the configuration names, loaded the way a
//! server loads it.
//!
//! Valid settings are not a working deployment: an instance also has to read and accept tokens.yaml,
//! users.yaml, the session key, kb.db and the database URL file, as the user it runs as. The usual
//! failure is not a typo but ownership (a file rewritten by root, a key created 0600), and it shows
//! only at the next reload or restart. So the check opens each file first, describing a refusal with
//! [`describe_read_error`] (who owns it, who we are), then hands it to the very loader or parser the
//! server uses, so "ok here" means "accepted there". Run it as the serving user, e.g. with
//! `docker compose run --rm mcp-1 config check` or `kubectl exec`.

use std::path::{Path, PathBuf};

use crate::{
    auth::{session::SessionKeys, tokens::TokenSet, users::UserSet},
    config::Config,
    file_access::describe_read_error,
    kb::store::KbLoader,
    postgres::Database,
    watch::{Loader, TextLoader},
};

/// One configured file and what loading it gave: a short summary, or why it cannot be served.
#[derive(Debug)]
pub struct FileCheck {
    /// The configuration key naming the file, e.g. `auth.tokens_file`.
    pub key: &'static str,
    pub path: PathBuf,
    pub outcome: Result<String, String>,
}

/// Loads every file `config` names, in configuration order. Blocking.
pub fn check_files(config: &Config) -> Vec<FileCheck> {
    let mut checks = Vec::new();
    let mut check = |key: &'static str, path: &Option<PathBuf>, load: &dyn Fn(&Path) -> Result<String, String>| {
        if let Some(path) = path {
            let outcome = readable(path).and_then(|()| load(path));
            checks.push(FileCheck {
                key,
                path: path.clone(),
                outcome,
            });
        }
    };
    check("auth.tokens_file", &config.auth.tokens_file, &|path| {
        let tokens = TextLoader::new(TokenSet::parse).load(path)?.value;
        Ok(format!("{} tokens", tokens.len()))
    });
    check("auth.users_file", &config.auth.users_file, &|path| {
        let users = TextLoader::new(UserSet::parse).load(path)?.value;
        Ok(format!("{} users", users.len()))
    });
    check("auth.session_secret_file", &config.auth.session_secret_file, &|path| {
        TextLoader::new(SessionKeys::parse).load(path)?;
        Ok("session key".into())
    });
    check("kb.path", &config.kb.path, &|path| {
        // The server's loader with the server's settings: with copy_to_local the copy is made (and
        // removed again), so an unwritable temp dir shows here too.
        // A directory of this check's own, removed when the check ends.
        let copies = tempfile::Builder::new()
            .prefix("postgres-mcp-check-")
            .tempdir()
            .map_err(|e| format!("cannot create a directory for the local kb.db copy: {e}"))?;
        let loader = KbLoader {
            copy_to_local: config.kb.copy_to_local,
            copy_dir: copies.path().to_path_buf(),
        };
        let kb = loader.load(path)?.value;
        Ok(format!("{} documents, {} chunks", kb.documents, kb.chunks))
    });
    check("database.url_file", &config.database.url_file, &|_| {
        // Builds the pool from the file without connecting, as start-up does.
        Database::open(&config.database).map_err(|e| e.to_string())?;
        Ok("PostgreSQL URL (not connected)".into())
    });
    checks
}

/// Opening is the permission check: it needs exactly the access a server's read needs, without
/// reading a large kb.db twice.
fn readable(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|error| describe_read_error(path, &error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    /// tokens.yaml and users.yaml as given, and a valid session key beside them.
    fn config_with(tokens: &Path, users: &Path) -> Config {
        let key = tokens.with_file_name("session.key");
        crate::auth::admin::session_key_create(&key, true).unwrap();
        let overrides = Overrides {
            tokens_file: Some(tokens.to_path_buf()),
            users_file: Some(users.to_path_buf()),
            ..Overrides::default()
        };
        let env = [("PGMCP_AUTH_SESSION_SECRET_FILE".to_string(), key.display().to_string())];
        Config::load(None, env, &overrides).unwrap()
    }

    #[test]
    fn each_configured_file_is_loaded_and_its_failure_named() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        let users = dir.path().join("users.yaml");
        crate::auth::admin::token_create(&tokens, "a", None, None).unwrap();
        std::fs::write(&users, "users: [{username: x, password_hash: plaintext}]").unwrap();
        let checks = check_files(&config_with(&tokens, &users));
        assert_eq!(checks.len(), 3);
        assert_eq!(checks[0].key, "auth.tokens_file");
        assert_eq!(checks[0].outcome, Ok("1 tokens".to_string()));
        assert_eq!(checks[1].key, "auth.users_file");
        assert!(checks[1].outcome.is_err(), "{:?}", checks[1].outcome);
        assert_eq!(checks[2].key, "auth.session_secret_file");
        assert_eq!(checks[2].outcome, Ok("session key".to_string()));
    }

    #[test]
    fn a_missing_file_is_a_failure_that_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.yaml");
        crate::auth::admin::token_create(&tokens, "a", None, None).unwrap();
        let users = dir.path().join("absent.yaml");
        let checks = check_files(&config_with(&tokens, &users));
        let error = checks[1].outcome.as_ref().unwrap_err();
        assert!(
            error.starts_with(&format!("cannot read {}", users.display())),
            "{error}"
        );
    }
}
