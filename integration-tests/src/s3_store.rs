//! An S3 store for the Compose sync variant, reachable only on a Docker network the test creates,
//! and an outage of it on demand.
//!
//! The store is moto's server (PyPI `moto[server]`, run by `TEST_PYTHON`) with IAM authentication
//! switched on, so every request the sync containers make is SigV4-checked as S3 checks it. It
//! listens on the host's loopback, which containers cannot reach; a small TCP forwarder owned by
//! the test exposes it on the gateway address of a Docker network created with a fixed subnet, and
//! the Compose project joins that network as an external one. Stopping the forwarder is a store
//! outage as the containers see it (connections refused, the address still routed), while moto
//! keeps its users, keys and objects, so the store that comes back is the same store: the keys in
//! the containers' environment stay valid and a recovered sync finds the objects it knew.
//!
//! Nothing is pulled or built: no emulator image exists on a machine without a registry.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use postgres_mcp::sync::s3::S3Access;
use tokio::{
    net::{TcpListener, TcpStream},
    process::Command,
};

use crate::{docker::docker, images::repo_root};

pub const BUCKET: &str = "pgmcp-compose-sync";
pub const REGION: &str = "us-east-1";

/// The Python with moto: `TEST_PYTHON` (scripts/test.sh sets it), else the project's `.venv`.
fn python() -> std::path::PathBuf {
    std::env::var_os("TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

/// Creates an IAM user allowed `s3:*` and prints its keys: the only credentials the store accepts
/// once authentication is on.
const IAM_SETUP: &str = r#"
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="compose-sync")
iam.put_user_policy(UserName="compose-sync", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="compose-sync")["AccessKey"]
print(json.dumps({"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#;

/// A Docker bridge network with a fixed /24; the host holds its gateway address. Removed on drop.
pub struct StoreNetwork {
    pub name: String,
    pub gateway: Ipv4Addr,
}

impl StoreNetwork {
    /// `docker network create --subnet PREFIX.0/24 --gateway PREFIX.1 NAME`.
    pub fn create(name: &str, prefix: [u8; 3]) -> anyhow::Result<StoreNetwork> {
        let [a, b, c] = prefix;
        let gateway = Ipv4Addr::new(a, b, c, 1);
        docker(&[
            "network",
            "create",
            "--subnet",
            &format!("{a}.{b}.{c}.0/24"),
            "--gateway",
            &gateway.to_string(),
            name,
        ])?;
        Ok(StoreNetwork {
            name: name.to_string(),
            gateway,
        })
    }
}

impl Drop for StoreNetwork {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.name]);
    }
}

/// Forwards TCP connections from `listen` to `target` until stopped, on a thread and runtime of its
/// own: the test blocks its own runtime in `docker compose up --wait` while the sync containers
/// must reach the store. Stopping ends that runtime, which closes the listener and every forwarded
/// connection, as a store that went away would.
struct Forwarder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start(listen: SocketAddr, target: SocketAddr) -> anyhow::Result<(Forwarder, SocketAddr)> {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3-store-forwarder".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = bound_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::bind(listen).await {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = bound_tx.send(Err(format!("cannot listen on {listen} for the store: {error}")));
                            return;
                        }
                    };
                    let _ = bound_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                    let accept = async {
                        while let Ok((mut inbound, _)) = listener.accept().await {
                            tokio::spawn(async move {
                                if let Ok(mut outbound) = TcpStream::connect(target).await {
                                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here drops every connection task and its sockets.
            })?;
        let bound = bound_rx
            .recv()
            .context("the forwarder thread ended")?
            .map_err(anyhow::Error::msg)?;
        Ok((
            Forwarder {
                stop: Some(stop),
                thread: Some(thread),
            },
            bound,
        ))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// moto on loopback, exposed to one Docker network through a [`Forwarder`].
pub struct S3Store {
    moto: std::process::Child,
    /// moto's own address (the test's uploads go here, never through the forwarder).
    loopback: SocketAddr,
    /// Where the containers reach the store: the network's gateway and a fixed port.
    exposed: SocketAddr,
    forwarder: Option<Forwarder>,
    pub key: String,
    pub secret: String,
    client: reqwest::Client,
    access: S3Access,
    pub network: StoreNetwork,
}

impl S3Store {
    /// Starts moto, creates the IAM user, switches authentication on, creates [`BUCKET`] and
    /// exposes the store on `network`'s gateway address.
    pub async fn start(network: StoreNetwork) -> anyhow::Result<S3Store> {
        postgres_mcp::tls::install_crypto_provider();
        let python = python();
        let mut moto = std::process::Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {} -m moto.server (set TEST_PYTHON)", python.display()))?;
        let stderr = moto.stderr.take().context("moto's stderr")?;
        // A thread, not a task: moto writes a line per request and blocks once the pipe is full, and
        // the test's runtime is blocked at times (in `docker compose up --wait`).
        let (port_tx, port_rx) = std::sync::mpsc::channel::<u16>();
        std::thread::Builder::new().name("moto-log".into()).spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                if let Some(port) = line
                    .split("Running on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.trim().parse().ok())
                {
                    let _ = port_tx.send(port);
                }
            }
        })?;
        let port = match port_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = moto.kill();
                bail!("moto did not start with {} (requirements-test.txt)", python.display());
            }
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], port));
        let setup = Command::new(&python)
            .args(["-c", IAM_SETUP, &format!("http://{loopback}")])
            .output()
            .await?;
        if !setup.status.success() {
            bail!("moto IAM setup failed: {}", String::from_utf8_lossy(&setup.stderr));
        }
        let ids: serde_json::Value = serde_json::from_slice(&setup.stdout)?;
        let key = ids["key"].as_str().context("access key id")?.to_string();
        let secret = ids["secret"].as_str().context("secret access key")?.to_string();
        let client = reqwest::Client::new();
        let access = S3Access::from_env(
            &HashMap::from([
                ("AWS_ACCESS_KEY_ID".to_string(), key.clone()),
                ("AWS_SECRET_ACCESS_KEY".to_string(), secret.clone()),
                ("AWS_REGION".to_string(), REGION.to_string()),
                ("AWS_ENDPOINT_URL".to_string(), format!("http://{loopback}")),
            ]),
            client.clone(),
        );
        let (forwarder, exposed) = Forwarder::start(SocketAddr::from((network.gateway, 0)), loopback)?;
        let store = S3Store {
            moto,
            loopback,
            exposed,
            forwarder: Some(forwarder),
            key,
            secret,
            client,
            access,
            network,
        };
        // From here on moto checks every request's signature against the IAM user's keys.
        let auth = store
            .client
            .post(format!("http://{loopback}/moto-api/reset-auth"))
            .body("0")
            .send()
            .await?;
        if !auth.status().is_success() {
            bail!("moto refused to switch authentication on: {}", auth.status());
        }
        store.request(reqwest::Method::PUT, "", Vec::new()).await?;
        Ok(store)
    }

    /// The endpoint the containers use (`AWS_ENDPOINT_URL`).
    pub fn endpoint_for_containers(&self) -> String {
        format!("http://{}", self.exposed)
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{BUCKET}/{key}")
    }

    async fn request(&self, method: reqwest::Method, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let url = format!("http://{}/{BUCKET}/{key}", self.loopback);
        let what = format!("{method} {url}");
        let request = self
            .access
            .signed_request(method, url.trim_end_matches('/'), &[], body.into())
            .await
            .map_err(anyhow::Error::msg)?;
        let response = self.client.execute(request).await?;
        if !response.status().is_success() {
            bail!(
                "{what}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Uploads (or replaces) an object, signed as `sync` signs its GETs.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        self.request(reqwest::Method::PUT, key, body).await
    }

    /// The store goes away for the containers: the forwarder stops and drops every connection.
    pub fn go_down(&mut self) {
        self.forwarder.take();
    }

    /// The same store comes back at the same address.
    pub fn come_back(&mut self) -> anyhow::Result<()> {
        if self.forwarder.is_none() {
            let (forwarder, _) = Forwarder::start(self.exposed, self.loopback)?;
            self.forwarder = Some(forwarder);
        }
        Ok(())
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        self.forwarder.take();
        let _ = self.moto.kill();
        let _ = self.moto.wait();
    }
}
