//! The Compose object-storage variant, started for real: `compose.yaml` + `compose.sync.yaml` as the
//! README runs them, against an S3 store (moto, signatures checked) that the sync containers reach
//! only on a Docker network this test creates (`integration_tests::s3_store`), joined to the
//! project by an override file as an external network.
//!
//! One stack, two acts, to keep the added CI time small:
//! A. `up -d --wait` from an empty config directory owned by uid 10001 succeeds; a token uploaded to
//!    S3 is accepted by all three instances (measured: upload -> all three accept), a revoked one is
//!    refused by all three.
//! B. The store goes down: sync's own `/health` turns `stale` with the error; the whole project is
//!    stopped and brought `up --wait` again (a host restart) while the store is still down, and the
//!    instances serve the last good files; the store comes back and sync recovers (measured), a new
//!    token reaching all three again.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use integration_tests::{
    cluster::{RpcReply, ping},
    compose_env::secrets_gid,
    images::{self, repo_root},
    report,
    s3_store::{S3Store, StoreNetwork},
    shared_files::{SharedFiles, WriteMode},
};
use serde_json::Value;

/// The sidecar's interval here: rotation takes about this long, and "stale" comes after three.
const INTERVAL: &str = "2s";
const INSTANCES: [&str; 3] = ["mcp-1", "mcp-2", "mcp-3"];
/// The files the instances read, as the operator keeps them in the bucket.
const FILES: [&str; 4] = ["tokens.yaml", "users.yaml", "session.key", "kb.db"];
/// The uid the sync containers write as (compose.sync.yaml's `user`).
const SYNC_UID: u32 = 10001;

/// One Compose project of the sync variant; `down` when dropped, also when the test fails.
struct Stack {
    project: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(repo_root().join("scripts/compose.sh"));
        command.args(["-p", &self.project]);
        for file in &self.files {
            command.arg("-f").arg(file);
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("scripts/compose.sh runs")
    }

    /// Runs a compose command that must succeed; returns how long it took.
    fn must(&self, args: &[&str]) -> Duration {
        let started = Instant::now();
        let output = self.compose(args);
        assert!(
            output.status.success(),
            "compose {} failed:\n{}\n--- logs ---\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&self.compose(&["logs", "--no-color", "--tail", "40"]).stdout)
        );
        started.elapsed()
    }

    fn logs(&self, service: &str) -> String {
        String::from_utf8_lossy(&self.compose(&["logs", "--no-color", service]).stdout).into_owned()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--remove-orphans", "--timeout", "5"]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// The manifest `MCP_SYNC_MANIFEST` names: every shared file from the bucket.
fn write_manifest(dir: &Path, store: &S3Store) -> PathBuf {
    let items: Vec<String> = FILES
        .iter()
        .map(|name| format!("  - {{source: \"{}\", dest: /app/config/{name}}}\n", store.url(name)))
        .collect();
    let path = dir.join("sync.yaml");
    std::fs::write(&path, format!("items:\n{}", items.concat())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// The override that puts the sync containers (and only them) on the store's network.
fn write_store_override(dir: &Path, network: &str) -> PathBuf {
    let path = dir.join("compose.store.yaml");
    std::fs::write(
        &path,
        format!(
            "services:\n  sync-init:\n    networks: [store]\n  sync:\n    networks: [store]\n\
             networks:\n  store:\n    name: {network}\n    external: true\n"
        ),
    )
    .unwrap();
    path
}

/// The README's step: a config directory the sync containers (uid 10001) can write.
fn sync_writable_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pgmcp-sync-config-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(SYNC_UID), Some(SYNC_UID))
        .expect("chown the config directory to 10001 (the suite runs as root, like the README's sudo step)");
    dir
}

async fn upload(store: &S3Store, source: &SharedFiles, name: &str) {
    let bytes = std::fs::read(source.path(name)).unwrap();
    store.put(name, bytes).await.unwrap();
}

/// The latest answer of each instance to `token`, sampled through nginx.
struct Observer {
    client: reqwest::Client,
    url: String,
}

impl Observer {
    async fn ask(&self, token: &str) -> Option<RpcReply> {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(token)
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&ping(1))
            .send()
            .await
            .ok()?;
        RpcReply::read(response)
            .await
            .ok()
            .filter(|reply| !reply.instance.is_empty())
    }

    /// How long until every instance has answered `token` as `accepted` says (success, or
    /// refusal), or None after `timeout`. Requests rotate over the instances through nginx.
    async fn until_all(&self, token: &str, accepted: bool, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut done: BTreeMap<String, Duration> = BTreeMap::new();
        while started.elapsed() < timeout {
            if let Some(reply) = self.ask(token).await
                && reply.is_success() == accepted
            {
                done.entry(reply.instance).or_insert_with(|| started.elapsed());
                if INSTANCES.iter().all(|name| done.contains_key(*name)) {
                    return done.values().max().copied();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

async fn sync_health(client: &reqwest::Client, port: u16) -> Option<Value> {
    let response = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.json().await.ok()
}

/// Polls sync's /health until `check` holds: the document and the wait, or the last document seen.
async fn wait_for_health(
    client: &reqwest::Client,
    port: u16,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<(Value, Duration), Option<Value>> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < timeout {
        if let Some(health) = sync_health(client, port).await {
            if check(&health) {
                return Ok((health, started.elapsed()));
            }
            last = Some(health);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

fn reports_an_error(health: &Value) -> bool {
    health["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|item| item["last_error"].is_string()))
}

fn every_item_ok(health: &Value) -> bool {
    health["status"] == "ok"
        && health["items"]
            .as_array()
            .is_some_and(|items| items.len() == FILES.len() && items.iter().all(|i| i["last_error"].is_null()))
}

#[tokio::test]
async fn the_compose_sync_variant_starts_rotates_through_s3_and_keeps_serving_through_an_outage() {
    images::ensure_built().unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let seed = uuid::Uuid::new_v4().into_bytes();
    let mut store = S3Store::start(
        StoreNetwork::create(&format!("pgmcp-it-store-{run}"), [10, 200 + seed[0] % 50, seed[1]]).unwrap(),
    )
    .await
    .unwrap();
    // The operator's copies of the four files; the bucket gets them, the config directory starts empty.
    let mut source = SharedFiles::create().unwrap();
    for name in FILES {
        upload(&store, &source, name).await;
    }
    let config = sync_writable_dir();
    let scratch = tempfile::tempdir().unwrap();
    let tls = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new(repo_root().join("nginx/gen-self-signed-cert.sh"))
            .arg(tls.path())
            .output()
            .unwrap()
            .status
            .success()
    );
    let https_port = free_port();
    let metrics_port = free_port();
    let stack = Stack {
        project: format!("pgmcp-it-sync-{run}"),
        files: vec![
            repo_root().join("compose/compose.yaml"),
            repo_root().join("compose/compose.sync.yaml"),
            write_store_override(scratch.path(), &store.network.name),
        ],
        env: vec![
            ("MCP_CONFIG_DIR".into(), config.path().display().to_string()),
            ("MCP_TLS_DIR".into(), tls.path().display().to_string()),
            // tls.key is 0640: the balancer reads it through its group (compose.yaml's group_add).
            ("MCP_SECRETS_GID".into(), secrets_gid(&tls.path().join("tls.key"))),
            ("MCP_HTTPS_PORT".into(), https_port.to_string()),
            ("MCP_HTTP_PORT".into(), free_port().to_string()),
            (
                "MCP_NET_PREFIX".into(),
                format!("10.{}.{}", 100 + seed[2] % 100, seed[3]),
            ),
            ("MCP_DRAIN_DELAY".into(), "1s".into()),
            ("MCP_GRACE".into(), "5s".into()),
            (
                "MCP_SYNC_MANIFEST".into(),
                write_manifest(scratch.path(), &store).display().to_string(),
            ),
            ("MCP_SYNC_INTERVAL".into(), INTERVAL.into()),
            ("MCP_SYNC_METRICS_PORT".into(), metrics_port.to_string()),
            ("AWS_ENDPOINT_URL".into(), store.endpoint_for_containers()),
            ("AWS_ACCESS_KEY_ID".into(), store.key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), store.secret.clone()),
        ],
    };

    // --- A: up from an empty directory, then a rotation through S3 ---------------------------------
    let up = stack.must(&["up", "-d", "--wait"]);
    for name in FILES {
        assert!(config.path().join(name).exists(), "sync-init did not install {name}");
    }
    postgres_mcp::tls::install_crypto_provider();
    let observer = Observer {
        client: reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(tls.path().join("tls.crt")).unwrap()).unwrap(),
            )
            .build()
            .unwrap(),
        url: format!("https://127.0.0.1:{https_port}/mcp"),
    };
    assert!(
        observer
            .until_all(&source.token, true, Duration::from_secs(10))
            .await
            .is_some(),
        "the synced seed token is not accepted by all three instances"
    );
    let http = reqwest::Client::new();
    let health = wait_for_health(&http, metrics_port, Duration::from_secs(10), every_item_ok).await;
    assert!(health.is_ok(), "sync /health after up: {health:?}");

    let rotated = source.add_token("rotated", WriteMode::AtomicRename).unwrap();
    upload(&store, &source, "tokens.yaml").await;
    let accepted = observer.until_all(&rotated, true, Duration::from_secs(20)).await;
    source.revoke_token("rotated", WriteMode::AtomicRename).unwrap();
    upload(&store, &source, "tokens.yaml").await;
    let refused = observer.until_all(&rotated, false, Duration::from_secs(20)).await;
    report::record(
        "compose sync",
        &format!(
            "compose.yaml + compose.sync.yaml up --wait from an empty dir in {} ms; token uploaded to S3 -> \
             all 3 accept in {} ms, revoked -> all 3 refuse in {} ms (interval {INTERVAL})",
            up.as_millis(),
            accepted.map_or("-".into(), |d| d.as_millis().to_string()),
            refused.map_or("-".into(), |d| d.as_millis().to_string()),
        ),
    );
    assert!(
        accepted.is_some(),
        "a token uploaded to S3 did not reach all three instances"
    );
    assert!(
        refused.is_some(),
        "a token revoked in S3 was still accepted by an instance"
    );

    // --- B: the store goes down; a restart of everything still serves the last good files -----------
    store.go_down();
    // Stale (no success for three intervals) and the failed round's error, once the round's
    // retries are spent.
    let (stale, to_stale) = wait_for_health(&http, metrics_port, Duration::from_secs(30), |h| {
        h["status"] == "stale" && reports_an_error(h)
    })
    .await
    .unwrap_or_else(|last| panic!("sync /health never said stale with the error during the outage: {last:?}"));
    assert!(
        !stale.to_string().contains(&store.secret) && !stale.to_string().contains(&store.key),
        "sync /health shows credentials: {stale}"
    );

    stack.must(&["stop", "--timeout", "15"]);
    let restart = stack.must(&["up", "-d", "--wait"]);
    let init_log = stack.logs("sync-init");
    let serves_seed = observer.until_all(&source.token, true, Duration::from_secs(10)).await;
    let still_revoked = observer.until_all(&rotated, false, Duration::from_secs(10)).await;
    let after_restart = wait_for_health(&http, metrics_port, Duration::from_secs(30), |h| {
        h["status"] == "stale" && reports_an_error(h)
    })
    .await;
    assert!(
        serves_seed.is_some(),
        "after a restart during the outage the instances do not serve the last good tokens; sync-init:\n{init_log}"
    );
    assert!(still_revoked.is_some(), "the revoked token came back after the restart");
    assert!(
        init_log.contains("serving the local copy"),
        "sync-init did not say it kept the local files:\n{init_log}"
    );
    assert!(
        after_restart.is_ok(),
        "sync /health after the restart during the outage: {after_restart:?}"
    );

    store.come_back().unwrap();
    let back = Instant::now();
    let recovered = wait_for_health(&http, metrics_port, Duration::from_secs(30), every_item_ok).await;
    let recovery = back.elapsed();
    let again = source.add_token("after-outage", WriteMode::AtomicRename).unwrap();
    upload(&store, &source, "tokens.yaml").await;
    let accepted_again = observer.until_all(&again, true, Duration::from_secs(20)).await;
    report::record(
        "compose sync",
        &format!(
            "store down: sync /health stale after {} ms; stop + up --wait with the store down in {} ms, \
             all 3 serving the last good files; store back: sync ok again after {} ms, a new token -> all 3 in {} ms",
            to_stale.as_millis(),
            restart.as_millis(),
            recovery.as_millis(),
            accepted_again.map_or("-".into(), |d| d.as_millis().to_string()),
        ),
    );
    assert!(
        recovered.is_ok(),
        "sync did not recover after the store came back: {recovered:?}"
    );
    assert!(
        accepted_again.is_some(),
        "after the outage a token uploaded to S3 did not reach all three"
    );
}
