//! `search_knowledgebase`: full-text search over the served kb.db, registered only when `kb.path` is
//! set, with the watched file it searches.
//!
//! One tool with two modes, as pgEdge's `search_knowledgebase` has (`list_products`): a search
//! (`query`, optionally narrowed by `products`, `versions` and `source_prefix`), or `list_sources`,
//! which tells the model what those filters can take. Hits are distinct pages by default — the best
//! section of each — because a model reading five hits learns more from five pages than from five
//! sections of one; `all_sections` lifts that for a model digging into one page.

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
        filter::SearchFilter,
        sources::{SourceCount, list_sources},
        store::{SearchError, SearchHit},
    },
};

const DEFAULT_LIMIT: u32 = 5;

/// Arguments of `search_knowledgebase`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words or a question to search the documentation for. Required unless `list_sources` is true.
    #[serde(default)]
    pub query: Option<String>,
    /// Most results to return (1 to 50, default 5).
    #[serde(default)]
    pub limit: Option<Bounded<1, 50>>,
    /// Only documents of these products (case ignored; `list_sources` shows the values).
    #[serde(default)]
    pub products: Option<Vec<String>>,
    /// Only documents of these versions (case ignored; `list_sources` shows the values).
    #[serde(default)]
    pub versions: Option<Vec<String>>,
    /// Only documents whose source path starts with this (e.g. `sql-` for SQL command pages).
    #[serde(default)]
    pub source_prefix: Option<String>,
    /// Return several sections of the same page (default false: the best section of each page).
    #[serde(default)]
    pub all_sections: Option<bool>,
    /// Instead of searching, list the products and versions in the knowledge base with their
    /// document counts.
    #[serde(default)]
    pub list_sources: Option<bool>,
}

/// Registers `search_knowledgebase` over `kb`.
pub fn register(table: &mut ToolTable, kb: Arc<KbFile>) {
    table.register(
        "search_knowledgebase",
        "Search the documentation knowledge base (full text, ranked by relevance). Returns the best \
         matching section of each page, with its source file, title, product, version, section path \
         and a snippet. Narrow with `products`, `versions` or `source_prefix`; call with \
         `list_sources: true` (no query) to see which products and versions are available.",
        ToolHints::read_only("Search the knowledge base"),
        // The snapshot is taken when the call starts: the search finishes on it whatever reloads.
        move |_, args| search(kb.current(), args),
    );
}

async fn search(kb: Arc<KnowledgeBase>, args: SearchArgs) -> ToolReturn {
    if args.list_sources == Some(true) {
        if args.query.is_some() {
            return Err(refused("give either `query` or `list_sources: true`, not both"));
        }
        return match kb.run(list_sources).await {
            Ok(sources) => Ok(sources_result(&sources)),
            Err(error) => Err(server_failure(error)),
        };
    }
    let Some(query) = args.query else {
        return Err(refused(
            "`query` is required (or `list_sources: true` to list products and versions)",
        ));
    };
    let filter = SearchFilter {
        products: args.products.unwrap_or_default(),
        versions: args.versions.unwrap_or_default(),
        source_prefix: args.source_prefix,
        all_sections: args.all_sections.unwrap_or(false),
    };
    if let Err(refusal) = filter.check() {
        return Err(ToolFailure::new(Failure::caller("search_filter"), refusal.to_string()));
    }
    let limit = args.limit.map_or(DEFAULT_LIMIT, Bounded::get);
    match kb.search_in_async(query, filter, limit as usize).await {
        Ok(hits) => Ok(search_result(&hits)),
        // No word, or past a limit of `kb::terms`: the message names the rule so the model can fix it.
        Err(SearchError::Terms(refused)) => Err(ToolFailure::new(Failure::caller("search_terms"), refused.to_string())),
        Err(error) => Err(server_failure(error)),
    }
}

fn refused(message: &str) -> ToolFailure {
    ToolFailure::new(Failure::caller("search_arguments"), message)
}

fn server_failure(error: SearchError) -> ToolFailure {
    match error {
        // The request timed out or the instance is stopping: ours, not the query's.
        SearchError::Interrupted => ToolFailure::new(
            Failure::server("timeout"),
            "the knowledge base search was interrupted; try again",
        ),
        error => {
            tracing::error!(%error, "knowledge base search failed");
            ToolFailure::new(
                Failure::server("internal"),
                "the knowledge base search failed; try again",
            )
        }
    }
}

/// `PostgreSQL 15`, `PostgreSQL`, `15`, or nothing.
fn product_label(product: &str, version: &str) -> String {
    [product, version]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Search hits as the tool's result: numbered text for the model and `structuredContent` for programs.
pub fn search_result(hits: &[SearchHit]) -> CallToolResult {
    let text = if hits.is_empty() {
        "No matching documents.".to_string()
    } else {
        hits.iter()
            .enumerate()
            .map(|(i, hit)| {
                let label = product_label(&hit.product, &hit.version);
                let origin = if label.is_empty() {
                    hit.source.clone()
                } else {
                    format!("{}, {label}", hit.source)
                };
                let heading = if hit.section.is_empty() {
                    hit.title.clone()
                } else {
                    format!("{} — {}", hit.title, hit.section)
                };
                format!("{}. {heading} ({origin})\n{}", i + 1, hit.snippet)
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "results": hits }));
    result
}

/// `list_sources` as the tool's result: one line per product and version, and `structuredContent`.
fn sources_result(sources: &[SourceCount]) -> CallToolResult {
    let text = if sources.is_empty() {
        "The knowledge base is empty.".to_string()
    } else {
        sources
            .iter()
            .map(|s| {
                let label = product_label(&s.product, &s.version);
                let label = if label.is_empty() {
                    "(no product or version)".to_string()
                } else {
                    label
                };
                format!("{label}: {} documents", s.documents)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "sources": sources }));
    result
}
