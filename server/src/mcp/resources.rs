//! The resource table: things an assistant reads rather than calls (MCP "Resources", spec
//! server/resources), each declared once — URI or URI template, name, description — with an async
//! function that reads it, and gated by the credential's tool scope.
//!
//! Shaped like the tool table ([`super::tools`]) for the same reasons: a family registers its
//! resources with the handle they read (`db_resources::register(&mut table, database)`), and a
//! family whose dependency is not configured registers nothing — so a server without a database
//! has no resources and does not declare the `resources` capability ([`ResourceTable::is_empty`]).
//! A family is gated on tools: its resources are listed and read only for a credential whose scope
//! permits at least one of the family's tools ([`crate::auth::scope::DATABASE_TOOLS`] for the
//! database), so a scope stays one list and a resource never shows what its tools would hide.
//!
//! Templates are RFC 6570 level-1 templates whose variables are whole path segments
//! (`…/tables/{schema}/{table}`): simple expansion percent-encodes every reserved character,
//! `/` included, so a URI is matched by splitting the rest of its path on `/` and decoding each
//! segment (RFC 3986 §2.1). Nothing is listed per table: a database may have thousands, so the
//! template is listed once (`resources/templates/list`) and the table list names them.
//!
//! Every resource is JSON (`application/json`) read fresh on each `resources/read`: the server keeps
//! nothing between requests (the design's first rule), and `subscribe` / `listChanged` are not
//! offered, since both need a stream the stateless transport does not have.

use std::{future::Future, pin::Pin, sync::Arc};

use percent_encoding::percent_decode_str;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde::Serialize;

use crate::{
    auth::{Principal, ToolScope},
    log_text::bounded,
    postgres::DbError,
};

/// The media type of every resource this server offers.
pub const JSON: &str = "application/json";

/// Longest URI text repeated in an error message (the URI is the client's own text).
const MAX_URI_IN_MESSAGE: usize = 256;

/// Why a `resources/read` has no contents.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No resource, and no template match, has this URI (or the template's object does not exist).
    #[error("resource not found: {}", bounded(.uri, MAX_URI_IN_MESSAGE))]
    NotFound { uri: String },
    /// The resource exists, but not for this credential: its scope permits none of the tools the
    /// resource is gated on. Answered as not found (it is not listed for this credential either),
    /// with a message saying why.
    #[error(
        "resource {} is not available to credential `{principal}`: its tool scope permits none of {}",
        bounded(.uri, MAX_URI_IN_MESSAGE),
        .gate.join(", ")
    )]
    NotPermitted {
        uri: String,
        principal: String,
        gate: &'static [&'static str],
    },
    /// Reading failed (the database is down, a timeout): the server's problem, not the URI's.
    #[error("reading resource {} failed: {error}", bounded(.uri, MAX_URI_IN_MESSAGE))]
    Failed { uri: String, error: DbError },
}

impl ReadError {
    /// The URI asked for.
    pub fn uri(&self) -> &str {
        match self {
            ReadError::NotFound { uri } | ReadError::NotPermitted { uri, .. } | ReadError::Failed { uri, .. } => uri,
        }
    }
}

/// What a resource's reader returns: a value serialized as the resource's JSON text, or `None` when
/// a template's object does not exist.
pub type ReadReturn = Result<Option<serde_json::Value>, DbError>;

type BoxedRead = Box<dyn Fn(Vec<String>) -> Pin<Box<dyn Future<Output = ReadReturn> + Send>> + Send + Sync>;

/// A resource's description as listed: name, title and description (`mimeType` is [`JSON`]).
#[derive(Clone, Copy, Debug)]
pub struct Described {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
}

struct Fixed {
    uri: &'static str,
    about: Described,
    gate: &'static [&'static str],
    read: BoxedRead,
}

struct Template {
    /// Everything before the first `{`.
    prefix: &'static str,
    template: &'static str,
    /// How many `/`-separated variables follow the prefix.
    variables: usize,
    about: Described,
    gate: &'static [&'static str],
    read: BoxedRead,
}

/// Every resource and resource template this instance offers.
#[derive(Default)]
pub struct ResourceTable {
    fixed: Vec<Fixed>,
    templates: Vec<Template>,
}

fn boxed<F, Fut, T>(read: F) -> BoxedRead
where
    F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<T>, DbError>> + Send + 'static,
    T: Serialize,
{
    let read = Arc::new(read);
    Box::new(move |variables| {
        let read = read.clone();
        Box::pin(async move {
            read(variables)
                .await
                .map(|value| value.map(|v| serde_json::to_value(v).expect("resource contents serialize")))
        })
    })
}

impl ResourceTable {
    /// Registers the resource at `uri`, read by `read`, for credentials permitted one of `gate`'s
    /// tools.
    pub fn register<F, Fut, T>(&mut self, uri: &'static str, about: Described, gate: &'static [&'static str], read: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, DbError>> + Send + 'static,
        T: Serialize,
    {
        assert!(!uri.contains('{'), "resource {uri}: a URI with variables is a template");
        assert!(
            self.fixed.iter().all(|f| f.uri != uri),
            "resource {uri} registered twice"
        );
        let read = Arc::new(read);
        self.fixed.push(Fixed {
            uri,
            about,
            gate,
            read: boxed(move |_| {
                let read = read.clone();
                async move { read().await.map(Some) }
            }),
        });
    }

    /// Registers a template `prefix{a}/{b}…` whose variables are whole path segments; `read` gets
    /// them decoded, in order, and answers `None` when no such object exists.
    pub fn register_template<F, Fut, T>(
        &mut self,
        template: &'static str,
        about: Described,
        gate: &'static [&'static str],
        read: F,
    ) where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<T>, DbError>> + Send + 'static,
        T: Serialize,
    {
        let start = template
            .find('{')
            .unwrap_or_else(|| panic!("template {template} has no variable"));
        let (prefix, rest) = template.split_at(start);
        let variables = rest.split('/').count();
        assert!(
            prefix.ends_with('/')
                && rest.split('/').all(|v| v.len() > 2
                    && v.starts_with('{')
                    && v.ends_with('}')
                    && !v[1..v.len() - 1].contains(['{', '}'])),
            "template {template}: variables must be whole path segments after a fixed prefix"
        );
        self.templates.push(Template {
            prefix,
            template,
            variables,
            about,
            gate,
            read: boxed(read),
        });
    }

    /// Whether this instance offers no resources at all (then it does not declare the capability).
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.templates.is_empty()
    }

    /// The resources a credential with `scope` may see, in declaration order.
    pub fn list_for(&self, scope: &ToolScope) -> Vec<Resource> {
        self.fixed
            .iter()
            .filter(|f| scope.permits_any(f.gate))
            .map(|f| {
                Resource::new(f.uri, f.about.name)
                    .with_title(f.about.title)
                    .with_description(f.about.description)
                    .with_mime_type(JSON)
            })
            .collect()
    }

    /// The templates a credential with `scope` may see.
    pub fn templates_for(&self, scope: &ToolScope) -> Vec<ResourceTemplate> {
        self.templates
            .iter()
            .filter(|t| scope.permits_any(t.gate))
            .map(|t| {
                ResourceTemplate::new(t.template, t.about.name)
                    .with_title(t.about.title)
                    .with_description(t.about.description)
                    .with_mime_type(JSON)
            })
            .collect()
    }

    /// Reads `uri` for `principal`: its JSON text as the one content.
    pub async fn read(&self, principal: &Principal, uri: &str) -> Result<ReadResourceResult, ReadError> {
        let (gate, read, variables) = self.find(uri).ok_or_else(|| ReadError::NotFound { uri: uri.into() })?;
        if !principal.tools.permits_any(gate) {
            return Err(ReadError::NotPermitted {
                uri: uri.into(),
                principal: principal.name.to_string(),
                gate,
            });
        }
        match read(variables).await {
            Ok(Some(value)) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(value.to_string(), uri).with_mime_type(JSON),
            ])),
            Ok(None) => Err(ReadError::NotFound { uri: uri.into() }),
            Err(error) => Err(ReadError::Failed { uri: uri.into(), error }),
        }
    }

    /// The entry answering `uri` and the template variables it carries.
    fn find(&self, uri: &str) -> Option<(&'static [&'static str], &BoxedRead, Vec<String>)> {
        if let Some(fixed) = self.fixed.iter().find(|f| f.uri == uri) {
            return Some((fixed.gate, &fixed.read, Vec::new()));
        }
        self.templates.iter().find_map(|t| {
            let variables = match_template(t.prefix, t.variables, uri)?;
            Some((t.gate, &t.read, variables))
        })
    }
}

/// The decoded path segments of `uri` after `prefix`, when there are exactly `count`, each
/// non-empty and valid UTF-8 without NUL once decoded (no PostgreSQL name holds one, and the
/// server refuses it in a parameter: a red-team review got -32603 for `peo%00ple`); a query or
/// fragment never matches.
fn match_template(prefix: &str, count: usize, uri: &str) -> Option<Vec<String>> {
    let rest = uri.strip_prefix(prefix)?;
    if rest.contains(['?', '#']) {
        return None;
    }
    let segments: Vec<String> = rest
        .split('/')
        .map(|segment| {
            (!segment.is_empty())
                .then(|| percent_decode_str(segment).decode_utf8().ok().map(|s| s.into_owned()))
                .flatten()
                .filter(|decoded| !decoded.contains('\0'))
        })
        .collect::<Option<_>>()?;
    (segments.len() == count).then_some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_variables_are_whole_decoded_segments() {
        let prefix = "postgres-mcp://database/tables/";
        let m = |uri: &str| match_template(prefix, 2, uri);
        assert_eq!(
            m("postgres-mcp://database/tables/public/orders"),
            Some(vec!["public".into(), "orders".into()])
        );
        assert_eq!(
            m("postgres-mcp://database/tables/my%20schema/a%2Fb%C3%A9"),
            Some(vec!["my schema".into(), "a/bé".into()])
        );
        for refused in [
            "postgres-mcp://database/tables/public",
            "postgres-mcp://database/tables/public/orders/x",
            "postgres-mcp://database/tables//orders",
            "postgres-mcp://database/tables/public/orders?x=1",
            "postgres-mcp://database/tables/public/%FF",
            "postgres-mcp://database/tables/public/peo%00ple",
            "postgres-mcp://database/table/public/orders",
        ] {
            assert_eq!(m(refused), None, "{refused}");
        }
    }

    fn principal(tools: Option<&[&str]>) -> Principal {
        let list: Option<Vec<String>> = tools.map(|t| t.iter().map(|s| s.to_string()).collect());
        Principal {
            kind: crate::auth::PrincipalKind::ApiToken,
            name: "someone".into(),
            tools: ToolScope::from_entry(list.as_deref()).unwrap(),
        }
    }

    fn table() -> ResourceTable {
        let about = Described {
            name: "n",
            title: "t",
            description: "d",
        };
        let mut table = ResourceTable::default();
        table.register("x://a/fixed", about, &["query_database"], || async {
            Ok::<_, DbError>(serde_json::json!({"fixed": 1}))
        });
        table.register_template("x://a/items/{id}", about, &["query_database"], |vars| async move {
            Ok::<_, DbError>((vars[0] == "1").then(|| serde_json::json!({"id": vars[0]})))
        });
        table
    }

    #[tokio::test]
    async fn a_scope_without_the_gate_tools_sees_and_reads_nothing() {
        let table = table();
        let docs = principal(Some(&["search_knowledgebase"]));
        assert!(table.list_for(&docs.tools).is_empty() && table.templates_for(&docs.tools).is_empty());
        let refused = table.read(&docs, "x://a/fixed").await.unwrap_err();
        assert!(matches!(refused, ReadError::NotPermitted { .. }), "{refused}");
        assert!(refused.to_string().contains("query_database"), "{refused}");

        let all = principal(None);
        assert_eq!(table.list_for(&all.tools).len(), 1);
        assert_eq!(table.templates_for(&all.tools)[0].uri_template, "x://a/items/{id}");
        let read = table.read(&all, "x://a/items/1").await.unwrap();
        let json = serde_json::to_value(&read).unwrap();
        assert_eq!(json["contents"][0]["mimeType"], JSON);
        assert_eq!(json["contents"][0]["text"], r#"{"id":"1"}"#);
        assert!(matches!(
            table.read(&all, "x://a/items/2").await.unwrap_err(),
            ReadError::NotFound { .. }
        ));
        assert!(matches!(
            table.read(&all, "x://a/other").await.unwrap_err(),
            ReadError::NotFound { .. }
        ));
    }
}
