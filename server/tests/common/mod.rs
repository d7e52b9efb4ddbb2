//! A test fixture: a directory of real auth files and a kb.db, and real servers on loopback ports
//! started exactly as `postgres-mcp serve` starts them.
#![allow(dead_code)]

pub mod process;
pub mod python;

use std::path::{Path, PathBuf};

use postgres_mcp::{
    InstanceId,
    auth::admin,
    config::{Config, Overrides},
    server::{self, RunningServer},
};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub token: String,
}

impl Fixture {
    /// tokens.yaml with one token, users.yaml with `alice`, a session key and a kb.db of the demo docs.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let token = admin::token_create(&dir.path().join("tokens.yaml"), "test-client", None, None).unwrap();
        admin::user_add(&dir.path().join("users.yaml"), "alice", PASSWORD, 4).unwrap();
        admin::session_key_create(&dir.path().join("session.key"), false).unwrap();
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/docs");
        postgres_mcp::kb::build::build(&docs, &dir.path().join("kb.db")).unwrap();
        Fixture { dir, token }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Config as an operator would write it, with `extra` YAML merged over it.
    pub fn config(&self, instance: &str, extra: &str) -> Config {
        let base = format!(
            "listen: 127.0.0.1:0\ninstance_id: {instance}\nauth:\n  tokens_file: {}\n  users_file: {}\n  session_secret_file: {}\n  session_ttl: 1h\nkb:\n  path: {}\nshutdown:\n  drain_delay: 0s\n  grace: 5s\nwatch:\n  poll_interval: 200ms\n",
            self.path("tokens.yaml").display(),
            self.path("users.yaml").display(),
            self.path("session.key").display(),
            self.path("kb.db").display(),
        );
        let mut tree: serde_yaml::Value = serde_yaml::from_str(&base).unwrap();
        if !extra.trim().is_empty() {
            merge(&mut tree, serde_yaml::from_str(extra).unwrap());
        }
        let text = serde_yaml::to_string(&tree).unwrap();
        let file = self.path(&format!("{instance}.yaml"));
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), Vec::<(String, String)>::new(), &Overrides::default()).unwrap()
    }

    pub async fn start(&self, instance: &str) -> RunningServer {
        self.start_with(instance, "").await
    }

    pub async fn start_with(&self, instance: &str, extra: &str) -> RunningServer {
        server::start(self.config(instance, extra), InstanceId::resolve(Some(instance), None))
            .await
            .unwrap()
    }
}

pub fn url(server: &RunningServer, path: &str) -> String {
    format!("http://{}{}", server.addr, path)
}

/// The body of `GET url` as text (`/metrics`, say).
pub async fn get_text(url: &str) -> String {
    client().get(url).send().await.unwrap().text().await.unwrap()
}

pub fn client() -> reqwest::Client {
    postgres_mcp::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// A JSON-RPC request as a 2025-11-25 client sends it after `initialize`.
pub async fn rpc(server: &RunningServer, bearer: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = client()
        .post(url(server, "/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

pub fn search_call(id: i64, query: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "search_knowledgebase", "arguments": {"query": query, "limit": 3}}})
}

pub async fn login(server: &RunningServer, username: &str, password: &str) -> reqwest::Response {
    client()
        .post(url(server, "/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it holds, for at most `seconds`: reloads are asynchronous.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

fn merge(base: &mut serde_yaml::Value, layer: serde_yaml::Value) {
    match (base, layer) {
        (serde_yaml::Value::Mapping(base), serde_yaml::Value::Mapping(layer)) => {
            for (key, value) in layer {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_mapping() => merge(existing, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, layer) => *base = layer,
    }
}
