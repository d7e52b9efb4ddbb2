//! What the results were measured on: CPU, cores, memory, load, tool versions and the commit.

use std::{path::Path, process::Command};

/// Where and on what the run happened.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub load_before: String,
    pub commit: String,
    pub tools: String,
    pub date: String,
}

impl Machine {
    pub fn describe(root: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let memory_kib = status_like("/proc/meminfo", "MemTotal").unwrap_or(0);
        let dirty = !command_output("git", &["status", "--porcelain", "--untracked-files=no"], root).is_empty();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_kib as f64 / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            load_before: load_average(),
            commit: format!(
                "{}{}",
                command_output("git", &["rev-parse", "--short", "HEAD"], root),
                if dirty { " + uncommitted changes" } else { "" }
            ),
            tools: format!(
                "{}; {}; {}",
                command_output("wrk", &["-v"], root),
                command_output("nginx", &["-v"], root),
                command_output("rustc", &["--version"], root)
            ),
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"], root),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} ({} cores), {:.0} GiB RAM, Linux {}; load average {}",
            self.cpu, self.cores, self.memory_gib, self.kernel, self.load_before
        )
    }
}

pub fn command_output(program: &str, args: &[&str], cwd: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

pub fn status_like(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
