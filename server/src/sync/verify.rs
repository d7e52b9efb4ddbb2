//! Proof that a downloaded file is one the servers will accept, before it replaces anything.
//!
//! Each kind is checked by the very loader the server's reload engine uses ([`KbLoader`] runs
//! `PRAGMA quick_check`, the schema-version check and an FTS probe; [`TextLoader`] with
//! `TokenSet::parse` / `UserSet::parse` / `SessionKeys::parse` refuses empty and invalid files), so
//! "verified here" and "accepted there" cannot drift apart. The servers would refuse a bad file
//! anyway and keep their last good version; verifying first means a bad upload never lands on the
//! shared volume at all, where an instance starting later would have nothing good to fall back on.

use std::path::Path;

use super::manifest::Kind;
use crate::{
    auth::{session::SessionKeys, tokens::TokenSet, users::UserSet},
    kb::store::KbLoader,
    watch::{Loader, TextLoader},
};

/// Validates the file at `path` as `kind`; returns a short description for the log. Blocking.
pub fn verify(kind: Kind, path: &Path) -> Result<String, String> {
    match kind {
        Kind::Kb => {
            // Opened in place, read-only: a copy would double the disk and time for nothing.
            let loader = KbLoader {
                copy_to_local: false,
                copy_dir: std::env::temp_dir(),
            };
            let kb = loader.load(path)?.value;
            Ok(format!(
                "knowledge base: {} documents, {} chunks",
                kb.documents, kb.chunks
            ))
        }
        Kind::Tokens => {
            let tokens = TextLoader::new(TokenSet::parse).load(path)?.value;
            Ok(format!("{} tokens", tokens.len()))
        }
        Kind::Users => {
            let users = TextLoader::new(UserSet::parse).load(path)?.value;
            Ok(format!("{} users", users.len()))
        }
        Kind::SessionKey => {
            TextLoader::new(SessionKeys::parse).load(path)?;
            Ok("session key".into())
        }
        Kind::Raw => {
            let name = path.to_string_lossy().to_lowercase();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                let bytes = crate::file_access::read(path)?;
                let text = std::str::from_utf8(&bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
                serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| format!("not valid YAML: {e}"))?;
                return Ok("YAML".into());
            }
            Ok("file".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_uses_the_servers_parser() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("t.yaml");
        crate::auth::admin::token_create(&tokens, "a", None, None).unwrap();
        assert_eq!(verify(Kind::Tokens, &tokens).unwrap(), "1 tokens");
        assert!(verify(Kind::Users, &tokens).is_err());
        std::fs::write(&tokens, "").unwrap();
        assert!(verify(Kind::Tokens, &tokens).unwrap_err().contains("empty"));
        std::fs::write(&tokens, "tokens: [{name: x, hash: nothex}]").unwrap();
        assert!(verify(Kind::Tokens, &tokens).is_err());
        let kb = dir.path().join("kb.db");
        std::fs::write(&kb, "SQLite format 3\0 but not really").unwrap();
        assert!(verify(Kind::Kb, &kb).is_err());
        let yaml = dir.path().join("x.yaml");
        std::fs::write(&yaml, "a: [").unwrap();
        assert!(verify(Kind::Raw, &yaml).is_err());
    }
}
