//! Driving Debian's `wrk` and reading its answer.
//!
//! Every script in `benchmarks/wrk/` ends with `report.lua`'s `done`, which prints one `wrk-result {json}`
//! line (counts and latency percentiles in µs): the runner parses that instead of wrk's rounded,
//! unit-suffixed summary, and keeps the full human output in the run log.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use serde::Deserialize;

/// One load: a script against a URL with a number of keep-alive connections.
#[derive(Clone, Debug)]
pub struct Load {
    pub script: PathBuf,
    pub url: String,
    pub connections: u32,
    pub duration: Duration,
    pub env: Vec<(String, String)>,
}

/// What `report.lua` prints.
#[derive(Debug, Deserialize)]
struct Raw {
    requests: u64,
    duration_us: u64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    connect: u64,
    read: u64,
    write: u64,
    timeout: u64,
    status: u64,
}

/// The figures of one wrk run.
#[derive(Clone, Debug, Default)]
pub struct WrkResult {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers with status >= 400.
    pub non_2xx: u64,
    /// Connect, read and write errors and timeouts.
    pub socket_errors: u64,
    /// wrk's whole output, for the log.
    pub output: String,
}

impl Load {
    pub fn new(script: &Path, url: String, connections: u32, duration: Duration) -> Load {
        Load {
            script: script.to_path_buf(),
            url,
            connections,
            duration,
            env: Vec::new(),
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> Load {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Two threads (the machine has two cores), one when there is a single connection: wrk needs
    /// at least one connection per thread.
    fn threads(&self) -> u32 {
        self.connections.clamp(1, 2)
    }

    /// Starts wrk in the background.
    pub fn spawn(&self) -> anyhow::Result<Child> {
        let mut command = Command::new("wrk");
        command
            .arg(format!("-t{}", self.threads()))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg("--latency")
            .arg("-s")
            .arg(&self.script)
            .arg(&self.url)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.spawn().context("cannot start wrk (run benchmarks/setup.sh)")
    }

    /// Runs wrk to completion.
    pub fn run(&self) -> anyhow::Result<WrkResult> {
        finish(self.spawn()?)
    }
}

/// Waits for a wrk started with [`Load::spawn`] and parses its result line.
pub fn finish(child: Child) -> anyhow::Result<WrkResult> {
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("wrk failed ({}): {stdout}{stderr}", output.status);
    }
    parse(&format!("{stdout}{stderr}"))
}

fn parse(output: &str) -> anyhow::Result<WrkResult> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("wrk-result "))
        .with_context(|| format!("no wrk-result line in wrk's output:\n{output}"))?;
    let raw: Raw = serde_json::from_str(line).with_context(|| format!("bad wrk-result line `{line}`"))?;
    let ms = |us: f64| us / 1000.0;
    Ok(WrkResult {
        requests: raw.requests,
        rps: raw.requests as f64 / (raw.duration_us.max(1) as f64 / 1e6),
        p50_ms: ms(raw.p50_us),
        p90_ms: ms(raw.p90_us),
        p99_ms: ms(raw.p99_us),
        max_ms: ms(raw.max_us),
        non_2xx: raw.status,
        socket_errors: raw.connect + raw.read + raw.write + raw.timeout,
        output: output.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_result_line() {
        let out = "Requests/sec: 1\nnon-200: 2\nwrk-result {\"requests\":1000,\"duration_us\":2000000,\"p50_us\":481.0,\
                   \"p90_us\":900.0,\"p99_us\":2430.0,\"max_us\":3893.0,\"connect\":1,\"read\":2,\"write\":0,\
                   \"timeout\":3,\"status\":2}\n";
        let result = parse(out).unwrap();
        assert_eq!(result.rps, 500.0);
        assert_eq!((result.non_2xx, result.socket_errors), (2, 6));
        assert_eq!(result.p99_ms, 2.43);
    }
}
