//! `postgres-mcp user add|passwd|disable|enable|remove|list`: users in a users file.

use std::{
    io::{BufRead, IsTerminal},
    path::PathBuf,
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::permissions::PermissionFlags;
use crate::{
    atomic_file::Target,
    auth::{admin, users::DEFAULT_COST},
};

#[derive(Args)]
pub struct PasswordSource {
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user (password prompted, or from --password-stdin).
    ///
    /// An existing users file keeps its mode, owner and group; a new one is created with mode 0644
    /// (it holds only bcrypt hashes). --mode and --group set them explicitly.
    Add {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, alias = "name")]
        username: String,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
    /// Change a password; the user's sessions end at the next reload.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Passwd {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, alias = "name")]
        username: String,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
    /// Disable a user (logins and sessions refused) without deleting it.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Disable {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, alias = "name")]
        username: String,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
    /// Re-enable a disabled user.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Enable {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, alias = "name")]
        username: String,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
    /// Remove a user; their sessions end at the next reload.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Remove {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, alias = "name")]
        username: String,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
    /// List users.
    List {
        #[arg(long)]
        file: PathBuf,
    },
}

pub fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            file,
            username,
            password,
            permissions,
        } => {
            let target = Target::new(&file, permissions.requested());
            admin::user_add(target, &username, &read_password(&password)?, DEFAULT_COST)?;
            eprintln!("user `{username}` added to {}", file.display());
        }
        UserCommand::Passwd {
            file,
            username,
            password,
            permissions,
        } => {
            let target = Target::new(&file, permissions.requested());
            admin::user_passwd(target, &username, &read_password(&password)?, DEFAULT_COST)?;
            eprintln!("password of `{username}` changed; their sessions end at the next reload");
        }
        UserCommand::Disable {
            file,
            username,
            permissions,
        } => admin::user_set_disabled(Target::new(&file, permissions.requested()), &username, true)?,
        UserCommand::Enable {
            file,
            username,
            permissions,
        } => admin::user_set_disabled(Target::new(&file, permissions.requested()), &username, false)?,
        UserCommand::Remove {
            file,
            username,
            permissions,
        } => {
            admin::user_remove(Target::new(&file, permissions.requested()), &username)?;
            eprintln!("user `{username}` removed from {}", file.display());
        }
        UserCommand::List { file } => {
            for user in admin::user_list(&file)? {
                println!("{}{}", user.username, if user.disabled { "\t(disabled)" } else { "" });
            }
        }
    }
    Ok(())
}

fn read_password(source: &PasswordSource) -> anyhow::Result<String> {
    if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for a password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}
