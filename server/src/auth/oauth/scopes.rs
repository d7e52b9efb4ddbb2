//! OAuth scopes and this server's tool scopes ([`ToolScope`]).
//!
//! A scope is `prefix` + a name: `mcp` grants every tool, a tool name (`query_database`) that tool.
//! The prefix (`auth.oauth.scope_prefix`, empty by default) exists for identity providers that
//! qualify custom scopes with a resource server id (Cognito writes `https://mcp.example.com/mcp`).
//! Scopes this server does not know are ignored, not refused: IdPs add their own (`openid`,
//! `email`) to every token. A token granting none of ours is refused with 403 `insufficient_scope`
//! (RFC 6750 §3.1) rather than accepted with an empty tool list, so the client learns what to ask for.

use std::sync::Arc;

use crate::auth::scope::{KNOWN_TOOLS, ToolScope};

/// The scope that grants every tool.
pub const ALL_TOOLS: &str = "mcp";

/// Maps scope strings to tool scopes under one prefix.
#[derive(Clone, Debug)]
pub struct ScopeMap {
    prefix: String,
}

impl ScopeMap {
    pub fn new(prefix: &str) -> ScopeMap {
        ScopeMap {
            prefix: prefix.to_string(),
        }
    }

    /// Every scope this server grants, for metadata (`scopes_supported`, RFC 9728 §2 / RFC 8414 §2).
    pub fn supported(&self) -> Vec<String> {
        std::iter::once(ALL_TOOLS)
            .chain(KNOWN_TOOLS.iter().copied())
            .map(|name| format!("{}{name}", self.prefix))
            .collect()
    }

    /// The scope a client gets when it asks for none (RFC 6749 §3.3 lets the server pick a default).
    pub fn default_scope(&self) -> String {
        format!("{}{ALL_TOOLS}", self.prefix)
    }

    /// The tools `scopes` grant, or `None` if they grant none of ours.
    pub fn tools<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> Option<ToolScope> {
        let mut tools: Vec<Box<str>> = Vec::new();
        for scope in scopes {
            let Some(name) = scope.strip_prefix(self.prefix.as_str()) else {
                continue;
            };
            if name == ALL_TOOLS {
                return Some(ToolScope::All);
            }
            if KNOWN_TOOLS.contains(&name) && !tools.iter().any(|t| &**t == name) {
                tools.push(name.into());
            }
        }
        (!tools.is_empty()).then(|| ToolScope::Only(Arc::from(tools)))
    }

    /// The scopes of `requested` (space-separated, RFC 6749 §3.3) this server knows, narrowed to what
    /// `allowed` (the user's own tool scope) permits; `None` if nothing is left. Unknown scopes are
    /// dropped, as RFC 6749 §3.3 allows ("the authorization server MAY fully or partially ignore").
    pub fn grant(&self, requested: &str, allowed: &ToolScope) -> Option<String> {
        let requested: Vec<&str> = requested.split_ascii_whitespace().collect();
        let granted: Vec<String> = match self.tools(requested.iter().copied())? {
            ToolScope::All => match allowed {
                ToolScope::All => return Some(self.default_scope()),
                ToolScope::Only(tools) => tools.iter().map(|t| format!("{}{t}", self.prefix)).collect(),
            },
            ToolScope::Only(tools) => tools
                .iter()
                .filter(|t| allowed.permits(t))
                .map(|t| format!("{}{t}", self.prefix))
                .collect(),
        };
        (!granted.is_empty()).then(|| granted.join(" "))
    }
}

/// The intersection of two tool scopes: what a token grants and what its user may use today.
pub fn intersect(token: ToolScope, user: &ToolScope) -> ToolScope {
    match (token, user) {
        (token, ToolScope::All) => token,
        (ToolScope::All, user) => user.clone(),
        (ToolScope::Only(tools), user) => ToolScope::Only(tools.iter().filter(|t| user.permits(t)).cloned().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_grants_everything_a_tool_name_that_tool_and_others_nothing() {
        let map = ScopeMap::new("");
        assert_eq!(map.tools(["openid", "mcp"]), Some(ToolScope::All));
        let only = map.tools(["query_database", "email"]).unwrap();
        assert!(only.permits("query_database") && !only.permits("search_knowledgebase"));
        assert_eq!(map.tools(["openid", "email"]), None);
    }

    #[test]
    fn a_prefix_is_required_and_stripped() {
        let map = ScopeMap::new("https://mcp.example.com/");
        assert_eq!(map.tools(["https://mcp.example.com/mcp"]), Some(ToolScope::All));
        assert_eq!(map.tools(["mcp"]), None);
        assert!(
            map.supported()
                .contains(&"https://mcp.example.com/query_database".to_string())
        );
    }

    #[test]
    fn a_grant_never_exceeds_the_users_own_tools() {
        let map = ScopeMap::new("");
        let user = ToolScope::from_entry(Some(&["search_knowledgebase".to_string()])).unwrap();
        assert_eq!(map.grant("mcp", &user).as_deref(), Some("search_knowledgebase"));
        assert_eq!(map.grant("query_database", &user), None);
        assert_eq!(map.grant("mcp openid", &ToolScope::All).as_deref(), Some("mcp"));
        assert_eq!(map.grant("nothing-we-know", &ToolScope::All), None);
    }
}
