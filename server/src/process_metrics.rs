//! The standard Prometheus process metrics (`process_start_time_seconds`, `process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`), read from `/proc/self` when `/metrics` is scraped.
//!
//! Why hand-written exposition text rather than gauges of the `metrics` crate: its counters hold
//! whole numbers only, while `process_cpu_seconds_total` is a counter of fractional seconds, and these
//! figures are only ever wanted at scrape time (a timer refreshing them would read `/proc` for no one).
//! The names, types and units are those of the Prometheus client libraries (client_golang's process
//! collector), so existing dashboards and alerts apply unchanged. Where `/proc` is absent (not Linux)
//! nothing is written: an absent series is honest, a zero would not be.

use std::fmt::Write as _;

/// Appends the process metrics to `out` in the Prometheus text format (HELP, TYPE and one sample
/// each); figures that cannot be read are left out.
pub fn render(out: &mut String) {
    let stat = Stat::read();
    if let Some(stat) = &stat {
        if let Some(start) = stat.start_time_seconds() {
            sample(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch in seconds",
                start,
            );
        }
        sample(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds",
            stat.cpu_seconds(),
        );
        sample(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes",
            stat.resident_bytes(),
        );
        sample(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes",
            stat.virtual_bytes as f64,
        );
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own descriptor is among the entries while it is listed: not counted.
        let open = entries.count().saturating_sub(1);
        sample(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors",
            open as f64,
        );
    }
    if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        sample(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors",
            max as f64,
        );
    }
}

fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    // Writing to a String cannot fail.
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
}

/// The fields of `/proc/self/stat` we report, in the kernel's units.
struct Stat {
    /// Fields 14 and 15: user and system time, in clock ticks.
    cpu_ticks: u64,
    /// Field 22: start time after boot, in clock ticks.
    start_ticks: u64,
    /// Field 23: virtual memory size, in bytes.
    virtual_bytes: u64,
    /// Field 24: resident set size, in pages.
    resident_pages: u64,
}

impl Stat {
    fn read() -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)
    }

    /// Parses the line after the command name, which is in parentheses and may itself hold spaces
    /// and parentheses: the fields start after the last `)`.
    fn parse(stat: &str) -> Option<Stat> {
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        // `fields[0]` is field 3 (state).
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        Some(Stat {
            cpu_ticks: field(14)? + field(15)?,
            start_ticks: field(22)?,
            virtual_bytes: field(23)?,
            resident_pages: field(24)?,
        })
    }

    fn ticks_per_second() -> f64 {
        rustix::param::clock_ticks_per_second() as f64
    }

    fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / Stat::ticks_per_second()
    }

    fn resident_bytes(&self) -> f64 {
        self.resident_pages as f64 * rustix::param::page_size() as f64
    }

    /// Boot time (`btime` of `/proc/stat`) plus the start ticks.
    fn start_time_seconds(&self) -> Option<f64> {
        let boot: u64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())?;
        Some(boot as f64 + self.start_ticks as f64 / Stat::ticks_per_second())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 8 0 12345 987654321 2048 18446744073709551615";
        let stat = Stat::parse(line).expect("a well-formed line");
        assert_eq!(stat.cpu_ticks, 300);
        assert_eq!(stat.start_ticks, 12345);
        assert_eq!(stat.virtual_bytes, 987_654_321);
        assert_eq!(stat.resident_pages, 2048);
    }

    #[test]
    fn a_truncated_stat_line_gives_nothing_rather_than_zeros() {
        assert!(Stat::parse("4242 (name) S 1 4242").is_none());
        assert!(Stat::parse("no parenthesis at all").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_every_metric_with_help_and_type() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_start_time_seconds",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(
                out.contains(&format!("# HELP {name} ")),
                "{name} has no HELP in:\n{out}"
            );
            assert!(
                out.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE in:\n{out}"
            );
            let value: f64 = out
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no {name} sample in:\n{out}"));
            assert!(value > 0.0 || name == "process_cpu_seconds_total", "{name} = {value}");
        }
    }
}
