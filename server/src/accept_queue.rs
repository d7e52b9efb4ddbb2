//! The listening socket's accept queue, so that stopping does not reset connections already made.
//!
//! The kernel completes TCP handshakes on its own and queues the connections until the server
//! accepts them. Closing a listening socket resets every connection still queued, and a proxy may
//! already have written a POST onto one: a reset after sending is a 502 (see `connections.rs`). So
//! the stop waits until the queue is empty, accepting as usual, and only then closes the socket;
//! what remains is the few microseconds between the last check and the close. Connections refused
//! after the close are harmless: nothing was sent on them, and a proxy retries them elsewhere.
//!
//! The check is `poll(2)` with a zero timeout on the socket itself (a listening socket is readable
//! exactly when its accept queue is non-empty), not tokio's cached readiness, which lags the
//! kernel while the runtime is busy.

use std::{
    io,
    os::fd::AsFd,
    time::{Duration, Instant},
};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// How often the queue is looked at while stopping.
const CHECK_EVERY: Duration = Duration::from_millis(1);

/// A second handle on a listening socket, only for looking at its accept queue.
#[derive(Debug)]
pub struct AcceptQueue {
    /// A `dup` of the listener: the socket stays open until this and the server's handle are both
    /// closed, which [`AcceptQueue::drained`] arranges by consuming `self`.
    socket: std::net::TcpListener,
}

impl AcceptQueue {
    pub fn of(listener: &tokio::net::TcpListener) -> io::Result<AcceptQueue> {
        let socket = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
        Ok(AcceptQueue { socket })
    }

    /// True when no connection waits to be accepted (or the socket cannot be polled, in which
    /// case waiting would not help).
    pub fn is_empty(&self) -> bool {
        let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        !matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }

    /// Resolves once the server has accepted every queued connection, or after `limit` (a client
    /// flooding the port must not hold the shutdown forever). The server must keep accepting
    /// meanwhile, which it does while its shutdown signal is still pending.
    pub async fn drained(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_a_queued_connection_until_it_is_accepted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let queue = AcceptQueue::of(&listener).unwrap();
        assert!(queue.is_empty());

        // The handshake completes in the kernel: queued, not yet accepted.
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!queue.is_empty());

        let accept = tokio::spawn(async move { listener.accept().await.map(|_| listener) });
        let started = Instant::now();
        queue.drained(Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "drained only by the limit");
        let listener = accept.await.unwrap().unwrap();
        // The queue's handle is gone with `drained`; the server's own still listens.
        assert!(listener.local_addr().is_ok());
    }

    #[tokio::test]
    async fn stops_waiting_at_the_limit_when_nothing_accepts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let queue = AcceptQueue::of(&listener).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let started = Instant::now();
        queue.drained(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
