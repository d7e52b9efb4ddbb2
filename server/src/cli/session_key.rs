//! `postgres-mcp session-key create`: the key that signs session tokens.

use std::path::PathBuf;

use clap::Subcommand;

use super::permissions::PermissionFlags;
use crate::{atomic_file::Target, auth::admin};

#[derive(Subcommand)]
pub enum SessionKeyCommand {
    /// Write a new random 256-bit key.
    ///
    /// A new key file is created with mode 0640: a secret, readable by its owner and group only.
    /// Give the servers' group read access with --group (name or gid), or run the command as the
    /// servers' user. A replaced key (--force) keeps the file's mode, owner and group unless --mode
    /// or --group is given.
    Create {
        file: PathBuf,
        /// Replace an existing key (logs every user out).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
}

pub fn run(command: SessionKeyCommand) -> anyhow::Result<()> {
    let SessionKeyCommand::Create {
        file,
        force,
        permissions,
    } = command;
    admin::session_key_create(Target::new(&file, permissions.requested()), force)?;
    eprintln!("session key written to {}", file.display());
    Ok(())
}
