//! Stopping SQLite work whose request is gone.
//!
//! A search runs on the blocking pool while its request waits for it. When the request ends first —
//! the request timeout fired, or the client went away and its future was dropped — nothing stops the
//! blocking thread by itself: before issue #13 a 1 MB query answered 504 after 30 s and then kept a
//! core busy for minutes, holding its search slot. [`CancelOnDrop`] is the request's side: dropping
//! it raises a flag that SQLite's progress handler (installed on the connection by
//! [`Cancellation::install`]) polls every [`CHECK_EVERY_OPS`] virtual-machine instructions, so the
//! running statement stops with `SQLITE_INTERRUPT` within microseconds and frees its connection
//! and slot.
//!
//! A flag polled by the progress handler, rather than `sqlite3_interrupt`, because an interrupt is
//! a no-op when it lands before the statement starts stepping (the request dropped while its work
//! still waited for a blocking thread), and would hit the *next* caller's statement if it landed
//! after the connection went back to the pool. A flag belongs to one call and cannot do either.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use rusqlite::Connection;

/// SQLite VM instructions between two looks at the flag: a few microseconds of work, and a cost
/// per look (one atomic load) too small to measure next to them.
const CHECK_EVERY_OPS: i32 = 1000;

/// Held by the request: dropping it cancels the SQLite work of that request.
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

/// The SQLite work's side: whether its request is gone.
#[derive(Debug, Clone)]
pub struct Cancellation(Arc<AtomicBool>);

impl CancelOnDrop {
    /// A new guard and the cancellation its work watches.
    pub fn new() -> (CancelOnDrop, Cancellation) {
        let flag = Arc::new(AtomicBool::new(false));
        (CancelOnDrop(flag.clone()), Cancellation(flag))
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Cancellation {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Runs `work` on `db` with this cancellation watched by SQLite's progress handler; the handler
    /// is removed afterwards, so the connection goes back to its pool watching nothing. A statement
    /// stopped by it fails with [`rusqlite::ErrorCode::OperationInterrupted`].
    pub fn install<T>(&self, db: &Connection, work: impl FnOnce(&Connection) -> T) -> T {
        let flag = self.0.clone();
        let handler = move || flag.load(Ordering::Relaxed);
        // Only fails on a connection borrowed elsewhere, which a pooled connection never is; then
        // the work runs unwatched rather than not at all.
        let _ = db.progress_handler(CHECK_EVERY_OPS, Some(handler));
        let result = work(db);
        let _ = db.progress_handler(0, None::<fn() -> bool>);
        result
    }
}

/// Whether `error` is SQLite's answer to a cancelled statement.
pub fn is_interrupted(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement that runs for minutes unless stopped.
    const ENDLESS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";

    #[test]
    fn dropping_the_guard_interrupts_the_running_statement() {
        let db = Connection::open_in_memory().unwrap();
        let (guard, cancellation) = CancelOnDrop::new();
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(guard);
        });
        let outcome = cancellation.install(&db, |db| db.query_row(ENDLESS, [], |row| row.get::<_, i64>(0)));
        dropper.join().unwrap();
        assert!(is_interrupted(&outcome.unwrap_err()));
        // The handler went with the call: the connection serves the next one unwatched.
        assert_eq!(db.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)).unwrap(), 1);
    }

    #[test]
    fn a_guard_dropped_before_the_work_starts_still_stops_it() {
        let db = Connection::open_in_memory().unwrap();
        let (guard, cancellation) = CancelOnDrop::new();
        drop(guard);
        assert!(cancellation.is_cancelled());
        let outcome = cancellation.install(&db, |db| db.query_row(ENDLESS, [], |row| row.get::<_, i64>(0)));
        assert!(is_interrupted(&outcome.unwrap_err()));
    }
}
