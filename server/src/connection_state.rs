//! What each open connection is doing — waiting for a request, reading a request head, or serving
//! one — and the registry that closes the longest-waiting connections when file descriptors run
//! out or `http.max_connections` is reached.
//!
//! Issue #13 §A.8: 400 connections that send nothing, against a server limited to 256 descriptors,
//! made the instance unreachable until they timed out (75 s then). The timeouts (`http.idle_timeout`,
//! `http.header_read_timeout`) bound how long any one connection is held, but an attacker who opens
//! connections as fast as they close keeps the table full. So when `accept` fails for lack of
//! descriptors, the accept loop asks [`OpenConnections::shed_idle`] to close the connections that
//! have waited longest without a request in progress: a connection whose request is being read or
//! handled is never shed, and the kernel's accept queue, where a new client waits, moves on at once.
//! A connection whose head has been arriving for longer than [`STALLED_HEAD`] is shed too, after
//! the idle ones: a head takes microseconds, so at the limit such a connection is a slow client
//! holding a slot (one byte every few seconds stays within `http.header_read_timeout`), and
//! without this a few hundred connections a second would keep every slot of `http.max_connections`
//! busy (a review of the change measured the arithmetic: 4096 slots / 10 s ≈ 410 a second).
//!
//! A connection is shed by moving it to a fourth phase with a compare-and-swap, so the decision
//! and a request starting cannot cross: a head that started first keeps its connection, and a
//! shed connection is not picked again, nor counted against the limit while it closes
//! ([`OpenConnections::open_unshed`]).
//!
//! The state is three atomics per connection, written by the connection's own task; the registry
//! is a map locked once when a connection opens and once when it closes, and scanned only when
//! descriptors have run out or the limit is reached.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

const IDLE: u8 = 0;
const READING_HEAD: u8 = 1;
const SERVING: u8 = 2;
/// Asked to close; no longer counted as open by [`OpenConnections::open_unshed`].
const SHED: u8 = 3;

/// A head still arriving after this long may be shed when room is needed (see the module docs).
pub const STALLED_HEAD: Duration = Duration::from_secs(1);

/// Every open connection of one listener.
#[derive(Debug)]
pub struct OpenConnections {
    /// Idle times are kept as milliseconds since this instant (one atomic, no lock).
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<State>>>,
    /// Connections shed and not yet closed.
    shedding: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    phase: AtomicU8,
    /// When the current phase began: idle since, or head arriving since.
    since_ms: AtomicU64,
    shed: Notify,
}

/// One connection's entry; removed from the registry when dropped (when the connection ends).
#[derive(Debug)]
pub struct ConnectionState {
    id: u64,
    state: Arc<State>,
    registry: Arc<OpenConnections>,
}

impl OpenConnections {
    pub fn new() -> Arc<OpenConnections> {
        Arc::new(OpenConnections {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            shedding: AtomicUsize::new(0),
        })
    }

    /// Registers a connection just accepted: idle since now.
    pub fn register(self: &Arc<Self>) -> ConnectionState {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(State::default());
        state.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.lock().insert(id, state.clone());
        ConnectionState {
            id,
            state,
            registry: self.clone(),
        }
    }

    /// Asks up to `count` connections to close — the longest idle first, then heads stalled past
    /// [`STALLED_HEAD`], oldest first — and returns how many were asked. Busy connections (a head
    /// arriving for less than [`STALLED_HEAD`], a request being served) are never shed.
    pub fn shed_idle(&self, count: usize) -> usize {
        // None in the process's first second: no head can have stalled yet.
        let stalled_before = self.now_ms().checked_sub(STALLED_HEAD.as_millis() as u64);
        // (idle first, then stalled heads; since when) per candidate.
        let mut candidates: Vec<(bool, u64, u8, Arc<State>)> = self
            .lock()
            .values()
            .filter_map(|state| {
                let phase = state.phase.load(Ordering::Relaxed);
                let since = state.since_ms.load(Ordering::Relaxed);
                match phase {
                    IDLE => Some((false, since, phase, state.clone())),
                    READING_HEAD if stalled_before.is_some_and(|before| since <= before) => {
                        Some((true, since, phase, state.clone()))
                    }
                    _ => None,
                }
            })
            .collect();
        candidates.sort_unstable_by_key(|(head, since, _, _)| (*head, *since));
        let mut asked = 0;
        for (_, _, phase, state) in candidates {
            if asked == count {
                break;
            }
            // Lost to a head that just began (or a head that just completed): not shed.
            if state
                .phase
                .compare_exchange(phase, SHED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.shedding.fetch_add(1, Ordering::Relaxed);
                state.shed.notify_one();
                asked += 1;
            }
        }
        asked
    }

    /// Connections open and not shed: what `http.max_connections` counts.
    pub fn open_unshed(&self) -> usize {
        self.len().saturating_sub(self.shedding.load(Ordering::Relaxed))
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<State>>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still a valid map.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ConnectionState {
    /// The first byte of a request head arrived on an idle connection: true if that started the
    /// head (false when a request is being served: its body, or a pipelined head, is arriving).
    pub fn head_started(&self) -> bool {
        // The time first: a shed scan that sees the new phase must not see the idle time with it.
        let since = self.state.since_ms.swap(self.registry.now_ms(), Ordering::Relaxed);
        let started = self
            .state
            .phase
            .compare_exchange(IDLE, READING_HEAD, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if !started {
            self.state.since_ms.store(since, Ordering::Relaxed);
        }
        started
    }

    /// Still reading the head that [`ConnectionState::head_started`] started.
    pub fn is_reading_head(&self) -> bool {
        self.state.phase.load(Ordering::Relaxed) == READING_HEAD
    }

    /// The head is complete and the request is being served (unless the connection was shed
    /// while its head arrived: it closes).
    pub fn serving(&self) {
        let _ = self
            .state
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |phase| {
                (phase != SHED).then_some(SERVING)
            });
    }

    /// The request's handler finished: idle from now until the next head begins (a shed connection
    /// stays shed).
    pub fn idle(&self) {
        self.state.since_ms.store(self.registry.now_ms(), Ordering::Relaxed);
        let _ = self
            .state
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |phase| {
                (phase != SHED).then_some(IDLE)
            });
    }

    /// Resolves when the accept loop sheds this connection.
    pub async fn shed(&self) {
        self.state.shed.notified().await
    }
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        if self.state.phase.load(Ordering::Acquire) == SHED {
            self.registry.shedding.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_longest_idle_are_shed_and_busy_ones_never() {
        let open = OpenConnections::new();
        let oldest = open.register();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let reading = open.register();
        assert!(reading.head_started());
        let serving = open.register();
        serving.serving();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newest = open.register();
        assert_eq!(open.len(), 4);

        assert_eq!(open.shed_idle(1), 1);
        let shed = |c: &ConnectionState| {
            let c = c.state.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(50), c.shed.notified())
                    .await
                    .is_ok()
            }
        };
        assert!(shed(&oldest).await);
        assert!(!shed(&newest).await);
        assert_eq!(
            (open.len(), open.open_unshed()),
            (4, 3),
            "a shed connection is not counted"
        );
        // The shed one is not picked again: only one more is idle, however many are asked for.
        assert_eq!(open.shed_idle(10), 1);
        assert!(shed(&newest).await);
        assert!(!shed(&reading).await && !shed(&serving).await);
        // A shed connection stays shed: no head starts on it, and it is not served.
        assert!(!newest.head_started());
        newest.idle();
        assert_eq!(open.shed_idle(10), 0);

        // A request served makes the connection idle again, from now.
        serving.idle();
        assert!(!serving.is_reading_head());
        assert!(serving.head_started() && serving.is_reading_head());
        drop((oldest, newest));
        assert_eq!(
            (open.len(), open.open_unshed()),
            (2, 2),
            "closing ends the shedding count"
        );
        drop((reading, serving));
    }

    /// A head arriving for longer than [`STALLED_HEAD`] is shed when no connection is idle; a
    /// fresh head never is.
    #[test]
    fn a_stalled_head_is_shed_after_the_idle_and_a_fresh_one_never() {
        let open = Arc::new(OpenConnections {
            epoch: Instant::now() - Duration::from_secs(10),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            shedding: AtomicUsize::new(0),
        });
        let stalled = open.register();
        let fresh = open.register();
        let idle = open.register();
        assert!(stalled.head_started() && fresh.head_started());
        let long_ago = open.now_ms().saturating_sub(STALLED_HEAD.as_millis() as u64 + 1);
        stalled.state.since_ms.store(long_ago, Ordering::Relaxed);
        idle.state.since_ms.store(open.now_ms(), Ordering::Relaxed);
        let phase = |c: &ConnectionState| c.state.phase.load(Ordering::Relaxed);

        assert_eq!(open.shed_idle(1), 1);
        assert_eq!(phase(&idle), SHED, "the idle one goes first, though newer");
        assert_eq!(open.shed_idle(5), 1);
        assert_eq!(phase(&stalled), SHED);
        assert_eq!(phase(&fresh), READING_HEAD);
        // The stalled head completing after the shed does not revive its connection.
        stalled.serving();
        assert_eq!(phase(&stalled), SHED);
        assert_eq!(open.open_unshed(), 1);
    }
}
