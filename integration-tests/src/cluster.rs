//! One test topology: a private network, three instances `mcp-1..3` with fixed addresses mounting
//! one shared host directory read-only, and a load balancer in front — nginx with the kit's
//! `nginx/nginx.conf` by default, or HAProxy with `haproxy/haproxy.cfg` ([`Balancer`]) — all
//! started by testcontainers from the locally built images. Host-side access to the balancer
//! (HTTPS) and to each instance directly.
//!
//! Names carry a per-run id (parallel or leftover runs never collide) and a label; dropping the
//! cluster removes every container and the network, also when the test failed.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use testcontainers::{
    ContainerAsync, GenericImage, ImageExt,
    core::{AccessMode, IntoContainerPort, Mount},
    runners::AsyncRunner,
};

use crate::{
    api_shim, compose_env, docker,
    images::{self, repo_root},
    shared_files::SharedFiles,
};

const RUN_LABEL: &str = "pgmcp-it-run";

/// The load balancer in front of the instances: either of the kit's two configs, as shipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balancer {
    /// `nginx/nginx.conf` in the `postgres-mcp-nginx` image: passive health only.
    #[default]
    Nginx,
    /// `haproxy/haproxy.cfg` in the `postgres-mcp-haproxy` image: active `/readyz` checks.
    Haproxy,
}

impl Balancer {
    /// `nginx` or `haproxy`, for report lines.
    pub fn name(self) -> &'static str {
        match self {
            Balancer::Nginx => "nginx",
            Balancer::Haproxy => "haproxy",
        }
    }

    fn image(self) -> &'static str {
        match self {
            Balancer::Nginx => images::NGINX,
            Balancer::Haproxy => images::HAPROXY,
        }
    }

    /// (file in the repository, where the image reads it): the config and its trusted-proxies list.
    fn config_files(self) -> [(&'static str, &'static str); 2] {
        match self {
            Balancer::Nginx => [
                ("nginx/nginx.conf", "/etc/nginx/nginx.conf"),
                ("nginx/trusted-proxies.conf", "/etc/nginx/trusted-proxies.conf"),
            ],
            Balancer::Haproxy => [
                ("haproxy/haproxy.cfg", "/usr/local/etc/haproxy/haproxy.cfg"),
                (
                    "haproxy/trusted-proxies.lst",
                    "/usr/local/etc/haproxy/trusted-proxies.lst",
                ),
            ],
        }
    }

    fn tls_dir(self) -> &'static str {
        match self {
            Balancer::Nginx => "/etc/nginx/tls",
            Balancer::Haproxy => "/usr/local/etc/haproxy/tls",
        }
    }
}

/// What a test changes about the topology.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The load balancer in front (nginx unless a test asks for HAProxy).
    pub balancer: Balancer,
    /// Variables compose.yaml interpolates (MCP_WATCH_MODE, MCP_DRAIN_DELAY, ...).
    pub vars: BTreeMap<String, String>,
    /// Extra server settings (PGMCP_*), on top of compose.yaml's.
    pub env: BTreeMap<String, String>,
    /// nginx's HTTPS port on the host, when the instances must know their public URL before
    /// nginx starts (OAuth issuer and resource); `None`: any free port.
    pub nginx_https_port: Option<u16>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        let options = ClusterOptions {
            balancer: Balancer::default(),
            vars: BTreeMap::new(),
            env: BTreeMap::new(),
            nginx_https_port: None,
        };
        // Shorter than production so restarts under test take seconds, same sequence; still longer
        // than nginx's fail_timeout (2 s), as nginx/nginx.conf requires for rolling restarts.
        // The failed-auth limiter keeps the shipped defaults: it never refuses a valid token, so the
        // reload scenario, which polls with tokens that are not valid yet, sees 200 as soon as they
        // are (and a revoked token refused with 401, or 429 once its polls used up the budget).
        options.var("MCP_DRAIN_DELAY", "3s").var("MCP_GRACE", "10s")
    }
}

impl ClusterOptions {
    pub fn var(mut self, key: &str, value: &str) -> Self {
        self.vars.insert(key.into(), value.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn balancer(mut self, balancer: Balancer) -> Self {
        self.balancer = balancer;
        self
    }
}

/// One postgres-mcp container.
pub struct Instance {
    /// `mcp-1`, `mcp-2`, `mcp-3`: the instance id, hostname and DNS alias.
    pub id: String,
    pub container: ContainerAsync<GenericImage>,
    port: u16,
}

impl Instance {
    /// `http://127.0.0.1:PORT` of this instance (the published port changes on restart).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn refresh_port(&mut self) -> anyhow::Result<()> {
        self.port = self.container.get_host_port_ipv4(8080.tcp()).await?;
        Ok(())
    }
}

/// Three instances behind a load balancer (nginx unless the options said HAProxy).
pub struct Cluster {
    pub run: String,
    network: String,
    pub instances: Vec<Instance>,
    /// Which balancer runs in front.
    pub balancer: Balancer,
    /// The load balancer's container (named `nginx` for history: it is HAProxy with
    /// [`Balancer::Haproxy`]).
    pub nginx: Option<ContainerAsync<GenericImage>>,
    /// `https://127.0.0.1:PORT` of the load balancer.
    pub nginx_url: String,
    /// Trusts the run's self-signed certificate.
    pub client: reqwest::Client,
    pub files: SharedFiles,
    _tls: tempfile::TempDir,
}

fn random_prefix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}", 100 + bytes[0] % 100, bytes[1])
}

fn create_network(name: &str, run: &str) -> anyhow::Result<String> {
    let mut last_error = None;
    for _ in 0..8 {
        let prefix = random_prefix();
        let subnet = format!("{prefix}.0/24");
        match docker::docker(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--label",
            &format!("{RUN_LABEL}={run}"),
            name,
        ]) {
            Ok(_) => return Ok(prefix),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.expect("at least one attempt"))
}

/// A client that trusts the run's certificate and never waits long (15 s).
fn https_client(certificate: &std::path::Path) -> anyhow::Result<reqwest::Client> {
    https_client_with_timeout(certificate, Duration::from_secs(15))
}

/// A client that trusts the run's certificate and gives up on a request after `timeout`.
fn https_client_with_timeout(certificate: &std::path::Path, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    postgres_mcp::tls::install_crypto_provider();
    let pem = std::fs::read(certificate)?;
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .build()?)
}

impl Cluster {
    pub async fn start(options: ClusterOptions) -> anyhow::Result<Cluster> {
        Cluster::start_with(options, SharedFiles::create()?).await
    }

    /// [`start`](Self::start) serving `files` (prepared by the test: many tokens, a large KB).
    pub async fn start_with(options: ClusterOptions, files: SharedFiles) -> anyhow::Result<Cluster> {
        api_shim::install()?;
        images::ensure_built()?;
        let run = format!("pgmcp-it-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let tls = tempfile::Builder::new().prefix("pgmcp-it-tls-").tempdir()?;
        let status = std::process::Command::new(repo_root().join("nginx/gen-self-signed-cert.sh"))
            .arg(tls.path())
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("nginx/gen-self-signed-cert.sh failed");
        }
        std::fs::set_permissions(tls.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let network = format!("{run}-net");
        let prefix = create_network(&network, &run)?;
        // From here on, Drop cleans up whatever was created.
        let mut cluster = Cluster {
            run: run.clone(),
            network: network.clone(),
            instances: Vec::new(),
            balancer: options.balancer,
            nginx: None,
            nginx_url: String::new(),
            client: https_client(&tls.path().join("tls.crt"))?,
            files,
            _tls: tls,
        };

        let mut vars = options.vars.clone();
        vars.insert("MCP_NET_PREFIX".into(), prefix.clone());
        let mut env = compose_env::instance_environment(&vars)?;
        env.extend(options.env.clone());

        for index in 1..=3 {
            let id = format!("mcp-{index}");
            let mut request = GenericImage::new(images::SERVER, images::TAG)
                .with_exposed_port(8080.tcp())
                .with_cmd(["serve"])
                .with_network(&network)
                .with_container_name(format!("{run}-{id}"))
                .with_hostname(&id)
                .with_label(RUN_LABEL, &run)
                .with_mount(
                    Mount::bind_mount(cluster.files.dir().display().to_string(), "/app/config")
                        .with_access_mode(AccessMode::ReadOnly),
                )
                .with_mount(Mount::tmpfs_mount("/tmp"))
                .with_readonly_rootfs(true)
                .with_cap_drop("ALL")
                .with_security_opt("no-new-privileges:true")
                .with_env_var("PGMCP_INSTANCE_ID", &id);
            for (key, value) in &env {
                request = request.with_env_var(key, value);
            }
            let container = request.start().await.with_context(|| format!("starting {id}"))?;
            docker::pin_address(container.id(), &network, &format!("{prefix}.{}", 10 + index), &id)?;
            let mut instance = Instance { id, container, port: 0 };
            instance.refresh_port().await?;
            cluster.instances.push(instance);
        }
        for index in 0..3 {
            cluster.wait_healthy(index).await?;
        }

        // The key is 0640 (nginx/gen-self-signed-cert.sh): the balancer reads it through its group,
        // as compose.yaml's group_add does.
        let key_group = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(cluster._tls.path().join("tls.key"))?);
        let balancer = options.balancer;
        let mut request = GenericImage::new(balancer.image(), images::TAG)
            .with_exposed_port(8443.tcp())
            .with_exposed_port(8080.tcp())
            .with_network(&network)
            .with_container_name(format!("{run}-{}", balancer.name()))
            .with_label(RUN_LABEL, &run)
            .with_mount(
                Mount::bind_mount(cluster._tls.path().display().to_string(), balancer.tls_dir())
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_mount(Mount::tmpfs_mount("/tmp"))
            .with_readonly_rootfs(true)
            .with_cap_drop("ALL")
            .with_host_config_modifier(move |host| host.group_add = Some(vec![key_group.to_string()]));
        if let Some(port) = options.nginx_https_port {
            request = request.with_mapped_port(port, 8443.tcp());
        }
        for (file, target) in balancer.config_files() {
            request = request.with_mount(
                Mount::bind_mount(repo_root().join(file).display().to_string(), target)
                    .with_access_mode(AccessMode::ReadOnly),
            );
        }
        let nginx = request
            .start()
            .await
            .with_context(|| format!("starting {}", balancer.name()))?;
        // nginx's address is the one compose.yaml trusts for X-Forwarded-For.
        docker::pin_address(nginx.id(), &network, &format!("{prefix}.10"), "nginx")?;
        let port = nginx.get_host_port_ipv4(8443.tcp()).await?;
        cluster.nginx_url = format!("https://127.0.0.1:{port}");
        cluster.nginx = Some(nginx);
        let url = format!("{}/health", cluster.nginx_url);
        let last = std::sync::Mutex::new(String::new());
        let ready = eventually(Duration::from_secs(20), || async {
            match cluster.client.get(&url).send().await {
                Ok(response) if response.status() == 200 => true,
                Ok(response) => {
                    *last.lock().unwrap() = format!("HTTP {}", response.status());
                    false
                }
                Err(error) => {
                    *last.lock().unwrap() = format!("{error:?}");
                    false
                }
            }
        })
        .await;
        if !ready {
            let nginx = cluster.nginx.as_ref().expect("just set");
            let mut logs = nginx.stderr_to_vec().await.unwrap_or_default();
            logs.extend(nginx.stdout_to_vec().await.unwrap_or_default());
            bail!(
                "{} did not answer /health within 20 s (last: {}); its log:\n{}",
                balancer.name(),
                last.lock().unwrap(),
                String::from_utf8_lossy(&logs)
            );
        }
        Ok(cluster)
    }

    /// nginx's error log so far (warnings and errors: upstream failures, limit_req rejections).
    pub async fn nginx_errors(&self) -> String {
        let Some(nginx) = &self.nginx else { return String::new() };
        String::from_utf8_lossy(&nginx.stderr_to_vec().await.unwrap_or_default()).into_owned()
    }

    /// The certificate nginx serves (self-signed for this run), for clients that must trust it.
    pub fn certificate(&self) -> std::path::PathBuf {
        self._tls.path().join("tls.crt")
    }

    /// A client like [`Cluster::client`] that waits up to `timeout` for an answer: for load that
    /// must outlast the balancer's own timeouts (a hung instance, a replay) rather than give up first.
    pub fn client_with_timeout(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        https_client_with_timeout(&self.certificate(), timeout)
    }

    /// SIGSTOP: the process hangs (its sockets stay open, the kernel still accepts connections),
    /// as a process stuck in a deadlock or a stalled VM would.
    pub fn freeze(&self, index: usize) -> anyhow::Result<()> {
        docker::signal(self.instances[index].container.id(), "STOP")
    }

    /// SIGCONT: a frozen process resumes where it stopped.
    pub fn thaw(&self, index: usize) -> anyhow::Result<()> {
        docker::signal(self.instances[index].container.id(), "CONT")
    }

    /// Waits until instance `index` answers 200 on /health directly.
    pub async fn wait_healthy(&self, index: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let url = format!("{}/health", self.instances[index].url());
        let healthy = eventually(Duration::from_secs(30), || async {
            self.client.get(&url).send().await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        if !healthy {
            let logs = self.instances[index]
                .container
                .stdout_to_vec()
                .await
                .unwrap_or_default();
            bail!(
                "{} not healthy within 30 s; its log:\n{}",
                self.instances[index].id,
                String::from_utf8_lossy(&logs)
            );
        }
        Ok(started.elapsed())
    }

    /// SIGKILL: the process dies at once, nothing drains.
    pub fn kill(&self, index: usize) -> anyhow::Result<()> {
        docker::signal(self.instances[index].container.id(), "KILL")
    }

    /// SIGTERM and wait for the process to exit (drain_delay + in-flight requests).
    pub async fn stop_gracefully(&self, index: usize) -> anyhow::Result<()> {
        self.instances[index].container.stop_with_timeout(Some(60)).await?;
        Ok(())
    }

    /// Starts a stopped instance again (same address) and waits until it is healthy.
    pub async fn restart(&mut self, index: usize) -> anyhow::Result<Duration> {
        self.instances[index].container.start().await?;
        self.instances[index].refresh_port().await?;
        self.wait_healthy(index).await
    }

    /// GET /health/details of instance `index` (generations, errors: internal, on its own
    /// address), as JSON.
    pub async fn health(&self, index: usize) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}/health/details", self.instances[index].url()))
            .send()
            .await?;
        Ok(response.json().await?)
    }

    /// POSTs one JSON-RPC message to `{base}/mcp` with a bearer token.
    pub async fn rpc(&self, base: &str, token: &str, message: &Value) -> anyhow::Result<RpcReply> {
        let response = self
            .client
            .post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(message)
            .send()
            .await?;
        RpcReply::read(response).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        docker::remove_run(RUN_LABEL, &self.run, &self.network);
    }
}

/// Status, answering instance and body of one HTTP exchange.
#[derive(Debug)]
pub struct RpcReply {
    pub status: u16,
    pub instance: String,
    pub body: Value,
}

impl RpcReply {
    pub async fn read(response: reqwest::Response) -> anyhow::Result<RpcReply> {
        let status = response.status().as_u16();
        let instance = response
            .headers()
            .get("x-instance-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(RpcReply { status, instance, body })
    }

    /// A 200 with a JSON-RPC result that is not a tool error.
    pub fn is_success(&self) -> bool {
        self.status == 200 && self.body.get("result").is_some_and(|r| r["isError"] != json!(true))
    }
}

/// `tools/call search_knowledgebase`.
pub fn search(id: u64, query: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "search_knowledgebase", "arguments": {"query": query, "limit": 3}}})
}

/// `ping`: the cheapest authenticated request.
pub fn ping(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
