//! The suite's report: every scenario prints what it measured, and the same lines are appended to
//! `target/integration-report.md`, which `make test` prints at the end, so a CI log is a report.

use std::{io::Write, time::Duration};

use crate::images::repo_root;

/// Prints `line` under `scenario` and appends it to the report file.
pub fn record(scenario: &str, line: &str) {
    println!("[{scenario}] {line}");
    let path = repo_root().join("target/integration-report.md");
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "| {scenario} | {line} |");
    }
}

/// p50/p95/p99/max of samples, in milliseconds, as one line.
pub fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return "no samples".into();
    }
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    format!(
        "n={} p50={:.1} ms p95={:.1} ms p99={:.1} ms max={:.1} ms",
        sorted.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0)
    )
}
