//! `postgres-mcp config defaults|check`, and the flags every command that loads the configuration
//! shares ([`ConfigFlags`]).

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};

use crate::{
    config::{Config, ConfigError, DEFAULT_CONFIG_YAML, LogFormat, Overrides},
    config_check,
};

#[derive(Args)]
pub struct ConfigFlags {
    /// YAML configuration file (keys as in `postgres-mcp config defaults`).
    #[arg(long, env = "PGMCP_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (listen).
    #[arg(long)]
    listen: Option<String>,
    /// tokens.yaml (auth.tokens_file).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// users.yaml (auth.users_file).
    #[arg(long)]
    users: Option<PathBuf>,
    /// kb.db (kb.path).
    #[arg(long)]
    kb: Option<PathBuf>,
    /// text or json (log.format).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Instance name (instance_id).
    #[arg(long)]
    instance_id: Option<String>,
}

impl ConfigFlags {
    /// The configuration file, then `PGMCP_*` variables, then these flags.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let overrides = Overrides {
            listen: self.listen.clone(),
            tokens_file: self.tokens.clone(),
            users_file: self.users.clone(),
            kb_path: self.kb.clone(),
            log_format: self.log_format,
            instance_id: self.instance_id.clone(),
        };
        Config::load(self.config.as_deref(), std::env::vars(), &overrides)
    }
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print every key with its default and documentation.
    Defaults,
    /// Validate the configuration (file + PGMCP_* env + flags), then load every file it names.
    ///
    /// Each file (tokens, users, session key, kb.db, database URL file) is read and parsed by the
    /// server's own loaders, so run this as the user the servers run as. Exit code 2 when the
    /// configuration or any file fails.
    Check(ConfigFlags),
}

pub fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Defaults => {
            print!("{DEFAULT_CONFIG_YAML}");
            ExitCode::SUCCESS
        }
        ConfigCommand::Check(flags) => match flags.load() {
            Ok(config) => {
                println!("configuration is valid: {config:#?}");
                check_files(&config)
            }
            Err(error) => invalid(error),
        },
    }
}

/// Exit code 2 for a configuration that does not load.
pub fn invalid(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("invalid configuration: {error}");
    ExitCode::from(2)
}

/// Prints one line per configured file; exit code 2 when any cannot be served.
fn check_files(config: &Config) -> ExitCode {
    let checks = config_check::check_files(config);
    let mut failed = 0;
    for check in &checks {
        match &check.outcome {
            Ok(summary) => println!("ok      {} {}: {summary}", check.key, check.path.display()),
            Err(error) => {
                failed += 1;
                println!("FAILED  {} {}: {error}", check.key, check.path.display());
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} configured files cannot be served", checks.len());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
