//! The socket as one HTTP connection reads it: it reports its first bytes (for the stop, see
//! `connections.rs`) and bounds how long a request head may take once it has begun.
//!
//! hyper has one timer for a request head, `header_read_timeout`, and it starts when hyper begins
//! waiting for a head — so it also counts the idle time of a kept-alive connection. That timer must
//! outlast the proxy's keep-alive (nginx 60 s) or the server's close races the proxy's next request
//! (a 502), which left a client dribbling a header byte a second 75 s (issue #13 §A.8). So hyper's
//! timer is the idle bound (`http.idle_timeout`), and this stream adds the head bound
//! (`http.header_read_timeout`): the first byte read on an idle connection arms a deadline, the
//! request reaching its handler ([`ConnectionState::serving`]) disarms it, and a read still waiting
//! when it passes fails with `TimedOut`. hyper then drops the connection without an answer, as it
//! does for its own timeout.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::oneshot,
    time::{Instant, Sleep},
};

use crate::connection_state::ConnectionState;

/// A TCP stream with a first-bytes signal and a deadline on each request head.
pub struct ConnectionIo {
    stream: TcpStream,
    first: Option<oneshot::Sender<()>>,
    state: std::sync::Arc<ConnectionState>,
    head_timeout: Duration,
    /// Armed while a head is being read.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl ConnectionIo {
    /// The stream, and a receiver that resolves once its first bytes have been read.
    pub fn new(
        stream: TcpStream,
        state: std::sync::Arc<ConnectionState>,
        head_timeout: Duration,
    ) -> (ConnectionIo, oneshot::Receiver<()>) {
        let (first, seen) = oneshot::channel();
        let io = ConnectionIo {
            stream,
            first: Some(first),
            state,
            head_timeout,
            deadline: None,
        };
        (io, seen)
    }
}

impl AsyncRead for ConnectionIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            if let Some(first) = this.first.take() {
                let _ = first.send(());
            }
            if this.state.head_started() {
                let deadline = Instant::now() + this.head_timeout;
                match &mut this.deadline {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => this.deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
            }
        }
        if polled.is_pending()
            && this.state.is_reading_head()
            && let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete within http.header_read_timeout",
            )));
        }
        polled
    }
}

impl AsyncWrite for ConnectionIo {
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
