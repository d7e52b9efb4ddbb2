//! MCP over streamable HTTP, stateless: every POST carries everything needed to answer it.
//!
//! - [`jsonrpc`]: the JSON-RPC envelope — body bytes to a request, notification or response;
//! - [`protocol`]: version negotiation and the header rules of each protocol revision;
//! - [`transport`]: the [`Endpoint`] behind `POST /mcp` — HTTP checks, then method dispatch;
//! - [`tools`]: the tool table; one file per tool family ([`kb_tool`], [`db_tools`]), each registered
//!   with the handle it needs; [`arguments`]: the one place a call's arguments are checked;
//! - [`resources`]: the resource table, gated by tool scope; [`db_resources`]: the database's;
//! - [`outcome`]: whose fault a JSON-RPC error is, and the method as a bounded label;
//! - [`audit`]: the audit line of each database tool call.
//!
//! Message and result types come from rmcp's `model`, so field names track the spec; the transport is
//! ours because rmcp's `StreamableHttpService` builds a service and spawns tasks per request, which
//! measured ~6x slower than the bare HTTP stack on this hardware.

pub mod arguments;
pub mod audit;
pub mod db_resources;
pub mod db_tools;
pub mod jsonrpc;
pub mod kb_tool;
pub mod outcome;
pub mod protocol;
pub mod resources;
pub mod tools;
pub mod transport;

pub use resources::ResourceTable;
pub use tools::ToolTable;
pub use transport::Endpoint;
