//! Operations: request timeouts and graceful shutdown of the real binary (the failed-auth limiter:
//! `failed_auth.rs`).

mod common;

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_request_that_outlives_the_timeout_gets_504() {
    let fixture = Fixture::new();
    let server = fixture.start_with("mcp-a", "http:\n  request_timeout: 300ms\n").await;
    // A client that announces a body and never sends it holds the handler until the timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        fixture.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut response = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response[..read]);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(text.contains("http.request_timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Reads the child's stdout on a thread: every line is kept (the test checks them all at the end) and
/// the address from the "listening" line is sent as soon as it appears. Binding port 0 and reading the
/// address back leaves no window in which another test could take a port picked in advance.
fn follow_stdout(
    child: &mut Child,
) -> (
    tokio::sync::oneshot::Receiver<String>,
    std::thread::JoinHandle<Vec<Value>>,
) {
    let stdout = child.stdout.take().unwrap();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let reader = std::thread::spawn(move || {
        let mut addr_tx = Some(addr_tx);
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let value: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if value["message"] == "listening" {
                if let (Some(tx), Some(addr)) = (addr_tx.take(), value["addr"].as_str()) {
                    // poem prints listener addresses as `socket://IP:PORT`.
                    let _ = tx.send(addr.trim_start_matches("socket://").to_string());
                }
            }
            lines.push(value);
        }
        lines
    });
    (addr_rx, reader)
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let fixture = Fixture::new();
    let session_config = fixture.path("serve.yaml");
    std::fs::write(
        &session_config,
        format!(
            "shutdown:\n  drain_delay: 1500ms\n  grace: 5s\nauth:\n  session_secret_file: {}\n",
            fixture.path("session.key").display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_postgres-mcp"))
        // The server refuses unknown PGMCP_* variables; keep the harness's environment out of it.
        .env_clear()
        .args(["serve", "--config"])
        .arg(&session_config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--instance-id",
            "drainer",
            "--log-format",
            "json",
        ])
        .arg("--tokens")
        .arg(fixture.path("tokens.yaml"))
        .arg("--users")
        .arg(fixture.path("users.yaml"))
        .arg("--kb")
        .arg(fixture.path("kb.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stdout) = follow_stdout(&mut child);
    let mut process = Process(child);
    let addr = match tokio::time::timeout(Duration::from_secs(20), addr).await {
        Ok(Ok(addr)) => addr,
        _ => {
            let _ = process.0.kill();
            let mut stderr = String::new();
            let _ = process.0.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!(
                "server never logged its address ({:?}); stdout: {:?}; stderr: {stderr}",
                process.0.wait(),
                stdout.join()
            );
        }
    };
    let base = format!("http://{addr}");
    let http = common::client();
    let healthy = eventually(10, || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(healthy, "listening at {addr} but /health never answered 200");
    println!("start->healthy: {} ms", started.elapsed().as_millis());

    signal(&process.0, "TERM");
    let draining = eventually(1, || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    assert!(draining, "/health did not turn 503 right after SIGTERM");
    // Still serving while the balancer notices.
    let call = http
        .post(format!("{base}/mcp"))
        .bearer_auth(&fixture.token)
        .json(&search_call(1, "vacuum"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        call.status(),
        200,
        "requests must still be served during the drain delay"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after drain + grace");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        http.get(format!("{base}/health")).send().await.is_err(),
        "listener still open after exit"
    );
    let lines = stdout.join().expect("stdout reader");
    let logs = lines.iter().map(Value::to_string).collect::<String>();
    assert!(
        lines.iter().all(|l| l["instance"] == "drainer"),
        "every line carries the instance"
    );
    assert!(lines.iter().any(|l| l["message"] == "termination signal received"));
    assert!(!logs.contains(&fixture.token), "a token was logged");
}

/// What happened to one raw HTTP exchange opened while the server stops.
#[derive(Debug, PartialEq)]
enum Exchange {
    /// Answered with this status line.
    Answered(String),
    /// The connection was refused: nothing was sent, a proxy retries it elsewhere.
    Refused,
    /// Connected and sent, then closed or reset without an answer: a proxy cannot retry a POST
    /// like that, so the client would get a 502.
    Lost(String),
}

async fn one_exchange(addr: std::net::SocketAddr) -> Exchange {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(_) => return Exchange::Refused,
    };
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if let Err(error) = stream.write_all(request.as_bytes()).await {
        return Exchange::Lost(format!("write: {error}"));
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer).await {
        Ok(_) if answer.starts_with(b"HTTP/1.1 ") => {
            let text = String::from_utf8_lossy(&answer);
            Exchange::Answered(text.lines().next().unwrap_or_default().to_string())
        }
        Ok(_) => Exchange::Lost(format!("closed after {} bytes", answer.len())),
        Err(error) => Exchange::Lost(format!("read: {error}")),
    }
}

/// Clients keep opening connections while the server stops: each is answered or refused, never
/// accepted by the kernel and then reset (a rolling restart behind nginx would turn that into a
/// 502). The stop waits for the accept queue to empty before it closes the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_made_while_stopping_are_answered_or_refused_never_reset() {
    let fixture = Fixture::new();
    let server = fixture.start("stopper").await;
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    seen.push(one_exchange(addr).await);
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut answered = 0;
    let mut refused = 0;
    let mut lost = Vec::new();
    for client in clients {
        for exchange in client.await.unwrap() {
            match exchange {
                Exchange::Answered(_) => answered += 1,
                Exchange::Refused => refused += 1,
                Exchange::Lost(why) => lost.push(why),
            }
        }
    }
    println!(
        "while stopping: {answered} answered, {refused} refused, {} lost",
        lost.len()
    );
    assert!(answered > 0 && refused > 0, "the stop happened under load");
    assert!(
        lost.is_empty(),
        "connections reset after the request was sent: {lost:?}"
    );
}
