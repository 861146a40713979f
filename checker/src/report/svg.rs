//! Hand-drawn SVG: per-process timelines with nemesis bands, latency
//! quantiles over time, and throughput. No scripts, no network.

use super::timeline::{Band, Ending, TimedOp, Timeline};
use std::fmt::Write;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const ROW: f64 = 14.0;

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Scale {
    from: u64,
    to: u64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        LEFT + (t.clamp(self.from, self.to) - self.from) as f64 / span * (WIDTH - LEFT - 10.0)
    }
}

/// Operations as bars on one row per process, between `from` and `to`,
/// under the nemesis bands. Operations whose line is in `marked` are
/// outlined; `blocking` (a line) is outlined in red.
pub fn timeline(
    timeline: &Timeline,
    ops: &[&TimedOp],
    (from, to): (u64, u64),
    marked: &[usize],
    blocking: Option<usize>,
) -> String {
    let scale = Scale {
        from,
        to: to.max(from + 1),
    };
    let mut processes: Vec<&str> = ops.iter().map(|o| o.process.as_str()).collect();
    processes.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    processes.dedup();
    let row_of = |p: &str| processes.iter().position(|q| *q == p).unwrap_or(0);
    let height = 30.0 + processes.len() as f64 * ROW + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" class="timeline">"#
    );
    draw_bands(&mut svg, &timeline.bands, &scale, height);
    if let Some(heal) = timeline.final_heal.filter(|&h| h >= from && h <= to) {
        let x = scale.x(heal);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="20" x2="{x:.1}" y2="{height}" stroke="#2a7" stroke-dasharray="4 3"><title>final heal</title></line>"##
        );
    }
    for (i, p) in processes.iter().enumerate() {
        let y = 30.0 + i as f64 * ROW;
        let _ = write!(
            svg,
            r##"<text x="4" y="{:.1}" class="axis">p{}</text>"##,
            y + 10.0,
            escape(p)
        );
    }
    for o in ops {
        let y = 30.0 + row_of(&o.process) as f64 * ROW + 1.0;
        let x1 = scale.x(o.call);
        let x2 = scale.x(o.ret.unwrap_or(to)).max(x1 + 2.0);
        let fill = match o.ending {
            Ending::Ok => "#6bb56b",
            Ending::Fail => "#e0a040",
            Ending::Info => "#b0b0b0",
        };
        let stroke = if blocking == Some(o.line) {
            r##" stroke="#d00" stroke-width="2.5""##
        } else if marked.contains(&o.line) {
            r##" stroke="#036" stroke-width="1.5""##
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<rect x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"{stroke}><title>process {} line {}: {}</title></rect>"#,
            x2 - x1,
            ROW - 3.0,
            escape(&o.process),
            o.line,
            escape(&o.label)
        );
        if marked.contains(&o.line) && x2 - x1 > 30.0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="oplabel">{}</text>"#,
                x1 + 2.0,
                y + ROW - 5.0,
                escape(&truncate(&o.label, ((x2 - x1) / 6.0) as usize))
            );
        }
    }
    axis(&mut svg, timeline, &scale, height - 4.0);
    svg.push_str("</svg>");
    svg
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn draw_bands(svg: &mut String, bands: &[Band], scale: &Scale, height: f64) {
    for b in bands {
        if b.end < scale.from || b.start > scale.to {
            continue;
        }
        let x1 = scale.x(b.start);
        let x2 = scale.x(b.end).max(x1 + 2.0);
        let _ = write!(
            svg,
            r##"<rect x="{x1:.1}" y="14" width="{:.1}" height="{:.1}" fill="#f3c6c6" opacity="0.55"><title>{}</title></rect><text x="{:.1}" y="12" class="band">{}</text>"##,
            x2 - x1,
            height - 14.0,
            escape(&b.label),
            x1 + 1.0,
            escape(&truncate(&b.label, ((x2 - x1) / 6.0).max(8.0) as usize))
        );
    }
}

fn axis(svg: &mut String, timeline: &Timeline, scale: &Scale, y: f64) {
    for i in 0..=5 {
        let t = scale.from + (scale.to - scale.from) * i / 5;
        let x = scale.x(t);
        let anchor = if i == 5 { "end" } else { "start" };
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}" class="axis" text-anchor="{anchor}">{}</text>"#,
            escape(&timeline.show(t))
        );
    }
}

/// p50, p95 and p99 latency per time bucket, with the maximum as dots.
pub fn latency(timeline: &Timeline) -> String {
    let height = 180.0;
    let scale = Scale {
        from: 0,
        to: timeline.end,
    };
    let top = timeline
        .buckets
        .iter()
        .filter_map(|b| b.latency.map(|l| l[2]))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let y = |v: u64| 20.0 + (height - 40.0) * (1.0 - (v as f64 / top).min(1.0));
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" class="plot">"#
    );
    draw_bands(&mut svg, &timeline.bands, &scale, height - 20.0);
    let colours = ["#2b6cb0", "#d69e2e", "#c53030"];
    for (q, colour) in colours.iter().enumerate() {
        let points: Vec<String> = timeline
            .buckets
            .iter()
            .filter_map(|b| {
                b.latency.map(|l| {
                    format!(
                        "{:.1},{:.1}",
                        scale.x(b.start + timeline.bucket_width / 2),
                        y(l[q])
                    )
                })
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
            points.join(" ")
        );
    }
    for b in &timeline.buckets {
        if let Some(l) = b.latency {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#555"><title>max {}</title></circle>"##,
                scale.x(b.start + timeline.bucket_width / 2),
                y(l[3]),
                duration(timeline, l[3])
            );
        }
    }
    let _ = write!(
        svg,
        r##"<text x="4" y="14" class="axis">latency (top {}); <tspan fill="#2b6cb0">p50</tspan> <tspan fill="#d69e2e">p95</tspan> <tspan fill="#c53030">p99</tspan>, dots: max (clipped)</text>"##,
        duration(timeline, top as u64)
    );
    axis(&mut svg, timeline, &scale, height - 4.0);
    svg.push_str("</svg>");
    svg
}

/// Completions per second (or per bucket), stacked by outcome.
pub fn throughput(timeline: &Timeline) -> String {
    let height = 160.0;
    let scale = Scale {
        from: 0,
        to: timeline.end,
    };
    let top = timeline
        .buckets
        .iter()
        .map(|b| b.ok + b.fail + b.info)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let per = |n: usize| {
        if timeline.nanos {
            n as f64 / (timeline.bucket_width as f64 / 1e9)
        } else {
            n as f64
        }
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" class="plot">"#
    );
    draw_bands(&mut svg, &timeline.bands, &scale, height - 20.0);
    let h = |n: usize| (height - 40.0) * n as f64 / top;
    for b in &timeline.buckets {
        let x = scale.x(b.start);
        let w = (scale.x(b.start + timeline.bucket_width) - x - 1.0).max(1.0);
        let mut base = height - 20.0;
        for (n, colour) in [(b.ok, "#6bb56b"), (b.fail, "#e0a040"), (b.info, "#b0b0b0")] {
            if n == 0 {
                continue;
            }
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"><title>{n} ({:.0}/s)</title></rect>"#,
                base - h(n),
                h(n),
                per(n)
            );
            base -= h(n);
        }
    }
    let unit = if timeline.nanos {
        "per second"
    } else {
        "per bucket"
    };
    let _ = write!(
        svg,
        r##"<text x="4" y="14" class="axis">completions {unit} (top {:.0}): <tspan fill="#3a3">ok</tspan> <tspan fill="#c80">fail</tspan> <tspan fill="#888">info</tspan></text>"##,
        per(top as usize)
    );
    axis(&mut svg, timeline, &scale, height - 4.0);
    svg.push_str("</svg>");
    svg
}

/// A latency for people.
pub fn duration(timeline: &Timeline, d: u64) -> String {
    if !timeline.nanos {
        return format!("{d} events");
    }
    let t = d as f64;
    match d {
        0..1_000 => format!("{d}ns"),
        1_000..1_000_000 => format!("{:.1}µs", t / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", t / 1e6),
        _ => format!("{:.2}s", t / 1e9),
    }
}
