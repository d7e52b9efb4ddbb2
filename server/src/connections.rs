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
//! HTTP/1.1 only: proxies speak it to upstreams, MCP's streamable HTTP needs nothing more, and
//! there is no TLS here to negotiate HTTP/2 (TLS ends at the proxy or load balancer).

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::{
    Addr, Endpoint, Request,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
    task::JoinSet,
};

use crate::{accept_queue::AcceptQueue, shutdown::Shutdown};

/// Longest the stop waits for the accept queue to empty; it empties within milliseconds unless
/// something floods the port.
const ACCEPT_QUEUE_LIMIT: Duration = Duration::from_secs(1);

/// A request head must arrive within this, counted from the end of the previous response on a
/// kept-alive connection: it bounds slow-loris clients and closes idle connections. It must be
/// longer than the idle timeout of the proxy in front (nginx `keepalive_timeout` 60 s in our kit,
/// an ALB's idle timeout 60 s by default): the proxy, not the server, must be the one to close an
/// idle connection, or the server's close races the proxy's next request on it (a 502).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

/// On stop, how long a connection that has not received a byte yet may wait for its request.
const FIRST_BYTES_WAIT: Duration = Duration::from_millis(500);

/// Back-off after an accept error that is about this process (out of file descriptors, ...), not
/// about one connection: retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `endpoint` on `listener` until `stop` fires, then stops as the module docs describe.
pub async fn serve<E>(listener: TcpListener, endpoint: E, mut stop: Shutdown, grace: Duration) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let queue = AcceptQueue::of(&listener)?;
    let endpoint = Arc::new(endpoint);
    let (finish, finishing) = watch::channel(false);
    let mut connections = JoinSet::new();

    tokio::select! {
        _ = stop.recv() => {}
        _ = accept_loop(&listener, &mut connections, &local, &endpoint, &finishing) => {}
    }
    // Stop requested: accept what the kernel has already queued, then refuse new connections.
    tokio::select! {
        _ = queue.drained(ACCEPT_QUEUE_LIMIT) => {}
        _ = accept_loop(&listener, &mut connections, &local, &endpoint, &finishing) => {}
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

/// Accepts forever (the caller's `select!` ends it), reaping finished connection tasks as it goes
/// so the set holds only live ones.
async fn accept_loop<E: Endpoint + 'static>(
    listener: &TcpListener,
    connections: &mut JoinSet<()>,
    local: &LocalAddr,
    endpoint: &Arc<E>,
    finishing: &watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(
                        stream,
                        RemoteAddr(Addr::SocketAddr(peer)),
                        local.clone(),
                        endpoint.clone(),
                        finishing.clone(),
                    ));
                }
                // The peer gave up between handshake and accept: nothing to do.
                Err(error) if is_per_connection(&error) => {}
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused)
}

/// One connection: requests in turn (keep-alive) until the client closes it or the server stops.
async fn serve_connection<E: Endpoint + 'static>(
    stream: TcpStream,
    remote: RemoteAddr,
    local: LocalAddr,
    endpoint: Arc<E>,
    mut finishing: watch::Receiver<bool>,
) {
    let (stream, mut first_bytes) = FirstBytes::new(stream);
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let endpoint = endpoint.clone();
        let request = Request::from((request, local.clone(), remote.clone(), Scheme::HTTP));
        async move { Ok::<_, Infallible>(hyper::Response::from(endpoint.get_response(request).await)) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
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

/// A TCP stream that reports, once, when its first bytes have been read.
struct FirstBytes {
    stream: TcpStream,
    first: Option<oneshot::Sender<()>>,
}

impl FirstBytes {
    fn new(stream: TcpStream) -> (FirstBytes, oneshot::Receiver<()>) {
        let (first, seen) = oneshot::channel();
        (
            FirstBytes {
                stream,
                first: Some(first),
            },
            seen,
        )
    }
}

impl AsyncRead for FirstBytes {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(first) = self.first.take()
        {
            let _ = first.send(());
        }
        polled
    }
}

impl AsyncWrite for FirstBytes {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
