//! `search_knowledgebase`: full-text search over the served kb.db, registered only when `kb.path` is
//! set, with the watched file it searches.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{
    arguments::Bounded,
    tools::{ToolFailure, ToolHints, ToolReturn, ToolTable},
};
use crate::{
    exchange::Failure,
    kb::{
        KbFile, KnowledgeBase,
        store::{SearchError, SearchHit},
    },
};

const DEFAULT_LIMIT: u32 = 5;

/// Arguments of `search_knowledgebase`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words or a question to search the documentation for.
    pub query: String,
    /// Most results to return (1 to 50, default 5).
    #[serde(default)]
    pub limit: Option<Bounded<1, 50>>,
}

/// Registers `search_knowledgebase` over `kb`.
pub fn register(table: &mut ToolTable, kb: Arc<KbFile>) {
    table.register(
        "search_knowledgebase",
        "Search the documentation knowledge base (full text, ranked by relevance). Returns matching \
         sections with their source file, title, section path and a snippet.",
        ToolHints::read_only("Search the knowledge base"),
        // The snapshot is taken when the call starts: the search finishes on it whatever reloads.
        move |_, args| search(kb.current(), args),
    );
}

async fn search(kb: Arc<KnowledgeBase>, args: SearchArgs) -> ToolReturn {
    let limit = args.limit.map_or(DEFAULT_LIMIT, Bounded::get);
    match kb.search_async(args.query, limit as usize).await {
        Ok(hits) => Ok(search_result(&hits)),
        // No word, or past a limit of `kb::terms`: the message names the rule so the model can fix it.
        Err(SearchError::Terms(refused)) => Err(ToolFailure::new(Failure::caller("search_terms"), refused.to_string())),
        // The request timed out or the instance is stopping: ours, not the query's.
        Err(SearchError::Interrupted) => Err(ToolFailure::new(
            Failure::server("timeout"),
            "the knowledge base search was interrupted; try again",
        )),
        Err(error) => {
            tracing::error!(%error, "knowledge base search failed");
            Err(ToolFailure::new(
                Failure::server("internal"),
                "the knowledge base search failed; try again",
            ))
        }
    }
}

/// Search hits as the tool's result: numbered text for the model and `structuredContent` for programs.
pub fn search_result(hits: &[SearchHit]) -> CallToolResult {
    let text = if hits.is_empty() {
        "No matching documents.".to_string()
    } else {
        hits.iter()
            .enumerate()
            .map(|(i, hit)| {
                format!(
                    "{}. {} — {} ({})\n{}",
                    i + 1,
                    hit.title,
                    hit.section,
                    hit.source,
                    hit.snippet
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "results": hits }));
    result
}
