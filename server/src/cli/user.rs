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

/// The users file a command writes and the user it changes.
#[derive(Args)]
pub struct UserEntryFlags {
    #[arg(long)]
    file: PathBuf,
    #[arg(long, alias = "name")]
    username: String,
    #[command(flatten)]
    permissions: PermissionFlags,
}

impl UserEntryFlags {
    fn target(&self) -> Target<'_> {
        Target::new(&self.file, self.permissions.requested())
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user (password prompted, or from --password-stdin).
    ///
    /// An existing users file keeps its mode, owner and group; a new one is created with mode 0644
    /// (it holds only bcrypt hashes). --mode and --group set them explicitly.
    Add {
        #[command(flatten)]
        user: UserEntryFlags,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change a password; the user's sessions end at the next reload.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Passwd {
        #[command(flatten)]
        user: UserEntryFlags,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Disable a user (logins and sessions refused) without deleting it.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Disable(UserEntryFlags),
    /// Re-enable a disabled user.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Enable(UserEntryFlags),
    /// Remove a user; their sessions end at the next reload.
    ///
    /// The file keeps its mode, owner and group unless --mode or --group is given.
    Remove(UserEntryFlags),
    /// List users.
    List {
        #[arg(long)]
        file: PathBuf,
    },
}

pub fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { user, password } => {
            let password = read_password(&password)?;
            admin::user_add(user.target(), &user.username, &password, DEFAULT_COST)?;
            eprintln!("user `{}` added to {}", user.username, user.file.display());
        }
        UserCommand::Passwd { user, password } => {
            let password = read_password(&password)?;
            admin::user_passwd(user.target(), &user.username, &password, DEFAULT_COST)?;
            eprintln!(
                "password of `{}` changed; their sessions end at the next reload",
                user.username
            );
        }
        UserCommand::Disable(user) => admin::user_set_disabled(user.target(), &user.username, true)?,
        UserCommand::Enable(user) => admin::user_set_disabled(user.target(), &user.username, false)?,
        UserCommand::Remove(user) => {
            admin::user_remove(user.target(), &user.username)?;
            eprintln!("user `{}` removed from {}", user.username, user.file.display());
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
