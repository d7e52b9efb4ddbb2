//! What every request handler shares: the instance's identity, its watched files and its limits.
//!
//! Everything here is either immutable after start-up or a snapshot pointer swapped by the reload
//! engine, so handlers never take a lock that a reload could hold.

use std::{sync::Arc, time::Instant};

use crate::{
    auth::{Authenticator, limiter::FailedAuthLimiter},
    config::Config,
    kb::store::KbLoader,
    mcp::tools::ToolTable,
    net::TrustedProxies,
    postgres::Database,
    shutdown::Draining,
    watch::Watched,
};

pub type KbFile = Watched<KbLoader>;

/// This instance's name, as in logs, `/health` and `X-Instance-Id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// `instance_id` from the config, else `HOSTNAME` (the pod or container name), else generated.
    pub fn resolve(configured: Option<&str>, hostname: Option<String>) -> InstanceId {
        let chosen = configured
            .map(str::to_string)
            .or(hostname)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("pgmcp-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        InstanceId(chosen.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct AppState {
    pub instance: InstanceId,
    pub started: Instant,
    pub draining: Draining,
    pub config: Config,
    pub auth: Authenticator,
    pub limiter: FailedAuthLimiter,
    pub trusted_proxies: TrustedProxies,
    pub allowed_hosts: Vec<String>,
    pub kb: Option<Arc<KbFile>>,
    /// The PostgreSQL pool, when `database.url` is configured.
    pub database: Option<Arc<Database>>,
    pub tools: ToolTable,
}
