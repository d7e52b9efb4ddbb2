//! The `postgres-mcp` command line: `serve`, the offline tools that write the files servers read
//! (`token`, `user`, `session-key`, `kb`, `sync`), `config` to inspect settings and `healthcheck`.
//!
//! One module per command, each with its clap types and its `run`; [`run`] is the one dispatch.
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

mod config;
mod healthcheck;
mod kb;
mod permissions;
mod serve;
mod session_key;
mod sync;
mod token;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Serve(serve::ServeArgs),
    /// Create, list and revoke API tokens in a tokens file.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Add, change, disable and remove users in a users file.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Create the key that signs session tokens (shared by every instance).
    #[command(name = "session-key", subcommand)]
    SessionKey(session_key::SessionKeyCommand),
    /// Build a knowledge base from HTML, Markdown and text documentation.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// Show the default configuration or check a configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Pull files from object storage (s3://, http(s)://) and replace them atomically once verified.
    Sync(sync::SyncArgs),
    /// Probe an instance's /readyz, /livez or /health (exit 0 on 200): a HEALTHCHECK without curl.
    Healthcheck(healthcheck::HealthcheckArgs),
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    crate::tls::install_crypto_provider();
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::Token(command) => report(token::run(command)),
        Command::User(command) => report(user::run(command)),
        Command::SessionKey(command) => report(session_key::run(command)),
        Command::Kb(command) => report(kb::run(command)),
        Command::Config(command) => config::run(command),
        Command::Sync(args) => sync::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
    }
}

/// Exit status of a command that edits files: 1 with the error chain on stderr when it failed.
fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
