//! §4. Reload propagation: a new tokens.yaml renamed into place to the first request accepted with
//! the new token, by running `benches/reload_propagation.rs` and reading its table.

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use anyhow::bail;
use benchmarks::report::table;

use crate::{Results, ctx::Ctx, markdown::section};

pub struct ReloadFigure {
    pub rounds: usize,
    /// mode, p50, p95, p99, max (as printed by the bench).
    pub modes: Vec<[String; 5]>,
}

/// Runs `benches/reload_propagation.rs` and reads its table.
pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rounds = ctx.plan.reload_rounds;
    eprintln!("  cargo bench -p benchmarks --bench reload_propagation (RELOAD_ROUNDS={rounds})");
    let output = Command::new(cargo)
        .current_dir(&ctx.root)
        .args(["bench", "--locked", "-p", "benchmarks", "--bench", "reload_propagation"])
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

/// The section's table.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    let figures = results.reload.as_ref();
    section(
        md,
        results,
        "4. Reload propagation",
        "4. reload propagation",
        figures,
        |md, reload| {
            let _ = writeln!(
                md,
                "`cargo bench -p benchmarks --bench reload_propagation` (RELOAD_ROUNDS={}): a new tokens.yaml \
             renamed into place → first request accepted with the new token, over HTTP. notify = \
             inotify + settle; poll = no events, the periodic check at its default 2 s interval \
             (writes at random moments, so up to one interval).\n",
                reload.rounds
            );
            let rows: Vec<Vec<String>> = reload.modes.iter().map(|m| m.to_vec()).collect();
            md.push_str(&table(&["mode", "p50", "p95", "p99", "max"], &rows));
        },
    );
}
