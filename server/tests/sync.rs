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

#[tokio::test]
async fn keep_local_serves_a_valid_local_copy_when_the_store_is_down_and_fails_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    admin::token_create(&tokens, "last-good", None, None).unwrap();
    let down = closed_port_url().await;
    let source = format!("{down}/bucket/tokens.yaml");
    let once = |dest: &Path, keep_local: bool| {
        let mut args = vec![
            "--source".to_string(),
            source.clone(),
            "--dest".into(),
            dest.display().to_string(),
            "--once".into(),
            "--attempts".into(),
            "1".into(),
        ];
        if keep_local {
            args.push("--keep-local".into());
        }
        let home = dir.path().to_path_buf();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_sync(&HashMap::new(), &home, &args).await
        }
    };

    let run = once(&tokens, false).await;
    assert_eq!(
        run.code,
        Some(1),
        "without --keep-local an outage fails: {}",
        run.output()
    );

    let run = once(&tokens, true).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(
        run.stderr.contains("serving the local copy (1 tokens)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("tokens.yaml"),
        "the warning names the item: {}",
        run.stderr
    );

    // No local copy, or one the server would refuse: still a failure.
    let run = once(&dir.path().join("users.yaml"), true).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("no local copy"), "{}", run.stderr);
    let broken = dir.path().join("broken-tokens.yaml");
    std::fs::write(&broken, "tokens: [{name: x, hash: nothex}]\n").unwrap();
    let run = once(&broken, true).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("the local copy is refused as tokens"),
        "{}",
        run.stderr
    );

    // A store that answers 403 (wrong keys, expired pre-signed URL) is handled the same way.
    let forbidden = ScriptedServer::start(vec![Reply::Status(403)]).await;
    let source = format!("{}/tokens.yaml", forbidden.base);
    let run = run_sync(
        &HashMap::new(),
        dir.path(),
        &[
            "--source",
            &source,
            "--dest",
            path_arg(&tokens),
            "--once",
            "--keep-local",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stderr.contains("HTTP 403"), "{}", run.stderr);
}

#[tokio::test]
async fn a_corrupt_object_is_downloaded_once_not_every_round() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("kb.db");
    let good = build_kb(dir.path(), "goodversion");
    std::fs::write(&dest, &good).unwrap();
    moto.put("kb.db", b"SQLite format 3\0 and then garbage".to_vec()).await;
    let syncer = Syncer::new(&moto.env(), fast_retries(2)).unwrap();
    let item = Item::new(&moto.url("kb.db"), dest.clone(), None, None).unwrap();

    let first = syncer.sync(&item).await.unwrap_err();
    assert!(first.to_string().contains("refused as kb"), "{first}");
    assert!(!first.is_repeat());
    for _ in 0..3 {
        let again = syncer.sync(&item).await.unwrap_err();
        assert!(again.is_repeat(), "{again}");
        assert!(again.to_string().contains("not downloaded again"), "{again}");
    }
    // One full download, then conditional requests on the refused ETag, answered 304.
    assert_eq!(moto.gets("kb.db", 200, 1).await, 1, "{}", moto.log());
    assert_eq!(moto.gets("kb.db", 304, 3).await, 3, "{}", moto.log());
    assert_eq!(std::fs::read(&dest).unwrap(), good);

    // A new, valid version is downloaded and installed at once.
    let next = build_kb(dir.path(), "nextversion");
    moto.put("kb.db", next.clone()).await;
    assert!(matches!(syncer.sync(&item).await.unwrap(), Outcome::Downloaded { .. }));
    assert_eq!(std::fs::read(&dest).unwrap(), next);

    // Without validators (a plain web server) the body comes again, but the same bytes are
    // recognised without verifying or logging them as news.
    let http = ScriptedServer::start(vec![Reply::ok(b"tokens: [{name: x, hash: nothex}]\n")]).await;
    let tokens = dir.path().join("tokens.yaml");
    let item = Item::new(&format!("{}/tokens.yaml", http.base), tokens.clone(), None, None).unwrap();
    assert!(!syncer.sync(&item).await.unwrap_err().is_repeat());
    assert!(syncer.sync(&item).await.unwrap_err().is_repeat());
    assert!(!tokens.exists());
}

#[tokio::test]
async fn a_hung_download_does_not_delay_another_items_rotation() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let upload = staging.path().join("tokens.yaml");
    admin::token_create(&upload, "first", None, None).unwrap();
    moto.put("tokens.yaml", std::fs::read(&upload).unwrap()).await;
    let hung = ScriptedServer::start(vec![Reply::Hang]).await;
    let manifest = dir.path().join("sync.yaml");
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &manifest,
        format!(
            "items:\n  - source: {}/kb.db\n    dest: {}\n  - source: {}\n    dest: {}\n",
            hung.base,
            dir.path().join("kb.db").display(),
            moto.url("tokens.yaml"),
            tokens.display()
        ),
    )
    .unwrap();
    let run = IntervalRun::start(
        &moto.env(),
        dir.path(),
        &[
            "--manifest",
            path_arg(&manifest),
            "--interval",
            "300ms",
            "--item-timeout",
            "4s",
        ],
    )
    .await;
    let started = std::time::Instant::now();
    let has = |name: &'static str| {
        let tokens = tokens.clone();
        move || {
            let tokens = tokens.clone();
            async move { std::fs::read_to_string(&tokens).is_ok_and(|t| t.contains(name)) }
        }
    };
    assert!(
        common::eventually(3, has("first")).await,
        "the first tokens.yaml arrives"
    );
    let first_after = started.elapsed();

    // Rotate while the kb.db GET still hangs: the new token arrives within a few rounds.
    std::fs::remove_file(&upload).unwrap();
    admin::token_create(&upload, "rotated", None, None).unwrap();
    moto.put("tokens.yaml", std::fs::read(&upload).unwrap()).await;
    let rotating = std::time::Instant::now();
    assert!(common::eventually(3, has("rotated")).await, "the rotation arrives");
    let rotation = rotating.elapsed();
    println!("tokens.yaml first sync {first_after:?}, rotation {rotation:?}, while kb.db hangs (deadline 4s)");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "both tokens versions arrived before the hung kb.db round even reached its deadline"
    );
    assert_eq!(hung.request_count(), 1, "kb.db is still in its first round");

    // The hung round ends at its deadline, and kb.db tries again.
    assert!(
        common::eventually(6, || async {
            run.log().iter().any(|l| {
                l["outcome"] == "failed"
                    && l["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("per-item deadline of 4s"))
            })
        })
        .await
    );
    assert!(common::eventually(3, || async { hung.request_count() >= 2 }).await);
}

#[tokio::test]
async fn failing_rounds_back_off_exponentially_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let http = ScriptedServer::start(vec![Reply::Status(404)]).await;
    let source = format!("{}/notes.txt", http.base);
    let dest = dir.path().join("notes.txt");
    let _run = IntervalRun::start(
        &HashMap::new(),
        dir.path(),
        &[
            "--source",
            &source,
            "--dest",
            path_arg(&dest),
            "--interval",
            "3200ms",
            "--attempts",
            "1",
        ],
    )
    .await;
    assert!(
        common::eventually(12, || async { http.request_count() >= 6 }).await,
        "six rounds"
    );
    let times = http.times.lock().unwrap().clone();
    let gaps: Vec<Duration> = times.windows(2).take(5).map(|w| w[1] - w[0]).collect();
    println!("pauses between failing rounds (interval 3.2 s): {gaps:?}");
    // Ceilings 0.2, 0.4, 0.8, 1.6, 3.2 s; each pause in the upper half of its ceiling.
    let slack = Duration::from_millis(150);
    for (n, gap) in gaps.iter().enumerate() {
        let ceiling = Duration::from_millis(200 << n);
        assert!(
            *gap + slack >= ceiling / 2 && *gap <= ceiling + slack,
            "pause {}: {gap:?} (ceiling {ceiling:?}); all: {gaps:?}",
            n + 1
        );
    }
}

#[tokio::test]
async fn an_empty_token_list_is_refused_over_tokens_unless_allowed() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    admin::token_create(&tokens, "someone", None, None).unwrap();
    let before = std::fs::read(&tokens).unwrap();
    moto.put("tokens.yaml", "tokens: []\n").await;
    let args = [
        "--source",
        &moto.url("tokens.yaml"),
        "--dest",
        path_arg(&tokens),
        "--once",
    ];

    let run = run_sync(&moto.env(), dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr
            .contains("downloaded tokens file has no entries and would replace 1 tokens"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--allow-empty-tokens"), "{}", run.stderr);
    assert_eq!(std::fs::read(&tokens).unwrap(), before, "the token set was not emptied");

    let mut allowed = args.to_vec();
    allowed.push("--allow-empty-tokens");
    let run = run_sync(&moto.env(), dir.path(), &allowed).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(std::fs::read_to_string(&tokens).unwrap(), "tokens: []\n");
}

#[tokio::test]
async fn a_missing_destination_directory_is_refused_unless_creation_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let http = ScriptedServer::start(vec![Reply::ok(b"hello")]).await;
    let source = format!("{}/notes.txt", http.base);
    let dest = dir.path().join("not-mounted/notes.txt");
    let run = run_sync(
        &HashMap::new(),
        dir.path(),
        &["--source", &source, "--dest", path_arg(&dest), "--once"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains(&format!(
            "destination directory {} does not exist",
            dir.path().join("not-mounted").display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--create-dest-dirs"), "{}", run.stderr);
    assert_eq!(http.request_count(), 0, "refused before any download");
    assert!(!dir.path().join("not-mounted").exists());

    let run = run_sync(
        &HashMap::new(),
        dir.path(),
        &[
            "--source",
            &source,
            "--dest",
            path_arg(&dest),
            "--once",
            "--create-dest-dirs",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello");
}

/// The image's uid: what the Compose variant runs sync as.
const IMAGE_UID: u32 = 10001;

#[tokio::test]
async fn a_permission_error_names_the_uid_the_owner_and_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let http = ScriptedServer::start(vec![Reply::ok(b"hello")]).await;
    let source = format!("{}/notes.txt", http.base);
    let dest = config.join("notes.txt");
    let is_root = rustix::process::geteuid().is_root();
    let (mut command, uid) = if is_root {
        // Root may write anywhere: run the binary as the image's uid against a root-owned
        // directory, exactly the Compose first-run case (a copy, since target/ is private).
        let bin = dir.path().join("postgres-mcp");
        std::fs::copy(env!("CARGO_BIN_EXE_postgres-mcp"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut command = tokio::process::Command::new(&bin);
        command.uid(IMAGE_UID).gid(IMAGE_UID);
        (command, IMAGE_UID)
    } else {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o555)).unwrap();
        (
            tokio::process::Command::new(env!("CARGO_BIN_EXE_postgres-mcp")),
            rustix::process::geteuid().as_raw(),
        )
    };
    let output = command
        .args(["sync", "--source", &source, "--dest", path_arg(&dest), "--once"])
        .env_clear()
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Permission denied") || stderr.contains("permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("sync runs as uid {uid}")), "{stderr}");
    assert!(
        stderr.contains(&format!("make {} writable by uid {uid}", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("chown"), "{stderr}");
    println!("{stderr}");
    assert_eq!(http.request_count(), 0, "refused before any download");
}

#[tokio::test]
async fn health_reports_each_item_and_turns_stale_while_rejected_versions_count_once() {
    let moto = Moto::start().await;
    moto.put("notes.txt", "fine").await;
    moto.put("kb.db", b"SQLite format 3\0 and then garbage".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("sync.yaml");
    let dest = |name: &str| dir.path().join(name);
    std::fs::write(
        &manifest,
        format!(
            "items:\n  - {{source: {}, dest: {}}}\n  - {{source: {}, dest: {}}}\n  - {{source: {}, dest: {}}}\n",
            moto.url("notes.txt"),
            dest("notes.txt").display(),
            moto.url("missing/tokens.yaml"),
            dest("tokens.yaml").display(),
            moto.url("kb.db"),
            dest("kb.db").display(),
        ),
    )
    .unwrap();
    let run = IntervalRun::start(
        &moto.env(),
        dir.path(),
        &[
            "--manifest",
            path_arg(&manifest),
            "--interval",
            "300ms",
            "--stale-after",
            "2s",
        ],
    )
    .await;
    assert!(common::eventually(5, || async { dest("notes.txt").exists() }).await);
    let (status, health) = run.health().await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let item = |health: &serde_json::Value, name: &str| {
        health["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["dest"] == dest(name).display().to_string())
            .cloned()
            .unwrap()
    };
    let notes = item(&health, "notes.txt");
    assert!(
        notes["last_success"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{notes}"
    );
    assert_eq!(
        (notes["last_error"].clone(), notes["age_seconds"].clone()),
        (json!(null), json!(0))
    );
    let tokens = item(&health, "tokens.yaml");
    assert_eq!(tokens["last_success"], json!(null), "{tokens}");
    assert!(tokens["last_error"].as_str().unwrap().contains("HTTP 404"), "{tokens}");
    assert!(!health.to_string().contains(&moto.secret), "no credentials in /health");

    // The never-synced items go stale after --stale-after; the answer stays 200 (the loop turns).
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (status, health) = run.health().await;
    assert_eq!((status, health["status"].clone()), (200, json!("stale")), "{health}");
    let (_, metrics) = run.get("/metrics").await;
    for line in [
        "pgmcp_sync_stale{kind=\"tokens\"} 1",
        "pgmcp_sync_stale{kind=\"kb\"} 1",
        "pgmcp_sync_stale{kind=\"raw\"} 0",
        // Several rounds refused the corrupt kb.db; it was downloaded and counted once.
        "pgmcp_sync_rejected_versions_total{kind=\"kb\"} 1",
        "# HELP pgmcp_sync_stale ",
        "# HELP pgmcp_sync_rejected_versions_total ",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert_eq!(moto.gets("kb.db", 200, 1).await, 1, "{}", moto.log());
    let refusals = run
        .log()
        .iter()
        .filter(|l| {
            l["outcome"] == "failed"
                && l["kind"] == "kb"
                && l["log.level"].as_str().is_some_and(|v| v.eq_ignore_ascii_case("error"))
        })
        .count();
    assert_eq!(refusals, 1, "the refusal is logged once");

    // The kits' container health check.
    let probe = std::process::Command::new(env!("CARGO_BIN_EXE_postgres-mcp"))
        .args(["healthcheck", "--address", &run.addr, "--path", "/health"])
        .output()
        .unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
}

#[tokio::test]
async fn ec2_instance_metadata_credentials_come_last_in_the_chain_over_imdsv2() {
    let moto = Moto::start().await;
    moto.put("kb.db", "instance-profile content").await;
    let (key, secret, session_token) = moto.role_credentials().await;
    let imds = FakeImds::start(&key, &secret, &session_token).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    let env = HashMap::from([
        ("AWS_REGION".to_string(), REGION.to_string()),
        ("AWS_ENDPOINT_URL".to_string(), moto.endpoint.clone()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(), imds.endpoint.clone()),
    ]);
    let args = ["--source", &moto.url("kb.db"), "--dest", path_arg(&dest), "--once"];
    let run = run_sync(&env, dir.path(), &args).await;
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{:?}\n{}",
        run.output(),
        imds.requests(),
        moto.log()
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "instance-profile content");
    assert_eq!(
        imds.requests(),
        [
            "put /latest/api/token http/1.1 token=false ttl=true",
            "get /latest/meta-data/iam/security-credentials/ http/1.1 token=true ttl=false",
            "get /latest/meta-data/iam/security-credentials/sync-instance-role http/1.1 token=true ttl=false",
        ],
        "IMDSv2: a session token first, then the role and its keys"
    );

    // Static keys come first: the metadata service is not asked.
    std::fs::remove_file(&dest).unwrap();
    let before = imds.requests().len();
    let mut with_keys = moto.env();
    with_keys.insert("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), imds.endpoint.clone());
    assert_eq!(run_sync(&with_keys, dir.path(), &args).await.code, Some(0));
    assert_eq!(imds.requests().len(), before);

    // Turned off: nothing is asked and the error lists the sources.
    let mut disabled = env.clone();
    disabled.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    let run = run_sync(&disabled, dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("no AWS credentials found"), "{}", run.stderr);
    assert_eq!(imds.requests().len(), before);

    // Not on EC2 (nothing listens): found nothing, within the short metadata timeouts.
    let mut absent = env.clone();
    absent.insert("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), closed_port_url().await);
    let started = std::time::Instant::now();
    let run = run_sync(&absent, dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("hop limit"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}
