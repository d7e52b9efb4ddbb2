//! The metric and label names a PromQL expression selects, for holding the Helm chart's alerts and
//! dashboard to a real scrape (`tests/metrics_scrape.rs`).
//!
//! Only the part of PromQL's lexical grammar that tells a metric name from everything else is here
//! (<https://prometheus.io/docs/prometheus/latest/querying/basics/>): string literals, range and
//! subquery brackets, numbers and durations, function calls and aggregations (a name followed by
//! `(`), grouping clauses (`by (…)`, `on (…)`, `group_left (…)` …, whose label lists are skipped),
//! keywords and binary set operators. Every other identifier is a metric name, and the `{…}` right
//! after it holds its label matchers. Syntax itself is promtool's job (helm/tests/test_monitoring.py);
//! this only has to find names, so it never rejects anything — the tests below pin what it finds.
#![allow(dead_code)]

/// One vector selector: a metric name and the label names its matchers use
/// (`pgmcp_http_requests_total{route="/mcp",status=~"5.."}` → `route`, `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub labels: Vec<String>,
}

/// Aggregation operators, keywords and set operators: names that are never metrics even when no `(`
/// follows them (`sum by (job) (…)`, `x and on (job) y`, `> bool 1`, `offset 5m`).
const NOT_METRICS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
];

/// Clauses followed by a parenthesised list of label names, not of expressions.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Every vector selector of `expr`, in order. A selector without a metric name (`{job="x"}`) has an
/// empty `metric`.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if matches!(c, '"' | '\'' | '`') {
            at = after_string(&chars, at);
        } else if c == '[' {
            at = after_closing(&chars, at, '[', ']');
        } else if c == '{' {
            let (labels, next) = matchers(&chars, at);
            found.push(Selector {
                metric: String::new(),
                labels,
            });
            at = next;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(at + 1).is_some_and(char::is_ascii_digit)) {
            // A number or a duration (0.05, 1e3, 0x1f, 5m): one token.
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = at;
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '_' || chars[at] == ':') {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            let next = skip_spaces(&chars, at);
            let lower = word.to_ascii_lowercase();
            if chars.get(next) == Some(&'(') {
                if LABEL_LISTS.contains(&lower.as_str()) {
                    at = after_closing(&chars, next, '(', ')');
                }
                // A function or an aggregation: its arguments are read as they come.
            } else if !NOT_METRICS.contains(&lower.as_str()) {
                let labels = if chars.get(next) == Some(&'{') {
                    let (labels, after) = matchers(&chars, next);
                    at = after;
                    labels
                } else {
                    Vec::new()
                };
                found.push(Selector { metric: word, labels });
            }
        } else {
            at += 1;
        }
    }
    found
}

/// The label names of the matchers in the `{…}` opening at `open`, and the index after its `}`.
fn matchers(chars: &[char], open: usize) -> (Vec<String>, usize) {
    let mut labels = Vec::new();
    let mut at = open + 1;
    while at < chars.len() && chars[at] != '}' {
        let c = chars[at];
        if matches!(c, '"' | '\'' | '`') {
            at = after_string(chars, at);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = at;
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '_') {
                at += 1;
            }
            let next = skip_spaces(chars, at);
            if matches!(chars.get(next), Some('=' | '!')) {
                labels.push(chars[start..at].iter().collect());
            }
        } else {
            at += 1;
        }
    }
    (labels, at + 1)
}

/// The index after the string literal opening at `open` (backslash escapes in "…" and '…').
fn after_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut at = open + 1;
    while at < chars.len() && chars[at] != quote {
        at += if quote != '`' && chars[at] == '\\' { 2 } else { 1 };
    }
    at + 1
}

/// The index after the bracket matching the one at `open`, strings skipped.
fn after_closing(chars: &[char], open: usize, opening: char, closing: char) -> usize {
    let mut depth = 0;
    let mut at = open;
    while at < chars.len() {
        match chars[at] {
            '"' | '\'' | '`' => {
                at = after_string(chars, at);
                continue;
            }
            c if c == opening => depth += 1,
            c if c == closing => {
                depth -= 1;
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    at
}

fn skip_spaces(chars: &[char], mut at: usize) -> usize {
    while at < chars.len() && chars[at].is_whitespace() {
        at += 1;
    }
    at
}

#[test]
fn finds_metrics_and_their_matchers_and_nothing_else() {
    let expr = r#"sum by (route, status) (rate(pgmcp_http_requests_total{route=~"/mcp|/x{y}",status!="200"}[5m] offset 1h))
      / on (job) group_left(file) max without (pod) (pgmcp_reload_error) > bool 0.05
      and histogram_quantile(0.95, sum by (le) (rate(a:b_bucket{le!="+Inf"}[$__rate_interval])))
      or absent(up{job="j", namespace = "n"}) unless time() - process_start_time_seconds > 1e3"#;
    let found: Vec<(String, Vec<String>)> = selectors(expr).into_iter().map(|s| (s.metric, s.labels)).collect();
    let owned = |metric: &str, labels: &[&str]| (metric.to_string(), labels.iter().map(|l| l.to_string()).collect());
    assert_eq!(
        found,
        vec![
            owned("pgmcp_http_requests_total", &["route", "status"]),
            owned("pgmcp_reload_error", &[]),
            owned("a:b_bucket", &["le"]),
            owned("up", &["job", "namespace"]),
            owned("process_start_time_seconds", &[]),
        ]
    );
}

#[test]
fn a_selector_without_a_name_is_reported_with_an_empty_metric() {
    let found = selectors(r#"count({__name__=~"pgmcp_.+"})"#);
    assert_eq!(
        found,
        vec![Selector {
            metric: String::new(),
            labels: vec!["__name__".into()]
        }]
    );
}
