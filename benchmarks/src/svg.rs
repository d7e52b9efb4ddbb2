//! The throughput plot, written as SVG text by hand: a few polylines need no plotting library.
//!
//! One panel per endpoint (each with its own y scale: /health is an order of magnitude faster than a
//! search), concurrency levels evenly spaced on x, one line per server.

use std::fmt::Write;

/// One server's line in a panel.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// (connections, requests per second)
    pub points: Vec<(u32, f64)>,
}

pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

const PANEL_W: f64 = 340.0;
const PANEL_H: f64 = 260.0;
const LEFT: f64 = 58.0;
const TOP: f64 = 90.0;
const GAP: f64 = 70.0;

/// A round upper bound and step for the y axis: 5 steps of a round multiple of a power of ten.
fn axis(max: f64) -> (f64, f64) {
    let raw = (max.max(1.0) * 1.05) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step * 5.0, step)
}

fn label(value: f64) -> String {
    if value >= 1000.0 {
        let k = value / 1000.0;
        if k.fract() == 0.0 {
            format!("{k:.0}k")
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{value:.0}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Renders the panels side by side with one shared legend.
pub fn render(title: &str, subtitle: &str, panels: &[Panel], concurrencies: &[u32]) -> String {
    let width = LEFT + panels.len() as f64 * (PANEL_W + GAP);
    let height = TOP + PANEL_H + 60.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="40" fill="#555">{}</text>"##,
        escape(subtitle)
    );
    // Legend from the first panel's series.
    if let Some(first) = panels.first() {
        let mut x = LEFT;
        for series in &first.series {
            let _ = writeln!(
                svg,
                r#"<line x1="{x}" y1="54" x2="{}" y2="54" stroke="{}" stroke-width="3"/><text x="{}" y="58">{}</text>"#,
                x + 22.0,
                series.color,
                x + 28.0,
                escape(&series.name)
            );
            x += 36.0 + 7.0 * series.name.len() as f64;
        }
    }
    let slots = concurrencies.len().max(2) as f64 - 1.0;
    for (index, panel) in panels.iter().enumerate() {
        let x0 = LEFT + index as f64 * (PANEL_W + GAP);
        let y0 = TOP + PANEL_H;
        let max = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let (top, step) = axis(max);
        let x_of = |c: u32| {
            let slot = concurrencies.iter().position(|x| *x == c).unwrap_or(0) as f64;
            x0 + 20.0 + slot / slots * (PANEL_W - 40.0)
        };
        let y_of = |v: f64| y0 - v / top * PANEL_H;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-weight="bold" text-anchor="middle">{}</text>"#,
            x0 + PANEL_W / 2.0,
            TOP - 4.0,
            escape(&panel.title)
        );
        let mut tick = 0.0;
        while tick <= top + step / 2.0 {
            let y = y_of(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
                x0 + PANEL_W,
                x0 - 6.0,
                y + 4.0,
                label(tick)
            );
            tick += step;
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>"##
        );
        for c in concurrencies {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">{c}</text>"##,
                x_of(*c),
                y0 + 16.0
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">connections (wrk)</text>"##,
            x0 + PANEL_W / 2.0,
            y0 + 34.0
        );
        if index == 0 {
            let _ = writeln!(
                svg,
                r##"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" fill="#555">requests/s</text>"##,
                TOP + PANEL_H / 2.0,
                TOP + PANEL_H / 2.0
            );
        }
        for series in &panel.series {
            let points: Vec<String> = series
                .points
                .iter()
                .map(|(c, v)| format!("{:.1},{:.1}", x_of(*c), y_of(*v)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"/>"#,
                points.join(" "),
                series.color
            );
            for (c, v) in &series.points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {} req/s at {c}</title></circle>"#,
                    x_of(*c),
                    y_of(*v),
                    series.color,
                    escape(&series.name),
                    v.round()
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_is_round_and_covers_the_maximum() {
        assert_eq!(axis(62_000.0), (75_000.0, 15_000.0));
        assert_eq!(axis(6_800.0), (7_500.0, 1_500.0));
        assert_eq!(label(7_500.0), "7.5k");
    }

    #[test]
    fn renders_one_polyline_per_series() {
        let panel = Panel {
            title: "ping".into(),
            series: vec![Series {
                name: "ours".into(),
                color: "#d62728",
                points: vec![(1, 10.0), (16, 20.0), (64, 30.0)],
            }],
        };
        let svg = render("t", "s", &[panel], &[1, 16, 64]);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
