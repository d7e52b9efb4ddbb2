//! PostgreSQL: a connection pool, read-only queries and schema introspection for the MCP tools.
//!
//! The database is optional: without `database.url` the Postgres tools are not offered and the server
//! is a knowledge-base server. When it is configured, an outage must never take the instance out of
//! the load balancer — the knowledge base still works — so `/health` stays 200 and reports
//! `database.status: unavailable`, tools answer a clear tool error, and the pool reconnects by itself
//! when the database is back (deadpool creates connections on demand; broken ones are discarded).
//!
//! - [`error`]: why a call failed ([`DbError`]) and why the pool could not be built ([`error::OpenError`]);
//! - [`pool`]: URL (or a watched `url_file`, for credential rotation without restarts), TLS per
//!   `sslmode`, timeouts, pool size; the [`Database`] handle, its status and the pool's metrics;
//! - [`reachability`]: whether PostgreSQL answers, probed on a connection outside the pool, so a
//!   saturated pool is never taken for an outage;
//! - [`checkout`]: one call's connection, cancelled and closed rather than pooled if the call is
//!   abandoned;
//! - [`query`]: one statement in a `READ ONLY` transaction with timeouts and caps, its messages
//!   pipelined so a call costs one round trip;
//! - [`statement_cache`]: prepared statements per connection, for repeated SQL;
//! - [`explain`]: `explain_query`, a plan under the same guarantees;
//! - [`sql_check`], [`sql_policy`]: statements and functions refused before they run, because their
//!   effects would reach beyond the call (PostgreSQL's parser walks the statement);
//! - [`check_threads`]: the threads of known stack the check runs on (its recursion follows the
//!   text's nesting); [`checked_texts`]: the texts that passed it recently, so a repeated one is
//!   not parsed again;
//! - [`role_audit`]: what the pool's role could do beyond a call, reported in `/health` and metrics;
//! - [`values`]: PostgreSQL values as JSON where the server cannot do it for us;
//! - [`call_trace`]: a call's span and the `application_name` that ties its backend to the request;
//! - [`schema`]: tables, columns, keys and indexes, compact enough for a model's context;
//! - [`catalog`]: server settings, database size, extensions and table estimates for the MCP
//!   resources.

pub mod call_trace;
pub mod catalog;
mod check_threads;
mod checked_texts;
mod checkout;
pub mod columns;
mod error;
pub mod explain;
pub mod pool;
pub mod query;
pub mod reachability;
pub mod role_audit;
pub mod schema;
pub mod sql_check;
pub mod sql_policy;
pub mod statement_cache;
pub mod values;

pub use error::DbError;
pub use pool::Database;
