//! Which tools a credential may use.
//!
//! A token or a user may carry `tools: [search_knowledgebase]` in its file entry; without the key it
//! may use every tool the server offers. MCP resources ride on the same scope: the database
//! resources are for credentials that may use a database tool ([`DATABASE_TOOLS`]), so a scope
//! stays one list and a docs-only token sees nothing of the database, by any method. The scope travels in the [`super::Principal`], so it is
//! checked in one place (the tool table) for `tools/list` and `tools/call` alike, and it changes with
//! the file at the next reload like everything else about a credential.
//!
//! Names are checked against the tools this server implements ([`KNOWN_TOOLS`]) when the file is
//! parsed: a typo in a scope would otherwise silently lock a client out (or, for a deny-list, let it
//! in), so it is an error that keeps the last good file, like any other broken entry.

use std::collections::HashMap;
use std::sync::Arc;

/// Every tool this server implements, whether or not this instance offers it (the database may not
/// be configured): the names a scope may use. The tool table's test keeps it equal to the tools a
/// fully configured instance registers.
pub const KNOWN_TOOLS: &[&str] = &[
    "search_knowledgebase",
    "query_database",
    "explain_query",
    "get_schema_info",
];

/// The tools that reach the database: a scope permitting any of them also sees the database
/// resources (`resources/list`, `resources/read`). Every known tool is either one of these or the
/// knowledge-base tool (a test keeps it so: a new database tool must be added here).
pub const DATABASE_TOOLS: &[&str] = &["query_database", "explain_query", "get_schema_info"];

/// A scope naming a tool this server does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool `{name}` in `tools` (known: {})", KNOWN_TOOLS.join(", "))]
pub struct UnknownTool {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ToolScope {
    /// No `tools` key: every tool.
    #[default]
    All,
    /// Only these tools (possibly none).
    Only(Arc<[Box<str>]>),
}

impl ToolScope {
    /// The scope of a file entry's optional `tools` list, refusing names no tool has.
    pub fn from_entry(tools: Option<&[String]>) -> Result<ToolScope, UnknownTool> {
        let Some(tools) = tools else {
            return Ok(ToolScope::All);
        };
        if let Some(name) = tools.iter().find(|name| !KNOWN_TOOLS.contains(&name.as_str())) {
            return Err(UnknownTool { name: name.clone() });
        }
        Ok(ToolScope::Only(tools.iter().map(|t| t.as_str().into()).collect()))
    }

    pub fn permits(&self, tool: &str) -> bool {
        match self {
            ToolScope::All => true,
            ToolScope::Only(tools) => tools.iter().any(|t| &**t == tool),
        }
    }

    /// Whether the scope permits at least one of `tools` (what a resource family is gated on).
    pub fn permits_any(&self, tools: &[&str]) -> bool {
        tools.iter().any(|tool| self.permits(tool))
    }
}

/// Hands out one shared [`ToolScope`] per distinct `tools` list while a file is parsed, so 100k
/// entries with the same list hold one allocation (and a list is checked against the known tools
/// once).
#[derive(Debug, Default)]
pub struct ScopeCache {
    seen: HashMap<Vec<String>, ToolScope>,
}

impl ScopeCache {
    /// [`ToolScope::from_entry`], shared with every earlier equal list.
    pub fn scope(&mut self, tools: Option<&[String]>) -> Result<ToolScope, UnknownTool> {
        let Some(list) = tools else {
            return Ok(ToolScope::All);
        };
        if let Some(scope) = self.seen.get(list) {
            return Ok(scope.clone());
        }
        let scope = ToolScope::from_entry(Some(list))?;
        self.seen.insert(list.to_vec(), scope.clone());
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_list_permits_everything_and_a_list_only_its_tools() {
        assert!(ToolScope::from_entry(None).unwrap().permits("query_database"));
        let scope = ToolScope::from_entry(Some(&["search_knowledgebase".to_string()])).unwrap();
        assert!(scope.permits("search_knowledgebase"));
        assert!(!scope.permits("query_database"));
        assert!(
            !ToolScope::from_entry(Some(&[]))
                .unwrap()
                .permits("search_knowledgebase")
        );
    }

    #[test]
    fn every_known_tool_is_the_knowledge_base_tool_or_a_database_tool() {
        let others: Vec<&str> = KNOWN_TOOLS
            .iter()
            .copied()
            .filter(|tool| !DATABASE_TOOLS.contains(tool))
            .collect();
        assert_eq!(others, ["search_knowledgebase"]);
        assert!(DATABASE_TOOLS.iter().all(|tool| KNOWN_TOOLS.contains(tool)));
        let docs = ToolScope::from_entry(Some(&["search_knowledgebase".to_string()])).unwrap();
        assert!(!docs.permits_any(DATABASE_TOOLS));
        let schema_only = ToolScope::from_entry(Some(&["get_schema_info".to_string()])).unwrap();
        assert!(schema_only.permits_any(DATABASE_TOOLS));
        assert!(ToolScope::All.permits_any(DATABASE_TOOLS));
    }

    #[test]
    fn equal_lists_share_one_scope() {
        let mut cache = ScopeCache::default();
        let list = ["search_knowledgebase".to_string()];
        let (ToolScope::Only(a), ToolScope::Only(b)) =
            (cache.scope(Some(&list)).unwrap(), cache.scope(Some(&list)).unwrap())
        else {
            panic!("a list is a restricted scope");
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.scope(None).unwrap(), ToolScope::All);
        assert!(
            cache
                .scope(Some(&["nope".to_string()]))
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }

    #[test]
    fn an_unknown_tool_name_is_an_error_naming_it() {
        let error = ToolScope::from_entry(Some(&["serch_knowledgebase".to_string()]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("serch_knowledgebase"), "{error}");
    }
}
