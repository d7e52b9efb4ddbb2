//! `postgres-mcp token create|list|revoke`: API tokens in a tokens file.

use std::path::PathBuf;

use chrono::Utc;
use clap::Subcommand;

use super::permissions::PermissionFlags;
use crate::{atomic_file::Target, auth::admin, units::HumanDuration};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Generate a token, store its hash, print the token once on stdout.
    ///
    /// An existing tokens file keeps its mode, owner and group; a new one is created with mode 0644
    /// (it holds only hashes). --mode and --group set them explicitly.
    Create {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 90d or 12h; without it the token does not expire.
        #[arg(long)]
        expires_in: Option<HumanDuration>,
        #[arg(long)]
        note: Option<String>,
        /// Limit the token to these tools (comma-separated, e.g. search_knowledgebase); default: all.
        #[arg(long, value_delimiter = ',')]
        tools: Option<Vec<String>>,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
    /// List token names and expiry dates (never the tokens).
    List {
        #[arg(long)]
        file: PathBuf,
    },
    /// Remove a token; every instance refuses it after its next reload.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Revoke {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
}

pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            file,
            name,
            expires_in,
            note,
            tools,
            permissions,
        } => {
            let expires_at =
                expires_in.map(|d| Utc::now() + chrono::Duration::from_std(d.get()).unwrap_or(chrono::Duration::MAX));
            let target = Target::new(&file, permissions.requested());
            let token = admin::token_create_scoped(target, &name, expires_at, note, tools)?;
            println!("{token}");
            eprintln!(
                "token `{name}` added to {}{}; this is the only time it is shown.",
                file.display(),
                expires_at.map(|t| format!(" (expires {t})")).unwrap_or_default()
            );
        }
        TokenCommand::List { file } => {
            for entry in admin::token_list(&file)? {
                let expiry = entry
                    .expires_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                let state = if entry.expires_at.is_some_and(|t| t <= Utc::now()) {
                    " (expired)"
                } else {
                    ""
                };
                println!(
                    "{}\texpires {expiry}{state}\t{}",
                    entry.name,
                    entry.note.unwrap_or_default()
                );
            }
        }
        TokenCommand::Revoke {
            file,
            name,
            permissions,
        } => {
            admin::token_revoke(Target::new(&file, permissions.requested()), &name)?;
            eprintln!("token `{name}` revoked in {}", file.display());
        }
    }
    Ok(())
}
