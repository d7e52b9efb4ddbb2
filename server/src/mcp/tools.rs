//! The tool table: each tool declared once — name, description, argument type (its JSON schema
//! derived from the Rust type) and an async function — and dispatched by a hash-map lookup.
//!
//! Adding a tool is adding one argument type and one function, then one `register` call in
//! [`ToolTable::standard`]. Argument errors become JSON-RPC "invalid params" naming the field at fault;
//! failures inside a tool become a result with `isError: true`, as MCP asks, so the model sees them.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use rmcp::handler::server::common::schema_for_input;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::auth::{Principal, ToolScope};
use crate::state::AppState;

/// Every tool this server implements, whether or not this instance offers it (the database may not be
/// configured). Credential scopes in tokens.yaml/users.yaml are checked against this list.
pub const KNOWN_TOOLS: &[&str] = &["search_knowledgebase", "query_database", "get_schema_info"];

/// What a tool may use: who is calling and the instance's shared state.
#[derive(Clone)]
pub struct ToolContext {
    pub principal: Principal,
    pub state: Arc<AppState>,
}

/// Why a `tools/call` did not reach a tool.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DispatchError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("tool `{tool}` is not permitted for credential `{principal}`")]
    NotPermitted { tool: String, principal: String },
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: String, message: String },
}

type BoxedCall = Box<
    dyn Fn(ToolContext, JsonObject) -> Pin<Box<dyn Future<Output = Result<CallToolResult, DispatchError>> + Send>>
        + Send
        + Sync,
>;

struct Entry {
    tool: Tool,
    call: BoxedCall,
}

/// Every tool this instance offers.
#[derive(Default)]
pub struct ToolTable {
    entries: HashMap<String, Entry>,
    /// Declaration order, for a stable `tools/list`.
    order: Vec<String>,
}

/// A tool failure reported to the model as a result with `isError: true`.
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

impl ToolTable {
    /// Registers a tool whose arguments deserialize into `A`.
    pub fn register<A, F, Fut>(
        &mut self,
        name: &'static str,
        description: &'static str,
        annotations: ToolAnnotations,
        function: F,
    ) where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CallToolResult> + Send + 'static,
    {
        let schema =
            schema_for_input::<A>().unwrap_or_else(|e| panic!("tool {name}: argument type has no object schema: {e}"));
        let mut tool = Tool::new(name, description, schema);
        tool.annotations = Some(annotations);
        let function = Arc::new(function);
        let call: BoxedCall = Box::new(move |context, arguments| {
            let function = function.clone();
            Box::pin(async move {
                let arguments: A =
                    serde_path_to_error::deserialize(serde_json::Value::Object(arguments)).map_err(|e| {
                        let path = e.path().to_string();
                        let message = if path == "." {
                            e.into_inner().to_string()
                        } else {
                            format!("{path}: {}", e.into_inner())
                        };
                        DispatchError::InvalidArguments {
                            tool: name.to_string(),
                            message,
                        }
                    })?;
                Ok(function(context, arguments).await)
            })
        });
        assert!(
            self.entries.insert(name.to_string(), Entry { tool, call }).is_none(),
            "tool {name} registered twice"
        );
        self.order.push(name.to_string());
    }

    /// The tools this instance offers, given what is configured.
    pub fn standard(with_kb: bool, with_database: bool) -> ToolTable {
        let mut table = ToolTable::default();
        if with_kb {
            super::kb_tool::register(&mut table);
        }
        if with_database {
            super::db_tools::register(&mut table);
        }
        table
    }

    /// Every tool offered, whoever asks.
    pub fn list(&self) -> Vec<Tool> {
        self.list_for(&ToolScope::All)
    }

    /// The tools a credential with `scope` may see and call.
    pub fn list_for(&self, scope: &ToolScope) -> Vec<Tool> {
        self.order
            .iter()
            .filter(|name| scope.permits(name))
            .map(|name| self.entries[name].tool.clone())
            .collect()
    }

    pub async fn call(
        &self,
        context: ToolContext,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, DispatchError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| DispatchError::UnknownTool(name.to_string()))?;
        if !context.principal.tools.permits(name) {
            return Err(DispatchError::NotPermitted {
                tool: name.to_string(),
                principal: context.principal.name.to_string(),
            });
        }
        (entry.call)(context, arguments.unwrap_or_default()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tools_are_exactly_the_tools_a_fully_configured_server_offers() {
        let table = ToolTable::standard(true, true);
        let names: Vec<String> = table.list().iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, KNOWN_TOOLS);
    }
}
