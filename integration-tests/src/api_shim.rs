//! A Docker API version shim, so testcontainers works against the Docker engine Debian ships.
//!
//! testcontainers 0.28 talks to the engine through bollard 0.21, which puts API version 1.53 in every
//! request path (`/v1.53/containers/create`). Debian 12's `docker.io` (engine 20.10) speaks at most
//! API 1.41 and refuses anything newer ("client version 1.53 is too new"). testcontainers does not
//! negotiate, so when the engine is older than bollard, the suite points `DOCKER_HOST` at this shim:
//! a Unix socket that forwards every byte to the real one, rewriting `/v1.53/` to the engine's
//! version. The replacement has the same length, so bodies and `Content-Length` stay valid, and the
//! byte stream is otherwise untouched (attach/exec upgrades included). Requests use only fields
//! the old API knows, and the engine ignores unknown JSON fields.
//!
//! On an engine that speaks 1.53, nothing is started and testcontainers talks to it directly.

use std::{path::PathBuf, sync::OnceLock};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
};

const ENGINE_SOCKET: &str = "/var/run/docker.sock";
/// The API version bollard (as used by testcontainers 0.28) writes in request paths.
const CLIENT_VERSION: &[u8] = b"/v1.53/";

static SHIM: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();

/// Makes `DOCKER_HOST` usable by testcontainers; call before the first container is created.
pub fn install() -> anyhow::Result<()> {
    let outcome = SHIM.get_or_init(|| start().map_err(|e| format!("{e:#}")));
    match outcome {
        Ok(_) => Ok(()),
        Err(message) => bail!("{message}"),
    }
}

fn engine_api_version() -> anyhow::Result<String> {
    let output = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .context("docker CLI not found: the integration suite needs Docker")?;
    if !output.status.success() {
        bail!(
            "the Docker engine is not reachable: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn start() -> anyhow::Result<Option<PathBuf>> {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return Ok(None);
    }
    let version = engine_api_version()?;
    let (major, minor) = version
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .with_context(|| format!("unexpected engine API version `{version}`"))?;
    if (major, minor) >= (1, 53) {
        return Ok(None);
    }
    let replacement = format!("/v{major}.{minor}/").into_bytes();
    if replacement.len() != CLIENT_VERSION.len() {
        bail!("engine API version {version} cannot be substituted in place");
    }
    let dir = std::env::temp_dir().join(format!("pgmcp-docker-shim-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("docker.sock");
    let _ = std::fs::remove_file(&path);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let socket = path.clone();
    std::thread::Builder::new()
        .name("docker-api-shim".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = match UnixListener::bind(&socket) {
                    Ok(listener) => listener,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let replacement = replacement.clone();
                    tokio::spawn(async move {
                        if let Ok(engine) = UnixStream::connect(ENGINE_SOCKET).await {
                            forward(client, engine, replacement).await;
                        }
                    });
                }
            });
        })?;
    ready_rx.recv()?.map_err(anyhow::Error::msg)?;
    // SAFETY: set once, before any Docker client of this process reads it; testcontainers reads
    // DOCKER_HOST when it creates its client, after this returns.
    unsafe { std::env::set_var("DOCKER_HOST", format!("unix://{}", path.display())) };
    eprintln!(
        "docker API shim: engine speaks API {version}, testcontainers 1.53; rewriting via {}",
        path.display()
    );
    Ok(Some(path))
}

async fn forward(client: UnixStream, engine: UnixStream, replacement: Vec<u8>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut engine_read, mut engine_write) = engine.into_split();
    let upstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        // Bytes held back because they might be the start of a version prefix split across reads.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            carry.extend_from_slice(&buffer[..read]);
            replace_all(&mut carry, CLIENT_VERSION, &replacement);
            let send_up_to = carry.len() - partial_prefix_len(&carry, CLIENT_VERSION);
            if engine_write.write_all(&carry[..send_up_to]).await.is_err() {
                break;
            }
            carry.drain(..send_up_to);
        }
        let _ = engine_write.write_all(&carry).await;
        let _ = engine_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut engine_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Length of the longest tail of `bytes` that is the beginning of `pattern` (it may be completed by the
/// next read, so it is held back). An HTTP message never ends in one (headers end in CRLF, bodies in
/// `}`, chunks in CRLF, tar in zero blocks), so nothing waits for bytes that never come.
fn partial_prefix_len(bytes: &[u8], pattern: &[u8]) -> usize {
    (1..pattern.len())
        .rev()
        .find(|&n| n <= bytes.len() && bytes[bytes.len() - n..] == pattern[..n])
        .unwrap_or(0)
}

fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_prefix_is_rewritten_in_place() {
        let mut request = b"GET /v1.53/containers/json HTTP/1.1\r\n\r\nPOST /v1.53/x".to_vec();
        replace_all(&mut request, CLIENT_VERSION, b"/v1.41/");
        assert_eq!(
            &request[..],
            b"GET /v1.41/containers/json HTTP/1.1\r\n\r\nPOST /v1.41/x"
        );
    }

    #[test]
    fn only_a_possible_prefix_is_held_back() {
        assert_eq!(partial_prefix_len(b"GET /v1.5", CLIENT_VERSION), 5);
        assert_eq!(partial_prefix_len(b"HTTP/1.1\r\n\r\n", CLIENT_VERSION), 0);
        assert_eq!(partial_prefix_len(b"{}", CLIENT_VERSION), 0);
    }
}
