//! What each open connection is doing — waiting for a request, reading a request head, or serving
//! one — and the registry that closes the longest-idle connections when file descriptors run out.
//!
//! Issue #13 §A.8: 400 connections that send nothing, against a server limited to 256 descriptors,
//! made the instance unreachable until they timed out (75 s then). The timeouts (`http.idle_timeout`,
//! `http.header_read_timeout`) bound how long any one connection is held, but an attacker who opens
//! connections as fast as they close keeps the table full. So when `accept` fails for lack of
//! descriptors, the accept loop asks [`OpenConnections::shed_idle`] to close the connections that
//! have waited longest without a request in progress: a connection whose request is being read or
//! handled is never shed, and the kernel's accept queue, where a new client waits, moves on at once.
//! (A connection that is reading a head is bounded by `http.header_read_timeout` instead.)
//!
//! The state is three atomics per connection, written by the connection's own task; the registry
//! is a map locked once when a connection opens and once when it closes, and scanned only when
//! descriptors have run out.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::sync::Notify;

const IDLE: u8 = 0;
const READING_HEAD: u8 = 1;
const SERVING: u8 = 2;

/// Every open connection of one listener.
#[derive(Debug)]
pub struct OpenConnections {
    /// Idle times are kept as milliseconds since this instant (one atomic, no lock).
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<State>>>,
}

#[derive(Debug, Default)]
struct State {
    phase: AtomicU8,
    idle_since_ms: AtomicU64,
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
        })
    }

    /// Registers a connection just accepted: idle since now.
    pub fn register(self: &Arc<Self>) -> ConnectionState {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(State::default());
        state.idle_since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.lock().insert(id, state.clone());
        ConnectionState {
            id,
            state,
            registry: self.clone(),
        }
    }

    /// Asks the `count` connections idle the longest to close; returns how many were asked.
    pub fn shed_idle(&self, count: usize) -> usize {
        let mut idle: Vec<(u64, Arc<State>)> = self
            .lock()
            .values()
            .filter(|state| state.phase.load(Ordering::Relaxed) == IDLE)
            .map(|state| (state.idle_since_ms.load(Ordering::Relaxed), state.clone()))
            .collect();
        let count = count.min(idle.len());
        if count == 0 {
            return 0;
        }
        idle.select_nth_unstable_by_key(count - 1, |(since, _)| *since);
        for (_, state) in &idle[..count] {
            state.shed.notify_one();
        }
        count
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
        self.state
            .phase
            .compare_exchange(IDLE, READING_HEAD, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Still reading the head that [`ConnectionState::head_started`] started.
    pub fn is_reading_head(&self) -> bool {
        self.state.phase.load(Ordering::Relaxed) == READING_HEAD
    }

    /// The head is complete and the request is being served.
    pub fn serving(&self) {
        self.state.phase.store(SERVING, Ordering::Relaxed);
    }

    /// The request's handler finished: idle from now until the next head begins.
    pub fn idle(&self) {
        self.state
            .idle_since_ms
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.state.phase.store(IDLE, Ordering::Relaxed);
    }

    /// Resolves when the accept loop sheds this connection.
    pub async fn shed(&self) {
        self.state.shed.notified().await
    }
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
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
        // Only two are idle, however many are asked for.
        assert_eq!(open.shed_idle(10), 2);
        assert!(!shed(&reading).await && !shed(&serving).await);

        // A request served makes the connection idle again, from now.
        serving.idle();
        assert!(!serving.is_reading_head());
        assert!(serving.head_started() && serving.is_reading_head());
        drop((oldest, reading));
        assert_eq!(open.len(), 2);
    }
}
