//! `bench.svg`: throughput per run (etcd's beside ours) and latency per
//! run, readable in any browser, no plotting crate needed.

use super::{BenchReport, Mode};

const BAR: f64 = 110.0;

/// Two panels: throughput, then p50 and p99 latency with the slowest
/// request marked.
pub fn svg(report: &BenchReport) -> String {
    let runs = &report.runs;
    let bars = runs.len() + usize::from(report.etcd.is_some());
    let w = BAR * bars.max(1) as f64 + 90.0;
    let mut out = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='700' font-family='sans-serif' font-size='11'>\n"
    );
    let top_ops = runs
        .iter()
        .map(|r| r.ops_per_sec)
        .chain(report.etcd.iter().map(|e| e.writes_per_sec))
        .fold(1.0, f64::max)
        * 1.1;
    out += &panel_axes(
        20.0,
        "throughput per run, ops/s (etcd: writes/s)",
        top_ops,
        w,
    );
    let y = |v: f64, top: f64, base: f64| base - v / top * 260.0;
    for (i, r) in runs.iter().enumerate() {
        let x = 70.0 + BAR * i as f64;
        out += &bar(
            x,
            y(r.ops_per_sec, top_ops, 300.0),
            300.0,
            50.0,
            colour(r.mode).0,
        );
        out += &label(x, 316.0, &run_name(r));
        out += &label(x, 330.0, &format!("{:.0} ops/s", r.ops_per_sec));
    }
    if let Some(e) = &report.etcd {
        let x = 70.0 + BAR * runs.len() as f64;
        out += &bar(
            x,
            y(e.writes_per_sec, top_ops, 300.0),
            300.0,
            50.0,
            "#3c8d3c",
        );
        out += &label(x, 316.0, &format!("etcd {} 500c", e.version));
        out += &label(x, 330.0, &format!("{:.0} writes/s", e.writes_per_sec));
    }
    let top_ms = runs.iter().map(|r| r.p99_ms).fold(1.0, f64::max) * 1.1;
    out += &panel_axes(
        370.0,
        "latency per run: p50 (dark), p99 (light); ms",
        top_ms,
        w,
    );
    for (i, r) in runs.iter().enumerate() {
        let x = 70.0 + BAR * i as f64;
        let (dark, light) = colour(r.mode);
        out += &bar(x, y(r.p50_ms, top_ms, 650.0), 650.0, 40.0, dark);
        out += &bar(x + 42.0, y(r.p99_ms, top_ms, 650.0), 650.0, 40.0, light);
        out += &label(x, 666.0, &run_name(r));
        out += &label(x, 680.0, &format!("max {:.0} ms", r.max_ms));
    }
    if let Some(e) = &report.etcd {
        let x = 70.0 + BAR * runs.len() as f64;
        out += &label(x, 666.0, "etcd 500c");
        out += &label(x, 680.0, &format!("slowest {:.0} ms", e.slowest_ms));
    }
    out + "</svg>\n"
}

fn panel_axes(top: f64, title: &str, max: f64, w: f64) -> String {
    let base = top + 280.0;
    let mut out = format!(
        "<text x='60' y='{:.0}' font-size='13'>{title}</text>\n<line x1='60' y1='{base:.0}' x2='{:.0}' y2='{base:.0}' stroke='black'/>\n",
        top + 4.0,
        w - 10.0
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        out += &format!(
            "<text x='5' y='{:.0}'>{v:.0}</text>\n",
            base - v / max * 260.0 + 4.0
        );
    }
    out
}

fn bar(x: f64, y: f64, base: f64, width: f64, fill: &str) -> String {
    format!(
        "<rect x='{x:.0}' y='{y:.1}' width='{width:.0}' height='{:.1}' fill='{fill}'/>\n",
        (base - y).max(0.0)
    )
}

fn label(x: f64, y: f64, text: &str) -> String {
    format!("<text x='{x:.0}' y='{y:.0}'>{text}</text>\n")
}

fn run_name(r: &super::BenchResult) -> String {
    format!(
        "{} {}c {:.0}%",
        format!("{:?}", r.mode).to_lowercase(),
        r.clients,
        r.conflict * 100.0
    )
}

fn colour(mode: Mode) -> (&'static str, &'static str) {
    match mode {
        Mode::Fast => ("#1f6fb4", "#9cc5ea"),
        Mode::Classic => ("#b4521f", "#eab39c"),
    }
}
