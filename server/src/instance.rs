//! Which instance answered: the name every log line, `/health` body, `initialize` answer and
//! `X-Instance-Id` header carries, so operators and tests can see the balancing.

use std::sync::Arc;

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
