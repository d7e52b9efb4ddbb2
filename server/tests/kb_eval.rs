//! Issue #16 §Relevance: search quality on real documentation, measured as an assistant meets it.
//!
//! Builds a kb.db from PostgreSQL 15's HTML manual (Debian package `postgresql-doc-15`, installed by
//! scripts/setup.sh) with the `postgres-mcp kb build` binary, serves it with `postgres-mcp serve`,
//! and runs the shared evaluation script (`../shared/search-eval/eval.py`, beside the repository)
//! over MCP on two question sets: the shared one and this repository's own
//! (`tests/kb_eval/questions.tsv`, written to catch tuning that only fits the shared set) and a
//! held-out one (`tests/kb_eval/held_out.tsv`, written before any ranking experiment and never tuned
//! against: a change that helps the first two sets but not this one is fitting them). Prints
//! hit@5 and MRR@5 of each against issue #16's goals (hit@5 ≥ 0.9, MRR@5 ≥ 0.85) and fails below
//! the floors: the figures this engine reaches, less one question's worth of MRR. The goals are not
//! floors yet: two of the twelve shared questions share no word with their pages ("which queries
//! are slowest" → pg_stat_statements, "a consistent backup of one database to a file" → pg_dump),
//! which lexical bm25 cannot bridge without special-casing them; raise the floors to the goals
//! when the engine reaches them.
//!
//! Without the corpus or the script the test skips with a loud message on a developer machine, and
//! fails in CI (`CI` set, as `.ci/run` sets it): a relevance check that silently did not run is
//! worse than none.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use common::process::ServerProcess;
use postgres_mcp::auth::admin;

const CORPUS: &str = "/usr/share/doc/postgresql-doc-15/html";
/// Issue #16's goals, printed beside the figures.
const GOAL_HIT: f64 = 0.9;
const GOAL_MRR: f64 = 0.85;
/// (set, hit@5, MRR@5) below which the test fails: measured 0.83/0.83 (shared), 1.00/0.85
/// (repository) and 0.90/0.78 (held out) with the section and page ranks fused (`kb::store`), at
/// the time of writing.
const FLOORS: [(&str, f64, f64); 3] = [
    ("shared", 0.83, 0.80),
    ("repository", 0.93, 0.81),
    ("held-out", 0.90, 0.73),
];

/// The corpus (`PGMCP_EVAL_CORPUS` overrides the Debian path).
fn corpus() -> PathBuf {
    std::env::var_os("PGMCP_EVAL_CORPUS").map_or_else(|| PathBuf::from(CORPUS), PathBuf::from)
}

/// `shared/search-eval` in the nearest ancestor of the repository that has one (`PGMCP_SEARCH_EVAL`
/// overrides): `../shared/search-eval` for a checkout, further up for a worktree.
fn eval_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PGMCP_SEARCH_EVAL") {
        return Some(PathBuf::from(dir));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.canonicalize().unwrap_or(repo);
    repo.ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/search-eval"))
        .find(|dir| dir.join("eval.py").is_file())
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// hit@K and MRR@K from eval.py's last line (`hit@5=0.92 MRR@5=0.88 p50_ms=…`).
fn figures(output: &str) -> Option<(f64, f64)> {
    let last = output.lines().rev().find(|l| l.starts_with("hit@"))?;
    let value = |name: &str| -> Option<f64> {
        last.split_whitespace()
            .find_map(|field| field.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    Some((value("hit@5=")?, value("MRR@5=")?))
}

#[test]
fn postgresql_manual_questions_find_their_pages() {
    let corpus = corpus();
    let eval = eval_dir();
    let missing: Vec<String> = [
        (!corpus.join("index.html").is_file())
            .then(|| format!("the corpus {} (apt-get install postgresql-doc-15)", corpus.display())),
        eval.is_none()
            .then(|| "shared/search-eval/eval.py beside the repository (or PGMCP_SEARCH_EVAL)".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let message = format!("relevance evaluation cannot run: missing {}", missing.join(" and "));
        assert!(!in_ci(), "{message}");
        eprintln!("\n!!!!!!!!!! SKIPPED: {message} !!!!!!!!!!\n");
        return;
    }
    let eval = eval.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("kb.db");
    let started = Instant::now();
    let build = Command::new(env!("CARGO_BIN_EXE_postgres-mcp"))
        .arg("kb")
        .arg("build")
        .arg("--from")
        .arg(format!("{}:PostgreSQL:15", corpus.display()))
        .arg("--out")
        .arg(&kb)
        .output()
        .unwrap();
    let build_log = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "kb build failed: {build_log}");
    eprintln!(
        "kb build (debug binary): {:.1} s, kb.db {:.1} MB\n{build_log}",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&kb).unwrap().len() as f64 / 1e6
    );

    let tokens = dir.path().join("tokens.yaml");
    let token = admin::token_create(&tokens, "eval", None, None).unwrap();
    let server = ServerProcess::spawn(["--tokens".as_ref(), tokens.as_os_str(), "--kb".as_ref(), kb.as_os_str()]);
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let sets = [
        ("shared", eval.join("questions.tsv")),
        (
            "repository",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kb_eval/questions.tsv"),
        ),
        (
            "held-out",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kb_eval/held_out.tsv"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, questions) in sets {
        let run = Command::new(&python)
            .arg(eval.join("eval.py"))
            .arg(format!("{}/mcp", server.base))
            .arg(&token)
            .arg(&questions)
            .arg("5")
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&run.stdout);
        eprintln!(
            "=== {name} questions ({}):\n{output}{}",
            questions.display(),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(run.status.success(), "eval.py failed on the {name} set");
        let (hit, mrr) = figures(&output).unwrap_or_else(|| panic!("no figures in eval.py's output: {output}"));
        let (_, min_hit, min_mrr) = FLOORS.iter().find(|f| f.0 == name).copied().unwrap();
        let verdict = if hit >= GOAL_HIT && mrr >= GOAL_MRR {
            "goals met"
        } else {
            "GOALS NOT MET"
        };
        eprintln!(
            "RELEVANCE {name}: hit@5={hit:.2} MRR@5={mrr:.2} — {verdict} (goals {GOAL_HIT}/{GOAL_MRR}, floors {min_hit}/{min_mrr})"
        );
        if hit < min_hit - 1e-9 || mrr < min_mrr - 1e-9 {
            failures.push(format!(
                "{name}: hit@5={hit:.2} MRR@5={mrr:.2} (floors {min_hit}/{min_mrr})"
            ));
        }
    }
    assert!(failures.is_empty(), "relevance fell: {}", failures.join("; "));
}
