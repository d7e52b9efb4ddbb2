//! The real `postgres-mcp serve` binary as a child process: started on port 0 with JSON logs, its
//! address read from its "listening" log line (no port picked in advance that another test could
//! take), its stdout kept for the test to inspect, and its CPU time and memory read from /proc.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::Duration,
};

use serde_json::Value;

/// A running server process; killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    /// `http://IP:PORT`.
    pub base: String,
    stdout: Option<JoinHandle<Vec<Value>>>,
}

impl ServerProcess {
    /// Runs `postgres-mcp serve --listen 127.0.0.1:0 --log-format json ARGS...` with an empty
    /// environment (the server refuses unknown PGMCP_* variables) and waits for its address.
    pub fn spawn<I, S>(args: I) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::start(Self::command(args))
    }

    /// As [`ServerProcess::spawn`], with at most `files` open file descriptors (`RLIMIT_NOFILE`,
    /// as `ulimit -n` sets it).
    pub fn spawn_with_fd_limit<I, S>(files: u64, args: I) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        use std::os::unix::process::CommandExt;
        let mut command = Self::command(args);
        let limit = rustix::process::Rlimit {
            current: Some(files),
            maximum: Some(files),
        };
        // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent's.
        unsafe {
            command.pre_exec(move || {
                rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(Into::into)
            });
        }
        Self::start(command)
    }

    fn command<I, S>(args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_postgres-mcp"));
        command
            .env_clear()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn start(mut command: Command) -> ServerProcess {
        let mut child = command.spawn().unwrap();
        let (addr_tx, addr_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                if value["message"] == "listening"
                    && let (Some(tx), Some(addr)) = (addr_tx.take(), value["addr"].as_str())
                {
                    let _ = tx.send(addr.trim_start_matches("socket://").to_string());
                }
                lines.push(value);
            }
            lines
        });
        let mut process = ServerProcess {
            child,
            base: String::new(),
            stdout: Some(reader),
        };
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => process.base = format!("http://{addr}"),
            Err(_) => {
                let _ = process.child.kill();
                let mut stderr = String::new();
                let _ = process.child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!(
                    "server never logged its address ({:?}); stdout: {:?}; stderr: {stderr}",
                    process.child.wait(),
                    process.stdout.take().map(|s| s.join())
                );
            }
        }
        process
    }

    /// Sends a signal by name (`TERM`, `INT`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The lines logged so far; call after the process exited (it waits for stdout to close).
    pub fn log_lines(&mut self) -> Vec<Value> {
        self.stdout
            .take()
            .map(|s| s.join().expect("stdout reader"))
            .unwrap_or_default()
    }

    /// User + system CPU time used so far (see [`cpu_time`]).
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.child.id())
    }

    /// Resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.child.id(), "VmRSS")
    }
}

/// User + system CPU time process `pid` used so far (`/proc/PID/stat` fields 14 and 15); a test
/// reads its own (an in-process server's) with `std::process::id()`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may contain spaces; fields after it are space-separated.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = rustix::param::clock_ticks_per_second();
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// A memory figure of `/proc/PID/status` in KiB: `VmRSS`, or `VmHWM` (the peak resident size).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets process `pid`'s `VmHWM` to its current resident size (`/proc/PID/clear_refs`, Linux 4.0),
/// so the next peak measured is the peak of what follows.
pub fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
