//! Results as data (one CSV row per figure) and as Markdown tables.

use std::fmt::Write;

use crate::wrk::WrkResult;

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Row {
    pub section: String,
    pub subject: String,
    pub concurrency: Option<u32>,
    pub metric: String,
    pub value: f64,
    pub unit: String,
}

/// Every figure of a run, in the order measured.
#[derive(Default)]
pub struct Rows(pub Vec<Row>);

impl Rows {
    pub fn push(
        &mut self,
        section: &str,
        subject: &str,
        concurrency: Option<u32>,
        metric: &str,
        value: f64,
        unit: &str,
    ) {
        self.0.push(Row {
            section: section.into(),
            subject: subject.into(),
            concurrency,
            metric: metric.into(),
            value,
            unit: unit.into(),
        });
    }

    /// The usual figures of a wrk run.
    pub fn wrk(&mut self, section: &str, subject: &str, concurrency: u32, result: &WrkResult) {
        let c = Some(concurrency);
        self.push(section, subject, c, "requests_per_s", result.rps, "req/s");
        self.push(section, subject, c, "latency_p50", result.p50_ms, "ms");
        self.push(section, subject, c, "latency_p99", result.p99_ms, "ms");
        self.push(section, subject, c, "non_2xx", result.non_2xx as f64, "count");
        self.push(
            section,
            subject,
            c,
            "socket_errors",
            result.socket_errors as f64,
            "count",
        );
    }

    pub fn csv(&self) -> String {
        let mut out = String::from("section,subject,concurrency,metric,value,unit\n");
        for row in &self.0 {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                csv_field(&row.section),
                csv_field(&row.subject),
                row.concurrency.map(|c| c.to_string()).unwrap_or_default(),
                csv_field(&row.metric),
                trim_number(row.value),
                csv_field(&row.unit)
            );
        }
        out
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn trim_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// A Markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Requests per second, rounded for reading: 61 234 -> "61.2k".
pub fn rps(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1}k", value / 1000.0)
    } else {
        format!("{value:.0}")
    }
}

/// Milliseconds with sensible precision.
pub fn ms(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// The value at quantile `p` (0.0-1.0) of ascending `sorted` samples, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut rows = Rows::default();
        rows.push("a", "x, y", Some(16), "requests_per_s", 1234.5, "req/s");
        rows.push("a", "z", None, "count", 3.0, "count");
        assert_eq!(
            rows.csv(),
            "section,subject,concurrency,metric,value,unit\na,\"x, y\",16,requests_per_s,1234.500,req/s\na,z,,count,3,count\n"
        );
        assert_eq!(rps(61_234.0), "61.2k");
        assert_eq!(ms(0.4567), "0.46 ms");
    }
}
