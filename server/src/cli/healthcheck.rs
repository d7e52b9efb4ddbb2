//! `postgres-mcp healthcheck`: a container health probe that needs nothing but this binary.
//!
//! The runtime image is `FROM scratch` (or distroless): no shell, no curl. Docker's and Compose's
//! `HEALTHCHECK` run a command inside the container, so the binary probes its own HTTP endpoint with
//! a minimal HTTP/1.0 GET over std's blocking TCP: no runtime, no TLS, no dependencies, a hard
//! timeout. Exit 0 only on `200`.
//!
//! `--path` picks the question (see `probes.rs`). The default, `/readyz`, asks "should this
//! container get traffic?", which is what Docker's `healthy` means to its readers: Compose's
//! `depends_on: condition: service_healthy` (nginx starts once the instances can serve) and
//! `docker ps`, where a draining container rightly shows unhealthy. A runtime that *replaces*
//! unhealthy containers — ECS, Swarm, an autoheal sidecar — must pass `--path /livez` instead, so
//! that only a stalled process is replaced, never one finishing its requests after SIGTERM.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    process::ExitCode,
    time::Duration,
};

use clap::Args;

#[derive(Args)]
pub struct HealthcheckArgs {
    /// host:port of the instance.
    #[arg(long, default_value = "127.0.0.1:8080")]
    address: String,
    /// Seconds before giving up.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
    /// The endpoint to probe: /readyz (serving: 503 while draining), /livez (process alive: for
    /// runtimes that restart unhealthy containers) or /health.
    #[arg(long, default_value = "/readyz", value_parser = ["/readyz", "/livez", "/health"])]
    path: String,
}

pub fn run(args: HealthcheckArgs) -> ExitCode {
    match probe(&args.address, &args.path, Duration::from_secs(args.timeout)) {
        Ok(status) => {
            println!("healthy: {status}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Why the probe failed, in one line for `docker inspect`.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot reach {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("no HTTP answer from {0}")]
    NoAnswer(SocketAddr),
    #[error("{addr} answered `{status_line}`")]
    Unhealthy { addr: SocketAddr, status_line: String },
}

/// GETs `path` on `address` (host:port) and succeeds on status 200.
pub fn probe(address: &str, path: &str, timeout: Duration) -> Result<String, ProbeError> {
    let addr = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| ProbeError::Resolve(address.to_string()))?;
    let connect = |source| ProbeError::Connect { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(connect)?;
    stream.set_write_timeout(Some(timeout)).map_err(connect)?;
    // One write: `write!` on an unbuffered stream sends each piece of the format as its own segment.
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: postgres-mcp-healthcheck\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(connect)?;
    let mut response = Vec::with_capacity(1024);
    stream.take(64 * 1024).read_to_end(&mut response).map_err(connect)?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().ok_or(ProbeError::NoAnswer(addr))?.to_string();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(status_line)
    } else {
        Err(ProbeError::Unhealthy { addr, status_line })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Reads a request up to its blank line. Answering before the whole request is read, then
    /// closing, makes the kernel reset the connection, and the probe may see the reset instead of
    /// the answer.
    fn read_request(stream: &mut TcpStream) -> String {
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "the probe closed before its request ended");
            request.extend_from_slice(&buffer[..read]);
        }
        String::from_utf8_lossy(&request).into_owned()
    }

    /// A server that answers one request with `reply` and returns the request it read.
    fn answer_once(reply: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let request = read_request(&mut stream);
            stream.write_all(reply.as_bytes()).unwrap();
            request
        });
        (address, server)
    }

    #[test]
    fn a_200_is_healthy_and_a_503_is_not() {
        let (ok, _) = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        assert!(probe(&ok, "/health", Duration::from_secs(2)).is_ok());
        let (draining, _) = answer_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        let error = probe(&draining, "/health", Duration::from_secs(2)).unwrap_err();
        assert!(error.to_string().contains("503"), "{error}");
    }

    #[test]
    fn the_probe_asks_for_the_path_it_was_given() {
        let (address, server) = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert!(probe(&address, "/livez", Duration::from_secs(2)).is_ok());
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /livez HTTP/1.0\r\n"), "{request}");
    }

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        args: HealthcheckArgs,
    }

    #[test]
    fn the_default_path_is_readyz_and_only_the_probe_endpoints_are_accepted() {
        use clap::Parser;
        let parsed = Command::try_parse_from(["healthcheck"]).unwrap();
        assert_eq!(parsed.args.path, "/readyz");
        let parsed = Command::try_parse_from(["healthcheck", "--path", "/livez"]).unwrap();
        assert_eq!(parsed.args.path, "/livez");
        assert!(Command::try_parse_from(["healthcheck", "--path", "/mcp"]).is_err());
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error = probe(&format!("127.0.0.1:{port}"), "/health", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(error, ProbeError::Connect { .. }), "{error}");
    }
}
