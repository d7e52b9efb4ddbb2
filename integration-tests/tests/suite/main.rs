//! The HA scenarios, each against its own three-instance cluster behind nginx (see the crate docs).
//! Every test prints what it measured; `target/integration-report.md` collects the lines.

mod balancing;
mod compose_stack;
mod compose_sync;
mod failover;
mod files;
mod oauth_flow;
mod operator_cli;
mod python_client;
mod rate_limit;
mod reload;
