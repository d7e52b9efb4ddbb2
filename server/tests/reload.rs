//! Live reload as operators trigger it: in-place writes, atomic renames, Kubernetes' `..data` symlink
//! swap, delete-then-recreate, writers invisible to inotify (poll mode), broken files and kb.db
//! replacement — each against a running server, observed through HTTP.

mod common;

use std::{os::unix::fs::symlink, path::Path};

use common::*;
use postgres_mcp::auth::tokens::{TokenEntry, generate_token};
use serde_json::Value;

/// The tokens file content with one freshly generated token; returns (content, token).
fn tokens_file_with(name: &str) -> (String, String) {
    let token = generate_token();
    (
        TokenEntry::render_file(&[TokenEntry::new(name, &token, None, None)]),
        token,
    )
}

async fn accepted(server: &postgres_mcp::server::RunningServer, token: &str) -> bool {
    rpc(server, Some(token), search_call(1, "vacuum")).await.status() == 200
}

/// `/health/details`: file generations and errors (the public `/health` says only the status).
async fn health(server: &postgres_mcp::server::RunningServer) -> Value {
    common::client()
        .get(url(server, "/health/details"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_in_place_write_is_picked_up() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    let (content, token) = tokens_file_with("in-place");
    // Truncate-and-write on the same inode, as `echo > file` or a naive editor does.
    std::fs::write(fixture.path("tokens.yaml"), content).unwrap();
    assert!(eventually(2, || accepted(&server, &token)).await);
    assert!(
        !accepted(&server, &fixture.token).await,
        "the old token is gone with the old content"
    );
}

#[tokio::test]
async fn a_kubernetes_secret_update_through_the_data_symlink_is_picked_up() {
    // kubelet's layout: tokens.yaml -> ..data/tokens.yaml, ..data -> ..<timestamp>/ ; an update
    // writes a new timestamped dir, points ..data_tmp at it and renames ..data_tmp over ..data.
    let fixture = Fixture::new();
    let secret = fixture.path("secret");
    std::fs::create_dir_all(secret.join("..2026_01_01")).unwrap();
    std::fs::copy(fixture.path("tokens.yaml"), secret.join("..2026_01_01/tokens.yaml")).unwrap();
    symlink("..2026_01_01", secret.join("..data")).unwrap();
    symlink("..data/tokens.yaml", secret.join("tokens.yaml")).unwrap();
    let extra = format!("auth:\n  tokens_file: {}\n", secret.join("tokens.yaml").display());
    let server = fixture.start_with("mcp-k8s", &extra).await;
    assert!(accepted(&server, &fixture.token).await);

    let (content, token) = tokens_file_with("rotated");
    std::fs::create_dir_all(secret.join("..2026_01_02")).unwrap();
    std::fs::write(secret.join("..2026_01_02/tokens.yaml"), content).unwrap();
    symlink("..2026_01_02", secret.join("..data_tmp")).unwrap();
    std::fs::rename(secret.join("..data_tmp"), secret.join("..data")).unwrap();
    std::fs::remove_dir_all(secret.join("..2026_01_01")).unwrap();

    assert!(
        eventually(2, || accepted(&server, &token)).await,
        "new Secret content not served within 2 s"
    );
    assert!(!accepted(&server, &fixture.token).await);
}

#[tokio::test]
async fn a_deleted_then_recreated_file_is_picked_up_and_the_gap_keeps_the_last_good() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    std::fs::remove_file(fixture.path("tokens.yaml")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        accepted(&server, &fixture.token).await,
        "a missing file must not drop the tokens being served"
    );
    let report = health(&server).await;
    assert!(
        report["auth"]["last_error"].as_str().unwrap().contains("tokens"),
        "{report}"
    );

    let (content, token) = tokens_file_with("recreated");
    std::fs::write(fixture.path("tokens.yaml"), content).unwrap();
    assert!(eventually(2, || accepted(&server, &token)).await);
    assert!(eventually(2, || async { health(&server).await["auth"]["last_error"].is_null() }).await);
}

#[tokio::test]
async fn poll_mode_sees_writes_that_raise_no_events() {
    // In poll mode no inotify watch exists, exactly like a write made by another NFS client.
    let fixture = Fixture::new();
    let server = fixture
        .start_with("mcp-poll", "watch:\n  mode: poll\n  poll_interval: 100ms\n")
        .await;
    let (content, token) = tokens_file_with("from-another-host");
    let temp = fixture.path(".tokens.tmp");
    std::fs::write(&temp, content).unwrap();
    std::fs::rename(&temp, fixture.path("tokens.yaml")).unwrap();
    assert!(eventually(2, || accepted(&server, &token)).await);
}

#[tokio::test]
async fn a_broken_tokens_file_keeps_the_last_good_and_reports_it_until_fixed() {
    let fixture = Fixture::new();
    postgres_mcp::metrics::handle();
    let server = fixture.start("mcp-a").await;
    let before = health(&server).await["auth"]["generation"].clone();
    for broken in [
        "tokens: [",
        "tokens:\n  - name: a\n    hash: sha256:nothex\n",
        "tokens:\n  - hash: x\n",
    ] {
        std::fs::write(fixture.path("tokens.yaml"), broken).unwrap();
        let reported = eventually(2, || async { health(&server).await["auth"]["last_error"].is_string() }).await;
        assert!(reported, "broken file `{broken}` not reported");
        assert!(
            accepted(&server, &fixture.token).await,
            "last good tokens must keep working"
        );
        assert_eq!(health(&server).await["auth"]["generation"], before);
    }
    let metrics = get_text(&url(&server, "/metrics")).await;
    assert!(metrics.contains("pgmcp_reloads_total{file=\"tokens\",outcome=\"rejected\"}"));
    // The gauge is process-wide and other tests' servers in this process set it to 0 for their
    // healthy files; this server sets it back to 1 at each of its checks.
    let gauge_shows_error = eventually(2, || async {
        get_text(&url(&server, "/metrics"))
            .await
            .contains("pgmcp_reload_error{file=\"tokens\"} 1")
    })
    .await;
    assert!(gauge_shows_error);

    let (content, token) = tokens_file_with("fixed");
    std::fs::write(fixture.path("tokens.yaml"), content).unwrap();
    assert!(eventually(2, || accepted(&server, &token)).await);
    let report = health(&server).await;
    assert!(report["auth"]["last_error"].is_null());
    assert_ne!(report["auth"]["generation"], before);
}

#[tokio::test]
async fn reloading_users_keeps_unaffected_sessions_valid() {
    let fixture = Fixture::new();
    postgres_mcp::auth::admin::user_add(&fixture.path("users.yaml"), "bob", "bob's long password", 4).unwrap();
    let server = fixture.start("mcp-a").await;
    let alice: Value = login(&server, "alice", PASSWORD).await.json().await.unwrap();
    let bob: Value = login(&server, "bob", "bob's long password").await.json().await.unwrap();
    let (alice, bob) = (
        alice["token"].as_str().unwrap().to_string(),
        bob["token"].as_str().unwrap().to_string(),
    );

    postgres_mcp::auth::admin::user_remove(&fixture.path("users.yaml"), "bob").unwrap();
    assert!(
        eventually(2, || async { !accepted(&server, &bob).await }).await,
        "removed user's session still valid"
    );
    assert!(
        accepted(&server, &alice).await,
        "alice's session must survive bob's removal"
    );
    postgres_mcp::auth::admin::user_add(&fixture.path("users.yaml"), "carol", "carol's password", 4).unwrap();
    assert!(eventually(2, || async { health(&server).await["auth"]["users"] == 2 }).await);
    assert!(accepted(&server, &alice).await);
}

fn build_kb(dir: &Path, out: &Path, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("new-topic.md"), body).unwrap();
    postgres_mcp::kb::build::build(dir, out).unwrap();
}

async fn top_source(server: &postgres_mcp::server::RunningServer, token: &str, query: &str) -> Option<String> {
    let body: Value = rpc(server, Some(token), search_call(1, query))
        .await
        .json()
        .await
        .unwrap();
    body["result"]["structuredContent"]["results"][0]["source"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn a_replaced_kb_is_served_and_a_truncated_one_is_refused() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-a").await;
    assert_eq!(top_source(&server, &fixture.token, "zeppelin").await, None);

    build_kb(
        &fixture.path("docs2"),
        &fixture.path("kb.db"),
        "# Zeppelins\nZeppelin airships and their hydrogen.\n",
    );
    assert!(
        eventually(2, || async {
            top_source(&server, &fixture.token, "zeppelin").await.as_deref() == Some("new-topic.md")
        })
        .await
    );
    let generation = health(&server).await["kb"]["generation"].clone();

    // A half-copied file lands in place (e.g. `cp` over NFS interrupted): refused, old one kept.
    let bytes = std::fs::read(fixture.path("kb.db")).unwrap();
    std::fs::write(fixture.path("kb.db"), &bytes[..bytes.len() / 3]).unwrap();
    assert!(eventually(2, || async { health(&server).await["kb"]["last_error"].is_string() }).await);
    assert_eq!(
        top_source(&server, &fixture.token, "zeppelin").await.as_deref(),
        Some("new-topic.md")
    );
    assert_eq!(health(&server).await["kb"]["generation"], generation);

    // A foreign SQLite file: refused too.
    std::fs::remove_file(fixture.path("kb.db")).unwrap();
    rusqlite_foreign(&fixture.path("kb.db"));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        top_source(&server, &fixture.token, "zeppelin").await.as_deref(),
        Some("new-topic.md")
    );

    build_kb(
        &fixture.path("docs3"),
        &fixture.path("kb.db"),
        "# Blimps\nBlimps have no rigid frame.\n",
    );
    assert!(
        eventually(2, || async {
            top_source(&server, &fixture.token, "blimps").await.as_deref() == Some("new-topic.md")
        })
        .await
    );
    assert!(health(&server).await["kb"]["last_error"].is_null());
}

fn rusqlite_foreign(path: &Path) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'SQLite format 3\\000' > {} && head -c 8192 /dev/zero >> {}",
            path.display(),
            path.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
}

/// A prefix of a tokens file is often valid YAML: cut before an `expires_at:` line it would serve an
/// expired token as valid. A file written in place is only read once its writer closed it.
#[tokio::test]
async fn a_file_half_written_in_place_is_not_served_until_its_writer_closes_it() {
    use std::io::Write;
    let fixture = Fixture::new();
    let server = fixture.start("mcp-half").await;
    let (fresh, expired) = (generate_token(), generate_token());
    let full = TokenEntry::render_file(&[
        TokenEntry::new("fresh", &fresh, None, None),
        TokenEntry::new(
            "expired",
            &expired,
            Some(chrono::Utc::now() - chrono::Duration::days(1)),
            None,
        ),
    ]);
    let cut = full.find("expires_at").expect("the entry has an expiry");
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(fixture.path("tokens.yaml"))
        .unwrap();
    writer.write_all(&full.as_bytes()[..cut]).unwrap();
    writer.flush().unwrap();
    // Longer than the settle time and a poll interval (200 ms here).
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(!accepted(&server, &expired).await, "half a file was served");
    assert!(
        accepted(&server, &fixture.token).await,
        "the last good file keeps serving"
    );
    writer.write_all(&full.as_bytes()[cut..]).unwrap();
    drop(writer);
    assert!(eventually(2, || accepted(&server, &fresh)).await);
    assert!(!accepted(&server, &expired).await);
    assert!(!accepted(&server, &fixture.token).await);
}
