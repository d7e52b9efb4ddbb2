//! Round trips between a PostgreSQL client and the server, counted on the wire (issue #17): a
//! loopback TCP proxy in front of the cluster that counts *turns* — each time the client sends after
//! the server has spoken. A client that pipelines a call's messages sends them in one flight and
//! waits once, so a call costs one turn; one that waits for every answer before the next message
//! costs one turn per message it waited on.
//!
//! Counted this way rather than from the server's statement log because the log shows statements,
//! not waits: pipelined and sequential calls log the same statements. The proxy adds latency, so
//! it is used for counting only, never for the throughput figures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy: connect to [`TurnCounter::addr`] instead of the server.
pub struct TurnCounter {
    pub addr: SocketAddr,
    turns: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TurnCounter {
    /// Listens on a loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TurnCounter> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let turns = Arc::new(AtomicU64::new(0));
        let counted = turns.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let turns = counted.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, turns).await;
                    }
                });
            }
        });
        Ok(TurnCounter { addr, turns, task })
    }

    /// Turns counted so far, over every connection.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::SeqCst)
    }
}

impl Drop for TurnCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, counting a turn for every client flight that
/// follows server data (the first flight counts too: the server "spoke" by accepting).
async fn relay(client: TcpStream, server: TcpStream, turns: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let server_spoke = Arc::new(AtomicBool::new(true));
    let spoke = server_spoke.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            if server_spoke.swap(false, Ordering::SeqCst) {
                turns.fetch_add(1, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            spoke.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: three request/answer exchanges are three turns.
    #[tokio::test]
    async fn each_wait_for_an_answer_is_one_turn() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = socket.read(&mut buf).await {
                socket.write_all(&buf[..n]).await.unwrap();
            }
        });
        let counter = TurnCounter::start(upstream).await.unwrap();
        let mut client = TcpStream::connect(counter.addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        let mut buf = [0u8; 2];
        for _ in 0..3 {
            client.write_all(b"ab").await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
        }
        assert_eq!(counter.turns(), 3);
    }
}
