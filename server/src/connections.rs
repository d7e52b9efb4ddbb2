//! The accept loop and the life of each HTTP/1.1 connection, with a stop that loses no request.
//!
//! poem routes and handles requests; this module replaces only `poem::Server`, because of what a
//! rolling restart behind a proxy needs and `poem::Server` does not give: a proxy that wrote a POST
//! onto a connection and then sees that connection closed or reset without an answer may not retry
//! it on another instance (nginx never does), so the client gets a 502. On stop, `poem::Server`
//! drops its listener at once (resetting connections the kernel had already queued) and cancels
//! connections whose first bytes it has not read yet (hyper-util's protocol detection gives up);
//! `connections_made_while_stopping_are_answered_or_refused_never_reset` in `tests/operations.rs`
//! caught both, a few connections per stop.
//!
//! Here the stop is:
//! 1. keep accepting until the kernel's accept queue is empty ([`AcceptQueue`]), then close the
//!    listener: later connections are refused, which a proxy retries elsewhere (nothing was sent);
//! 2. tell every connection to finish. hyper closes a connection on which it has read nothing yet
//!    as if it were idle, yet a proxy may already have written its request into the socket: such
//!    a connection first gets [`FIRST_BYTES_WAIT`] for its bytes to arrive and be read. Then a
//!    connection with a request in progress serves it and closes; an idle keep-alive one closes;
//! 3. wait for them up to `grace`, then drop what is left.
//!
//! While serving, each connection is bounded in time and sheddable: hyper's head timer closes one
//! that waits longer than `http.idle_timeout` for a request, `connection_io` one whose head takes
//! longer than `http.header_read_timeout` once begun, and when `accept` runs out of file
//! descriptors the longest-idle connections are closed to make room (`connection_state`), so held
//! connections cannot make the instance unreachable (issue #13 §A.8). `http.max_connections` bounds
//! them the same way where the descriptor limit is high (containers often allow a million): each
//! connection costs ~20 KiB of buffers and task, so 10,000 idle ones held ~200 MiB (a review of
//! issue #17's stop measured 35 -> 234 MiB). At the cap the longest-idle connections are shed; with
//! none idle, the new connection gets a 503 with `Retry-After` and is closed. When many connections
//! have ended, the memory they used is handed back to the kernel (`allocator::return_free_memory`),
//! since glibc keeps freed heap pages otherwise.
//!
//! HTTP/1.1 only: proxies speak it to upstreams, MCP's streamable HTTP needs nothing more, and
//! there is no TLS here to negotiate HTTP/2 (TLS ends at the proxy or load balancer).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::{
    Addr, Endpoint, IntoResponse, Request,
    http::{StatusCode, uri::Scheme},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
    task::JoinSet,
};

use crate::{
    accept_queue::AcceptQueue,
    connection_io::ConnectionIo,
    connection_state::{ConnectionState, OpenConnections},
    http_error::HttpError,
    shutdown::Shutdown,
};

/// Longest the stop waits for the accept queue to empty; it empties within milliseconds unless
/// something floods the port.
const ACCEPT_QUEUE_LIMIT: Duration = Duration::from_secs(1);

/// On stop, how long a connection that has not received a byte yet may wait for its request.
const FIRST_BYTES_WAIT: Duration = Duration::from_millis(500);

/// Back-off after an accept error that is about this process (out of file descriptors, ...), not
/// about one connection, when nothing could be done about it: retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Out of descriptors: how many idle connections to close before accepting again, and how long to
/// let their tasks close them. A batch rather than one: each accept may take another attacker's
/// connection from the queue, and the batch is what lets the queue move (see `connection_state`).
const SHED_BATCH: usize = 32;
const SHED_PAUSE: Duration = Duration::from_millis(5);

/// Request-head limits answered with our own 431 JSON body (issue #13 §A.7). hyper answers heads
/// past its own limits itself, with an empty 431 it gives no hook for: more than
/// [`HYPER_MAX_HEADERS`] fields, or a head over its read buffer (~400 KiB). Its other automatic
/// answers are empty too: 400 for a malformed request line or header, 414 for an over-long URI.
const MAX_HEADERS: usize = 100;
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// hyper's header-count limit, above ours so that ours is the one a client meets first. (Raising
/// it from hyper's default of 100 costs one small allocation per request.)
const HYPER_MAX_HEADERS: usize = 256;

/// How long a connection may wait for a request and take over its head (`http.idle_timeout`,
/// `http.header_read_timeout`), and how many may be open at once (`http.max_connections`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// No request in progress, before the first request and between keep-alive requests.
    pub idle: Duration,
    /// From the first byte of a request head to its end.
    pub head: Duration,
    /// Connections open at once; past it the longest-idle are shed, or the new one refused.
    pub max_open: usize,
}

/// Once this many connections have ended since the most open, their memory is returned to the
/// kernel: a wave of thousands, not the steady come and go of a proxy's keep-alive pool.
const RETURN_MEMORY_AFTER: usize = 1024;

/// At the cap with nothing to shed, how long new connections are refused without looking again.
const RESCAN_AFTER: Duration = Duration::from_millis(10);

/// Memory is returned at most this often.
const RETURN_MEMORY_EVERY: Duration = Duration::from_secs(30);

/// What a connection past `http.max_connections` gets when none can be shed, written before
/// anything is read, then the connection is closed.
const AT_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\
Content-Type: application/json\r\nContent-Length: 107\r\n\r\n\
{\"error\":\"too_many_connections\",\"message\":\"every connection is busy (http.max_connections); retry shortly\"}";

/// Serves `endpoint` on `listener` until `stop` fires, then stops as the module docs describe.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    mut stop: Shutdown,
    grace: Duration,
    limits: Limits,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let queue = AcceptQueue::of(&listener)?;
    let acceptor = Acceptor {
        local: LocalAddr(Addr::SocketAddr(listener.local_addr()?)),
        endpoint: Arc::new(endpoint),
        open: OpenConnections::new(),
        limits,
        most_open: AtomicUsize::new(0),
        started: Instant::now(),
        return_memory: NotBefore::default(),
        rescan: NotBefore::default(),
        refusals: Refusals::default(),
    };
    let (finish, finishing) = watch::channel(false);
    let mut connections = JoinSet::new();

    tokio::select! {
        _ = stop.recv() => {}
        _ = acceptor.accept_loop(&listener, &mut connections, &finishing) => {}
    }
    // Stop requested: accept what the kernel has already queued, then refuse new connections.
    tokio::select! {
        _ = queue.drained(ACCEPT_QUEUE_LIMIT) => {}
        _ = acceptor.accept_loop(&listener, &mut connections, &finishing) => {}
    }
    drop(listener);

    let _ = finish.send(true);
    let open = connections.len();
    let finished = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    match finished {
        Ok(()) => tracing::info!(connections = open, "every connection finished"),
        Err(_) => tracing::warn!(
            left = connections.len(),
            grace = ?grace,
            "connections still busy after shutdown.grace; closing them"
        ),
    }
    connections.shutdown().await;
    Ok(())
}

/// What every connection of one listener is served with.
struct Acceptor<E> {
    local: LocalAddr,
    endpoint: Arc<E>,
    open: Arc<OpenConnections>,
    limits: Limits,
    /// The most connections open since memory was last returned ([`RETURN_MEMORY_AFTER`]).
    most_open: AtomicUsize,
    /// The clock of the [`NotBefore`] moments below.
    started: Instant,
    /// When memory may be returned again ([`RETURN_MEMORY_EVERY`]).
    return_memory: NotBefore,
    /// When the cap may look for connections to shed again, after a look found none ([`RESCAN_AFTER`]).
    rescan: NotBefore,
    refusals: Refusals,
}

impl<E: Endpoint + 'static> Acceptor<E> {
    /// Accepts forever (the caller's `select!` ends it), reaping finished connection tasks as it
    /// goes so the set holds only live ones.
    async fn accept_loop(
        &self,
        listener: &TcpListener,
        connections: &mut JoinSet<()>,
        finishing: &watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if !self.room_for_one() {
                            self.refusals.refuse(stream);
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        connections.spawn(serve_connection(
                            stream,
                            RemoteAddr(Addr::SocketAddr(peer)),
                            self.local.clone(),
                            self.endpoint.clone(),
                            Arc::new(self.open.register()),
                            self.limits,
                            finishing.clone(),
                        ));
                    }
                    // The peer gave up between handshake and accept: nothing to do.
                    Err(error) if is_per_connection(&error) => {}
                    Err(error) if is_out_of_descriptors(&error) => self.make_room(&error).await,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => self.after_close(),
            }
        }
    }
}

impl<E> Acceptor<E> {
    /// Whether a connection just accepted may be served under `http.max_connections`: below the
    /// cap (connections being shed not counted), or once the longest-waiting connections have been
    /// shed to make room (`connection_state`). Open connections then exceed the cap by at most one
    /// shed batch while those close.
    fn room_for_one(&self) -> bool {
        let open = self.open.open_unshed();
        self.most_open.fetch_max(self.open.len() + 1, Ordering::Relaxed);
        if open < self.limits.max_open {
            return true;
        }
        // A scan that found nothing to shed is not repeated for [`RESCAN_AFTER`]: each copies the
        // registry under its lock, and a flood of connections at the cap would pay one per connect.
        let now = self.now_ms();
        let shed = if self.rescan.is_due(now) {
            self.open.shed_idle(SHED_BATCH)
        } else {
            0
        };
        metrics::counter!("pgmcp_connections_shed_total").increment(shed as u64);
        if shed == 0 {
            self.rescan.defer(now, RESCAN_AFTER);
            metrics::counter!("pgmcp_connections_refused_total").increment(1);
            self.refusals.warn(now, open);
            return false;
        }
        tracing::debug!(
            open,
            shed,
            "http.max_connections reached: closed the longest-waiting connections"
        );
        true
    }

    /// A connection ended: after a wave of them, hand their memory back to the kernel, at most
    /// once per [`RETURN_MEMORY_EVERY`] and one at a time (opening and closing connections is
    /// something any client can do).
    fn after_close(&self) {
        let open = self.open.len();
        let most = self.most_open.load(Ordering::Relaxed);
        if most.saturating_sub(open) < RETURN_MEMORY_AFTER {
            return;
        }
        let now = self.now_ms();
        if self.return_memory.is_due(now) {
            self.return_memory.defer(now, RETURN_MEMORY_EVERY);
            self.most_open.store(open, Ordering::Relaxed);
            tokio::task::spawn_blocking(crate::allocator::return_free_memory);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Out of descriptors: sheds the longest-idle connections and lets their tasks close them, or,
    /// with none idle, backs off instead of spinning on the failing `accept`.
    async fn make_room(&self, error: &std::io::Error) {
        let shed = self.open.shed_idle(SHED_BATCH);
        metrics::counter!("pgmcp_connections_shed_total").increment(shed as u64);
        if shed == 0 {
            tracing::warn!(%error, open = self.open.len(), "accept failed and no connection is idle");
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
        } else {
            tracing::debug!(%error, shed, "out of file descriptors: closed the longest-idle connections");
            tokio::time::sleep(SHED_PAUSE).await;
        }
    }
}

/// A moment, in milliseconds on the acceptor's clock, before which something is not done again:
/// the one throttle behind the rescan, the memory return and the refusals' warning. Only the
/// accept loop reads and writes it (atomic because the acceptor is shared by reference).
#[derive(Default)]
struct NotBefore(AtomicU64);

impl NotBefore {
    fn is_due(&self, now_ms: u64) -> bool {
        now_ms >= self.0.load(Ordering::Relaxed)
    }

    /// Not again until `wait` after `now_ms`.
    fn defer(&self, now_ms: u64, wait: Duration) {
        let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.0.store(now_ms.saturating_add(wait), Ordering::Relaxed);
    }
}

/// How long a refused connection may take to send its request after the 503, which is read and
/// discarded: closing a socket with unread bytes resets it, and the client could lose the answer.
const REFUSED_LINGER: Duration = Duration::from_millis(250);

/// Refused connections lingering at once; past it a refused connection is closed right after its
/// 503 (a flood of them cannot turn the linger into a descriptor leak).
const MAX_LINGERING: usize = 256;

/// The refusals at `http.max_connections`: how many linger, and their warning, logged at most
/// once a second with the count since the last (one line per refused connection would let a
/// flood fill the log and block the accept loop on the log writer).
#[derive(Default)]
struct Refusals {
    lingering: Arc<AtomicUsize>,
    warning: NotBefore,
    unwarned: AtomicU64,
}

/// How often the refusals' warning may be logged.
const WARN_EVERY: Duration = Duration::from_secs(1);

impl Refusals {
    /// Counts one refusal at `now_ms` (the acceptor's clock) and logs the count when it is due.
    fn warn(&self, now_ms: u64, open: usize) {
        self.unwarned.fetch_add(1, Ordering::Relaxed);
        if self.warning.is_due(now_ms) {
            self.warning.defer(now_ms, WARN_EVERY);
            let refused = self.unwarned.swap(0, Ordering::Relaxed);
            tracing::warn!(
                open,
                refused,
                "http.max_connections reached and no connection is idle: refused new connections with 503"
            );
        }
    }

    /// Past `http.max_connections` with none to shed: the 503 goes out at once (a new socket
    /// always has room for one small write), then the client's bytes are read and dropped for at
    /// most [`REFUSED_LINGER`] so that it reads the answer, and the connection closes.
    fn refuse(&self, stream: TcpStream) {
        let _ = stream.try_write(AT_CAPACITY);
        if self.lingering.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING {
            self.lingering.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let lingering = self.lingering.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = stream;
            let _ = stream.shutdown().await;
            let _ = tokio::time::timeout(REFUSED_LINGER, async {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            lingering.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused)
}

/// EMFILE / ENFILE: this process or the system has no descriptor for the next connection.
fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Our 431 for a head over [`MAX_HEADERS`] fields or [`MAX_HEAD_BYTES`] (name, value, `: ` and
/// CRLF of each field, plus the request target), with the JSON body every error has.
fn oversized_head<B>(request: &hyper::Request<B>) -> Option<HttpError> {
    let headers = request.headers();
    let bytes = request.uri().to_string().len()
        + headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    (headers.len() > MAX_HEADERS || bytes > MAX_HEAD_BYTES).then(|| {
        HttpError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "request has {} header fields and {bytes} bytes of head; \
                 the limits are {MAX_HEADERS} fields and {MAX_HEAD_BYTES} bytes",
                headers.len()
            ),
        )
    })
}

/// One connection: requests in turn (keep-alive) until the client closes it, it times out, it is
/// shed, or the server stops.
async fn serve_connection<E: Endpoint + 'static>(
    stream: TcpStream,
    remote: RemoteAddr,
    local: LocalAddr,
    endpoint: Arc<E>,
    state: Arc<ConnectionState>,
    limits: Limits,
    mut finishing: watch::Receiver<bool>,
) {
    let (stream, mut first_bytes) = ConnectionIo::new(stream, state.clone(), limits.head);
    let serving = state.clone();
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        serving.serving();
        let idle_after = IdleAfter(serving.clone());
        let endpoint = endpoint.clone();
        let oversized = oversized_head(&request);
        let request = Request::from((request, local.clone(), remote.clone(), Scheme::HTTP));
        async move {
            let _idle_after = idle_after;
            let response = match oversized {
                Some(error) => error.into_response(),
                None => endpoint.get_response(request).await,
            };
            Ok::<_, Infallible>(hyper::Response::from(response))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle)
        .max_headers(HYPER_MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        // Dropping the connection closes its socket: the descriptor is free at once.
        _ = state.shed() => return,
        _ = finishing.wait_for(|finish| *finish) => {}
    }
    if first_bytes.try_recv() == Err(oneshot::error::TryRecvError::Empty) {
        // Nothing read yet: let the connection read its request first (it keeps running here).
        let arrived = tokio::time::timeout(FIRST_BYTES_WAIT, async {
            tokio::select! {
                _ = connection.as_mut() => false,
                _ = &mut first_bytes => true,
            }
        })
        .await;
        if arrived == Ok(false) {
            return;
        }
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Marks the connection idle when the request's handler is done (or its future dropped).
struct IdleAfter(Arc<ConnectionState>);

impl Drop for IdleAfter {
    fn drop(&mut self) {
        self.0.idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canned 503 is a well-formed response: its Content-Length is its body's, and the body is
    /// the JSON every error has.
    #[test]
    fn the_capacity_answer_is_a_well_formed_503() {
        let text = std::str::from_utf8(AT_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "too_many_connections");
    }
}
