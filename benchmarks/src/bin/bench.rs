//! The benchmark runner: `cargo run --release -p benchmarks --bin bench -- [--quick] [--out DIR]`.
//!
//! Starts everything it measures as processes on loopback — our release binary, the bare-hyper
//! ceiling, the rmcp peer, Debian's nginx in front of three of ours — drives them with Debian's wrk,
//! and writes `results.md`, `results.csv` and `throughput.svg` to the output directory. Sections:
//! 1. throughput and latency of `/health`, `ping` and `tools/call search_knowledgebase` at several
//!    concurrency levels, ours against the ceiling and the peer, interleaved point by point so that
//!    a change in background load hits all three alike;
//! 2. the token check with 10, 1k and 100k tokens in tokens.yaml, and at 100k tokens the load time
//!    of the file and the memory of a process serving it;
//! 3. KB search on a generated 10k-document corpus, in process and over HTTP;
//! 4. reload propagation, by running the server's own `reload_propagation` bench;
//! 5. nginx with three instances against one instance direct, and a SIGKILL under load;
//! 6. peak RSS and start->healthy of every process started.
//!
//! A section that fails is reported as not measured (with the reason) and the others still run;
//! the exit status is then non-zero. `--section N` runs only section N (repeatable; the others are
//! reported as skipped), so pass `--out` elsewhere than the committed results.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use benchmarks::{
    fixtures, http, nginx, pg,
    procs::{Proc, free_addr, free_addrs, status_field},
    report::{Rows, ms, rps, table},
    scale, svg,
    wrk::{self, Load, WrkResult},
};
use clap::Parser;
use postgres_mcp::{
    auth::tokens::{TokenSet, generate_token},
    kb::store::KbLoader,
    watch::Loader,
};

#[derive(Parser)]
#[command(about = "Benchmarks: ours vs a bare-hyper ceiling vs rmcp's stateless server, on loopback")]
struct Args {
    /// Short runs (2 s per point, smaller corpus, few reload rounds): a smoke test, not figures.
    #[arg(long)]
    quick: bool,
    /// Where results.md, results.csv, throughput.svg and wrk-output.txt go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Use the release binaries as they are (by default the runner builds them first).
    #[arg(long)]
    no_build: bool,
    /// Run only this section, by number (`--section 2`); repeatable. Default: all.
    #[arg(long = "section", value_name = "N")]
    sections: Vec<String>,
}

/// How much of everything to do.
struct Plan {
    duration: Duration,
    /// Section 1 measures each point this many times (servers interleaved) and keeps the median
    /// run: in one 5 s run, two servers bound by the same SQLite query swing their ratio by ±20 %.
    rounds: usize,
    concurrencies: Vec<u32>,
    token_counts: Vec<usize>,
    kb_documents: usize,
    searches: usize,
    reload_rounds: usize,
    failover_run: Duration,
    kill_after: Duration,
    scale: scale::Plan,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        Plan {
            duration: Duration::from_secs(if quick { 2 } else { 5 }),
            rounds: if quick { 1 } else { 3 },
            concurrencies: vec![1, 16, 64],
            token_counts: vec![10, 1_000, 100_000],
            kb_documents: if quick { 2_000 } else { 10_000 },
            searches: if quick { 1_000 } else { 5_000 },
            reload_rounds: if quick { 5 } else { 60 },
            failover_run: Duration::from_secs(10),
            kill_after: Duration::from_secs(3),
            scale: scale::Plan {
                idle_window: Duration::from_secs(if quick { 5 } else { 10 }),
                large_kb_mb: 42,
                huge_kb_mb: if quick { 60 } else { 500 },
                rotation_rounds: if quick { 10 } else { 60 },
            },
        }
    }
}

/// What is measured in section 1, with the wrk script and path of each.
struct Endpoint {
    name: &'static str,
    script: &'static str,
    path: &'static str,
}

const ENDPOINTS: [Endpoint; 3] = [
    Endpoint {
        name: "/health",
        script: "health.lua",
        path: "/health",
    },
    Endpoint {
        name: "ping",
        script: "ping.lua",
        path: "/mcp",
    },
    Endpoint {
        name: "tools/call",
        script: "tools_call.lua",
        path: "/mcp",
    },
];

const SERVERS: [&str; 3] = ["ours", "baseline", "peer"];
const COLORS: [&str; 3] = ["#d62728", "#7f7f7f", "#1f77b4"];
/// Connections for the single-concurrency sections (token scale, nginx).
const LOAD_CONNECTIONS: u32 = 64;

/// The request bodies of bench/tools_call.lua and bench/ping.lua, for capturing answers.
const TOOLS_CALL_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_knowledgebase","arguments":{"query":"replication lag","limit":3}}}"#;
const PING_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

/// A process's figures for section 6.
struct ProcessFigure {
    name: String,
    role: String,
    start_to_healthy: Duration,
    peak_rss_kib: Option<u64>,
}

struct TokenFigure {
    count: usize,
    verify_ns: f64,
    load: WrkResult,
    start_to_healthy: Duration,
    peak_rss_kib: Option<u64>,
}

/// Goals at 100k tokens (issue "HA at production scale", §4): a credential rotation is a reload of
/// tokens.yaml, and every instance holds the whole set.
const TOKEN_LOAD_GOAL_MS: f64 = 100.0;
const TOKEN_RSS_GOAL_MIB: f64 = 30.0;
/// `TokenSet::parse` runs per figure (the median is kept).
const TOKEN_LOAD_RUNS: usize = 7;

/// The largest token file: how long it takes to load and what a process serving it holds.
struct TokenLoadFigure {
    count: usize,
    file_bytes: u64,
    /// Parse + build of the set in process, every run sorted.
    runs_ms: Vec<f64>,
    /// `serve --tokens FILE`, no KB: VmRSS when /health first answered 200, and VmHWM then.
    rss_kib: Option<u64>,
    peak_rss_kib: Option<u64>,
    start_to_healthy: Duration,
}

impl TokenLoadFigure {
    fn median_ms(&self) -> f64 {
        self.runs_ms[self.runs_ms.len() / 2]
    }
}

struct KbFigure {
    documents: usize,
    chunks: usize,
    corpus_bytes: u64,
    db_bytes: u64,
    build: Duration,
    searches: usize,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    with_hits: f64,
    http: Vec<(u32, WrkResult)>,
}

struct ReloadFigure {
    rounds: usize,
    /// mode, p50, p95, p99, max (as printed by the bench).
    modes: Vec<[String; 5]>,
}

struct NginxFigure {
    compared: Vec<(&'static str, WrkResult, WrkResult)>,
    failover: WrkResult,
    killed: String,
    kill_after: Duration,
    run: Duration,
}

struct PgFigure {
    connections: u32,
    ours: WrkResult,
    bare: pg::BareResult,
    sample: String,
}

#[derive(Default)]
struct Results {
    throughput: BTreeMap<(usize, usize, u32), WrkResult>,
    tokens: Vec<TokenFigure>,
    token_load: Option<TokenLoadFigure>,
    kb: Option<KbFigure>,
    reload: Option<ReloadFigure>,
    nginx: Option<NginxFigure>,
    postgres: Option<PgFigure>,
    processes: Vec<ProcessFigure>,
    scale: Option<scale::Figures>,
    failures: Vec<(&'static str, String)>,
}

/// Paths and shared fixtures of one run.
struct Ctx {
    root: PathBuf,
    work: tempfile::TempDir,
    bin_dir: PathBuf,
    plan: Plan,
    token: String,
    tokens_file: PathBuf,
    config: PathBuf,
    demo_kb: PathBuf,
    rows: Rows,
    wrk_log: String,
}

impl Ctx {
    fn work(&self) -> &Path {
        self.work.path()
    }

    fn script(&self, name: &str) -> PathBuf {
        self.root.join("bench").join(name)
    }

    /// `postgres-mcp serve` with the benchmark config; `TMPDIR` inside the work dir, so the KB copies
    /// of SIGKILLed instances are removed with it.
    fn ours(&self, name: &str, tokens: &Path, kb: &Path) -> anyhow::Result<Proc> {
        self.ours_with(name, tokens, Some(kb), &[])
    }

    /// [`ours`](Self::ours) with extra `PGMCP_*` settings, or without a KB.
    fn ours_with(
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

    fn wrk(&mut self, label: &str, load: &Load) -> anyhow::Result<WrkResult> {
        let result = load.run()?;
        self.log_wrk(label, load, &result);
        Ok(result)
    }

    fn log_wrk(&mut self, label: &str, load: &Load, result: &WrkResult) {
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

    fn load(&self, script: &str, addr: SocketAddr, path: &str, connections: u32) -> Load {
        Load::new(
            &self.script(script),
            format!("http://{addr}{path}"),
            connections,
            self.plan.duration,
        )
        .env("TOKEN", &self.token)
    }

    fn process(&self, results: &mut Results, proc: &Proc, role: &str) {
        let peak = proc.peak_rss_kib();
        results.processes.push(ProcessFigure {
            name: proc.name.clone(),
            role: role.to_string(),
            start_to_healthy: proc.start_to_healthy,
            peak_rss_kib: peak,
        });
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("benchmarks/ has a parent")?
        .to_path_buf();
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    ensure_tools(&root)?;
    if !args.no_build {
        build(&root)?;
    }
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the runner's directory")?
        .to_path_buf();
    for bin in ["postgres-mcp", "baseline-hyper", "peer-rmcp"] {
        if !bin_dir.join(bin).exists() {
            bail!(
                "{} is missing: build it (cargo build --release -p postgres-mcp -p benchmarks)",
                bin_dir.join(bin).display()
            );
        }
    }
    let machine = Machine::describe(&root);
    eprintln!("bench: {}", machine.line());

    let work = tempfile::Builder::new().prefix("pgmcp-bench-").tempdir()?;
    std::fs::create_dir_all(work.path().join("tmp"))?;
    let token = generate_token();
    let tokens_file = work.path().join("tokens.yaml");
    fixtures::write_tokens(&tokens_file, 1, &token)?;
    std::fs::write(work.path().join("token.txt"), &token)?;
    let config = work.path().join("config.yaml");
    // Quiet logs (a log line per request would be measured too) and a failed-auth limiter that a
    // benchmark cannot trip; everything else is the shipped default.
    std::fs::write(
        &config,
        "log:\n  level: warn\nauth:\n  rate_limit:\n    failures: 100000000\n",
    )?;
    let demo_kb = work.path().join("kb-demo.db");
    postgres_mcp::kb::build::build(&root.join("demo/docs"), &demo_kb)?;

    let mut ctx = Ctx {
        root: root.clone(),
        work,
        bin_dir,
        plan: Plan::new(args.quick),
        token,
        tokens_file,
        config,
        demo_kb,
        rows: Rows::default(),
        wrk_log: String::new(),
    };
    let mut results = Results::default();
    let started = Instant::now();

    let sections: [(&'static str, fn(&mut Ctx, &mut Results) -> anyhow::Result<()>); 7] = [
        ("1. throughput", throughput),
        ("2. token check", token_scale),
        ("3. KB search", kb_search),
        ("4. reload propagation", reload),
        ("5. nginx", behind_nginx),
        ("7. Postgres tools", postgres_tools),
        ("8. production scale", production_scale),
    ];
    for (name, section) in sections {
        let number = name.split('.').next().unwrap_or_default();
        if !args.sections.is_empty() && !args.sections.iter().any(|s| s == number) {
            eprintln!("bench: {name} skipped (--section)");
            continue;
        }
        eprintln!("bench: {name}");
        if let Err(error) = section(&mut ctx, &mut results) {
            eprintln!("bench: {name} not measured: {error:#}");
            results.failures.push((name, format!("{error:#}")));
        }
    }
    for process in &results.processes {
        let subject = format!("{} ({})", process.name, process.role);
        ctx.rows.push(
            "6. processes",
            &subject,
            None,
            "start_to_healthy",
            process.start_to_healthy.as_secs_f64() * 1000.0,
            "ms",
        );
        if let Some(kib) = process.peak_rss_kib {
            ctx.rows
                .push("6. processes", &subject, None, "peak_rss", kib as f64 / 1024.0, "MiB");
        }
    }

    let markdown = render_markdown(&ctx, &results, &machine, started.elapsed(), args.quick);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("results.md"), &markdown)?;
    std::fs::write(out.join("results.csv"), ctx.rows.csv())?;
    std::fs::write(out.join("throughput.svg"), render_svg(&ctx, &results, &machine))?;
    std::fs::write(out.join("wrk-output.txt"), &ctx.wrk_log)?;
    println!("{markdown}");
    eprintln!(
        "bench: done in {:.0} s; wrote {}/results.md, results.csv, throughput.svg, wrk-output.txt",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(results.failures.is_empty())
}

/// wrk and nginx come from Debian; bench/setup.sh installs them when missing.
fn ensure_tools(root: &Path) -> anyhow::Result<()> {
    let missing = |tool: &str| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if missing("wrk") || missing("nginx") {
        eprintln!("bench: wrk or nginx missing, running bench/setup.sh");
        let status = Command::new(root.join("bench/setup.sh")).status()?;
        if !status.success() {
            bail!("bench/setup.sh failed ({status})");
        }
    }
    Ok(())
}

/// Builds the release binaries. Ours alone (features unified only with its own dependencies, so
/// it is the binary `make build` makes), then the baseline and the peer.
fn build(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for args in [
        &["-p", "postgres-mcp", "--bin", "postgres-mcp"][..],
        &[
            "-p",
            "benchmarks",
            "--bin",
            "baseline-hyper",
            "--bin",
            "peer-rmcp",
            "--bin",
            "bench",
        ][..],
    ] {
        eprintln!("bench: cargo build --release {}", args.join(" "));
        let status = Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--release", "--locked"])
            .args(args)
            .status()?;
        if !status.success() {
            bail!("cargo build failed ({status})");
        }
    }
    Ok(())
}

// --- 1. throughput ------------------------------------------------------------------------------

fn mcp_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("Accept", "application/json, text/event-stream".into()),
        ("MCP-Protocol-Version", "2025-11-25".into()),
        ("Authorization", format!("Bearer {token}")),
    ]
}

fn post(addr: SocketAddr, token: &str, body: &str) -> anyhow::Result<http::HttpResponse> {
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

fn throughput(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let ours = ctx.ours("ours", &ctx.tokens_file.clone(), &ctx.demo_kb.clone())?;

    // The ceiling answers with exactly what ours answers.
    let answers = ctx.work().join("answers");
    std::fs::create_dir_all(&answers)?;
    let health = http::request(ours.addr, "GET", "/health", &[], b"")?;
    let call = post(ours.addr, &ctx.token, TOOLS_CALL_BODY)?;
    let ping = post(ours.addr, &ctx.token, PING_BODY)?;
    std::fs::write(answers.join("health.json"), &health.body)?;
    std::fs::write(answers.join("mcp.json"), &call.body)?;
    std::fs::write(answers.join("ping.json"), &ping.body)?;

    let addr = free_addr()?;
    let mut command = Command::new(ctx.bin_dir.join("baseline-hyper"));
    command
        .args(["--listen", &addr.to_string(), "--token-file"])
        .arg(ctx.work().join("token.txt"))
        .arg("--health")
        .arg(answers.join("health.json"))
        .arg("--mcp")
        .arg(answers.join("mcp.json"))
        .arg("--ping")
        .arg(answers.join("ping.json"));
    let baseline = Proc::start("baseline", command, addr, ctx.work())?;

    let addr = free_addr()?;
    let mut command = Command::new(ctx.bin_dir.join("peer-rmcp"));
    command
        .args(["--listen", &addr.to_string(), "--tokens"])
        .arg(&ctx.tokens_file)
        .arg("--kb")
        .arg(&ctx.demo_kb)
        .env("TMPDIR", ctx.work().join("tmp"));
    let peer = Proc::start("peer", command, addr, ctx.work())?;

    // The peer must run the same search: same structured results as ours.
    let peer_call = post(peer.addr, &ctx.token, TOOLS_CALL_BODY)?;
    let structured = |response: &http::HttpResponse| -> anyhow::Result<serde_json::Value> {
        Ok(response.json()?["result"]["structuredContent"].clone())
    };
    if structured(&call)? != structured(&peer_call)? || structured(&call)?.is_null() {
        bail!(
            "the peer's search results differ from ours:\nours: {}\npeer: {}",
            String::from_utf8_lossy(&call.body),
            String::from_utf8_lossy(&peer_call.body)
        );
    }
    for (name, response) in [("baseline", &baseline), ("peer", &peer)] {
        post(response.addr, &ctx.token, PING_BODY).with_context(|| format!("{name} ping"))?;
    }

    let servers = [&ours, &baseline, &peer];
    for (index, server) in servers.iter().enumerate() {
        let warm = Load::new(
            &ctx.script("tools_call.lua"),
            format!("http://{}/mcp", server.addr),
            16,
            Duration::from_secs(1),
        )
        .env("TOKEN", &ctx.token);
        ctx.wrk(&format!("warm-up {}", SERVERS[index]), &warm)?;
    }
    for (e, endpoint) in ENDPOINTS.iter().enumerate() {
        for &c in &ctx.plan.concurrencies.clone() {
            let mut runs: Vec<Vec<WrkResult>> = vec![Vec::new(); servers.len()];
            for round in 1..=ctx.plan.rounds {
                for (s, server) in servers.iter().enumerate() {
                    let load = ctx.load(endpoint.script, server.addr, endpoint.path, c);
                    let label = format!("{} {} (round {round})", endpoint.name, SERVERS[s]);
                    let result = ctx.wrk(&label, &load)?;
                    if result.non_2xx > 0 || result.socket_errors > 0 {
                        bail!(
                            "{} {} c={c}: {} non-2xx, {} socket errors",
                            SERVERS[s],
                            endpoint.name,
                            result.non_2xx,
                            result.socket_errors
                        );
                    }
                    runs[s].push(result);
                }
            }
            for (s, mut rounds) in runs.into_iter().enumerate() {
                rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
                let result = rounds.swap_remove(rounds.len() / 2);
                ctx.rows.wrk(
                    "1. throughput",
                    &format!("{} {}", SERVERS[s], endpoint.name),
                    c,
                    &result,
                );
                results.throughput.insert((e, s, c), result);
            }
            let get = |s: usize| results.throughput[&(e, s, c)].rps;
            ctx.rows.push(
                "1. throughput",
                &format!("ours/baseline {}", endpoint.name),
                Some(c),
                "ratio",
                get(0) / get(1),
                "x",
            );
            ctx.rows.push(
                "1. throughput",
                &format!("ours/peer {}", endpoint.name),
                Some(c),
                "ratio",
                get(0) / get(2),
                "x",
            );
        }
    }
    ctx.process(results, &ours, "ours, demo KB, 1 token; after section 1");
    ctx.process(results, &baseline, "bare hyper ceiling; after section 1");
    ctx.process(results, &peer, "rmcp stateless peer, demo KB; after section 1");
    Ok(())
}

// --- 2. token check -----------------------------------------------------------------------------

fn token_scale(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    for &count in &ctx.plan.token_counts.clone() {
        let path = ctx.work().join(format!("tokens-{count}.yaml"));
        fixtures::write_tokens(&path, count, &ctx.token)?;

        // In process: one verify (SHA-256 + directory and binary search of the sorted digests +
        // constant-time compare).
        let set = TokenSet::parse(&std::fs::read_to_string(&path)?).map_err(anyhow::Error::msg)?;
        let now = chrono::Utc::now();
        let rounds = 200_000;
        let timer = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(set.verify(std::hint::black_box(&ctx.token), now).is_ok());
        }
        let verify_ns = timer.elapsed().as_nanos() as f64 / rounds as f64;
        drop(set);

        let name = format!("ours-{count}-tokens");
        let server = ctx.ours(&name, &path, &ctx.demo_kb.clone())?;
        let load = ctx.load("ping.lua", server.addr, "/mcp", LOAD_CONNECTIONS);
        let result = ctx.wrk(&format!("ping, {count} tokens"), &load)?;
        if result.non_2xx > 0 {
            bail!("{count} tokens: {} non-2xx answers", result.non_2xx);
        }
        let subject = format!("{count} tokens");
        ctx.rows
            .wrk("2. token check", &format!("{subject} ping"), LOAD_CONNECTIONS, &result);
        ctx.rows
            .push("2. token check", &subject, None, "verify_in_process", verify_ns, "ns");
        ctx.process(results, &server, &format!("ours, {count} tokens; after ping load"));
        results.tokens.push(TokenFigure {
            count,
            verify_ns,
            load: result,
            start_to_healthy: server.start_to_healthy,
            peak_rss_kib: server.peak_rss_kib(),
        });
        drop(server);
        if Some(&count) == ctx.plan.token_counts.iter().max() {
            token_load(ctx, results, &path, count)?;
        }
    }
    Ok(())
}

/// Load time of the largest file (what a credential rotation waits for, besides reading it) and
/// the memory of a process serving it with nothing else loaded.
fn token_load(ctx: &mut Ctx, results: &mut Results, path: &Path, count: usize) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut runs_ms = Vec::with_capacity(TOKEN_LOAD_RUNS);
    for _ in 0..TOKEN_LOAD_RUNS {
        let timer = Instant::now();
        let set = TokenSet::parse(&text).map_err(anyhow::Error::msg)?;
        runs_ms.push(timer.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(set.len() == count, "{count} tokens written, {} loaded", set.len());
    }
    runs_ms.sort_by(f64::total_cmp);
    drop(text);

    let server = ctx.ours_with(&format!("ours-{count}-tokens-no-kb"), path, None, &[])?;
    let figure = TokenLoadFigure {
        count,
        file_bytes: std::fs::metadata(path)?.len(),
        runs_ms,
        rss_kib: status_field(server.pid(), "VmRSS"),
        peak_rss_kib: server.peak_rss_kib(),
        start_to_healthy: server.start_to_healthy,
    };
    eprintln!(
        "  {count} tokens ({:.1} MB): load median {:.1} ms (goal ≤ {TOKEN_LOAD_GOAL_MS} ms; runs {:.1}–{:.1}); \
         serving, no KB: VmRSS {} (goal ≤ {TOKEN_RSS_GOAL_MIB} MiB), peak {}",
        figure.file_bytes as f64 / 1e6,
        figure.median_ms(),
        figure.runs_ms[0],
        figure.runs_ms[figure.runs_ms.len() - 1],
        mib(figure.rss_kib),
        mib(figure.peak_rss_kib),
    );
    let subject = format!("{count} tokens");
    let section = "2. token check";
    ctx.rows
        .push(section, &subject, None, "load_median", figure.median_ms(), "ms");
    if let Some(kib) = figure.rss_kib {
        ctx.rows
            .push(section, &subject, None, "serving_rss_no_kb", kib as f64 / 1024.0, "MiB");
    }
    ctx.process(
        results,
        &server,
        &format!("ours, {count} tokens, no KB; at first healthy"),
    );
    results.token_load = Some(figure);
    Ok(())
}

// --- 3. KB search -------------------------------------------------------------------------------

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn kb_search(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let corpus_dir = ctx.work().join("corpus");
    let corpus = fixtures::generate_corpus(&corpus_dir, ctx.plan.kb_documents, 2026)?;
    let db = ctx.work().join("kb-large.db");
    let timer = Instant::now();
    let report = postgres_mcp::kb::build::build(&corpus_dir, &db)?;
    let build = timer.elapsed();
    let db_bytes = std::fs::metadata(&db)?.len();
    eprintln!(
        "  built {} documents, {} chunks, {:.1} MB in {:.1} s",
        report.sources,
        report.chunks,
        db_bytes as f64 / 1e6,
        build.as_secs_f64()
    );

    let loader = KbLoader {
        copy_to_local: false,
        copy_dir: ctx.work().join("tmp"),
    };
    let kb = loader.load(&db).map_err(anyhow::Error::msg)?.value;
    for query in corpus.queries.iter().take(200) {
        kb.search(query, 5)?;
    }
    let mut samples = Vec::with_capacity(ctx.plan.searches);
    let mut with_hits = 0usize;
    for query in corpus.queries.iter().cycle().take(ctx.plan.searches) {
        let timer = Instant::now();
        let hits = kb.search(query, 5)?;
        samples.push(timer.elapsed().as_secs_f64() * 1e6);
        with_hits += usize::from(!hits.is_empty());
    }
    drop(kb);
    samples.sort_by(f64::total_cmp);
    let mean_us = samples.iter().sum::<f64>() / samples.len() as f64;
    let (p50_us, p99_us) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    eprintln!(
        "  in process: {} searches, p50 {p50_us:.0} µs, p99 {p99_us:.0} µs",
        samples.len()
    );

    let server = ctx.ours("ours-large-kb", &ctx.tokens_file.clone(), &db)?;
    let queries = corpus.queries.join("|");
    let mut http_results = Vec::new();
    for c in [16, LOAD_CONNECTIONS] {
        let load = ctx
            .load("tools_call_varied.lua", server.addr, "/mcp", c)
            .env("QUERIES", &queries);
        let result = ctx.wrk(&format!("tools/call, {}-document KB", corpus.documents), &load)?;
        if result.non_2xx > 0 {
            bail!("{} non-2xx answers from the large KB", result.non_2xx);
        }
        ctx.rows.wrk("3. KB search", "tools/call over HTTP", c, &result);
        http_results.push((c, result));
    }
    ctx.process(
        results,
        &server,
        &format!("ours, {}-document KB; after tools/call load", corpus.documents),
    );
    let subject = format!("{} documents in process", corpus.documents);
    for (metric, value, unit) in [
        ("build_time", build.as_secs_f64(), "s"),
        ("kb_db_size", db_bytes as f64 / 1e6, "MB"),
        ("chunks", report.chunks as f64, "count"),
        ("search_p50", p50_us, "us"),
        ("search_p99", p99_us, "us"),
        ("search_mean", mean_us, "us"),
    ] {
        ctx.rows.push("3. KB search", &subject, None, metric, value, unit);
    }
    results.kb = Some(KbFigure {
        documents: corpus.documents,
        chunks: report.chunks,
        corpus_bytes: corpus.bytes,
        db_bytes,
        build,
        searches: samples.len(),
        p50_us,
        p99_us,
        mean_us,
        with_hits: with_hits as f64 / samples.len() as f64,
        http: http_results,
    });
    Ok(())
}

// --- 4. reload propagation ----------------------------------------------------------------------

/// Runs the server's own bench (server/benches/reload_propagation.rs) and reads its table.
fn reload(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rounds = ctx.plan.reload_rounds;
    eprintln!("  cargo bench -p postgres-mcp --bench reload_propagation (RELOAD_ROUNDS={rounds})");
    let output = Command::new(cargo)
        .current_dir(&ctx.root)
        .args([
            "bench",
            "--locked",
            "-p",
            "postgres-mcp",
            "--bench",
            "reload_propagation",
        ])
        .env("RELOAD_ROUNDS", rounds.to_string())
        .env("TMPDIR", ctx.work().join("tmp"))
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("cargo bench failed ({}): {stdout}", output.status);
    }
    let _ = write!(ctx.wrk_log, "### reload_propagation (cargo bench)\n{stdout}\n");
    let mut modes = Vec::new();
    for line in stdout.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() == 5 && (cells[0] == "notify" || cells[0] == "poll") {
            for (metric, cell) in ["p50", "p95", "p99", "max"].iter().zip(&cells[1..]) {
                let value: f64 = cell.trim_end_matches(" ms").parse().unwrap_or(f64::NAN);
                ctx.rows.push(
                    "4. reload propagation",
                    cells[0],
                    None,
                    &format!("write_to_accepted_{metric}"),
                    value,
                    "ms",
                );
            }
            modes.push([0, 1, 2, 3, 4].map(|i| cells[i].to_string()));
            eprintln!("  {line}");
        }
    }
    if modes.len() != 2 {
        bail!("unexpected output from the reload bench:\n{stdout}");
    }
    results.reload = Some(ReloadFigure { rounds, modes });
    Ok(())
}

// --- 8. production scale ----------------------------------------------------------------------

fn production_scale(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    // The server keeps its private KB copies in $TMPDIR/postgres-mcp-kb.
    let copies = ctx.work().join("tmp/postgres-mcp-kb");
    let start = |name: &str, tokens: &Path, kb: &Path| ctx.ours(name, tokens, kb);
    let figures = scale::run(&start, ctx.work(), &copies, &ctx.token, &ctx.plan.scale, &ctx.demo_kb)?;
    let section = "8. production scale";
    for idle in &figures.idle {
        ctx.rows.push(
            section,
            &idle.subject,
            None,
            "idle_cpu",
            idle.cpu_percent,
            "% of a core",
        );
        ctx.rows
            .push(section, &idle.subject, None, "idle_reads", idle.reads as f64, "reads");
    }
    if let Some(r) = &figures.rotation {
        let subject = format!("token rotation beside a {:.0} MB kb.db", r.kb_mb);
        ctx.rows
            .push(section, &subject, None, "rename_to_accepted_p50", r.p50_ms, "ms");
        ctx.rows
            .push(section, &subject, None, "rename_to_accepted_p99", r.p99_ms, "ms");
    }
    if let Some(s) = &figures.swap {
        let subject = format!("new {:.0} MB kb.db", s.kb_mb);
        ctx.rows
            .push(section, &subject, None, "rename_to_served", s.serve_ms, "ms");
        ctx.rows.push(
            section,
            &subject,
            None,
            "token_during_swap",
            s.token_during_swap_ms,
            "ms",
        );
        ctx.rows.push(
            section,
            &subject,
            None,
            "peak_local_copies",
            s.peak_copies_bytes as f64 / 1e6,
            "MB",
        );
    }
    results.scale = Some(figures);
    Ok(())
}

// --- 5. nginx -----------------------------------------------------------------------------------

fn behind_nginx(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let mut instances = Vec::new();
    for n in 1..=3 {
        instances.push(ctx.ours(&format!("mcp-{n}"), &ctx.tokens_file.clone(), &ctx.demo_kb.clone())?);
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.addr.port()).collect();
    let addr = free_addrs(1)?[0];
    let dir = ctx.work().join("nginx");
    std::fs::create_dir_all(&dir)?;
    let shipped = std::fs::read_to_string(ctx.root.join("nginx/nginx.conf"))?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx::derive_config(&shipped, addr.port(), &ports, &dir)?)?;
    let nginx_command = || {
        let mut command = Command::new("nginx");
        command
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"));
        command
    };
    let check = nginx_command().arg("-t").output()?;
    if !check.status.success() {
        bail!(
            "nginx -t rejects the derived config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let mut command = nginx_command();
    command.args(["-g", "daemon off;"]);
    let proxy = Proc::start_terminable("nginx", command, addr, ctx.work())?;

    let mut compared = Vec::new();
    for (name, script) in [("tools/call", "tools_call.lua"), ("ping", "ping.lua")] {
        let direct = ctx.wrk(
            &format!("{name} direct (mcp-1)"),
            &ctx.load(script, instances[0].addr, "/mcp", LOAD_CONNECTIONS),
        )?;
        let proxied = ctx.wrk(
            &format!("{name} via nginx (3 instances)"),
            &ctx.load(script, proxy.addr, "/mcp", LOAD_CONNECTIONS),
        )?;
        ctx.rows.wrk(
            "5. nginx",
            &format!("{name} direct, one instance"),
            LOAD_CONNECTIONS,
            &direct,
        );
        ctx.rows.wrk(
            "5. nginx",
            &format!("{name} via nginx, three instances"),
            LOAD_CONNECTIONS,
            &proxied,
        );
        compared.push((name, direct, proxied));
    }
    for instance in &instances {
        ctx.process(results, instance, "ours behind nginx; after the nginx loads");
    }

    // SIGKILL one instance under load.
    let mut load = ctx.load("tools_call.lua", proxy.addr, "/mcp", LOAD_CONNECTIONS);
    load.duration = ctx.plan.failover_run;
    let child = load.spawn()?;
    std::thread::sleep(ctx.plan.kill_after);
    let killed = instances[1].name.clone();
    instances[1].kill();
    let failover = wrk::finish(child)?;
    ctx.log_wrk(&format!("tools/call via nginx, SIGKILL {killed}"), &load, &failover);
    ctx.rows.wrk(
        "5. nginx",
        "tools/call via nginx, one instance SIGKILLed",
        LOAD_CONNECTIONS,
        &failover,
    );
    ctx.rows.push(
        "5. nginx",
        "tools/call via nginx, one instance SIGKILLed",
        Some(LOAD_CONNECTIONS),
        "failed_requests",
        (failover.non_2xx + failover.socket_errors) as f64,
        "count",
    );
    results.nginx = Some(NginxFigure {
        compared,
        failover,
        killed,
        kill_after: ctx.plan.kill_after,
        run: ctx.plan.failover_run,
    });
    drop(proxy);
    Ok(())
}

// --- output -------------------------------------------------------------------------------------

/// Where and on what the run happened.
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    load_before: String,
    commit: String,
    tools: String,
    date: String,
}

// --- 7. Postgres tools ----------------------------------------------------------------------------

/// `query_database` through the server against the same primary-key lookup with a bare
/// tokio-postgres client, same database, same pool size (the server's default 4), same concurrency.
fn postgres_tools(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    const CONNECTIONS: u32 = 16;
    let script = std::fs::read_to_string(ctx.script("query_database.lua"))?;
    anyhow::ensure!(
        script.contains(pg::QUERY),
        "bench/query_database.lua must run pg::QUERY"
    );
    let cluster = std::panic::catch_unwind(pg::PgCluster::start)
        .map_err(|_| anyhow::anyhow!("cannot start PostgreSQL (apt-get install postgresql)"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    pg::seed(&runtime, &cluster.url())?;
    let url = cluster.url();
    let server = ctx.ours_with(
        "ours-pg",
        &ctx.tokens_file.clone(),
        Some(&ctx.demo_kb.clone()),
        &[("PGMCP_DATABASE_URL", &url)],
    )?;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"query_database","arguments":{{"sql":"{}"}}}}}}"#,
        pg::QUERY
    );
    let answer = post(server.addr, &ctx.token, &body)?;
    let sample = String::from_utf8_lossy(&answer.body).into_owned();
    anyhow::ensure!(
        sample.contains(r#""isError":false"#) && sample.contains("customer 4242"),
        "query_database did not answer the row: {sample}"
    );
    let load = ctx.load("query_database.lua", server.addr, "/mcp", CONNECTIONS);
    let ours = ctx.wrk("query_database", &load)?;
    if ours.non_2xx > 0 {
        bail!("query_database: {} non-2xx answers", ours.non_2xx);
    }
    ctx.process(results, &server, "ours with PostgreSQL; after query_database load");
    drop(server);
    let bare = pg::bare_load(&runtime, &url, 4, CONNECTIONS as usize, ctx.plan.duration)?;
    eprintln!(
        "  {:<40} c={:<3} {:>9} req/s  p50 {:>9}  p99 {:>9}",
        "bare tokio-postgres",
        CONNECTIONS,
        format!("{:.0}", bare.queries_per_s),
        ms(bare.p50_ms),
        ms(bare.p99_ms)
    );
    let section = "7. Postgres tools";
    ctx.rows.wrk(section, "ours query_database", CONNECTIONS, &ours);
    let c = Some(CONNECTIONS);
    ctx.rows.push(
        section,
        "bare tokio-postgres",
        c,
        "requests_per_s",
        bare.queries_per_s,
        "req/s",
    );
    ctx.rows
        .push(section, "bare tokio-postgres", c, "latency_p50", bare.p50_ms, "ms");
    ctx.rows
        .push(section, "bare tokio-postgres", c, "latency_p99", bare.p99_ms, "ms");
    results.postgres = Some(PgFigure {
        connections: CONNECTIONS,
        ours,
        bare,
        sample,
    });
    Ok(())
}

fn command_output(program: &str, args: &[&str], cwd: &Path) -> String {
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

impl Machine {
    fn describe(root: &Path) -> Machine {
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

    fn line(&self) -> String {
        format!(
            "{} ({} cores), {:.0} GiB RAM, Linux {}; load average {}",
            self.cpu, self.cores, self.memory_gib, self.kernel, self.load_before
        )
    }
}

fn status_like(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "—".into())
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b)
}

fn not_measured(results: &Results, section: &str) -> String {
    let reason = results
        .failures
        .iter()
        .find(|(name, _)| *name == section)
        .map(|(_, e)| e.lines().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "skipped".into());
    format!("Not measured: {reason}\n")
}

fn render_markdown(ctx: &Ctx, results: &Results, machine: &Machine, took: Duration, quick: bool) -> String {
    let plan = &ctx.plan;
    let mut md = String::from("# Benchmark results\n\n");
    let _ = writeln!(
        md,
        "{}{}, commit {}. Machine: {}. Tools: {}. Every process on loopback on the same {} cores as wrk \
         (2 threads, 1 for one connection); {} s per point; the whole run took {:.0} s. \
         Reproduce: `make bench`.\n",
        if quick {
            "**Quick run (smoke test, not figures).** "
        } else {
            ""
        },
        machine.date,
        machine.commit,
        machine.line(),
        machine.tools,
        machine.cores,
        plan.duration.as_secs(),
        took.as_secs_f64()
    );

    md.push_str("## 1. Throughput and latency\n\n");
    md.push_str(
        "`ours` = `postgres-mcp serve` (release, demo KB, one token); `baseline` = bare hyper answering the \
         bytes ours answered, after a constant-time bearer compare (the ceiling); `peer` = rmcp 3.11's \
         stateless `StreamableHttpService` (`json_response`, no session) behind the same token check, \
         with the same `search_knowledgebase` through our KB library. `ping` is the transport and auth \
         alone; `tools/call` searches \"replication lag\" (limit 3).\n\n",
    );
    let _ = writeln!(
        md,
        "Each point is the median (by req/s) of {} runs of {} s, the three servers taking turns in \
         each round.\n",
        plan.rounds,
        plan.duration.as_secs()
    );
    if results.throughput.is_empty() {
        md.push_str(&not_measured(results, "1. throughput"));
    } else {
        let mut rows = Vec::new();
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for &c in &plan.concurrencies {
                let Some(ours) = results.throughput.get(&(e, 0, c)) else {
                    continue;
                };
                let base = &results.throughput[&(e, 1, c)];
                let peer = &results.throughput[&(e, 2, c)];
                rows.push(vec![
                    endpoint.name.to_string(),
                    c.to_string(),
                    format!("**{}**", rps(ours.rps)),
                    format!("{} / {}", ms(ours.p50_ms), ms(ours.p99_ms)),
                    rps(base.rps),
                    format!("{} / {}", ms(base.p50_ms), ms(base.p99_ms)),
                    rps(peer.rps),
                    format!("{} / {}", ms(peer.p50_ms), ms(peer.p99_ms)),
                    ratio(ours.rps, base.rps),
                    format!("**{}**", ratio(ours.rps, peer.rps)),
                ]);
            }
        }
        md.push_str(&table(
            &[
                "endpoint",
                "conns",
                "ours req/s",
                "ours p50 / p99",
                "baseline req/s",
                "baseline p50 / p99",
                "peer req/s",
                "peer p50 / p99",
                "ours/baseline",
                "ours/peer",
            ],
            &rows,
        ));
    }

    md.push_str("\n## 2. Token check cost\n\n");
    let _ = writeln!(
        md,
        "Authenticated `ping` at {LOAD_CONNECTIONS} connections with N entries in tokens.yaml (the benchmark's \
         token in the middle); `verify` is `TokenSet::verify` in process (SHA-256, lookup among the \
         sorted digests by their leading bits, constant-time compare).\n"
    );
    if results.tokens.is_empty() {
        md.push_str(&not_measured(results, "2. token check"));
    } else {
        let rows: Vec<Vec<String>> = results
            .tokens
            .iter()
            .map(|t| {
                vec![
                    t.count.to_string(),
                    format!("{:.0} ns", t.verify_ns),
                    rps(t.load.rps),
                    format!("{} / {}", ms(t.load.p50_ms), ms(t.load.p99_ms)),
                    ms(t.start_to_healthy.as_secs_f64() * 1000.0),
                    mib(t.peak_rss_kib),
                ]
            })
            .collect();
        md.push_str(&table(
            &[
                "tokens",
                "verify (in process)",
                "ping req/s",
                "p50 / p99",
                "start→healthy",
                "peak RSS",
            ],
            &rows,
        ));
        if let (Some(first), Some(last)) = (results.tokens.first(), results.tokens.last()) {
            let _ = writeln!(
                md,
                "\n{} → {} tokens: {} of the req/s.",
                first.count,
                last.count,
                format!("{:.0} %", last.load.rps / first.load.rps * 100.0)
            );
        }
        if let Some(load) = &results.token_load {
            let verdict = |met: bool| if met { "met" } else { "**not met**" };
            let rss_met = load.rss_kib.is_some_and(|k| k as f64 / 1024.0 <= TOKEN_RSS_GOAL_MIB);
            let _ = writeln!(
                md,
                "\n{} tokens ({:.1} MB tokens.yaml as `token create` writes it):\n",
                load.count,
                load.file_bytes as f64 / 1e6
            );
            let rows = vec![
                vec![
                    format!(
                        "load: `TokenSet::parse` (parse + build), in process, median of {}",
                        load.runs_ms.len()
                    ),
                    format!(
                        "**{:.1} ms** ({:.1}–{:.1})",
                        load.median_ms(),
                        load.runs_ms[0],
                        load.runs_ms[load.runs_ms.len() - 1]
                    ),
                    format!(
                        "≤ {TOKEN_LOAD_GOAL_MS} ms: {}",
                        verdict(load.median_ms() <= TOKEN_LOAD_GOAL_MS)
                    ),
                ],
                vec![
                    "`serve --tokens`, no KB: VmRSS at the first 200 on `/health`".to_string(),
                    format!(
                        "**{}** (peak {}, start→healthy {})",
                        mib(load.rss_kib),
                        mib(load.peak_rss_kib),
                        ms(load.start_to_healthy.as_secs_f64() * 1000.0)
                    ),
                    format!("≤ {TOKEN_RSS_GOAL_MIB} MiB: {}", verdict(rss_met)),
                ],
            ];
            md.push_str(&table(&["figure", "measured", "goal"], &rows));
        }
    }

    md.push_str("\n## 3. Knowledge-base search, generated corpus\n\n");
    match &results.kb {
        None => md.push_str(&not_measured(results, "3. KB search")),
        Some(kb) => {
            let _ = writeln!(
                md,
                "{} generated Markdown documents ({:.1} MB; seeded, Zipf-like vocabulary of 20k words) → \
                 {} chunks, kb.db {:.1} MB, built by `kb::build` in {:.1} s. {} searches of 2–3 words \
                 (256 distinct queries, limit 5; {:.0} % with hits), one at a time in process:\n",
                kb.documents,
                kb.corpus_bytes as f64 / 1e6,
                kb.chunks,
                kb.db_bytes as f64 / 1e6,
                kb.build.as_secs_f64(),
                kb.searches,
                kb.with_hits * 100.0
            );
            let mut rows = vec![vec![
                "in process, 1 thread".to_string(),
                "—".into(),
                format!("{:.0} µs / {:.0} µs (mean {:.0} µs)", kb.p50_us, kb.p99_us, kb.mean_us),
                format!("{:.0} (1 core)", 1e6 / kb.mean_us),
            ]];
            for (c, result) in &kb.http {
                rows.push(vec![
                    "tools/call over HTTP, queries rotating".into(),
                    c.to_string(),
                    format!("{} / {}", ms(result.p50_ms), ms(result.p99_ms)),
                    rps(result.rps),
                ]);
            }
            md.push_str(&table(&["how", "conns", "p50 / p99", "searches/s"], &rows));
        }
    }

    md.push_str("\n## 4. Reload propagation\n\n");
    match &results.reload {
        None => md.push_str(&not_measured(results, "4. reload propagation")),
        Some(reload) => {
            let _ = writeln!(
                md,
                "`cargo bench -p postgres-mcp --bench reload_propagation` (RELOAD_ROUNDS={}): a new tokens.yaml \
                 renamed into place → first request accepted with the new token, over HTTP. notify = \
                 inotify + settle; poll = no events, the periodic check at its default 2 s interval \
                 (writes at random moments, so up to one interval).\n",
                reload.rounds
            );
            let rows: Vec<Vec<String>> = reload.modes.iter().map(|m| m.to_vec()).collect();
            md.push_str(&table(&["mode", "p50", "p95", "p99", "max"], &rows));
        }
    }

    md.push_str("\n## 5. Through nginx, three instances\n\n");
    match &results.nginx {
        None => md.push_str(&not_measured(results, "5. nginx")),
        Some(n) => {
            let _ = writeln!(
                md,
                "Debian's nginx with a config derived from `nginx/nginx.conf` (plain HTTP on loopback, no \
                 `limit_req`; upstream, keepalive, failover and logging as shipped) in front of three of \
                 ours, against one of them directly, {LOAD_CONNECTIONS} connections. On this 2-core machine nginx, \
                 three instances and wrk share the same cores, so the proxy's cost shows; on real hosts \
                 the instances add capacity.\n"
            );
            let rows: Vec<Vec<String>> = n
                .compared
                .iter()
                .map(|(name, direct, proxied)| {
                    vec![
                        name.to_string(),
                        rps(direct.rps),
                        format!("{} / {}", ms(direct.p50_ms), ms(direct.p99_ms)),
                        rps(proxied.rps),
                        format!("{} / {}", ms(proxied.p50_ms), ms(proxied.p99_ms)),
                        ratio(proxied.rps, direct.rps),
                    ]
                })
                .collect();
            md.push_str(&table(
                &[
                    "request",
                    "direct req/s",
                    "direct p50 / p99",
                    "via nginx req/s",
                    "via nginx p50 / p99",
                    "nginx/direct",
                ],
                &rows,
            ));
            let f = &n.failover;
            let _ = writeln!(
                md,
                "\nFailover: `tools/call` through nginx for {} s at {LOAD_CONNECTIONS} connections, {} SIGKILLed at \
                 {} s: **{} failed of {} requests** ({} non-2xx, {} socket errors), {} req/s overall. \
                 A POST already sent to the killed instance is not replayed elsewhere (nginx.conf: \
                 no `non_idempotent`), so the failures are the requests in flight on it; new \
                 connections to it are refused and retried on the others.",
                n.run.as_secs(),
                n.killed,
                n.kill_after.as_secs(),
                f.non_2xx + f.socket_errors,
                f.requests,
                f.non_2xx,
                f.socket_errors,
                rps(f.rps)
            );
        }
    }

    md.push_str("\n## 6. Memory and start-up\n\n");
    md.push_str("Peak RSS is VmHWM from /proc after the process's load; start→healthy is spawn to the first 200 on `/health`.\n\n");
    let rows: Vec<Vec<String>> = results
        .processes
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.role.clone(),
                ms(p.start_to_healthy.as_secs_f64() * 1000.0),
                mib(p.peak_rss_kib),
            ]
        })
        .collect();
    md.push_str(&table(&["process", "what", "start→healthy", "peak RSS"], &rows));

    md.push_str("\n## 7. Postgres tools\n\n");
    let _ = writeln!(
        md,
        "`query_database` with `{}` (a primary-key lookup on a 10k-row table in a throwaway local \
         cluster), through the server — MCP over HTTP, bearer check, `START TRANSACTION READ ONLY` + \
         timeouts, Parse/Describe, portal fetch, `to_json`, `ROLLBACK` — against the same statement \
         prepared once on a bare tokio-postgres client (4 connections, the server's default pool).\n",
        pg::QUERY
    );
    match &results.postgres {
        None => md.push_str(&not_measured(results, "7. Postgres tools")),
        Some(f) => {
            md.push_str(&table(
                &["client", "concurrency", "req/s", "p50 / p99"],
                &[
                    vec![
                        "ours: tools/call query_database".into(),
                        f.connections.to_string(),
                        rps(f.ours.rps),
                        format!("{} / {}", ms(f.ours.p50_ms), ms(f.ours.p99_ms)),
                    ],
                    vec![
                        "bare tokio-postgres".into(),
                        f.connections.to_string(),
                        rps(f.bare.queries_per_s),
                        format!("{} / {}", ms(f.bare.p50_ms), ms(f.bare.p99_ms)),
                    ],
                ],
            ));
            let _ = writeln!(
                md,
                "\nours / bare: **{}**. One answer: `{}`",
                ratio(f.ours.rps, f.bare.queries_per_s),
                f.sample.chars().take(240).collect::<String>()
            );
        }
    }

    md.push_str(&match &results.scale {
        Some(figures) => scale::render(figures),
        None => format!(
            "\n## 8. Production scale\n\n{}",
            not_measured(results, "8. production scale")
        ),
    });

    if !results.failures.is_empty() {
        md.push_str("\n## Not measured\n\n");
        for (section, error) in &results.failures {
            let _ = writeln!(md, "- {section}: {}", error.lines().next().unwrap_or_default());
        }
    }
    md
}

fn render_svg(ctx: &Ctx, results: &Results, machine: &Machine) -> String {
    let panels: Vec<svg::Panel> = ENDPOINTS
        .iter()
        .enumerate()
        .map(|(e, endpoint)| svg::Panel {
            title: endpoint.name.to_string(),
            series: SERVERS
                .iter()
                .enumerate()
                .map(|(s, server)| svg::Series {
                    name: match *server {
                        "ours" => "ours (postgres-mcp)".into(),
                        "baseline" => "baseline (bare hyper, same bytes)".into(),
                        _ => "peer (rmcp stateless)".into(),
                    },
                    color: COLORS[s],
                    points: ctx
                        .plan
                        .concurrencies
                        .iter()
                        .filter_map(|&c| results.throughput.get(&(e, s, c)).map(|r| (c, r.rps)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    svg::render(
        "Throughput vs concurrency",
        &format!(
            "wrk on loopback, median of {} runs of {} s per point, {} ({} cores shared by wrk and server), {}",
            ctx.plan.rounds,
            ctx.plan.duration.as_secs(),
            machine.cpu,
            machine.cores,
            machine.date
        ),
        &panels,
        &ctx.plan.concurrencies,
    )
}
