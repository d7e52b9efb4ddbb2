//! The benchmark runner: `cargo run --release -p benchmarks --bin bench -- [--quick] [--out DIR]`
//! (`make bench` writes to `benchmarks/results`).
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
//! 4. reload propagation, by running `benches/reload_propagation.rs`;
//! 5. nginx with three instances against one instance direct, and a SIGKILL under load;
//! 6. peak RSS and start->healthy of every process started;
//! 7. the Postgres tools against a bare tokio-postgres client;
//! 8. production scale (`benchmarks::scale`);
//! 9. the knowledge-base request path on the demo KB: ours against the same statement in a bare
//!    rusqlite loop, and `tools/call` against the peer.
//!
//! One module per section, each with its figures, its `measure` and its part of results.md
//! (`render`); [`ctx`] holds what they share, [`markdown`] assembles the report. The wrk scripts are
//! in `benchmarks/wrk/`.
//!
//! A section that fails is reported as not measured (with the reason) and the others still run;
//! the exit status is then non-zero. `--section N` runs only section N (repeatable; the others are
//! reported as skipped), so pass `--out` elsewhere than the committed results. `--only kb` is
//! `--section 3 --section 9 --section 10`: the knowledge-base figures alone (~3 min).

mod behind_nginx;
mod ctx;
mod kb_manual;
mod kb_path;
mod kb_search;
mod machine;
mod markdown;
mod postgres;
mod processes;
mod production_scale;
mod reload;
mod throughput;
mod tokens;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use benchmarks::{fixtures, report::Rows, scale, wrk::WrkResult};
use clap::Parser;
use postgres_mcp::auth::tokens::generate_token;

use ctx::Ctx;
use machine::Machine;

#[derive(Parser)]
#[command(about = "Benchmarks: ours vs a bare-hyper ceiling vs rmcp's stateless server, on loopback")]
struct Args {
    /// Short runs (2 s per point, smaller corpus, few reload rounds): a smoke test, not figures.
    #[arg(long)]
    quick: bool,
    /// Where results.md, results.csv, throughput.svg and wrk-output.txt go.
    #[arg(long, default_value = "benchmarks/results")]
    out: PathBuf,
    /// Use the release binaries as they are (by default the runner builds them first).
    #[arg(long)]
    no_build: bool,
    /// Run only this section, by number (`--section 2`); repeatable. Default: all.
    #[arg(long = "section", value_name = "N")]
    sections: Vec<String>,
    /// Run only a group of sections: `kb` (3, 9 and 10, the knowledge-base figures).
    #[arg(long, value_name = "GROUP", value_parser = ["kb"])]
    only: Option<String>,
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

/// A section's measurement: it adds its figures to the results (and CSV rows to the context).
type Section = fn(&mut Ctx, &mut Results) -> anyhow::Result<()>;

/// Every section's figures; a section that did not run leaves its part empty.
#[derive(Default)]
struct Results {
    /// Keyed by (endpoint, server, connections) indices of `throughput::ENDPOINTS` and `SERVERS`.
    throughput: BTreeMap<(usize, usize, u32), WrkResult>,
    tokens: Vec<tokens::TokenFigure>,
    token_load: Option<tokens::TokenLoadFigure>,
    kb: Option<kb_search::KbFigure>,
    manual: Option<kb_manual::ManualFigure>,
    kb_path: Option<kb_path::PathFigure>,
    reload: Option<reload::ReloadFigure>,
    nginx: Option<behind_nginx::NginxFigure>,
    postgres: Option<postgres::PgFigure>,
    processes: Vec<processes::ProcessFigure>,
    scale: Option<scale::Figures>,
    failures: Vec<(&'static str, String)>,
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

fn run(mut args: Args) -> anyhow::Result<bool> {
    if args.only.as_deref() == Some("kb") {
        args.sections.extend(["3", "9", "10"].map(String::from));
    }
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
    // Quiet logs (a log line per request would be measured too: the access log's own switch, as
    // `log.level` does not cover it; none of the servers compared with ours writes one) and a
    // failed-auth limiter that a benchmark cannot trip; everything else is the shipped default.
    // §9 measures the default access log beside.
    std::fs::write(
        &config,
        "log:\n  level: warn\n  access:\n    mode: \"off\"\nauth:\n  rate_limit:\n    failures: 100000000\n",
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

    let sections: [(&'static str, Section); 9] = [
        ("1. throughput", throughput::measure),
        ("2. token check", tokens::measure),
        ("3. KB search", kb_search::measure),
        ("4. reload propagation", reload::measure),
        ("5. nginx", behind_nginx::measure),
        ("7. Postgres tools", postgres::measure),
        ("8. production scale", production_scale::measure),
        ("9. KB request path", kb_path::measure),
        ("10. KB, PostgreSQL manual", kb_manual::measure),
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
    processes::record(&mut ctx, &results);

    let markdown = markdown::render_markdown(&ctx, &results, &machine, started.elapsed(), args.quick);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("results.md"), &markdown)?;
    std::fs::write(out.join("results.csv"), ctx.rows.csv())?;
    std::fs::write(
        out.join("throughput.svg"),
        throughput::render_svg(&ctx, &results, &machine),
    )?;
    std::fs::write(out.join("wrk-output.txt"), &ctx.wrk_log)?;
    println!("{markdown}");
    eprintln!(
        "bench: done in {:.0} s; wrote {}/results.md, results.csv, throughput.svg, wrk-output.txt",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(results.failures.is_empty())
}

/// wrk and nginx come from Debian; benchmarks/setup.sh installs them when missing.
fn ensure_tools(root: &Path) -> anyhow::Result<()> {
    let missing = |tool: &str| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if missing("wrk") || missing("nginx") {
        eprintln!("bench: wrk or nginx missing, running benchmarks/setup.sh");
        let status = Command::new(root.join("benchmarks/setup.sh")).status()?;
        if !status.success() {
            bail!("benchmarks/setup.sh failed ({status})");
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
