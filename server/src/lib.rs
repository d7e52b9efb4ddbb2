//! postgres-mcp: a stateless, highly available MCP server for PostgreSQL and documentation.
//!
//! Any instance answers any request: instances share nothing but read-only files (tokens, users,
//! session key, kb.db), reloaded live by [`watch`]. `app` shows the request path on one screen.
//!
//! The crate, top to bottom (a module imports only from the lines below it, never back up):
//!
//! - `main.rs` / [`cli`]: the `postgres-mcp` command line, one module per command;
//! - [`server`]: start-up, serving and the drain of one instance, used by `serve` and the tests;
//! - `app`: the route table and middleware order, each route handed its own typed handle;
//! - `request_context`, `health`, `probes`, `origin`, [`metrics`] (with `process_metrics`, read from
//!   /proc at scrape time): the middleware and routes that are not a protocol of their own
//!   (`probes`: `/livez` and `/readyz` for orchestrators); `access_log`: the line each request leaves;
//! - [`mcp`]: MCP over streamable HTTP — protocol revisions, the `/mcp` endpoint, the tool table and
//!   the tools, which capture the KB and database handles they use when registered;
//! - [`sync`]: object-storage sync into the shared files (the sidecar's engine), verifying each
//!   download with the loaders of auth and kb;
//! - [`auth`]: credentials (tokens, users, sessions, scopes), the failed-auth limiter, trusted proxies,
//!   the HTTP gate and login, OAuth (resource server, external IdP, built-in authorization server),
//!   and the file edits behind the admin commands;
//! - [`kb`]: the knowledge base — building kb.db and serving it read-only;
//! - `postgres`: the pool, read-only queries and schema introspection;
//! - [`watch`]: the reload engine every watched file goes through;
//! - `listener`, `connections`, `connection_io`, `connection_state`, `accept_queue`, `shutdown`: the
//!   listening socket and its backlog, the accept loop, each connection's timeouts and shedding, and
//!   a stop that loses no request;
//!   `allocator`: the one malloc setting a server that reloads large files needs;
//! - [`config`], `config_check`, [`telemetry`], `instance`: settings, their check, logs, the
//!   instance's name ([`InstanceId`]);
//! - `exchange`: what a request turned out to be (principal, MCP method, tool, whose fault a failure
//!   was), written by the layers it passes and read by the access log and metrics;
//! - [`trace_export`], [`trace_context`], `correlation`: spans exported over OTLP, the W3C trace a
//!   request belongs to (its ids on every log line), and the request a PostgreSQL backend serves;
//! - `layer`, `log_text`, `http_error`, `net`, `authority`, `atomic_file`, `file_access`, `units`, [`tls`]: small shared
//!   helpers with no knowledge of the rest (`layer` is the one shape of our middleware).

mod accept_queue;
mod access_log;
mod allocator;
mod app;
mod atomic_file;
pub mod auth;
mod authority;
pub mod cli;
pub mod config;
mod config_check;
mod connection_io;
mod connection_state;
mod connections;
mod correlation;
mod edit_lock;
mod exchange;
mod file_access;
mod health;
mod http_error;
mod instance;
pub mod kb;
mod layer;
mod listener;
mod log_text;
pub mod mcp;
pub mod metrics;
mod net;
mod origin;
mod postgres;
mod probes;
mod process_metrics;
mod request_context;
pub mod server;
mod shutdown;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod trace_context;
pub mod trace_export;
mod units;
pub mod watch;

pub use instance::InstanceId;

/// What the benchmarks (`benchmarks/`) measure beside the server: the messages a `query_database`
/// call sends PostgreSQL, so that `make bench` §7 can run them on a bare client and show what the
/// database alone allows for a call of this shape. Not an API: nothing else may use it.
#[doc(hidden)]
pub mod benchmarking {
    pub use crate::correlation::Correlation;
    pub use crate::postgres::columns::{Column, columns_of};
    pub use crate::postgres::query::{SteadyStateCall, steady_state_call};
}

/// What the fuzz targets in `fuzz/` (a crate of its own, outside the workspace, so neither the
/// workspace build nor CI needs cargo-fuzz) call beyond the public API: the check that the
/// tokens.yaml line reader agrees with the YAML parser, and the header types the JSON-RPC target
/// builds requests from. Not an API: nothing else may use it.
#[doc(hidden)]
pub mod fuzzing {
    pub use poem::http::{HeaderMap, HeaderName, HeaderValue};

    /// [`crate::auth`]'s line reader and YAML parser on one tokens.yaml text: `Ok(true)` read
    /// alike by both, `Ok(false)` left to the YAML parser, `Err` a disagreement (a bug).
    pub fn tokens_readers_agree(text: &str) -> Result<bool, String> {
        crate::auth::tokens::line_reader_agrees_with_yaml(text)
    }
}
