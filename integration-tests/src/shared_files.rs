//! The shared config directory every instance mounts read-only at `/app/config`: tokens.yaml,
//! users.yaml, session.key and kb.db, on the host, changed by the tests the ways operators change
//! them: written in place (an editor without backup, `cat > file`) or replaced by atomic rename
//! (our CLI, most editors, `kubectl cp` to a temp name then `mv`).
//!
//! Files are world-readable (0644) because the containers run as uid 10001 and the test may not run
//! as that user; they hold hashes only, except session.key, which is a test key.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;
use postgres_mcp::{
    auth::admin,
    auth::tokens::{TokenEntry, generate_token},
    kb,
};

use crate::images::repo_root;

/// How a file is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Truncate and rewrite the same inode.
    InPlace,
    /// Write a temp file beside it, then rename over it.
    AtomicRename,
}

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";

/// The directory and the token list the tests maintain in it.
pub struct SharedFiles {
    dir: tempfile::TempDir,
    tokens: Vec<TokenEntry>,
    /// A token valid from the start, for traffic that is not about reload.
    pub token: String,
}

impl SharedFiles {
    /// Creates the four files: one token (`seed`), one user, a session key, the demo KB.
    pub fn create() -> anyhow::Result<SharedFiles> {
        let dir = tempfile::Builder::new().prefix("pgmcp-it-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        admin::session_key_create(&dir.path().join("session.key"), false)?;
        admin::user_add(&dir.path().join("users.yaml"), USER, PASSWORD, 4)?;
        kb::build::build(&repo_root().join("demo/docs"), &dir.path().join("kb.db"))?;
        let mut files = SharedFiles {
            dir,
            tokens: Vec::new(),
            token: String::new(),
        };
        files.token = files.add_token("seed", WriteMode::AtomicRename)?;
        for name in ["session.key", "users.yaml", "kb.db"] {
            files.make_readable(name)?;
        }
        Ok(files)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn make_readable(&self, name: &str) -> anyhow::Result<()> {
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("chmod {name}"))
    }

    /// Writes `bytes` to `name` the given way; returns when the bytes are in the file.
    pub fn write(&self, name: &str, bytes: &[u8], mode: WriteMode) -> anyhow::Result<()> {
        let target = self.path(name);
        match mode {
            WriteMode::InPlace => {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .create(true)
                    .open(&target)?;
                file.write_all(bytes)?;
                file.sync_all()?;
            }
            WriteMode::AtomicRename => {
                let temp = self.path(&format!(".{name}.tmp"));
                std::fs::write(&temp, bytes)?;
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))?;
                std::fs::rename(&temp, &target)?;
            }
        }
        Ok(())
    }

    fn write_tokens(&self, mode: WriteMode) -> anyhow::Result<()> {
        self.write("tokens.yaml", TokenEntry::render_file(&self.tokens).as_bytes(), mode)
    }

    /// Adds a token named `name` and returns it.
    pub fn add_token(&mut self, name: &str, mode: WriteMode) -> anyhow::Result<String> {
        let token = generate_token();
        self.tokens.push(TokenEntry::new(name, &token, None, None));
        self.write_tokens(mode)?;
        Ok(token)
    }

    /// Adds `count` generated tokens (`bulk-N`) in one atomic write: a production-sized tokens.yaml.
    pub fn add_bulk_tokens(&mut self, count: usize) -> anyhow::Result<()> {
        let start = self.tokens.len();
        self.tokens.extend(
            (start..start + count).map(|i| TokenEntry::new(&format!("bulk-{i}"), &generate_token(), None, None)),
        );
        self.write_tokens(WriteMode::AtomicRename)
    }

    /// Puts a copy of the kb.db at `source` in place by atomic rename, as `sync` and `kb build` do.
    pub fn install_kb(&self, source: &Path) -> anyhow::Result<()> {
        let temp = self.path(".kb.db.install-tmp");
        std::fs::copy(source, &temp).with_context(|| format!("copy {}", source.display()))?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&temp, self.path("kb.db"))?;
        Ok(())
    }

    /// Removes the token named `name`.
    pub fn revoke_token(&mut self, name: &str, mode: WriteMode) -> anyhow::Result<()> {
        self.tokens.retain(|entry| entry.name != name);
        self.write_tokens(mode)
    }

    /// Rewrites tokens.yaml from the list the tests maintain (after a broken write, say).
    pub fn restore_tokens(&self, mode: WriteMode) -> anyhow::Result<()> {
        self.write_tokens(mode)
    }

    /// Builds a knowledge base from `docs` beside the shared one and renames it into place.
    pub fn replace_kb(&self, docs: &Path) -> anyhow::Result<()> {
        let staging = tempfile::Builder::new().prefix("pgmcp-kb-").tempdir()?;
        let built = staging.path().join("kb.db");
        kb::build::build(docs, &built)?;
        let bytes = std::fs::read(&built)?;
        self.write("kb.db", &bytes, WriteMode::AtomicRename)
    }
}
