//! The tool table: each tool declared once — name, description, argument type (its JSON schema
//! derived from the Rust type) and an async function — and dispatched by a hash-map lookup.
//!
//! A tool owns its dependencies, as in rmcp's tool router: each family registers its tools with the
//! handle they need (`kb_tool::register(&mut table, kb)`), and a family whose dependency is not
//! configured is simply not registered — so no tool ever checks whether it is configured. Adding a
//! tool is adding one argument type and one function, then one `register` call — with its
//! [`ToolHints`], which the table requires whole (every hint decided, none left to a client's
//! default). Arguments the type
//! refuses become [`DispatchError::InvalidArguments`] naming the field and the rule (checked in
//! [`super::arguments`], the one place); failures inside a tool ([`ToolFailure`]) become a result
//! with `isError: true`, as MCP asks, so the model sees them — and carry whose fault they were
//! ([`Failure`]), so the access log and the metrics can tell a model's bad SQL from an outage.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use rmcp::handler::server::common::schema_for_input;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::arguments::{self, ArgumentError};
use crate::{
    auth::{Principal, ToolScope},
    exchange::Failure,
};

/// Why a `tools/call` did not reach a tool.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DispatchError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("tool `{tool}` is not permitted for credential `{principal}`")]
    NotPermitted { tool: &'static str, principal: String },
    #[error("invalid arguments for `{tool}`: {error}")]
    InvalidArguments { tool: &'static str, error: ArgumentError },
}

impl DispatchError {
    /// The tool, when it is one this server offers (an unknown name is client text: not returned).
    pub fn tool(&self) -> Option<&'static str> {
        match self {
            DispatchError::UnknownTool(_) => None,
            DispatchError::NotPermitted { tool, .. } | DispatchError::InvalidArguments { tool, .. } => Some(tool),
        }
    }
}

/// A tool's failure: the message the model reads (as a result with `isError: true`) and whose fault
/// it was.
#[derive(Debug)]
pub struct ToolFailure {
    pub failure: Failure,
    pub message: String,
}

impl ToolFailure {
    pub fn new(failure: Failure, message: impl Into<String>) -> ToolFailure {
        ToolFailure {
            failure,
            message: message.into(),
        }
    }
}

/// What a tool function returns.
pub type ToolReturn = Result<CallToolResult, ToolFailure>;

/// A tool that ran: its result for the model and, when it failed, whose fault that was.
#[derive(Debug)]
pub struct Called {
    pub tool: &'static str,
    pub result: CallToolResult,
    pub failure: Option<Failure>,
}

type BoxedCall = Box<
    dyn Fn(Principal, JsonObject) -> Pin<Box<dyn Future<Output = Result<Called, DispatchError>> + Send>> + Send + Sync,
>;

struct Entry {
    name: &'static str,
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

/// What a tool does beyond answering, declared by every tool when it is registered and sent as its
/// MCP `annotations` (spec, server/tools "Tool annotations"; the schema's `ToolAnnotations`). All four
/// hints are plain `bool`s, not options: a client assumes the worst for a hint left out
/// (`destructiveHint` true, `idempotentHint` false, `openWorldHint` true), so each tool decides each
/// one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolHints {
    /// Human-readable name for a client's UI (`title`).
    pub title: &'static str,
    /// Changes nothing in its environment (`readOnlyHint`).
    pub read_only: bool,
    /// May destroy or overwrite data (`destructiveHint`; meaningful when not read-only).
    pub destructive: bool,
    /// Calling it again with the same arguments has no further effect (`idempotentHint`).
    pub idempotent: bool,
    /// Reaches an open set of external entities, like the web (`openWorldHint`); false for a tool
    /// confined to one database or one knowledge base.
    pub open_world: bool,
}

impl ToolHints {
    /// A tool that only reads one closed system (a database, the knowledge base): read-only, so
    /// neither destructive nor anything but idempotent, and not open-world.
    pub const fn read_only(title: &'static str) -> ToolHints {
        ToolHints {
            title,
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        }
    }

    /// As MCP's `ToolAnnotations`, every hint set.
    pub fn annotations(self) -> ToolAnnotations {
        let mut annotations = ToolAnnotations::default();
        annotations.title = Some(self.title.into());
        annotations.read_only_hint = Some(self.read_only);
        annotations.destructive_hint = Some(self.destructive);
        annotations.idempotent_hint = Some(self.idempotent);
        annotations.open_world_hint = Some(self.open_world);
        annotations
    }
}

/// A tool failure reported to the model as a result with `isError: true`.
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

impl ToolTable {
    /// Registers a tool whose arguments deserialize into `A`. `function` is called with the caller
    /// and the arguments; what else it needs, it captured when it was registered.
    pub fn register<A, F, Fut>(&mut self, name: &'static str, description: &'static str, hints: ToolHints, function: F)
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(Principal, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ToolReturn> + Send + 'static,
    {
        let schema =
            schema_for_input::<A>().unwrap_or_else(|e| panic!("tool {name}: argument type has no object schema: {e}"));
        let mut tool = Tool::new(name, description, schema);
        tool.annotations = Some(hints.annotations());
        let function = Arc::new(function);
        let call: BoxedCall = Box::new(move |principal, arguments| {
            let function = function.clone();
            Box::pin(async move {
                let arguments: A = arguments::parse(arguments)
                    .map_err(|error| DispatchError::InvalidArguments { tool: name, error })?;
                Ok(match function(principal, arguments).await {
                    Ok(result) => Called {
                        tool: name,
                        // A tool that answers `isError` itself without saying why is the caller's
                        // problem as far as we know (`tool_error`, OpenTelemetry's MCP name for it).
                        failure: (result.is_error == Some(true)).then_some(Failure::caller("tool_error")),
                        result,
                    },
                    Err(ToolFailure { failure, message }) => Called {
                        tool: name,
                        result: tool_error(message),
                        failure: Some(failure),
                    },
                })
            })
        });
        assert!(
            self.entries
                .insert(name.to_string(), Entry { name, tool, call })
                .is_none(),
            "tool {name} registered twice"
        );
        self.order.push(name.to_string());
    }

    /// How many tools are offered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
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

    /// Calls tool `name` for `principal`, if its scope permits it.
    pub async fn call(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<Called, DispatchError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| DispatchError::UnknownTool(name.to_string()))?;
        if !principal.tools.permits(name) {
            return Err(DispatchError::NotPermitted {
                tool: entry.name,
                principal: principal.name.to_string(),
            });
        }
        let span = tracing::info_span!(
            "tool",
            otel.name = format!("execute_tool {name}"),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = name,
            error.type = tracing::field::Empty
        );
        let outcome = (entry.call)(principal.clone(), arguments.unwrap_or_default())
            .instrument(span.clone())
            .await;
        let failure = match &outcome {
            Ok(called) => called.failure.map(|failure| failure.error_type),
            Err(DispatchError::InvalidArguments { .. }) => Some("invalid_arguments"),
            _ => None,
        };
        if let Some(kind) = failure {
            span.record("error.type", kind);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::scope::KNOWN_TOOLS,
        config::{Config, Overrides},
        kb::{KbFile, KbLoader},
        postgres::Database,
    };

    #[test]
    fn known_tools_are_exactly_the_tools_a_fully_configured_server_offers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("doc.md"), "# Replication\n\nStreaming replication.\n").unwrap();
        let kb_path = dir.path().join("kb.db");
        crate::kb::build::build(dir.path(), &kb_path).unwrap();
        let loader = KbLoader {
            copy_to_local: false,
            copy_dir: dir.path().to_path_buf(),
        };
        let kb: std::sync::Arc<KbFile> = crate::watch::Watched::open("kb", &kb_path, loader).unwrap();
        let overrides = Overrides {
            tokens_file: Some(dir.path().join("tokens.yaml")),
            ..Overrides::default()
        };
        let env = [(
            "PGMCP_DATABASE_URL".to_string(),
            "postgres://mcp@127.0.0.1:1/db?sslmode=disable".to_string(),
        )];
        let config = Config::load(None, env, &overrides).unwrap();
        // Builds the pool without connecting.
        let database = Database::open(&config.database).unwrap().unwrap();

        let mut table = ToolTable::default();
        crate::mcp::kb_tool::register(&mut table, kb);
        let audit = crate::mcp::audit::Audit::new(&config.log.audit);
        crate::mcp::db_tools::register(&mut table, database, audit);
        let names: Vec<String> = table.list().iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, KNOWN_TOOLS);
        // Every hint declared, and right: no tool of this server writes (the database tools run in
        // READ ONLY transactions that roll back), so none destroys anything and repeating a call has
        // no further effect; each reaches one database or one knowledge base, not an open world.
        for tool in table.list() {
            let mut hints = serde_json::to_value(tool.annotations.as_ref().unwrap()).unwrap();
            let title = hints.as_object_mut().unwrap().remove("title");
            assert!(
                title.is_some_and(|t| t.as_str().is_some_and(|t| !t.is_empty())),
                "{}",
                tool.name
            );
            assert_eq!(
                hints,
                serde_json::json!({
                    "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false
                }),
                "{}",
                tool.name
            );
        }
    }
}
