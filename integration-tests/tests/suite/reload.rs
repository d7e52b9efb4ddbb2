//! Scenario 3: a token added to (then removed from) the shared tokens.yaml is accepted (then refused)
//! by all three instances, measured from the end of the write to the moment the last instance
//! agrees. In-place writes and atomic renames alternate. notify mode (inotify on the bind mount)
//! and poll mode (what NFS/EFS get: no events, periodic checks).

use std::time::{Duration, Instant};

use integration_tests::{
    cluster::{Cluster, ClusterOptions, ping},
    report,
    shared_files::WriteMode,
};

/// 20 per write method.
const ROUNDS: usize = 40;
/// Generous bound that only a broken design exceeds.
const BOUND: Duration = Duration::from_secs(2);

/// Time until every instance answers `want` (200 or 401) to a ping with `token`.
async fn converge(cluster: &Cluster, token: &str, want: u16, written: Instant) -> Duration {
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
            if reply.status != want {
                still.push(index);
            }
        }
        pending = still;
        assert!(
            written.elapsed() < BOUND,
            "instances {pending:?} still not answering {want} after {BOUND:?}"
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    written.elapsed()
}

async fn measure(scenario: &str, options: ClusterOptions) {
    let mut cluster = Cluster::start(options).await.unwrap();
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
        added[slot].push(converge(&cluster, &token, 200, written).await);
        cluster.files.revoke_token(&name, mode).unwrap();
        let written = Instant::now();
        revoked[slot].push(converge(&cluster, &token, 401, written).await);
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
