//! What every section uses: the run's paths and fixtures ([`Ctx`]), how ours is started and wrk is run
//! and logged, and the MCP request the sections send for their own probes.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;
use benchmarks::http;
use benchmarks::procs::{Proc, free_addr};
use benchmarks::report::{Rows, ms};
use benchmarks::wrk::{Load, WrkResult};

use crate::{Plan, Results, processes::ProcessFigure};

/// Connections for the single-concurrency sections (token scale, nginx).
pub const LOAD_CONNECTIONS: u32 = 64;

/// Paths and shared fixtures of one run.
pub struct Ctx {
    pub root: PathBuf,
    pub work: tempfile::TempDir,
    pub bin_dir: PathBuf,
    pub plan: Plan,
    pub token: String,
    pub tokens_file: PathBuf,
    pub config: PathBuf,
    pub demo_kb: PathBuf,
    pub rows: Rows,
    pub wrk_log: String,
}

impl Ctx {
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    pub fn script(&self, name: &str) -> PathBuf {
        self.root.join("benchmarks/wrk").join(name)
    }

    /// `postgres-mcp serve` with the benchmark config; `TMPDIR` inside the work dir, so the KB copies
    /// of SIGKILLed instances are removed with it.
    pub fn ours(&self, name: &str, tokens: &Path, kb: &Path) -> anyhow::Result<Proc> {
        self.ours_with(name, tokens, Some(kb), &[])
    }

    /// [`ours`](Self::ours) with extra `PGMCP_*` settings, or without a KB.
    pub fn ours_with(
        &self,
        name: &str,
        tokens: &Path,
        kb: Option<&Path>,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Proc> {
        let addr = free_addr()?;
        let mut command = Command::new(self.bin_dir.join("postgres-mcp"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--tokens")
            .arg(tokens)
            .arg("--instance-id")
            .arg(name)
            .env("TMPDIR", self.work().join("tmp"));
        if let Some(kb) = kb {
            command.arg("--kb").arg(kb);
        }
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PGMCP_")) {
            command.env_remove(key);
        }
        command.envs(settings.iter().copied());
        Proc::start(name, command, addr, self.work())
    }

    /// The rmcp stateless peer (`peer-rmcp`) serving `kb` behind the run's tokens.
    pub fn peer(&self, name: &str, kb: &Path) -> anyhow::Result<Proc> {
        let addr = free_addr()?;
        let mut command = Command::new(self.bin_dir.join("peer-rmcp"));
        command
            .args(["--listen", &addr.to_string(), "--tokens"])
            .arg(&self.tokens_file)
            .arg("--kb")
            .arg(kb)
            .env("TMPDIR", self.work().join("tmp"));
        Proc::start(name, command, addr, self.work())
    }

    pub fn wrk(&mut self, label: &str, load: &Load) -> anyhow::Result<WrkResult> {
        let result = load.run()?;
        self.log_wrk(label, load, &result);
        Ok(result)
    }

    pub fn log_wrk(&mut self, label: &str, load: &Load, result: &WrkResult) {
        let _ = write!(
            self.wrk_log,
            "### {label}: {} c={} {}s\n{}\n",
            load.url,
            load.connections,
            load.duration.as_secs(),
            result.output
        );
        eprintln!(
            "  {label:<40} c={:<3} {:>9} req/s  p50 {:>9}  p99 {:>9}  non-2xx {} socket errors {}",
            load.connections,
            format!("{:.0}", result.rps),
            ms(result.p50_ms),
            ms(result.p99_ms),
            result.non_2xx,
            result.socket_errors
        );
    }

    pub fn load(&self, script: &str, addr: SocketAddr, path: &str, connections: u32) -> Load {
        Load::new(
            &self.script(script),
            format!("http://{addr}{path}"),
            connections,
            self.plan.duration,
        )
        .env("TOKEN", &self.token)
    }

    pub fn process(&self, results: &mut Results, proc: &Proc, role: &str) {
        let peak = proc.peak_rss_kib();
        results.processes.push(ProcessFigure {
            name: proc.name.clone(),
            role: role.to_string(),
            start_to_healthy: proc.start_to_healthy,
            peak_rss_kib: peak,
        });
    }
}

pub fn mcp_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("Accept", "application/json, text/event-stream".into()),
        ("MCP-Protocol-Version", "2025-11-25".into()),
        ("Authorization", format!("Bearer {token}")),
    ]
}

pub fn post(addr: SocketAddr, token: &str, body: &str) -> anyhow::Result<http::HttpResponse> {
    let headers = mcp_headers(token);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let response = http::request(addr, "POST", "/mcp", &headers, body.as_bytes())?;
    if response.status != 200 {
        bail!(
            "{addr}: POST /mcp answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(response)
}
