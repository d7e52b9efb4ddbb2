//! Statement texts the check ([`super::sql_check`]) passed recently, with their normalised form for
//! the audit log.
//!
//! Why: a call used to hand its text to a check thread twice — once for the check (PostgreSQL's
//! parser, the protobuf decode, the walk) and once more after the call for the audit line's
//! normalised text — two thread hand-offs and two parses on every call, which on the benchmark's
//! primary-key lookup cost more than the database did (issue #17). The texts that repeat (a
//! dashboard's, an agent's loop) are also the ones sent most, so a repeated text now costs one
//! lookup here; a new text costs one hand-off, whose job checks *and* normalises it.
//!
//! Only verdicts that let a text through are kept: the policy ([`super::sql_policy`]) is fixed at
//! build time, so a text that passed passes again, while a refusal is rare and stays as cheap to
//! repeat as it was. Bounded twice: [`CAPACITY`] entries, least recently used first out, and texts
//! over [`MAX_TEXT_BYTES`] are not kept (their parse is milliseconds; a hand-off is microseconds),
//! so the memo holds at most `CAPACITY × 2 × MAX_TEXT_BYTES` (4 MiB) per instance.

use std::sync::{Arc, Mutex, OnceLock};

use hashlink::LruCache;

/// Entries kept: more than an agent's working set of distinct statements.
pub const CAPACITY: usize = 512;

/// Longest text kept, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Which check a text passed: `query_database`'s, or `explain_query`'s stricter one (a `SELECT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    Query,
    Explainable,
}

/// What is known of a text that passed: its normalised form (`pg_query::normalize`), `None` when
/// the library could not normalise it.
pub type Normalized = Option<Arc<str>>;

type Key = (CheckKind, Box<str>);

/// The process's memo (the check's policy is the process's, so is the memo).
fn memo() -> &'static Mutex<LruCache<Key, Normalized>> {
    static MEMO: OnceLock<Mutex<LruCache<Key, Normalized>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(LruCache::new(CAPACITY)))
}

fn lock() -> std::sync::MutexGuard<'static, LruCache<Key, Normalized>> {
    // Every step under the lock is one insert or lookup: a poisoned lock still holds a usable map.
    memo().lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `Some` when `sql` passed the `kind` check recently (marked most recently used).
pub fn passed(kind: CheckKind, sql: &str) -> Option<Normalized> {
    if sql.len() > MAX_TEXT_BYTES {
        return None;
    }
    lock().get(&(kind, Box::from(sql))).cloned()
}

/// Records that `sql` passed the `kind` check, with its normalised form.
pub fn remember(kind: CheckKind, sql: &str, normalized: Normalized) {
    if sql.len() > MAX_TEXT_BYTES {
        return;
    }
    lock().insert((kind, Box::from(sql)), normalized);
}

/// The normalised form of `sql` if it passed either check recently.
pub fn normalized(sql: &str) -> Option<Normalized> {
    passed(CheckKind::Query, sql).or_else(|| passed(CheckKind::Explainable, sql))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_text_is_found_per_kind_and_long_texts_are_not_kept() {
        let text = "SELECT 'checked_texts unit test' AS kind_test";
        assert!(passed(CheckKind::Query, text).is_none());
        remember(CheckKind::Query, text, Some(Arc::from("SELECT $1 AS kind_test")));
        assert_eq!(
            passed(CheckKind::Query, text).flatten().as_deref(),
            Some("SELECT $1 AS kind_test")
        );
        assert!(passed(CheckKind::Explainable, text).is_none(), "a verdict is per check");
        assert_eq!(normalized(text).flatten().as_deref(), Some("SELECT $1 AS kind_test"));

        let long = format!("SELECT '{}'", "x".repeat(MAX_TEXT_BYTES));
        remember(CheckKind::Query, &long, None);
        assert!(
            passed(CheckKind::Query, &long).is_none(),
            "past MAX_TEXT_BYTES: not kept"
        );
    }

    #[test]
    fn the_memo_is_bounded() {
        for i in 0..CAPACITY + 10 {
            remember(CheckKind::Explainable, &format!("SELECT {i} AS bounded_test"), None);
        }
        assert!(lock().len() <= CAPACITY);
        assert!(
            passed(CheckKind::Explainable, "SELECT 0 AS bounded_test").is_none(),
            "oldest out first"
        );
    }
}
