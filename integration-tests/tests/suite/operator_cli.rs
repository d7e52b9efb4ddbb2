//! Scenario 10: the operator CLI writes the shared files while the three instances serve, as the
//! README's live-reload step does: the real release binary, run as this process's user (root in CI),
//! not the containers' uid 10001. The files keep their mode, owner and group, so the instances keep
//! reading them: the new token is accepted through nginx and by each instance within 2 s, and a user
//! added the same way logs in through nginx with a session every instance accepts.
//!
//! When this process is root, the files are first handed to the containers' user as `0640
//! 10001:10001` (only the owner's read bit lets the servers in); a CLI that rewrote them as root's
//! would lock every instance out. Without root they stay `0644`, and only the mode is proven.

use std::{
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use integration_tests::{
    cluster::{Cluster, ClusterOptions, eventually, ping},
    images::repo_root,
    report,
};
use serde_json::json;

const SCENARIO: &str = "10 operator cli";
/// The containers' user and group (scripts/images/server.Dockerfile).
const SERVER_UID: u32 = 10001;
const BOUND: Duration = Duration::from_secs(2);
const PASSWORD: &str = "operator's long password";

/// The binary `scripts/build-images.sh` built (and put in the image), which `Cluster::start` ran.
fn operator_binary() -> PathBuf {
    let profile = std::env::var("CARGO_PROFILE").unwrap_or_else(|_| "release".into());
    let dir = if profile == "dev" { "debug".to_string() } else { profile };
    repo_root().join("target").join(dir).join("postgres-mcp")
}

/// Runs the CLI with `args`, `stdin` as its input; returns stdout, failing on a non-zero exit.
fn operator(args: &[&str], file: &Path, stdin: &str) -> String {
    let mut child = Command::new(operator_binary())
        .args(args)
        .arg("--file")
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", operator_binary().display()));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "postgres-mcp {args:?} failed: {stderr}");
    assert!(!stderr.contains("warning"), "postgres-mcp {args:?} warned: {stderr}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `0640 10001:10001`.
fn describe(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap();
    format!("{:04o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// Waits until `token` gets 200 for a ping through nginx and from every instance directly.
async fn accepted_everywhere(cluster: &Cluster, token: &str) -> bool {
    eventually(BOUND, || async {
        let mut bases = vec![cluster.nginx_url.clone()];
        bases.extend(cluster.instances.iter().map(|i| i.url()));
        for base in &bases {
            match cluster.rpc(base, token, &ping(1)).await {
                Ok(reply) if reply.status == 200 => {}
                _ => return false,
            }
        }
        true
    })
    .await
}

#[tokio::test]
async fn files_written_by_the_operator_cli_stay_readable_by_every_instance() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let tokens = cluster.files.path("tokens.yaml");
    let users = cluster.files.path("users.yaml");
    let operator_uid = std::fs::metadata(cluster.files.dir()).unwrap().uid();
    if operator_uid == 0 {
        for path in [&tokens, &users] {
            std::os::unix::fs::chown(path, Some(SERVER_UID), Some(SERVER_UID)).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
    } else {
        println!("not root: the files stay 0644 owned by uid {operator_uid}; only the mode is proven");
    }
    // The seed token still works: the instances read the files as they are now.
    assert!(accepted_everywhere(&cluster, &cluster.files.token).await);

    // A token, as in the README.
    let before = describe(&tokens);
    let token = operator(&["token", "create", "--name", "ops"], &tokens, "");
    let written = Instant::now();
    assert!(token.starts_with("pgmcp_"), "{token}");
    assert_eq!(describe(&tokens), before, "tokens.yaml lost its mode, owner or group");
    assert!(
        accepted_everywhere(&cluster, &token).await,
        "the CLI's token is not accepted through nginx and by all 3 within {BOUND:?}"
    );
    let token_ms = written.elapsed().as_millis();
    assert!(
        accepted_everywhere(&cluster, &cluster.files.token).await,
        "the CLI dropped the seed token"
    );
    for index in 0..cluster.instances.len() {
        let health = cluster.health(index).await.unwrap();
        assert!(health["auth"]["last_error"].is_null(), "{}", health["auth"]);
    }
    report::record(
        SCENARIO,
        &format!(
            "token create by uid {operator_uid} on tokens.yaml {before} -> {}; accepted via nginx and by all 3 in {token_ms} ms",
            describe(&tokens)
        ),
    );

    // A user, then a login through nginx whose session every instance accepts.
    let before = describe(&users);
    operator(
        &["user", "add", "--username", "ops", "--password-stdin"],
        &users,
        &format!("{PASSWORD}\n"),
    );
    let written = Instant::now();
    assert_eq!(describe(&users), before, "users.yaml lost its mode, owner or group");
    let login_url = format!("{}/api/login", cluster.nginx_url);
    let session = std::sync::Mutex::new(None::<String>);
    let logged_in = eventually(BOUND, || async {
        let Ok(response) = cluster
            .client
            .post(&login_url)
            .json(&json!({"username": "ops", "password": PASSWORD}))
            .send()
            .await
        else {
            return false;
        };
        if response.status() != 200 {
            return false;
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        *session.lock().unwrap() = body["token"].as_str().map(str::to_string);
        true
    })
    .await;
    assert!(logged_in, "the CLI's user cannot log in through nginx within {BOUND:?}");
    let login_ms = written.elapsed().as_millis();
    let session = session
        .into_inner()
        .unwrap()
        .expect("a session token in the login answer");
    assert!(session.starts_with("pgmcs_"), "{session}");
    for instance in &cluster.instances {
        let reply = cluster.rpc(&instance.url(), &session, &ping(2)).await.unwrap();
        assert_eq!(reply.status, 200, "{} refuses the session", instance.id);
    }
    report::record(
        SCENARIO,
        &format!(
            "user add by uid {operator_uid} on users.yaml {before} -> {}; login via nginx after {login_ms} ms (bcrypt cost 12 included), session accepted by all 3",
            describe(&users)
        ),
    );
}
