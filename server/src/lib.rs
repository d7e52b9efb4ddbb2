//! postgres-mcp: a stateless, highly available MCP server for PostgreSQL and documentation.
//!
//! Any instance answers any request: instances share nothing but read-only files (tokens, users,
//! session key, kb.db), reloaded live by [`watch`]. See `app` for the request path on one screen.

pub mod accept_queue;
pub mod admin;
pub mod allocator;
pub mod app;
pub mod atomic_file;
pub mod auth;
pub mod config;
pub mod config_check;
pub mod connections;
pub mod file_access;
pub mod health;
pub mod http_error;
pub mod kb;
pub mod login;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod origin;
pub mod permission_flags;
pub mod postgres;
pub mod probe;
pub mod request_context;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod units;
pub mod watch;
