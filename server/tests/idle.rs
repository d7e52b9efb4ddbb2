//! An idle instance stays idle (issue #11 §0): reading a watched file must never trigger a reload.
//!
//! The real binary serves tokens.yaml and a multi-MB kb.db from one directory, as our Compose and Helm
//! kits lay them out. Before the fix each reload's own reads raised inotify events in the watched
//! directory, every event scheduled the next reload, and an untouched instance re-read and copied
//! kb.db ~130 times a second (12 % of a core with the demo KB, 75 % with a 42 MB one). Measured here
//! over a few seconds: `pgmcp_reloads_total` must not move and CPU time must stay near zero, also while
//! another process appends to an unrelated file in the same directory; then a real change is still
//! picked up.

mod common;

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use common::{eventually, process::ServerProcess};
use postgres_mcp::{auth::admin, kb};

/// Generous: an idle instance uses well under 1 %; the reload loop used 12-99 %.
const MAX_IDLE_CPU_SHARE: f64 = 0.10;
const SAMPLE: Duration = Duration::from_secs(3);

/// A kb.db of a few MB: `documents` generated Markdown pages of ~2 KB.
fn build_kb(dir: &Path, documents: usize) -> u64 {
    const WORDS: &[&str] = &[
        "replication",
        "standby",
        "checkpoint",
        "vacuum",
        "index",
        "planner",
        "lock",
        "tuple",
        "page",
        "buffer",
        "wal",
        "snapshot",
        "transaction",
        "isolation",
        "partition",
        "sequence",
        "trigger",
        "role",
        "privilege",
        "tablespace",
        "cluster",
        "analyze",
        "statistics",
        "extension",
    ];
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for doc in 0..documents {
        let mut text = format!("# Page {doc}\n");
        for section in 0..4 {
            text.push_str(&format!("\n## Section {section}\n\n"));
            for word in 0..70 {
                text.push_str(WORDS[(doc * 7 + section * 13 + word * word) % WORDS.len()]);
                text.push_str(if word % 11 == 10 { ". " } else { " " });
            }
            text.push_str(&format!("doc{doc}s{section}\n"));
        }
        std::fs::write(docs.join(format!("page-{doc:05}.md")), text).unwrap();
    }
    let out = dir.join("kb.db");
    kb::build::build(&docs, &out).unwrap();
    std::fs::remove_dir_all(&docs).unwrap();
    std::fs::metadata(&out).unwrap().len()
}

/// The sum of `pgmcp_reloads_total` over outcomes for files whose label contains `file` (all with
/// ""): how many times they were read.
async fn reads_of(base: &str, file: &str) -> u64 {
    let text = common::get_text(&format!("{base}/metrics")).await;
    text.lines()
        .filter(|l| l.starts_with("pgmcp_reloads_total") && l.contains(&format!("file=\"{file}")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn reads(base: &str) -> u64 {
    reads_of(base, "").await
}

/// Reloads and CPU share of `server` while `during` runs.
async fn sample(server: &ServerProcess, during: impl FnOnce()) -> (u64, f64) {
    let (reads_before, cpu_before, started) = (reads(&server.base).await, server.cpu_time(), Instant::now());
    during();
    let wall = started.elapsed();
    let (reads_after, cpu_after) = (reads(&server.base).await, server.cpu_time());
    (
        reads_after - reads_before,
        (cpu_after - cpu_before).as_secs_f64() / wall.as_secs_f64(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_does_not_reload_or_burn_cpu_beside_a_large_kb() {
    let dir = tempfile::tempdir().unwrap();
    let kb_bytes = build_kb(dir.path(), 3_000);
    assert!(kb_bytes > 4 << 20, "the KB should be several MB, is {kb_bytes} bytes");
    let tokens = dir.path().join("tokens.yaml");
    admin::token_create(&tokens, "first", None, None).unwrap();
    let server = ServerProcess::spawn([
        "--tokens".as_ref(),
        tokens.as_os_str(),
        "--kb".as_ref(),
        dir.path().join("kb.db").as_os_str(),
    ]);
    let http = common::client();
    assert!(
        eventually(10, || async {
            http.get(format!("{}/health", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await
    );
    // Files written just before start are re-read once after the racy-timestamp window.
    tokio::time::sleep(postgres_mcp::watch::RACY_WINDOW + Duration::from_secs(3)).await;

    let (idle_reads, idle_cpu) = sample(&server, || std::thread::sleep(SAMPLE)).await;
    println!(
        "idle, {:.1} MB kb.db beside tokens.yaml: {idle_reads} reloads, {:.2} % of a core over {SAMPLE:?}",
        kb_bytes as f64 / 1e6,
        idle_cpu * 100.0
    );
    assert_eq!(idle_reads, 0, "an idle instance re-read its files");
    assert!(idle_cpu < MAX_IDLE_CPU_SHARE, "idle CPU {:.1} %", idle_cpu * 100.0);

    let log = dir.path().join("server.log");
    let (busy_reads, busy_cpu) = sample(&server, || {
        let mut file = std::fs::File::create(&log).unwrap();
        let until = Instant::now() + SAMPLE;
        while Instant::now() < until {
            writeln!(file, "an unrelated line").unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await;
    println!(
        "another writer in the directory: {busy_reads} reloads, {:.2} % of a core",
        busy_cpu * 100.0
    );
    assert_eq!(busy_reads, 0, "writes to an unrelated file triggered reloads");
    assert!(busy_cpu < MAX_IDLE_CPU_SHARE, "CPU {:.1} %", busy_cpu * 100.0);

    // And a real change still lands, without reading kb.db.
    let kb_reads = reads_of(&server.base, "kb").await;
    let token = admin::token_create(&tokens, "second", None, None).unwrap();
    let accepted = eventually(5, || async {
        http.post(format!("{}/mcp", server.base))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(accepted, "a token added while idle was never accepted");
    assert_eq!(
        reads_of(&server.base, "kb").await,
        kb_reads,
        "a token change re-read kb.db"
    );
}
