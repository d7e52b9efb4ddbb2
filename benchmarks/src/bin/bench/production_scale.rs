//! §8. Production scale: the measurements of `benchmarks::scale`, run from the runner.

use std::path::Path;

use benchmarks::scale;

use crate::{Results, ctx::Ctx, markdown::not_measured};

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    // The server keeps its private KB copies under $TMPDIR (kb/local_copies.rs).
    let copies = ctx.work().join("tmp");
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

/// The section, or why it was not measured.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    md.push_str(&match &results.scale {
        Some(figures) => scale::render(figures),
        None => format!(
            "\n## 8. Production scale\n\n{}",
            not_measured(results, "8. production scale")
        ),
    });
}
