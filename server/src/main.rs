//! The `postgres-mcp` command: `serve`, and the offline tools that write the files servers read
//! (`token`, `user`, `session-key`, `kb`, `sync`) plus `config` to inspect settings.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

use std::{
    io::{BufRead, IsTerminal},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use postgres_mcp::{
    admin,
    atomic_file::Target,
    auth::users::DEFAULT_COST,
    config::{Config, DEFAULT_CONFIG_YAML, LogFormat, Overrides},
    config_check, kb,
    permission_flags::PermissionFlags,
    server,
    shutdown::termination_signal,
    state::InstanceId,
    telemetry,
    units::HumanDuration,
};

#[derive(Parser)]
#[command(
    name = "postgres-mcp",
    version,
    about = "Highly available MCP server for PostgreSQL and documentation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the MCP server.
    Serve(ServeArgs),
    /// Create, list and revoke API tokens in a tokens file.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add, change, disable and remove users in a users file.
    #[command(subcommand)]
    User(UserCommand),
    /// Create the key that signs session tokens (shared by every instance).
    #[command(name = "session-key", subcommand)]
    SessionKey(SessionKeyCommand),
    /// Build a knowledge base from Markdown and text files.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Show the default configuration or check a configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Pull files from object storage (s3://, http(s)://) and replace them atomically once verified.
    Sync(postgres_mcp::sync::cli::SyncArgs),
    /// Probe an instance's /health (exit 0 on 200): a container HEALTHCHECK without curl.
    Healthcheck {
        /// host:port of the instance.
        #[arg(long, default_value = "127.0.0.1:8080")]
        address: String,
        /// Seconds before giving up.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

#[derive(Args)]
struct ConfigFlags {
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
    fn load(&self) -> Result<Config, postgres_mcp::config::ConfigError> {
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

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigFlags,
}

#[derive(Subcommand)]
enum TokenCommand {
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

#[derive(Args)]
struct PasswordSource {
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UserCommand {
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

#[derive(Subcommand)]
enum SessionKeyCommand {
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

#[derive(Subcommand)]
enum KbCommand {
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every key with its default and documentation.
    Defaults,
    /// Validate the configuration (file + PGMCP_* env + flags), then load every file it names.
    ///
    /// Each file (tokens, users, session key, kb.db, database URL file) is read and parsed by the
    /// server's own loaders, so run this as the user the servers run as. Exit code 2 when the
    /// configuration or any file fails.
    Check(ConfigFlags),
}

fn main() -> ExitCode {
    postgres_mcp::tls::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config(ConfigCommand::Check(flags)) => match flags.load() {
            Ok(config) => {
                println!("configuration is valid: {config:#?}");
                check_files(&config)
            }
            Err(error) => config_error(error),
        },
        Command::Config(ConfigCommand::Defaults) => {
            print!("{DEFAULT_CONFIG_YAML}");
            ExitCode::SUCCESS
        }
        Command::Sync(args) => postgres_mcp::sync::cli::main(args),
        Command::Healthcheck { address, timeout } => {
            match postgres_mcp::probe::probe(&address, "/health", std::time::Duration::from_secs(timeout)) {
                Ok(status) => {
                    println!("healthy: {status}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("unhealthy: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        other => match offline(other) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn config_error(error: postgres_mcp::config::ConfigError) -> ExitCode {
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

fn serve(args: ServeArgs) -> ExitCode {
    postgres_mcp::allocator::tune_for_reloads();
    let config = match args.config.load() {
        Ok(config) => config,
        Err(error) => return config_error(error),
    };
    let instance = InstanceId::resolve(config.instance_id.as_deref(), std::env::var("HOSTNAME").ok());
    let _log_guard = match telemetry::init(&config.log, instance.as_str()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("invalid configuration: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let result = runtime.block_on(async move {
        postgres_mcp::metrics::handle();
        let running = server::start(config, instance).await?;
        termination_signal().await;
        tracing::info!("termination signal received");
        running.drain_and_stop().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
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

fn offline(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Token(TokenCommand::Create {
            file,
            name,
            expires_in,
            note,
            tools,
            permissions,
        }) => {
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
        Command::Token(TokenCommand::List { file }) => {
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
        Command::Token(TokenCommand::Revoke {
            file,
            name,
            permissions,
        }) => {
            admin::token_revoke(Target::new(&file, permissions.requested()), &name)?;
            eprintln!("token `{name}` revoked in {}", file.display());
        }
        Command::User(UserCommand::Add {
            file,
            username,
            password,
            permissions,
        }) => {
            let target = Target::new(&file, permissions.requested());
            admin::user_add(target, &username, &read_password(&password)?, DEFAULT_COST)?;
            eprintln!("user `{username}` added to {}", file.display());
        }
        Command::User(UserCommand::Passwd {
            file,
            username,
            password,
            permissions,
        }) => {
            let target = Target::new(&file, permissions.requested());
            admin::user_passwd(target, &username, &read_password(&password)?, DEFAULT_COST)?;
            eprintln!("password of `{username}` changed; their sessions end at the next reload");
        }
        Command::User(UserCommand::Disable {
            file,
            username,
            permissions,
        }) => admin::user_set_disabled(Target::new(&file, permissions.requested()), &username, true)?,
        Command::User(UserCommand::Enable {
            file,
            username,
            permissions,
        }) => admin::user_set_disabled(Target::new(&file, permissions.requested()), &username, false)?,
        Command::User(UserCommand::Remove {
            file,
            username,
            permissions,
        }) => {
            admin::user_remove(Target::new(&file, permissions.requested()), &username)?;
            eprintln!("user `{username}` removed from {}", file.display());
        }
        Command::User(UserCommand::List { file }) => {
            for user in admin::user_list(&file)? {
                println!("{}{}", user.username, if user.disabled { "\t(disabled)" } else { "" });
            }
        }
        Command::SessionKey(SessionKeyCommand::Create {
            file,
            force,
            permissions,
        }) => {
            admin::session_key_create(Target::new(&file, permissions.requested()), force)?;
            eprintln!("session key written to {}", file.display());
        }
        Command::Kb(KbCommand::Build { from, out, permissions }) => {
            let report = kb::build::build(&from, Target::new(&out, permissions.requested()))?;
            eprintln!(
                "built {} from {} documents ({} chunks, content {})",
                out.display(),
                report.sources,
                report.chunks,
                &report.content_hash[..12]
            );
        }
        Command::Serve(_) | Command::Config(_) | Command::Sync(_) | Command::Healthcheck { .. } => {
            unreachable!("handled in main")
        }
    }
    Ok(())
}
