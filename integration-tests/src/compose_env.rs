//! The instances' environment, read from `compose/compose.yaml` itself (the `x-instance` block), so
//! the suite runs the instances exactly as the Compose kit configures them; a test only overrides
//! the variables that compose.yaml exposes (`MCP_*`) or adds server settings.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::images::repo_root;

/// `x-instance.environment` of compose.yaml with `${NAME:-default}` resolved from `vars`.
pub fn instance_environment(vars: &BTreeMap<String, String>) -> anyhow::Result<BTreeMap<String, String>> {
    let path = repo_root().join("compose/compose.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let document: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let environment = document["x-instance"]["environment"]
        .as_mapping()
        .context("compose.yaml has no x-instance.environment mapping")?;
    environment
        .iter()
        .map(|(key, value)| {
            let key = key.as_str().context("environment key")?.to_string();
            let raw = value.as_str().context("environment value")?;
            Ok((key, interpolate(raw, vars)))
        })
        .collect()
}

/// The group of `key` (a file made 0640 by the kit's scripts), for `MCP_SECRETS_GID`: the group
/// compose.yaml adds to every container so it can read the key.
pub fn secrets_gid(key: &std::path::Path) -> String {
    let metadata = std::fs::metadata(key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    std::os::unix::fs::MetadataExt::gid(&metadata).to_string()
}

/// Compose's `${NAME:-default}` and `${NAME}` interpolation (the forms compose.yaml uses).
pub fn interpolate(raw: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else { break };
        let expression = &rest[start + 2..start + end];
        let (name, default) = expression.split_once(":-").unwrap_or((expression, ""));
        out.push_str(vars.get(name).map(String::as_str).unwrap_or(default));
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_unless_a_variable_is_set() {
        let mut vars = BTreeMap::new();
        assert_eq!(interpolate("${A:-1}.10", &vars), "1.10");
        vars.insert("A".to_string(), "10.9".to_string());
        assert_eq!(interpolate("x${A:-1}.10", &vars), "x10.9.10");
    }

    #[test]
    fn compose_yaml_configures_the_shared_files() {
        let env = instance_environment(&BTreeMap::new()).unwrap();
        assert_eq!(env["PGMCP_AUTH_TOKENS_FILE"], "/app/config/tokens.yaml");
        assert_eq!(env["PGMCP_KB_PATH"], "/app/config/kb.db");
    }
}
