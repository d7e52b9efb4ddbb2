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

/// What verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// A short description for the log ("knowledge base: 12 documents, 40 chunks", "3 tokens").
    pub detail: String,
    /// The number of entries of a tokens or users file (`None` for other kinds): what the guard
    /// against installing an empty list over a non-empty one compares.
    pub entries: Option<usize>,
}

impl Verified {
    fn described(detail: impl Into<String>) -> Verified {
        Verified {
            detail: detail.into(),
            entries: None,
        }
    }
}
use crate::{
    auth::{session::SessionKeys, tokens::TokenSet, users::UserSet},
    kb::store::KbLoader,
    watch::{Loader, TextLoader},
};

/// Validates the file at `path` as `kind`. Blocking. Errors are the loader's reason, one line.
pub fn verify(kind: Kind, path: &Path) -> Result<Verified, String> {
    match kind {
        Kind::Kb => {
            // Opened in place, read-only: a copy would double the disk and time for nothing.
            let loader = KbLoader {
                copy_to_local: false,
                copy_dir: std::env::temp_dir(),
            };
            let kb = loader.load(path)?.value;
            Ok(Verified::described(format!(
                "knowledge base: {} documents, {} chunks",
                kb.documents, kb.chunks
            )))
        }
        Kind::Tokens => {
            let tokens = TextLoader::new(TokenSet::parse).load(path)?.value;
            Ok(Verified {
                detail: format!("{} tokens", tokens.len()),
                entries: Some(tokens.len()),
            })
        }
        Kind::Users => {
            let users = TextLoader::new(UserSet::parse).load(path)?.value;
            Ok(Verified {
                detail: format!("{} users", users.len()),
                entries: Some(users.len()),
            })
        }
        Kind::SessionKey => {
            TextLoader::new(SessionKeys::parse).load(path)?;
            Ok(Verified::described("session key"))
        }
        Kind::Raw => {
            let name = path.to_string_lossy().to_lowercase();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                let bytes = crate::file_access::read(path)?;
                let text = std::str::from_utf8(&bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
                serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| format!("not valid YAML: {e}"))?;
                return Ok(Verified::described("YAML"));
            }
            Ok(Verified::described("file"))
        }
    }
}

/// Whether the file already at `item.dest` is one the servers accept: its pinned SHA-256 if any,
/// then the kind's loader. What `--keep-local` serves when the store cannot be reached. Blocking.
pub fn verify_installed(item: &super::Item) -> Result<Verified, String> {
    if !item.dest.exists() {
        return Err(format!("no local copy at {}", item.dest.display()));
    }
    if let Some(pin) = item.sha256 {
        use sha2::{Digest, Sha256};
        let mut file = std::fs::File::open(&item.dest).map_err(|e| format!("cannot read the local copy: {e}"))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| format!("cannot read the local copy: {e}"))?;
        let actual: [u8; 32] = hasher.finalize().into();
        if actual != pin {
            return Err(format!(
                "the local copy's sha256 {} is not the pinned {}",
                hex::encode(actual),
                hex::encode(pin)
            ));
        }
    }
    verify(item.kind, &item.dest)
        .map_err(|reason| format!("the local copy is refused as {}: {reason}", item.kind.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_uses_the_servers_parser() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("t.yaml");
        crate::auth::admin::token_create(&tokens, "a", None, None).unwrap();
        assert_eq!(verify(Kind::Tokens, &tokens).unwrap().detail, "1 tokens");
        assert_eq!(verify(Kind::Tokens, &tokens).unwrap().entries, Some(1));
        assert!(verify(Kind::Users, &tokens).is_err());
        std::fs::write(&tokens, "").unwrap();
        assert!(verify(Kind::Tokens, &tokens).unwrap_err().contains("empty"));
        std::fs::write(&tokens, "tokens: [{name: x, hash: nothex}]").unwrap();
        assert!(verify(Kind::Tokens, &tokens).is_err());
        std::fs::write(&tokens, "tokens: []\n").unwrap();
        assert_eq!(verify(Kind::Tokens, &tokens).unwrap().entries, Some(0));
        let kb = dir.path().join("kb.db");
        std::fs::write(&kb, "SQLite format 3\0 but not really").unwrap();
        assert!(verify(Kind::Kb, &kb).is_err());
        let yaml = dir.path().join("x.yaml");
        std::fs::write(&yaml, "a: [").unwrap();
        assert!(verify(Kind::Raw, &yaml).is_err());
    }
}
