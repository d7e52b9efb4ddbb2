//! `postgres-mcp sync` against a real S3-compatible endpoint (moto's server with IAM authentication
//! on, so every request is signature-checked) and a scripted HTTP server for network failures: the
//! destination is only ever replaced by a complete, verified file, unchanged objects are not
//! downloaded again, and a running server picks up what sync installs.

mod common;
mod sync_support;

use std::{collections::HashMap, path::Path, time::Duration};

use postgres_mcp::{
    auth::admin,
    sync::{Item, Outcome, RetryPolicy, Syncer, Unchanged},
};
use serde_json::json;
use sync_support::*;

fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    }
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn first_sync_from_s3_installs_a_verified_kb_and_records_its_etag() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kb = build_kb(dir.path(), "firstsync");
    moto.put("kb.db", kb.clone()).await;
    let data = dir.path().join("data");
    let dest = data.join("kb.db");

    let started = std::time::Instant::now();
    let run = run_sync(
        &moto.env(),
        dir.path(),
        &[
            "--source",
            &moto.url("kb.db"),
            "--dest",
            path_arg(&dest),
            "--once",
            "--create-dest-dirs",
            "--log-format",
            "json",
        ],
    )
    .await;
    println!("first sync of a {} byte kb.db: {:?}", kb.len(), started.elapsed());
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(std::fs::read(&dest).unwrap(), kb);
    let outcome = &run.outcomes()[0];
    assert_eq!(outcome["outcome"], "downloaded", "{outcome}");
    assert_eq!(outcome["sha256"], sha256_hex(&kb));
    assert!(
        outcome["detail"]
            .as_str()
            .unwrap()
            .contains("knowledge base: 7 documents"),
        "{outcome}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join(".kb.db.sync-state")).unwrap()).unwrap();
    assert!(state["etag"].as_str().is_some_and(|e| !e.is_empty()), "{state}");
    assert_eq!(state["source"], moto.url("kb.db"));
    assert!(temp_files(&data).is_empty());
    assert_eq!(moto.gets("kb.db", 200, 1).await, 1, "{}", moto.log());
}

#[tokio::test]
async fn an_unchanged_object_is_not_downloaded_again_even_after_a_restart() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kb = build_kb(dir.path(), "unchanged");
    moto.put("kb.db", kb.clone()).await;
    let dest = dir.path().join("kb.db");
    let args = [
        "--source",
        &moto.url("kb.db"),
        "--dest",
        path_arg(&dest),
        "--once",
        "--log-format",
        "json",
    ];
    assert_eq!(run_sync(&moto.env(), dir.path(), &args).await.code, Some(0));
    let before = identity(&dest);

    // A new process (a restarted sidecar) finds the ETag in the state file: one 304, nothing written.
    let again = run_sync(&moto.env(), dir.path(), &args).await;
    assert_eq!(again.code, Some(0), "{}", again.output());
    let outcome = &again.outcomes()[0];
    assert_eq!(outcome["outcome"], "unchanged");
    assert_eq!(outcome["reason"], "not modified (HTTP 304)");
    assert_eq!(identity(&dest), before, "the destination was not rewritten");
    assert_eq!(
        (moto.gets("kb.db", 200, 1).await, moto.gets("kb.db", 304, 1).await),
        (1, 1),
        "{}",
        moto.log()
    );

    // Without the state file the object is downloaded, found identical, and still not replaced.
    std::fs::remove_file(dir.path().join(".kb.db.sync-state")).unwrap();
    let stateless = run_sync(&moto.env(), dir.path(), &args).await;
    assert_eq!(stateless.code, Some(0), "{}", stateless.output());
    assert_eq!(stateless.outcomes()[0]["reason"], "identical content, destination kept");
    assert_eq!(identity(&dest), before);
    assert!(temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn an_update_propagates_and_the_running_server_reloads_it() {
    let moto = Moto::start().await;
    let fixture = common::Fixture::new();
    let tokens = fixture.path("tokens.yaml");
    moto.put("tokens.yaml", std::fs::read(&tokens).unwrap()).await;
    let server = fixture.start("mcp-sync").await;
    let syncer = Syncer::new(&moto.env(), fast_retries(3)).unwrap();
    let item = Item::new(&moto.url("tokens.yaml"), tokens.clone(), None, None).unwrap();

    // The server already has this content: sync leaves the file alone (no reload churn).
    assert_eq!(
        syncer.sync(&item).await.unwrap(),
        Outcome::Unchanged(Unchanged::SameContent)
    );
    assert_eq!(
        syncer.sync(&item).await.unwrap(),
        Outcome::Unchanged(Unchanged::NotModified)
    );

    // A new tokens.yaml in the bucket: synced, verified with TokenSet::parse, renamed into place.
    let staging = tempfile::tempdir().unwrap();
    let next = staging.path().join("tokens.yaml");
    let new_token = admin::token_create(&next, "from-object-storage", None, None).unwrap();
    moto.put("tokens.yaml", std::fs::read(&next).unwrap()).await;
    let started = std::time::Instant::now();
    let outcome = syncer.sync(&item).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Downloaded { detail, .. } if detail == "1 tokens"),
        "{outcome:?}"
    );
    let accepted = |token: String| {
        let server = &server;
        async move {
            common::rpc(
                server,
                Some(&token),
                json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
            )
            .await
            .status()
                == 200
        }
    };
    assert!(
        common::eventually(2, || accepted(new_token.clone())).await,
        "new token accepted"
    );
    println!(
        "object updated -> sync -> server accepts the new token: {:?}",
        started.elapsed()
    );
    assert!(
        !accepted(fixture.token.clone()).await,
        "the old token went with the old file"
    );

    // A broken upload is refused by sync; the server never sees it and keeps the new token.
    moto.put("tokens.yaml", "tokens: [{name: broken, hash: \"sha256:zz\"}]\n")
        .await;
    let error = syncer.sync(&item).await.unwrap_err().to_string();
    assert!(error.contains("refused as tokens"), "{error}");
    assert!(accepted(new_token).await);
    assert!(
        server.auth.health().last_error.is_none(),
        "the server never saw the bad file"
    );
}

#[tokio::test]
async fn failed_and_truncated_downloads_leave_the_destination_intact() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build_kb(dir.path(), "versionone");
    let v2 = build_kb(dir.path(), "versiontwo");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let dest = data.join("kb.db");
    std::fs::write(&dest, &v1).unwrap();
    let syncer = Syncer::new(&HashMap::new(), fast_retries(3)).unwrap();

    // 500, 500, then the file: retried with backoff and installed.
    let http = ScriptedServer::start(vec![Reply::Status(500), Reply::Status(500), Reply::ok(&v2)]).await;
    let item = Item::new(&format!("{}/kb.db", http.base), dest.clone(), None, None).unwrap();
    assert!(matches!(syncer.sync(&item).await.unwrap(), Outcome::Downloaded { .. }));
    assert_eq!(http.request_count(), 3);
    assert_eq!(std::fs::read(&dest).unwrap(), v2);
    let installed = identity(&dest);

    let assert_intact = |what: &str| {
        assert_eq!(std::fs::read(&dest).unwrap(), v2, "{what}: content kept");
        assert_eq!(identity(&dest), installed, "{what}: file not touched");
        assert!(temp_files(&data).is_empty(), "{what}: temp file removed");
    };

    // The connection drops halfway through the announced Content-Length, every time.
    http.set_script(vec![Reply::Body {
        body: v1[..v1.len() / 2].to_vec(),
        declared: v1.len(),
        etag: None,
    }]);
    let before = http.request_count();
    let error = syncer.sync(&item).await.unwrap_err().to_string();
    assert!(error.contains("interrupted") || error.contains("truncated"), "{error}");
    assert!(error.contains("after 3 attempts"), "{error}");
    assert_eq!(http.request_count() - before, 3);
    assert_intact("short body");

    // A complete transfer of a truncated kb.db: refused by the server's kb checks, not retried.
    let half = &v1[..v1.len() / 2];
    http.set_script(vec![Reply::ok(half)]);
    let before = http.request_count();
    let error = syncer.sync(&item).await.unwrap_err().to_string();
    assert!(error.contains("refused as kb"), "{error}");
    assert_eq!(http.request_count() - before, 1);
    assert_intact("truncated kb.db");

    // Errors that persist: reported with the status after the last attempt.
    http.set_script(vec![Reply::Status(503)]);
    let error = syncer.sync(&item).await.unwrap_err().to_string();
    assert!(error.contains("HTTP 503"), "{error}");
    assert_intact("503s");

    // Not retried: a 404 is an answer, not a hiccup.
    http.set_script(vec![Reply::Status(404)]);
    let before = http.request_count();
    assert!(syncer.sync(&item).await.unwrap_err().to_string().contains("HTTP 404"));
    assert_eq!(http.request_count() - before, 1);
    assert_intact("404");
}

#[tokio::test]
async fn the_binary_exits_nonzero_and_never_logs_presigned_query_strings() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("kb.db");
    std::fs::write(&dest, "old").unwrap();
    let http = ScriptedServer::start(vec![Reply::Status(403)]).await;
    let presigned = format!(
        "{}/bucket/kb.db?X-Amz-Credential=AKIASECRETKEYID&X-Amz-Security-Token=SESSIONSECRET&X-Amz-Signature=SIGSECRET",
        http.base
    );
    for format in ["json", "text"] {
        let run = run_sync(
            &HashMap::new(),
            dir.path(),
            &[
                "--source",
                &presigned,
                "--dest",
                path_arg(&dest),
                "--once",
                "--log-format",
                format,
            ],
        )
        .await;
        assert_eq!(run.code, Some(1), "{}", run.output());
        assert!(run.stderr.contains("HTTP 403"), "{}", run.stderr);
        assert!(run.output().contains("/bucket/kb.db?[redacted]"), "{}", run.output());
        for secret in ["AKIASECRETKEYID", "SESSIONSECRET", "SIGSECRET"] {
            assert!(!run.output().contains(secret), "{secret} leaked:\n{}", run.output());
        }
    }
    // The query string did reach the server: a pre-signed URL works as plain HTTPS.
    assert!(http.requests.lock().unwrap()[0].contains("X-Amz-Signature=SIGSECRET"));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old");
}

#[tokio::test]
async fn wrong_credentials_fail_with_the_s3_error_code_and_a_nonzero_exit() {
    let moto = Moto::start().await;
    moto.put("kb.db", "irrelevant").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("kb.db");
    let args = [
        "--source",
        &moto.url("kb.db"),
        "--dest",
        path_arg(&dest),
        "--once",
        "--attempts",
        "2",
    ];

    let mut unknown_key = moto.env();
    unknown_key.insert("AWS_ACCESS_KEY_ID".into(), "AKIAUNKNOWNKEY000000".into());
    let run = run_sync(&unknown_key, dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("HTTP 403 Forbidden: InvalidAccessKeyId"),
        "{}",
        run.stderr
    );

    let mut wrong_secret = moto.env();
    wrong_secret.insert("AWS_SECRET_ACCESS_KEY".into(), "wrong-secret-0123456789".into());
    let run = run_sync(&wrong_secret, dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("HTTP 403 Forbidden: SignatureDoesNotMatch"),
        "{}",
        run.stderr
    );
    assert!(!run.output().contains("wrong-secret-0123456789"));
    assert!(!run.output().contains("after 2 attempts"), "a 403 is not retried");

    let mut none = moto.env();
    none.remove("AWS_ACCESS_KEY_ID");
    none.remove("AWS_SECRET_ACCESS_KEY");
    // The chain ends at EC2 instance metadata: pointed at a closed loopback port, it is "not on EC2".
    none.insert("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), closed_port_url().await);
    let run = run_sync(&none, dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("no AWS credentials found"), "{}", run.stderr);
    assert!(!dest.exists());
    assert!(temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_sha256_mismatch_is_refused_and_a_match_installs() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kb = build_kb(dir.path(), "pinned");
    moto.put("kb.db", kb.clone()).await;
    let dest = dir.path().join("kb.db");
    std::fs::write(&dest, "previous").unwrap();
    let wrong = sha256_hex(b"another version");
    let run = run_sync(
        &moto.env(),
        dir.path(),
        &[
            "--source",
            &moto.url("kb.db"),
            "--dest",
            path_arg(&dest),
            "--once",
            "--sha256",
            &wrong,
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains(&format!("sha256 mismatch: expected {wrong}")),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "previous");
    assert!(temp_files(dir.path()).is_empty());

    let right = sha256_hex(&kb);
    let run = run_sync(
        &moto.env(),
        dir.path(),
        &[
            "--source",
            &moto.url("kb.db"),
            "--dest",
            path_arg(&dest),
            "--once",
            "--sha256",
            &right,
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(std::fs::read(&dest).unwrap(), kb);
}

#[tokio::test]
async fn a_manifest_syncs_several_items_and_refuses_invalid_auth_files() {
    let moto = Moto::start().await;
    let fixture = common::Fixture::new();
    for name in ["tokens.yaml", "users.yaml", "kb.db"] {
        moto.put(&format!("config/{name}"), std::fs::read(fixture.path(name)).unwrap())
            .await;
    }
    let out = tempfile::tempdir().unwrap();
    let manifest = out.path().join("sync.yaml");
    let dest = |name: &str| out.path().join("config").join(name);
    std::fs::write(
        &manifest,
        format!(
            "items:\n  - source: {}\n    dest: {}\n  - source: {}\n    dest: {}\n  - source: {}\n    dest: {}\n    sha256: {}\n",
            moto.url("config/tokens.yaml"),
            dest("tokens.yaml").display(),
            moto.url("config/users.yaml"),
            dest("users.yaml").display(),
            moto.url("config/kb.db"),
            dest("kb.db").display(),
            sha256_hex(&std::fs::read(fixture.path("kb.db")).unwrap()),
        ),
    )
    .unwrap();
    let args = [
        "--manifest",
        path_arg(&manifest),
        "--once",
        "--create-dest-dirs",
        "--log-format",
        "json",
    ];
    let run = run_sync(&moto.env(), out.path(), &args).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    // Items sync concurrently: one outcome per kind, in whatever order they finished.
    let mut kinds: Vec<_> = run
        .outcomes()
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["kb", "tokens", "users"]);
    for name in ["tokens.yaml", "users.yaml", "kb.db"] {
        assert_eq!(
            std::fs::read(dest(name)).unwrap(),
            std::fs::read(fixture.path(name)).unwrap(),
            "{name}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| std::fs::metadata(dest(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode("tokens.yaml"), mode("users.yaml"), mode("kb.db")),
        (0o644, 0o644, 0o644)
    );

    // users.yaml replaced by something UserSet::parse refuses: that item fails, the others are
    // unchanged (304), and the exit code says so.
    let users_before = std::fs::read(dest("users.yaml")).unwrap();
    moto.put(
        "config/users.yaml",
        "users:\n  - username: mallory\n    password_hash: plaintext\n",
    )
    .await;
    let run = run_sync(&moto.env(), out.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("sync failed for 1 of 3 item(s)"), "{}", run.stderr);
    assert!(run.stderr.contains("refused as users"), "{}", run.stderr);
    assert!(run.stderr.contains("not a bcrypt hash"), "{}", run.stderr);
    let mut outcomes: Vec<_> = run
        .outcomes()
        .iter()
        .map(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["outcome"].as_str().unwrap()))
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, ["kb unchanged", "tokens unchanged", "users failed"]);
    assert_eq!(std::fs::read(dest("users.yaml")).unwrap(), users_before);

    // A typo in the manifest is a usage error (exit 2), not a silently ignored key.
    std::fs::write(
        &manifest,
        "items:\n  - source: s3://b/kb.db\n    dest: /tmp/kb.db\n    sha265: abc\n",
    )
    .unwrap();
    let run = run_sync(&moto.env(), out.path(), &args).await;
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stderr.contains("sha265"), "{}", run.stderr);
}

#[tokio::test]
async fn web_identity_credentials_are_exchanged_at_sts() {
    let moto = Moto::start().await;
    moto.put("kb.db", "role-protected content").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeW5jIn0.c2lnbmF0dXJl\n").unwrap();
    let env = HashMap::from([
        ("AWS_REGION".to_string(), REGION.to_string()),
        ("AWS_ENDPOINT_URL".to_string(), moto.endpoint.clone()),
        ("AWS_ROLE_ARN".to_string(), moto.role_arn.clone()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE".to_string(),
            token_file.display().to_string(),
        ),
    ]);
    let dest = dir.path().join("data.bin");
    // moto cannot authenticate the (unsigned) STS call itself: let exactly that one through, then
    // the S3 GET must carry the role's temporary keys and session token.
    moto.require_auth_after(1).await;
    let run = run_sync(
        &env,
        dir.path(),
        &["--source", &moto.url("kb.db"), "--dest", path_arg(&dest), "--once"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.output(), moto.log());
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "role-protected content");
    assert!(
        moto.log().contains("\"POST / HTTP/1.1\" 200"),
        "STS was called:\n{}",
        moto.log()
    );

    let missing_role: HashMap<_, _> = env
        .iter()
        .filter(|(k, _)| *k != "AWS_ROLE_ARN")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let run = run_sync(
        &missing_role,
        dir.path(),
        &["--source", &moto.url("kb.db"), "--dest", path_arg(&dest), "--once"],
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn interval_mode_follows_updates_serves_metrics_and_stops_on_sigterm() {
    let moto = Moto::start().await;
    moto.put("notes.txt", "version 1").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("notes.txt");
    let mut child = sync_command(
        &moto.env(),
        dir.path(),
        &[
            "--source",
            &moto.url("notes.txt"),
            "--dest",
            path_arg(&dest),
            "--interval",
            "300ms",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
    )
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut reader = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let metrics_addr = {
        let lines = lines.clone();
        let mut addr = None;
        for _ in 0..200 {
            addr = lines.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == "serving sync metrics on /metrics").then(|| v["addr"].as_str().unwrap().to_string())
            });
            if addr.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        addr.expect("metrics address logged")
    };
    let scrape = || async {
        common::client()
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let label = format!("dest=\"{}\"", dest.display());
    let counted = |outcome: &str| format!("pgmcp_sync_total{{{label},outcome=\"{outcome}\"}}");
    assert!(
        common::eventually(10, || async {
            std::fs::read_to_string(&dest).is_ok_and(|t| t == "version 1")
        })
        .await
    );
    // Rounds go on: the next ones find the object unchanged.
    assert!(common::eventually(10, || async { scrape().await.contains(&counted("unchanged")) }).await);
    moto.put("notes.txt", "version 2").await;
    assert!(
        common::eventually(10, || async {
            std::fs::read_to_string(&dest).is_ok_and(|t| t == "version 2")
        })
        .await
    );
    // A failing round (object gone) is logged and counted; the last good file stays.
    moto.delete("notes.txt").await;
    assert!(common::eventually(10, || async { scrape().await.contains(&counted("failed")) }).await);
    let metrics = scrape().await;
    println!("{metrics}");
    assert!(metrics.contains(&format!("{} 2", counted("downloaded"))), "{metrics}");
    assert!(
        metrics.contains("pgmcp_sync_last_success_timestamp_seconds"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgmcp_sync_last_failure_timestamp_seconds"),
        "{metrics}"
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "version 2");
    assert!(
        child.try_wait().unwrap().is_none(),
        "interval mode keeps running after a failure"
    );

    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let stopped = || async { lines.lock().unwrap().iter().any(|l| l.contains("sync stopped")) };
    assert!(common::eventually(2, stopped).await, "the stop is logged");
}
