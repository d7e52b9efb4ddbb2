//! Operations: request timeouts and graceful shutdown of the real binary (the failed-auth limiter:
//! `failed_auth.rs`).

mod common;

use std::time::{Duration, Instant};

use common::{process::ServerProcess, *};
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
    let mut process = ServerProcess::spawn([
        "--config".as_ref(),
        session_config.as_os_str(),
        "--instance-id".as_ref(),
        "drainer".as_ref(),
        "--tokens".as_ref(),
        fixture.path("tokens.yaml").as_os_str(),
        "--users".as_ref(),
        fixture.path("users.yaml").as_os_str(),
        "--kb".as_ref(),
        fixture.path("kb.db").as_os_str(),
    ]);
    let base = process.base.clone();
    let http = common::client();
    let healthy = eventually(10, || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(healthy, "listening at {base} but /health never answered 200");
    println!("start->healthy: {} ms", started.elapsed().as_millis());

    process.signal("TERM");
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
        if let Some(status) = process.child.try_wait().unwrap() {
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
    let lines = process.log_lines();
    let logs = lines.iter().map(Value::to_string).collect::<String>();
    assert!(
        lines.iter().all(|l| l["service.instance.id"] == "drainer"),
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
