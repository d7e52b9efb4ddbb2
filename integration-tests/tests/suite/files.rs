//! Scenarios 4 and 5: a broken tokens.yaml or a truncated kb.db never replaces the last good one on
//! any instance, the error is visible in every /health, and the next good write recovers; a new
//! kb.db is served by all three.

use std::time::{Duration, Instant};

use integration_tests::{
    cluster::{Cluster, ClusterOptions, eventually, ping, search},
    images::repo_root,
    report,
    shared_files::WriteMode,
};

async fn all_health(cluster: &Cluster, check: impl Fn(&serde_json::Value) -> bool) -> bool {
    for index in 0..cluster.instances.len() {
        match cluster.health(index).await {
            Ok(health) if check(&health) => {}
            _ => return false,
        }
    }
    true
}

#[tokio::test]
async fn a_broken_tokens_file_keeps_the_last_good_on_every_instance_until_fixed() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let before = cluster.health(0).await.unwrap()["auth"]["generation"].clone();

    cluster
        .files
        .write("tokens.yaml", b"tokens:\n  - name: [unclosed\n", WriteMode::InPlace)
        .unwrap();
    let written = Instant::now();
    let reported = eventually(Duration::from_secs(2), || {
        all_health(&cluster, |h| h["auth"]["last_error"].is_string())
    })
    .await;
    assert!(reported, "not every /health reports the broken file");
    let seen_in = written.elapsed();
    let health = cluster.health(1).await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["auth"]["generation"], before,
        "the broken file must not become current"
    );
    let error = health["auth"]["last_error"].as_str().unwrap().to_string();
    assert!(error.contains("tokens"), "{error}");
    for instance in &cluster.instances {
        let reply = cluster
            .rpc(&instance.url(), &cluster.files.token, &ping(1))
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{} lost the last good tokens", instance.id);
    }
    let through_nginx = cluster
        .rpc(&cluster.nginx_url, &cluster.files.token, &search(2, "vacuum"))
        .await
        .unwrap();
    assert!(through_nginx.is_success());

    let token = cluster.files.add_token("after-fix", WriteMode::AtomicRename).unwrap();
    let fixed = Instant::now();
    let recovered = eventually(Duration::from_secs(2), || {
        all_health(&cluster, |h| {
            h["auth"]["last_error"].is_null() && h["auth"]["generation"] != before
        })
    })
    .await;
    assert!(recovered, "not every instance recovered after the fix");
    for instance in &cluster.instances {
        assert_eq!(
            cluster.rpc(&instance.url(), &token, &ping(3)).await.unwrap().status,
            200
        );
    }
    report::record(
        "4 bad file",
        &format!(
            "broken tokens.yaml: error in all 3 /health after {} ms, last good kept everywhere; fixed: all recovered in {} ms (error: {error})",
            seen_in.as_millis(),
            fixed.elapsed().as_millis()
        ),
    );
}

fn hits(reply: &integration_tests::cluster::RpcReply) -> usize {
    reply.body["result"]["structuredContent"]["results"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_new_kb_is_served_by_all_and_a_truncated_one_by_none() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let docs = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("demo/docs")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), docs.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(
        docs.path().join("drills.md"),
        "# Failover drills\n\nRun a quarterly zanzibar drill: stop one instance and watch nginx route around it.\n",
    )
    .unwrap();
    let query = search(1, "zanzibar");
    for instance in &cluster.instances {
        assert_eq!(
            hits(
                &cluster
                    .rpc(&instance.url(), &cluster.files.token, &query)
                    .await
                    .unwrap()
            ),
            0
        );
    }

    cluster.files.replace_kb(docs.path()).unwrap();
    let written = Instant::now();
    let served = eventually(Duration::from_secs(2), || async {
        for instance in &cluster.instances {
            match cluster.rpc(&instance.url(), &cluster.files.token, &query).await {
                Ok(reply) if hits(&reply) > 0 => {}
                _ => return false,
            }
        }
        true
    })
    .await;
    assert!(served, "not every instance serves the new kb.db within 2 s");
    let new_kb = written.elapsed();
    let generation = cluster.health(0).await.unwrap()["kb"]["generation"].clone();

    let bytes = std::fs::read(cluster.files.path("kb.db")).unwrap();
    cluster
        .files
        .write("kb.db", &bytes[..bytes.len() / 2], WriteMode::AtomicRename)
        .unwrap();
    let refused = eventually(Duration::from_secs(2), || {
        all_health(&cluster, |h| h["kb"]["last_error"].is_string())
    })
    .await;
    assert!(refused, "not every /health reports the truncated kb.db");
    for instance in &cluster.instances {
        let reply = cluster
            .rpc(&instance.url(), &cluster.files.token, &query)
            .await
            .unwrap();
        assert!(
            hits(&reply) > 0,
            "{} stopped serving the last good kb.db: {reply:?}",
            instance.id
        );
        assert_eq!(cluster.health(0).await.unwrap()["kb"]["generation"], generation);
    }
    let error = cluster.health(2).await.unwrap()["kb"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    report::record(
        "5 kb update",
        &format!(
            "new kb.db served by all 3 after {} ms; truncated kb.db refused by all 3, old one kept (error: {error})",
            new_kb.as_millis()
        ),
    );
}
