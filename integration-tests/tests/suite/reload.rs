//! Scenario 3: a token added to (then removed from) the shared tokens.yaml is accepted (then refused)
//! by all three instances, measured from the end of the write to the moment the last instance
//! agrees. In-place writes and atomic renames alternate. notify mode (inotify on the bind mount)
//! and poll mode (what NFS/EFS get: no events, periodic checks).
//!
//! The instances run the shipped failed-auth limiter. Polling with a token that is not valid yet
//! (or no longer) counts as failed authentication, so the polls soon lock the test's address out:
//! a valid token is still served at once (the limiter never refuses one), and a refused one is
//! answered 401 or, once locked out, 429 — both mean the instance has refused the token, since the
//! limiter is only consulted after a credential check failed.

use std::time::{Duration, Instant};

use integration_tests::{
    cluster::{Cluster, ClusterOptions, ping},
    report,
    shared_files::{SharedFiles, WriteMode},
};

/// 20 per write method.
const ROUNDS: usize = 40;
/// Generous bound that only a broken design exceeds.
const BOUND: Duration = Duration::from_secs(2);

/// What every instance should answer to a ping with the token.
#[derive(Clone, Copy, Debug)]
enum Want {
    Accepted,
    Refused,
}

impl Want {
    fn holds(self, status: u16) -> bool {
        match self {
            Want::Accepted => status == 200,
            // 429: refused by the credential check, then slowed by the failed-auth limiter.
            Want::Refused => status == 401 || status == 429,
        }
    }
}

/// Time until every instance answers as `want` says to a ping with `token`.
async fn converge(cluster: &Cluster, token: &str, want: Want, written: Instant) -> Duration {
    let mut pending: Vec<usize> = (0..cluster.instances.len()).collect();
    let mut id = 0;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &index in &pending {
            id += 1;
            let reply = cluster
                .rpc(&cluster.instances[index].url(), token, &ping(id))
                .await
                .unwrap();
            if !want.holds(reply.status) {
                still.push(index);
            }
        }
        pending = still;
        assert!(
            written.elapsed() < BOUND,
            "instances {pending:?} still not answering {want:?} after {BOUND:?}"
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    written.elapsed()
}

async fn measure(scenario: &str, options: ClusterOptions) {
    let cluster = Cluster::start(options).await.unwrap();
    measure_on(scenario, cluster).await;
}

async fn measure_on(scenario: &str, mut cluster: Cluster) -> Cluster {
    let mut added = [Vec::new(), Vec::new()];
    let mut revoked = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        let (mode, slot) = if round % 2 == 0 {
            (WriteMode::InPlace, 0)
        } else {
            (WriteMode::AtomicRename, 1)
        };
        let name = format!("round-{round}");
        let token = cluster.files.add_token(&name, mode).unwrap();
        let written = Instant::now();
        added[slot].push(converge(&cluster, &token, Want::Accepted, written).await);
        cluster.files.revoke_token(&name, mode).unwrap();
        let written = Instant::now();
        revoked[slot].push(converge(&cluster, &token, Want::Refused, written).await);
        // Writes land at random moments relative to the periodic check, as real ones do.
        tokio::time::sleep(Duration::from_millis(50 + (round as u64 * 37) % 400)).await;
    }
    for (slot, how) in ["in-place write", "atomic rename"].iter().enumerate() {
        report::record(
            scenario,
            &format!("{how}: token added -> all 3 accept: {}", report::summary(&added[slot])),
        );
        report::record(
            scenario,
            &format!(
                "{how}: token revoked -> all 3 refuse: {}",
                report::summary(&revoked[slot])
            ),
        );
    }
    // The seed token, untouched throughout, still works everywhere.
    for instance in &cluster.instances {
        assert_eq!(
            cluster
                .rpc(&instance.url(), &cluster.files.token, &ping(1))
                .await
                .unwrap()
                .status,
            200
        );
    }
    cluster
}

#[tokio::test]
async fn token_changes_reach_all_three_instances_in_notify_mode() {
    measure("3 reload (notify)", ClusterOptions::default()).await;
}

#[tokio::test]
async fn token_changes_reach_all_three_instances_in_poll_mode() {
    let options = ClusterOptions::default()
        .var("MCP_WATCH_MODE", "poll")
        .var("MCP_POLL_INTERVAL", "500ms");
    measure("3 reload (poll 500ms)", options).await;
}

/// The kb.db generation each instance serves.
async fn kb_generations(cluster: &Cluster) -> Vec<String> {
    let mut generations = Vec::new();
    for index in 0..cluster.instances.len() {
        let health = cluster.health(index).await.unwrap();
        generations.push(health["kb"]["generation"].as_str().unwrap_or_default().to_string());
    }
    generations
}

/// Issue #11 §4: the same measurement with a production-sized shared volume — 10,000 tokens and a
/// ≥ 50 MB kb.db beside them (the kits' layout) — then a new kb.db of that size renamed into place
/// with a token added 100 ms later: the token must not wait for the KB to be copied and verified.
#[tokio::test]
async fn token_changes_and_a_kb_swap_at_production_scale() {
    let scenario = "3 reload (10k tokens, large KB)";
    let mut files = SharedFiles::create().unwrap();
    files.add_bulk_tokens(10_000).unwrap();
    let staging = tempfile::Builder::new().prefix("pgmcp-it-kb-").tempdir().unwrap();
    let started = Instant::now();
    let kb = benchmarks::scale::build_kb(staging.path(), 55, 3).unwrap();
    let kb_mb = std::fs::metadata(&kb).unwrap().len() as f64 / 1e6;
    assert!(kb_mb >= 50.0, "the KB is {kb_mb:.1} MB");
    files.install_kb(&kb).unwrap();
    report::record(
        scenario,
        &format!(
            "shared volume: tokens.yaml {:.1} MB (10,001 tokens), kb.db {kb_mb:.1} MB (seeded, built in {:.1} s)",
            std::fs::metadata(files.path("tokens.yaml")).unwrap().len() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        ),
    );
    let cluster = Cluster::start_with(ClusterOptions::default(), files).await.unwrap();
    let mut cluster = measure_on(scenario, cluster).await;

    let variant = staging.path().join("kb-variant.db");
    benchmarks::scale::variant_of(&kb, &variant).unwrap();
    let before = kb_generations(&cluster).await;
    cluster.files.install_kb(&variant).unwrap();
    let swapped = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let token = cluster
        .files
        .add_token("during-kb-swap", WriteMode::AtomicRename)
        .unwrap();
    let token_latency = converge(&cluster, &token, Want::Accepted, Instant::now()).await;
    let mut served = Vec::new();
    for (index, old_generation) in before.iter().enumerate() {
        let changed = integration_tests::cluster::eventually(Duration::from_secs(60), || async {
            let health = cluster.health(index).await.unwrap();
            health["kb"]["generation"].as_str() != Some(old_generation.as_str())
        })
        .await;
        assert!(
            changed,
            "{} did not serve the new kb.db within 60 s",
            cluster.instances[index].id
        );
        served.push(swapped.elapsed());
    }
    let after = kb_generations(&cluster).await;
    assert!(
        after.iter().all(|g| g == &after[0]),
        "instances disagree on the KB: {after:?}"
    );
    report::record(
        scenario,
        &format!(
            "new {kb_mb:.0} MB kb.db renamed in: served by all 3 after {:.0} ms; a token added 100 ms into the swap \
             accepted by all 3 after {:.1} ms",
            served.iter().max().unwrap().as_secs_f64() * 1000.0,
            token_latency.as_secs_f64() * 1000.0
        ),
    );
}
