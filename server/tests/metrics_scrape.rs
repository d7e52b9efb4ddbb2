//! `/metrics` as a monitoring system sees it: a real scrape of a server with tokens, a KB and a
//! PostgreSQL database passes `promtool check metrics`, and lists exactly the metrics of the README's
//! table; the Helm chart's alerts and Grafana dashboard query only metric and label names that scrape
//! has; the pool's figures under saturation tell load from an outage.
//!
//! promtool comes from Debian's `prometheus` package (`scripts/setup.sh` installs it); without it the
//! test fails, never skips. Metrics are per process, so the tests here take [`ONE_AT_A_TIME`]: under
//! `cargo test` they would otherwise share gauges (nextest runs each in its own process anyway).

mod common;
mod pg_cluster;
mod promql;
mod sync_support;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::Write,
    path::Path,
    process::Command,
    time::Duration,
};

use common::*;
use pg_cluster::PgCluster;
use postgres_mcp::server::RunningServer;
use serde_json::{Value, json};
use sync_support::{IntervalRun, Reply, ScriptedServer};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scrape(server: &RunningServer) -> String {
    get_text(&url(server, "/metrics")).await
}

/// The value of the sample `series` (name with its labels as rendered, e.g. `a{b="c"}`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Metric names declared by `# TYPE` lines.
fn declared(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The metric names of the README's "## Metrics" table (first column, in backticks).
fn readme_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README.md has a '## Metrics' section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

async fn tool(server: &RunningServer, token: &str, name: &str, arguments: Value) -> Value {
    let response = rpc(
        server,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["result"].clone()
}

async fn start(cluster: &PgCluster, fixture: &Fixture, extra: &str) -> RunningServer {
    let config = format!(
        "database:\n  url: \"{}\"\n  health_interval: 200ms\n  connect_timeout: 1s\n{extra}",
        cluster.url()
    );
    fixture.start_with("metrics-1", &config).await
}

/// A server on `cluster` whose failed-auth limiter locks an address out after two failures.
async fn start_with_a_strict_limiter(cluster: &PgCluster, fixture: &Fixture) -> RunningServer {
    start(
        cluster,
        fixture,
        "auth:\n  rate_limit:\n    failures: 2\n    window: 1m\n    lockout: 1m\n    max_clients: 100\n",
    )
    .await
}

/// One of each event, so that every metric that only appears after one is in the next scrape: tool
/// calls, refused tokens up to a lockout and one 429, logins, a reload that adds an expiring token,
/// the database probe's first answer.
async fn one_of_each_event(server: &RunningServer, fixture: &Fixture) {
    let kb = rpc(server, Some(&fixture.token), search_call(1, "vacuum")).await;
    assert_eq!(kb.status(), 200);
    let rows = tool(server, &fixture.token, "query_database", json!({"sql": "SELECT 1"})).await;
    assert_eq!(rows["isError"], false, "{rows}");
    assert_eq!(login(server, "alice", PASSWORD).await.status(), 200);
    let wrong = "pgmcp_0000000000000000000000000000000000000000000";
    let statuses: Vec<u16> = statuses_of_sequential_calls(server, wrong, 3).await;
    assert_eq!(statuses, [401, 401, 429], "two failures lock the address out");
    let expires: chrono::DateTime<chrono::Utc> = "2031-05-06T07:08:09Z".parse().unwrap();
    postgres_mcp::auth::admin::token_create(&fixture.path("tokens.yaml"), "expiring", Some(expires), None).unwrap();
    assert!(
        eventually(5, || async {
            sample(
                &scrape(server).await,
                "pgmcp_credential_earliest_expiry_timestamp_seconds{file=\"tokens\"}",
            ) == Some(expires.timestamp() as f64)
        })
        .await,
        "the earliest expiry follows the reloaded tokens.yaml"
    );
    assert!(
        eventually(5, || async {
            sample(&scrape(server).await, "pgmcp_database_up") == Some(1.0)
        })
        .await,
        "the probe reaches the database"
    );
}

#[tokio::test]
async fn a_scrape_passes_promtool_and_lists_exactly_the_readme_metrics() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start();
    let fixture = Fixture::new();
    let server = start_with_a_strict_limiter(&cluster, &fixture).await;
    one_of_each_event(&server, &fixture).await;

    let text = scrape(&server).await;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let checked = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file.path()).unwrap())
        .output()
        .expect("promtool is not installed (scripts/setup.sh installs Debian's `prometheus` package)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n---\n{text}"
    );

    let scraped = declared(&text);
    let documented = readme_metrics();
    let undocumented: Vec<_> = scraped.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&scraped).collect();
    assert!(
        undocumented.is_empty() && missing.is_empty(),
        "README's metrics table and the scrape disagree: not in the README {undocumented:?}; not scraped {missing:?}"
    );
    println!(
        "scrape: {} metrics, {} bytes, promtool clean",
        scraped.len(),
        text.len()
    );

    // Values that must be true, not merely present.
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.lines().any(|l| l.starts_with("pgmcp_build_info{")
            && l.contains(&format!("version=\"{version}\""))
            && l.ends_with(" 1")),
        "{text}"
    );
    assert_eq!(sample(&text, "pgmcp_draining"), Some(0.0));
    assert_eq!(sample(&text, "pgmcp_auth_lockouts_total"), Some(1.0));
    assert_eq!(sample(&text, "pgmcp_rate_limited_total"), Some(1.0));
    assert!(
        sample(&text, "pgmcp_knowledgebase_documents").is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert!(
        sample(&text, "pgmcp_knowledgebase_chunks").is_some_and(|n| n > 0.0),
        "{text}"
    );
    let built = sample(&text, "pgmcp_knowledgebase_built_timestamp_seconds").unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - 3600.0..=now + 1.0).contains(&built),
        "the fixture's kb.db was built just now: {built}"
    );
    assert_eq!(sample(&text, "pgmcp_db_pool_max_connections"), Some(4.0));
    assert!(
        sample(&text, "process_resident_memory_bytes").is_some_and(|n| n > 1e6),
        "{text}"
    );
    let started = sample(&text, "process_start_time_seconds").unwrap();
    assert!(
        (now - 600.0..=now + 1.0).contains(&started),
        "process start {started}, now {now}"
    );

    server.drain_and_stop().await.unwrap();
}

/// Labels Prometheus gives every series of a target (kubernetes_sd and the Prometheus Operator's
/// ServiceMonitor), which the server itself never exports.
const TARGET_LABELS: &[&str] = &[
    "job",
    "namespace",
    "pod",
    "instance",
    "service",
    "endpoint",
    "container",
];

/// Series Prometheus writes itself for each target.
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// Every sample name of a scrape (`_bucket`, `_sum`, `_count` for histograms) with the label names
/// seen on it.
fn scraped_labels(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = names.entry(line[..end].to_string()).or_default();
        if let Some(close) = line.rfind('}').filter(|_| line[end..].starts_with('{')) {
            // `{a="1",b="2"}` reads as a selector without a name.
            labels.extend(promql::selectors(&line[end..=close]).into_iter().flat_map(|s| s.labels));
        }
    }
    names
}

/// A query of the chart's monitoring files: where it is, and its PromQL.
type Query = (String, String);

/// The chart's monitoring files, as (where, PromQL): every `expr` of the dashboards (and the
/// selector of each `label_values(…)` variable, with the label it lists), and every `expr:` of the
/// PrometheusRule template with its Go template actions (the release selector, thresholds) removed.
fn chart_queries() -> (Vec<Query>, Vec<Query>) {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/postgres-mcp");
    let mut dashboard = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(chart.join("dashboards"))
        .expect("helm/postgres-mcp/dashboards")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        collect_exprs(&json["panels"], &name, &mut dashboard);
        for variable in json["templating"]["list"].as_array().into_iter().flatten() {
            if let Some(query) = variable["query"]["query"].as_str() {
                let inner = query
                    .strip_prefix("label_values(")
                    .and_then(|q| q.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{name}: variable {} is not label_values(…): {query}", variable["name"]));
                let (selector, label) = inner.rsplit_once(',').unwrap();
                // The listed label must be on the series: checked as a matcher on it.
                let with_label = match selector.trim().strip_suffix('}') {
                    Some(open) => format!("{open},{}=\"\"}}", label.trim()),
                    None => format!("{}{{{}=\"\"}}", selector.trim(), label.trim()),
                };
                dashboard.push((format!("{name} variable {}", variable["name"]), with_label));
            }
        }
    }
    let template = std::fs::read_to_string(chart.join("templates/prometheusrule.yaml")).unwrap();
    let lines: Vec<&str> = template.lines().collect();
    let mut alerts = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let expr = if rest.trim().starts_with('|') || rest.trim().starts_with('>') {
            lines[index + 1..]
                .iter()
                .take_while(|l| l.len() - l.trim_start().len() > indent)
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            rest.to_string()
        };
        let mut plain = expr;
        while let Some(open) = plain.find("{{") {
            let close = plain[open..]
                .find("}}")
                .map(|c| open + c + 2)
                .expect("an unclosed {{ in an expr");
            plain.replace_range(open..close, "");
        }
        alerts.push((format!("prometheusrule.yaml line {}", index + 1), plain));
    }
    (dashboard, alerts)
}

/// Every `expr` string under `node`, named by the title of the panel holding it.
fn collect_exprs(node: &Value, source: &str, into: &mut Vec<Query>) {
    match node {
        Value::Object(map) => {
            let source = match map.get("title") {
                Some(Value::String(title)) => format!("{source} panel {title:?}"),
                _ => source.to_string(),
            };
            if let Some(Value::String(expr)) = map.get("expr") {
                into.push((source.clone(), expr.clone()));
            }
            map.values().for_each(|v| collect_exprs(v, &source, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, source, into)),
        _ => {}
    }
}

/// The issue this answers (#18): a dashboard or an alert on a misspelt metric or label shows "no data"
/// or never fires, silently. Every name they use must be in a scrape of a server that has done one
/// of everything, or of a sync sidecar that has succeeded and failed.
#[tokio::test]
async fn the_helm_alerts_and_dashboard_query_only_names_a_scrape_has() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start();
    let fixture = Fixture::new();
    let server = start_with_a_strict_limiter(&cluster, &fixture).await;
    one_of_each_event(&server, &fixture).await;
    let mut scraped = scraped_labels(&scrape(&server).await);
    server.drain_and_stop().await.unwrap();

    // The sync sidecar's own series (pgmcp_sync_*), from a `postgres-mcp sync` whose first round
    // downloaded its file and whose later rounds fail.
    let store = ScriptedServer::start(vec![Reply::ok(b"version 1"), Reply::Status(500)]).await;
    let home = tempfile::tempdir().unwrap();
    let dest = home.path().join("notes.txt");
    let source = format!("{}/notes.txt", store.base);
    let sidecar = IntervalRun::start(
        &HashMap::new(),
        home.path(),
        &[
            "--source",
            &source,
            "--dest",
            dest.to_str().unwrap(),
            "--interval",
            "200ms",
        ],
    )
    .await;
    let sync_text = || async { sidecar.get("/metrics").await.1 };
    assert!(
        eventually(10, || async {
            sync_text().await.contains("pgmcp_sync_last_failure_timestamp_seconds")
        })
        .await,
        "the sidecar downloaded once and failed since:\n{}",
        sync_text().await
    );
    for (name, labels) in scraped_labels(&sync_text().await) {
        scraped.entry(name).or_default().extend(labels);
    }

    let (dashboard, alerts) = chart_queries();
    // The extraction itself must have found the files' queries (a broken one would pass vacuously).
    assert!(dashboard.len() >= 40, "{} dashboard queries", dashboard.len());
    assert!(alerts.len() >= 10, "{} alert expressions", alerts.len());
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (source, expr) in dashboard.iter().chain(&alerts) {
        let selectors = promql::selectors(expr);
        if selectors.is_empty() {
            problems.push(format!("{source}: no metric in {expr:?}"));
        }
        for selector in selectors {
            let known = if PROMETHEUS_SERIES.contains(&selector.metric.as_str()) {
                Some(BTreeSet::new())
            } else {
                scraped.get(&selector.metric).cloned()
            };
            let Some(labels) = known else {
                problems.push(format!("{source}: {:?} is not in a scrape", selector.metric));
                continue;
            };
            for label in &selector.labels {
                if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                    problems.push(format!(
                        "{source}: {} has no label {label:?} (it has {labels:?})",
                        selector.metric
                    ));
                }
            }
            used.insert(selector.metric);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!(
        "{} dashboard queries and {} alert expressions use {} metric names, all in a scrape of {} sample names",
        dashboard.len(),
        alerts.len(),
        used.len(),
        scraped.len()
    );
}

/// `count` requests with the same bearer token, one after the other; their statuses.
async fn statuses_of_sequential_calls(server: &RunningServer, token: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for id in 0..count {
        statuses.push(
            rpc(server, Some(token), search_call(id as i64, "vacuum"))
                .await
                .status()
                .as_u16(),
        );
    }
    statuses
}

/// The issue this answers: with a pool of two, two `pg_sleep` calls used to turn `pgmcp_database_up`
/// to 0 and log "database unavailable" while PostgreSQL answered. Now the third call is told the
/// pool is busy, the database stays up, and the pool's figures show why.
#[tokio::test]
async fn a_saturated_pool_is_load_not_an_outage() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start();
    let fixture = Fixture::new();
    let server = start(&cluster, &fixture, "  pool_size: 2\n").await;
    assert!(
        eventually(5, || async {
            sample(&scrape(&server).await, "pgmcp_database_up") == Some(1.0)
        })
        .await,
        "the probe reaches the database"
    );
    let timeouts_before = sample(&scrape(&server).await, "pgmcp_db_pool_acquire_timeouts_total").unwrap();

    let sleeps: Vec<_> = (0..2)
        .map(|_| {
            let (server_url, token) = (url(&server, "/mcp"), fixture.token.clone());
            tokio::spawn(async move {
                client()
                    .post(server_url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .bearer_auth(token)
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query_database", "arguments": {"sql": "SELECT pg_sleep(4)"}}}))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    assert!(
        eventually(3, || async {
            sample(&scrape(&server).await, "pgmcp_db_pool_connections{state=\"in_use\"}") == Some(2.0)
        })
        .await,
        "both connections in use:\n{}",
        scrape(&server).await
    );

    let third = tool(&server, &fixture.token, "query_database", json!({"sql": "SELECT 1"})).await;
    assert_eq!(third["isError"], true, "{third}");
    let message = third["content"][0]["text"].as_str().unwrap();
    assert!(
        message.contains("busy") && message.contains("all 2 connections") && message.contains("retry"),
        "{message}"
    );
    assert!(
        !message.contains("unavailable"),
        "saturation is not an outage: {message}"
    );

    let text = scrape(&server).await;
    assert_eq!(sample(&text, "pgmcp_database_up"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "pgmcp_db_pool_connections{state=\"in_use\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "pgmcp_db_pool_max_connections"), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, "pgmcp_db_pool_acquire_timeouts_total"),
        Some(timeouts_before + 1.0),
        "{text}"
    );
    let health: Value = client()
        .get(url(&server, "/health/details"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"]["status"], "ok", "{health}");

    for sleep in sleeps {
        let result = sleep.await.unwrap();
        assert_eq!(result["result"]["isError"], false, "{result}");
    }
    let text = scrape(&server).await;
    assert_eq!(
        sample(&text, "pgmcp_db_pool_connections{state=\"in_use\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pgmcp_db_pool_connections{state=\"idle\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "pgmcp_database_up"), Some(1.0), "{text}");
    server.drain_and_stop().await.unwrap();
}

#[tokio::test]
async fn a_stopped_database_is_down_within_a_few_health_intervals_and_up_after_restart() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start();
    let fixture = Fixture::new();
    let server = start(&cluster, &fixture, "").await;
    let up = |value: f64| {
        let server = &server;
        move || async move { sample(&scrape(server).await, "pgmcp_database_up") == Some(value) }
    };
    assert!(eventually(5, up(1.0)).await, "the probe reaches the database");

    // No tool call: the probe alone must notice (health_interval 200 ms).
    cluster.stop();
    let stopped = std::time::Instant::now();
    assert!(
        eventually(2, up(0.0)).await,
        "database_up still 1 two seconds after the stop"
    );
    let noticed = stopped.elapsed();
    let health: Value = client()
        .get(url(&server, "/health/details"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"]["status"], "unavailable", "{health}");
    println!(
        "database_up 0 after {} ms (health_interval 200 ms)",
        noticed.as_millis()
    );
    assert!(noticed < Duration::from_secs(2));

    cluster.restart();
    assert!(eventually(10, up(1.0)).await, "database_up back to 1 after the restart");
    server.drain_and_stop().await.unwrap();
}
