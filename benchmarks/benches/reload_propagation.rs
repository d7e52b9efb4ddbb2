//! Reload propagation: from the moment a new tokens.yaml lands (atomic rename, as the CLI writes it)
//! to the first request accepted with the new token, through real HTTP on loopback.
//!
//! `cargo bench -p benchmarks --bench reload_propagation` — rounds via RELOAD_ROUNDS (default 60); the
//! runner's section 4 runs it.
//! Measures notify mode (inotify + settle) and poll mode (no events, periodic check at the default
//! 2 s interval, i.e. a writer on another NFS client). Prints p50/p95/p99/max per mode.

use std::time::{Duration, Instant};

use postgres_mcp::{
    InstanceId,
    auth::admin,
    auth::tokens::{TokenEntry, generate_token},
    config::{Config, Overrides},
    server,
};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn measure(mode: &str, rounds: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    admin::token_create(&tokens, "seed", None, None).unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(
        &config_path,
        format!(
            "listen: 127.0.0.1:0\nauth:\n  tokens_file: {}\nwatch:\n  mode: {mode}\nlog:\n  level: warn\n",
            tokens.display()
        ),
    )
    .unwrap();
    let config = Config::load(
        Some(&config_path),
        Vec::<(String, String)>::new(),
        &Overrides::default(),
    )
    .unwrap();
    let running = server::start(config, InstanceId::resolve(Some("bench"), None))
        .await
        .unwrap();
    let url = format!("http://{}/mcp", running.addr);
    postgres_mcp::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let ping = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});

    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let token = generate_token();
        let content = TokenEntry::render_file(&[TokenEntry::new(&format!("round-{round}"), &token, None, None)]);
        let temp = dir.path().join(".tokens.yaml.tmp");
        std::fs::write(&temp, content).unwrap();
        let written = Instant::now();
        std::fs::rename(&temp, &tokens).unwrap();
        loop {
            let status = client
                .post(&url)
                .bearer_auth(&token)
                .json(&ping)
                .send()
                .await
                .unwrap()
                .status();
            if status == 200 {
                samples.push(written.elapsed());
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(10),
                "{mode}: round {round} not picked up in 10 s"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        // Writes arrive at random moments relative to the watcher's periodic check, as an operator's
        // or another host's would: a uniform pause of up to one poll interval between rounds.
        // (Polling with the not-yet-valid token counts as failed auth and soon gets 429 instead of
        // 401; the shipped limiter still serves the token the moment it is valid.)
        let pause = rand::random_range(10..2_000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    running.stop().await.unwrap();
    samples
}

#[tokio::main]
async fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let rounds: usize = std::env::var("RELOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    println!("reload propagation: write (atomic rename) -> first request accepted with the new token, {rounds} rounds");
    println!("| mode | p50 | p95 | p99 | max |");
    println!("|---|---|---|---|---|");
    for mode in ["notify", "poll"] {
        let mut samples = measure(mode, rounds).await;
        samples.sort();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {mode} | {} | {} | {} | {} |",
            ms(percentile(&samples, 0.50)),
            ms(percentile(&samples, 0.95)),
            ms(percentile(&samples, 0.99)),
            ms(*samples.last().unwrap())
        );
    }
}
