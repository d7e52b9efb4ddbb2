//! Processes under test: spawned, timed to their first healthy answer, measured, and always killed.
//!
//! Everything the runner starts is a [`Proc`], which kills its process when dropped, so an error or a
//! panic halfway through a run leaves nothing listening behind. Output goes to a log file per
//! process in the work directory, shown when the process fails to come up.

use std::{
    fs::File,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::http;

/// A process under test.
pub struct Proc {
    pub name: String,
    pub addr: SocketAddr,
    /// Spawn to the first 200 on `/health`.
    pub start_to_healthy: Duration,
    child: Child,
    log: PathBuf,
    /// Stop with SIGTERM first, then SIGKILL.
    terminate_first: bool,
}

/// `count` distinct loopback addresses nobody listens on right now.
pub fn free_addrs(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
    // Hold every listener until all are chosen, so the kernel cannot hand out one port twice.
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners.iter().map(|l| l.local_addr()).collect::<Result<_, _>>()?)
}

/// One loopback address nobody listens on right now.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(free_addrs(1)?[0])
}

/// The tail of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Proc {
    /// Spawns `command` (which must serve `GET /health` on `addr`) and waits until it is healthy.
    pub fn start(name: &str, command: Command, addr: SocketAddr, log_dir: &Path) -> anyhow::Result<Proc> {
        Proc::spawn(name, command, addr, log_dir, false)
    }

    /// [`start`](Self::start) for a process stopped with SIGTERM (nginx: its workers outlive a
    /// SIGKILLed master and would keep the port).
    pub fn start_terminable(name: &str, command: Command, addr: SocketAddr, log_dir: &Path) -> anyhow::Result<Proc> {
        Proc::spawn(name, command, addr, log_dir, true)
    }

    fn spawn(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        log_dir: &Path,
        terminate_first: bool,
    ) -> anyhow::Result<Proc> {
        // Under `logs/`, not beside the files the servers watch: a log written in a watched
        // directory raises an event per write, which ours would handle on the side of every
        // request it measures (deployments log to stdout, a pipe).
        let log_dir = log_dir.join("logs");
        std::fs::create_dir_all(&log_dir)?;
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log)?;
        command.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.get_program()))?;
        let mut proc = Proc {
            name: name.to_string(),
            addr,
            start_to_healthy: Duration::ZERO,
            child,
            log,
            terminate_first,
        };
        match http::wait_healthy(addr, spawned, Duration::from_secs(60)) {
            Ok(elapsed) => proc.start_to_healthy = elapsed,
            Err(error) => {
                let status = proc.child.try_wait().ok().flatten();
                anyhow::bail!(
                    "{name}: {error} (exit status {status:?}); log:\n{}",
                    log_tail(&proc.log)
                );
            }
        }
        Ok(proc)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size (VmHWM) so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_field(self.pid(), "VmHWM")
    }

    /// SIGKILL, as a crashed node or an OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.terminate_first && self.is_running() {
            let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }
}

/// A `kB` field of `/proc/PID/status`.
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// User + system CPU time of `pid` so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = &stat[stat.rfind(')').context("malformed /proc stat")? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second()))
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}
