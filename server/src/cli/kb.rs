//! `postgres-mcp kb build`: a kb.db from a folder of documents.

use std::path::PathBuf;

use clap::Subcommand;

use super::permissions::PermissionFlags;
use crate::{atomic_file::Target, kb::build};

#[derive(Subcommand)]
pub enum KbCommand {
    /// Build kb.db from a folder of .md/.markdown/.txt files (atomic replace).
    ///
    /// A rebuilt kb.db keeps the mode, owner and group of the one it replaces; a new one is created
    /// with mode 0644. --mode and --group set them explicitly.
    Build {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
}

pub fn run(command: KbCommand) -> anyhow::Result<()> {
    let KbCommand::Build { from, out, permissions } = command;
    let report = build::build(&from, Target::new(&out, permissions.requested()))?;
    eprintln!(
        "built {} from {} documents ({} chunks, content {})",
        out.display(),
        report.sources,
        report.chunks,
        &report.content_hash[..12]
    );
    Ok(())
}
