//! Which instance and request a piece of work belongs to, for the layers below the routes that must
//! name it without importing them, and the PostgreSQL `application_name` that carries it.
//!
//! An operator looking at `pg_stat_activity` during an incident needs to get from a backend to the
//! request that started it (its `X-Request-Id`, its log lines, its trace) and to the instance that
//! holds it. The request middleware knows both; the PostgreSQL layer that talks to the backend must
//! not import the middleware (`postgres` is a lower layer). So the middleware runs each request
//! inside a tokio task-local [`Correlation`] ([`scope`]) and the database calls read it
//! ([`current`]): a value, not a shared state bag, and gone when the request ends. Work spawned onto
//! other tasks does not see it, which is right for the one reader (a tool call's transaction runs in
//! the request's own task).
//!
//! The names are built only from characters of our own request-id and instance checks (letters,
//! digits, `-_.:`); anything else becomes `_`, so a name can be quoted into SQL without escaping and
//! never carries a quote, a space or a control character into the server's logs.

use std::{future::Future, sync::Arc};

use crate::instance::InstanceId;

/// The longest `application_name` PostgreSQL keeps (NAMEDATALEN - 1 bytes); longer ones it cuts.
pub const MAX_APPLICATION_NAME: usize = 63;

/// What every backend of this server is called, before the instance: `postgres-mcp/<instance>`.
const PREFIX: &str = "postgres-mcp/";

/// The characters of a request id kept in `application_name` (a UUID's 32 hex digits fit whole).
const REQUEST_ID_ROOM: usize = 36;

tokio::task_local! {
    static CURRENT: Correlation;
}

/// The instance and request a call belongs to.
#[derive(Clone, Debug)]
pub struct Correlation {
    instance: InstanceId,
    request_id: Arc<str>,
}

impl Correlation {
    pub fn new(instance: InstanceId, request_id: &str) -> Correlation {
        Correlation {
            instance,
            request_id: request_id.into(),
        }
    }

    /// `postgres-mcp/<instance> <request id>`, at most [`MAX_APPLICATION_NAME`] bytes of
    /// `[A-Za-z0-9._:/ -]`: the request id's first 36 characters, and as much of the instance name
    /// as fits, cut from the front (the end of a pod or container name is the part that differs).
    pub fn application_name(&self) -> String {
        let request = clean(&self.request_id, REQUEST_ID_ROOM);
        let room = MAX_APPLICATION_NAME - PREFIX.len() - 1 - request.len();
        format!(
            "{PREFIX}{} {request}",
            tail(&clean(self.instance.as_str(), usize::MAX), room)
        )
    }
}

/// `postgres-mcp/<instance>`: the name of an idle pooled connection (at most
/// [`MAX_APPLICATION_NAME`] bytes, same characters and cut as [`Correlation::application_name`]).
pub fn pool_application_name(instance: &InstanceId) -> String {
    let room = MAX_APPLICATION_NAME - PREFIX.len();
    format!("{PREFIX}{}", tail(&clean(instance.as_str(), usize::MAX), room))
}

/// Runs `work` with `correlation` readable by [`current`] (in this task only).
pub async fn scope<F: Future>(correlation: Correlation, work: F) -> F::Output {
    CURRENT.scope(correlation, work).await
}

/// The correlation of the request this task serves, if it runs inside [`scope`].
pub fn current() -> Option<Correlation> {
    CURRENT.try_with(Correlation::clone).ok()
}

/// At most `max` characters of `text`, each outside `[A-Za-z0-9._:-]` replaced by `_`.
fn clean(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The last `room` bytes of an ASCII string.
fn tail(text: &str, room: usize) -> &str {
    &text[text.len().saturating_sub(room)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str) -> InstanceId {
        InstanceId::resolve(Some(name), None)
    }

    #[test]
    fn application_name_names_the_instance_and_the_whole_request_id() {
        let id = "0f6c2a9d1e8b4c7fa3d25b6e9c1f4a70";
        let name = Correlation::new(instance("mcp-1"), id).application_name();
        assert_eq!(name, format!("postgres-mcp/mcp-1 {id}"));
        assert_eq!(pool_application_name(&instance("mcp-1")), "postgres-mcp/mcp-1");
    }

    #[test]
    fn application_name_fits_postgres_and_keeps_the_end_of_a_long_instance_name() {
        let pod = "postgres-mcp-deployment-with-a-long-name-7d9f8c6b5-x2x7q";
        let id = "0f6c2a9d1e8b4c7fa3d25b6e9c1f4a70";
        let name = Correlation::new(instance(pod), id).application_name();
        assert!(name.len() <= MAX_APPLICATION_NAME, "{name}");
        assert!(
            name.starts_with("postgres-mcp/") && name.ends_with(&format!("-x2x7q {id}")),
            "{name}"
        );
        assert!(pool_application_name(&instance(&pod.repeat(3))).len() <= MAX_APPLICATION_NAME);
        let long_id = "r".repeat(128);
        let name = Correlation::new(instance("mcp-1"), &long_id).application_name();
        assert_eq!(name, format!("postgres-mcp/mcp-1 {}", &long_id[..36]));
    }

    #[test]
    fn application_name_never_carries_a_quote_or_a_space_from_its_inputs() {
        let name = Correlation::new(instance("mcp'; DROP TABLE x; --"), "a'b c\n").application_name();
        let (head, request) = name.rsplit_once(' ').unwrap();
        assert!(
            !name.contains('\'') && !name.contains('\n') && !head.contains(' '),
            "{name}"
        );
        assert_eq!(request, "a_b_c_");
    }

    #[tokio::test]
    async fn current_is_the_scope_of_this_task_only() {
        assert!(current().is_none());
        let seen = scope(Correlation::new(instance("mcp-1"), "req-1"), async {
            let inside = current().map(|c| c.application_name());
            let spawned = tokio::spawn(async { current().is_some() }).await.unwrap();
            (inside, spawned)
        })
        .await;
        assert_eq!(seen, (Some("postgres-mcp/mcp-1 req-1".to_string()), false));
        assert!(current().is_none());
    }
}
