//! §6. Peak RSS and start->healthy of every process the other sections started.

use std::time::Duration;

use benchmarks::report::{ms, table};

use crate::{Results, ctx::Ctx, markdown::mib};

/// A process's figures for section 6.
pub struct ProcessFigure {
    pub name: String,
    pub role: String,
    pub start_to_healthy: Duration,
    pub peak_rss_kib: Option<u64>,
}

/// Each process's figures as CSV rows.
pub fn record(ctx: &mut Ctx, results: &Results) {
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
}

/// The section's table.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
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
}
