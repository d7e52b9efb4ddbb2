//! results.md: the run's header, each section's part (rendered by its module), what was not measured.

use std::{fmt::Write as _, time::Duration};

use crate::ctx::Ctx;
use crate::machine::Machine;
use crate::{
    Results, behind_nginx, kb_manual, kb_path, kb_search, postgres, processes, production_scale, reload, throughput,
    tokens,
};

pub fn render_markdown(ctx: &Ctx, results: &Results, machine: &Machine, took: Duration, quick: bool) -> String {
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

    throughput::render(&mut md, ctx, results);
    tokens::render(&mut md, ctx, results);
    kb_search::render(&mut md, ctx, results);
    reload::render(&mut md, ctx, results);
    behind_nginx::render(&mut md, ctx, results);
    processes::render(&mut md, ctx, results);
    postgres::render(&mut md, ctx, results);
    production_scale::render(&mut md, ctx, results);
    kb_path::render(&mut md, ctx, results);
    kb_manual::render(&mut md, ctx, results);

    if !results.failures.is_empty() {
        md.push_str("\n## Not measured\n\n");
        for (section, error) in &results.failures {
            let _ = writeln!(md, "- {section}: {}", error.lines().next().unwrap_or_default());
        }
    }
    md
}

pub fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "—".into())
}

pub fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b)
}

pub fn not_measured(results: &Results, section: &str) -> String {
    let reason = results
        .failures
        .iter()
        .find(|(name, _)| *name == section)
        .map(|(_, e)| e.lines().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "skipped".into());
    format!("Not measured: {reason}\n")
}

/// A section's heading, then `body` with its figures, or why there are none.
pub fn section<T>(
    md: &mut String,
    results: &Results,
    heading: &str,
    name: &str,
    figures: Option<&T>,
    body: impl FnOnce(&mut String, &T),
) {
    let _ = writeln!(md, "\n## {heading}\n");
    match figures {
        Some(figures) => body(md, figures),
        None => md.push_str(&not_measured(results, name)),
    }
}
