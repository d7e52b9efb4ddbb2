//! The Compose kit, started for real: `compose/compose.yaml` as `make up` runs it (same images, same
//! script), on a free port and a private subnet, answering MCP calls through its nginx from all
//! three instances; `compose down` removes it, also when the test fails.

use std::collections::BTreeSet;

use integration_tests::{
    api_shim,
    cluster::{RpcReply, search},
    compose_env::secrets_gid,
    images::{self, repo_root},
    report,
    shared_files::SharedFiles,
};

struct Stack {
    project: String,
    env: Vec<(String, String)>,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(repo_root().join("scripts/compose.sh"))
            .args(["-p", &self.project, "-f"])
            .arg(repo_root().join("compose/compose.yaml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("scripts/compose.sh runs")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--remove-orphans", "--timeout", "5"]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_compose_stack_starts_healthy_and_serves_through_nginx() {
    api_shim::install().unwrap();
    images::ensure_built().unwrap();
    let files = SharedFiles::create().unwrap();
    let tls = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new(repo_root().join("nginx/gen-self-signed-cert.sh"))
            .arg(tls.path())
            .output()
            .unwrap()
            .status
            .success()
    );
    let port = free_port();
    let suffix = uuid::Uuid::new_v4().into_bytes();
    let stack = Stack {
        project: format!("pgmcp-it-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        env: vec![
            ("MCP_CONFIG_DIR".into(), files.dir().display().to_string()),
            ("MCP_TLS_DIR".into(), tls.path().display().to_string()),
            // tls.key is 0640: the balancer reads it through its group (compose.yaml's group_add).
            ("MCP_SECRETS_GID".into(), secrets_gid(&tls.path().join("tls.key"))),
            ("MCP_HTTPS_PORT".into(), port.to_string()),
            ("MCP_HTTP_PORT".into(), free_port().to_string()),
            (
                "MCP_NET_PREFIX".into(),
                format!("10.{}.{}", 100 + suffix[0] % 100, suffix[1]),
            ),
        ],
    };
    let started = std::time::Instant::now();
    let up = stack.compose(&["up", "-d", "--wait"]);
    assert!(
        up.status.success(),
        "compose up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let up_time = started.elapsed();

    postgres_mcp::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(tls.path().join("tls.crt")).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/mcp");
    let mut seen = BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        let sent = client
            .post(&url)
            .bearer_auth(&files.token)
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&search(1, "replication lag"))
            .send()
            .await;
        if let Ok(response) = sent {
            let reply = RpcReply::read(response).await.unwrap();
            assert!(reply.is_success(), "{reply:?}");
            seen.insert(reply.instance);
        }
    }
    let reached_all = seen.len() == 3;
    report::record(
        "compose",
        &format!(
            "compose.yaml up --wait in {} ms; MCP calls through its nginx answered by {seen:?}",
            up_time.as_millis()
        ),
    );
    assert!(reached_all, "only {seen:?} answered through the Compose stack's nginx");
}
