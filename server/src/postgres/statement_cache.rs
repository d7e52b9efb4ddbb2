//! Prepared statements kept per pooled connection, so repeated SQL skips PostgreSQL's parse and plan
//! (issue #17).
//!
//! A prepared statement lives in one backend, so the cache is per connection: a map from the
//! connection (identified by deadpool's per-client `statement_cache` handle, an `Arc` that lives
//! exactly as long as the connection) to a bounded LRU of [`CAPACITY`] entries. Bounded because every
//! entry holds a plan in the backend's memory and models send endless distinct texts; LRU because
//! the texts that repeat (a dashboard's, an agent's loop) are the ones worth keeping.
//!
//! An entry is keyed by the statement text as the tool runs it *and* the first batch's row limit
//! (both are in the wrapped text that is prepared). What is cached is [`Cached`]: the prepared
//! wrapped statement, or the knowledge that this text returned more than one batch last time (so the
//! next call goes straight to the batched path instead of running the statement twice).
//!
//! A call also needs the statement's own columns (names and types), which the wrapper's JSON rows
//! do not carry. A newly cached statement is described on every call ([`Cached::Prepared`]); from
//! its second call on it runs in the *guarded* form ([`Cached::Guarded`], see `query::wrap`), whose
//! own result type includes a typed NULL per column of the statement, so PostgreSQL itself refuses
//! it once the columns change and the cached columns can be used without describing anything.
//!
//! Invalidation: PostgreSQL re-plans a cached statement itself when a table it reads changes (its
//! plan cache listens to the catalog). The errors that then say "this prepared statement is stale or
//! gone" evict the entry, and the call is retried once without the cache ([`is_stale`]): SQLSTATE
//! `0A000` "cached plan must not change result type" (a guarded column changed type, or a column
//! count changed under `SELECT *`), `26000` "prepared statement does not exist", and for a guarded
//! statement `42703` / `42P10` (a guarded column was renamed or dropped: the guard no longer
//! resolves; [`is_stale_guard`]). A connection that closes takes its entries with it: the map is
//! swept of dead connections whenever a new connection first stores something.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use hashlink::LruCache;
use tokio_postgres::Statement;

use super::columns::Columns;

/// Entries per connection. A hundred distinct statements is more than an agent's working set, and
/// a small plan is a few kilobytes of backend memory: at most `pool_size × CAPACITY` plans per
/// instance.
pub const CAPACITY: usize = 100;

/// What the cache knows about one statement text on one connection.
#[derive(Clone)]
pub enum Cached {
    /// The wrapped statement, prepared on this connection: Bind/Execute only, the statement
    /// described beside it. `columns` are those it was prepared with: a description that differs
    /// means the prepared plan may read something else than the statement now names (a table
    /// replaced, shadowed on the `search_path`), and the entry is evicted. When they can be guarded
    /// (names unique among the columns, see `query::guardable`), the next call prepares the
    /// guarded form.
    Prepared { statement: Statement, columns: Columns },
    /// The guarded wrapped statement with the statement's columns: Bind/Execute only, nothing
    /// described (PostgreSQL refuses the statement once the columns change).
    Guarded { statement: Statement, columns: Columns },
    /// The text returned more than one batch last time: use the batched path directly.
    MultiBatch,
}

/// The key of an entry: the statement as run and the row limit written into its wrapper.
type Key = (Box<str>, usize);

/// The cache of every connection of one [`super::Database`].
#[derive(Default)]
pub struct StatementCache {
    connections: Mutex<HashMap<usize, Connection>>,
}

struct Connection {
    /// Alive exactly as long as the connection; also tells a reused address from the same client.
    owner: Weak<dyn Any + Send + Sync>,
    entries: LruCache<Key, Cached>,
    /// Statements to close with the connection's next call (see [`StatementCache::defer_close`]).
    deferred: Vec<Statement>,
}

/// A connection's identity for the cache: deadpool's per-client `statement_cache` handle (any
/// value that lives exactly as long as the connection).
pub type ConnectionId = Arc<dyn Any + Send + Sync>;

impl StatementCache {
    /// The entry for `sql` with first-batch `limit` on `connection`, marked most recently used.
    pub fn get(&self, connection: &ConnectionId, sql: &str, limit: usize) -> Option<Cached> {
        let mut connections = self.lock();
        let entry = connections.get_mut(&address(connection))?;
        if !entry.owner.ptr_eq(&Arc::downgrade(connection)) {
            return None;
        }
        entry.entries.get(&(Box::from(sql), limit)).cloned()
    }

    /// Stores `cached` for `sql` with `limit` on `connection`, evicting the least recently used
    /// entry past [`CAPACITY`] (its statement is closed on the server when dropped).
    pub fn put(&self, connection: &ConnectionId, sql: &str, limit: usize, cached: Cached) {
        let evicted = with_entry(&mut self.lock(), connection, |entry| {
            entry.entries.insert((Box::from(sql), limit), cached)
        });
        drop(evicted);
    }

    /// Keeps `statement` (a call's one-off Parse/Describe, or a wrapped statement replaced by its
    /// guarded form) until the next call on `connection` takes it back with
    /// [`StatementCache::take_deferred`] and drops it once its first messages are queued: the Close
    /// that dropping a statement sends then travels in that call's write, instead of costing a
    /// write (and an answer) of its own after every call.
    pub fn defer_close(&self, connection: &ConnectionId, statement: Statement) {
        with_entry(&mut self.lock(), connection, |entry| entry.deferred.push(statement));
    }

    /// The statements [`StatementCache::defer_close`] kept for `connection`, to be dropped now.
    pub fn take_deferred(&self, connection: &ConnectionId) -> Vec<Statement> {
        let mut connections = self.lock();
        let Some(entry) = connections.get_mut(&address(connection)) else {
            return Vec::new();
        };
        if !entry.owner.ptr_eq(&Arc::downgrade(connection)) {
            return Vec::new();
        }
        std::mem::take(&mut entry.deferred)
    }

    /// Forgets `sql` with `limit` on `connection` (a stale statement, see [`is_stale`]).
    pub fn evict(&self, connection: &ConnectionId, sql: &str, limit: usize) {
        if let Some(entry) = self.lock().get_mut(&address(connection)) {
            entry.entries.remove(&(Box::from(sql), limit));
        }
    }

    /// Statements cached for `connection`.
    #[cfg(test)]
    fn len(&self, connection: &ConnectionId) -> usize {
        self.lock()
            .get(&address(connection))
            .map_or(0, |entry| entry.entries.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Connection>> {
        // A panic while holding the lock leaves a consistent map (every step is a single insert or
        // remove), so a poisoned lock is still usable.
        self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs `f` on `connection`'s entry, created (and the map swept of closed connections) when the
/// connection is new to the cache. What `f` returns is dropped by the caller after the lock.
fn with_entry<T>(
    connections: &mut HashMap<usize, Connection>,
    connection: &ConnectionId,
    f: impl FnOnce(&mut Connection) -> T,
) -> T {
    let key = address(connection);
    let current = connections
        .get(&key)
        .is_some_and(|entry| entry.owner.ptr_eq(&Arc::downgrade(connection)));
    if !current {
        connections.retain(|_, entry| entry.owner.strong_count() > 0);
        connections.insert(
            key,
            Connection {
                owner: Arc::downgrade(connection),
                entries: LruCache::new(CAPACITY),
                deferred: Vec::new(),
            },
        );
    }
    let entry = connections
        .get_mut(&key)
        .expect("the entry was found or inserted just above");
    f(entry)
}

fn address(connection: &ConnectionId) -> usize {
    Arc::as_ptr(connection) as *const () as usize
}

/// True for the SQLSTATEs that say a prepared statement is stale or gone: `0A000` (PostgreSQL
/// raises "cached plan must not change result type" under this feature_not_supported code) and
/// `26000` invalid_sql_statement_name ("prepared statement … does not exist"). PostgreSQL manual,
/// Appendix A.
pub fn is_stale(sqlstate: Option<&str>) -> bool {
    matches!(sqlstate, Some("0A000" | "26000"))
}

/// [`is_stale`], and for a guarded statement also `42703` undefined_column and `42P10`
/// invalid_column_reference: PostgreSQL re-analyses a cached statement after the tables it reads
/// change, and a guard naming a column that was renamed or dropped no longer resolves. Retrying
/// without the cache costs one round trip and gives the statement's own error if it has one.
pub fn is_stale_guard(sqlstate: Option<&str>) -> bool {
    is_stale(sqlstate) || matches!(sqlstate, Some("42703" | "42P10"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_per_connection_and_die_with_it() {
        let cache = StatementCache::default();
        let a: ConnectionId = Arc::new(0u8);
        let b: ConnectionId = Arc::new(0u8);
        cache.put(&a, "SELECT 1", 101, Cached::MultiBatch);
        assert!(matches!(cache.get(&a, "SELECT 1", 101), Some(Cached::MultiBatch)));
        assert!(cache.get(&a, "SELECT 1", 11).is_none(), "the limit is part of the key");
        assert!(
            cache.get(&b, "SELECT 1", 101).is_none(),
            "another connection has its own"
        );
        cache.evict(&a, "SELECT 1", 101);
        assert!(cache.get(&a, "SELECT 1", 101).is_none());
        cache.put(&a, "SELECT 2", 101, Cached::MultiBatch);
        drop(a);
        cache.put(&b, "SELECT 3", 101, Cached::MultiBatch);
        assert_eq!(cache.lock().len(), 1, "the closed connection was swept");
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = StatementCache::default();
        let a: ConnectionId = Arc::new(0u8);
        for i in 0..CAPACITY {
            cache.put(&a, &format!("SELECT {i}"), 1, Cached::MultiBatch);
        }
        assert!(cache.get(&a, "SELECT 0", 1).is_some());
        cache.put(&a, "SELECT new", 1, Cached::MultiBatch);
        assert_eq!(cache.len(&a), CAPACITY);
        assert!(cache.get(&a, "SELECT 0", 1).is_some(), "used recently: kept");
        assert!(cache.get(&a, "SELECT 1", 1).is_none(), "least recently used: evicted");
    }

    #[test]
    fn stale_statement_codes() {
        assert!(is_stale(Some("0A000")) && is_stale(Some("26000")));
        assert!(!is_stale(Some("42P01")) && !is_stale(None));
        assert!(!is_stale(Some("42703")) && is_stale_guard(Some("42703")) && is_stale_guard(Some("42P10")));
        assert!(
            is_stale_guard(Some("0A000")) && !is_stale_guard(Some("57014")),
            "a timeout is not retried"
        );
    }
}
