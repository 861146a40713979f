//! Hand-drawn SVG: the scale and axis every drawing shares, and the
//! per-process timeline of a violation's window. No network.

use super::bands;
use super::timeline::{Ending, TimedOp, Timeline};
use std::fmt::Write;

/// Width of every drawing, and of the margin left of its plotting area.
pub const WIDTH: f64 = 1100.0;
pub const LEFT: f64 = 70.0;
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

/// Time (or event position) to x.
pub struct Scale {
    pub from: u64,
    pub to: u64,
}

impl Scale {
    pub fn x(&self, t: u64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        LEFT + (t.clamp(self.from, self.to) - self.from) as f64 / span * (WIDTH - LEFT - 10.0)
    }
}

/// What a violation's timeline marks.
pub struct Marks<'a> {
    /// Lines of the operations outlined (those that could go next).
    pub marked: &'a [usize],
    /// The line of the operation outlined in red (it could not be placed).
    pub blocking: Option<usize>,
    /// Lines of a partial linearization's operations, in order; their
    /// points are numbered from `first` and joined.
    pub order: &'a [usize],
    pub first: usize,
}

/// Rows of a timeline: one per process, in process order.
struct Rows<'a> {
    processes: Vec<&'a str>,
    top: f64,
}

impl<'a> Rows<'a> {
    fn of(ops: &[&'a TimedOp], top: f64) -> Self {
        let mut processes: Vec<&str> = ops.iter().map(|o| o.process.as_str()).collect();
        processes.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        processes.dedup();
        Rows { processes, top }
    }

    /// The top of the bar of `process`.
    fn y(&self, process: &str) -> f64 {
        let row = self.processes.iter().position(|q| *q == process);
        self.top + row.unwrap_or(0) as f64 * ROW + 1.0
    }
}

/// Operations as bars on one row per process, between `from` and `to`,
/// under the nemesis bands, marked as `marks` says.
pub fn timeline(
    timeline: &Timeline,
    ops: &[&TimedOp],
    (from, to): (u64, u64),
    marks: &Marks<'_>,
) -> String {
    let scale = Scale {
        from,
        to: to.max(from + 1),
    };
    let laid = bands::lay_out(&timeline.bands, &scale);
    let head = bands::header(&laid);
    let rows = Rows::of(ops, head + 12.0);
    let height = rows.top + rows.processes.len() as f64 * ROW + 24.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" class="timeline">"#
    );
    bands::draw(&mut svg, &laid, head, height - 20.0);
    if let Some(heal) = timeline.final_heal.filter(|&h| h >= from && h <= to) {
        let x = scale.x(heal);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{head:.1}" x2="{x:.1}" y2="{height}" stroke="#2a7" stroke-dasharray="4 3"><title>final heal</title></line>"##
        );
    }
    for p in &rows.processes {
        let _ = write!(
            svg,
            r##"<text x="4" y="{:.1}" class="axis">p{}</text>"##,
            rows.y(p) + 9.0,
            escape(p)
        );
    }
    for o in ops {
        bar(&mut svg, o, &scale, rows.y(&o.process), marks);
    }
    points(&mut svg, ops, &scale, &rows, marks);
    axis(&mut svg, timeline, &scale, height - 4.0);
    svg.push_str("</svg>");
    svg
}

/// One operation's bar, outlined if marked, labelled if marked and wide.
fn bar(svg: &mut String, o: &TimedOp, scale: &Scale, y: f64, marks: &Marks<'_>) {
    let x1 = scale.x(o.call);
    let x2 = scale.x(o.ret.unwrap_or(scale.to)).max(x1 + 2.0);
    let fill = match o.ending {
        Ending::Ok => "#6bb56b",
        Ending::Fail => "#e0a040",
        Ending::Info => "#b0b0b0",
    };
    let marked = marks.marked.contains(&o.line);
    let stroke = if marks.blocking == Some(o.line) {
        r##" stroke="#d00" stroke-width="2.5""##
    } else if marked {
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
    if (marked || marks.order.contains(&o.line)) && x2 - x1 > 30.0 {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="oplabel">{}</text>"#,
            x1 + 2.0,
            y + ROW - 5.0,
            escape(&truncate(&o.label, ((x2 - x1) / 6.0) as usize))
        );
    }
}

/// The partial linearization's points: each operation takes effect no
/// earlier than its call and than the point before it (so the points run
/// left to right in order), and no later than its return.
fn points(svg: &mut String, ops: &[&TimedOp], scale: &Scale, rows: &Rows<'_>, marks: &Marks<'_>) {
    let mut at = 0u64;
    let mut path = Vec::new();
    let mut dots = String::new();
    for (i, line) in marks.order.iter().enumerate() {
        let Some(o) = ops.iter().find(|o| o.line == *line) else {
            continue;
        };
        at = at.max(o.call).min(o.ret.unwrap_or(u64::MAX));
        let (x, y) = (scale.x(at), rows.y(&o.process) + (ROW - 3.0) / 2.0);
        path.push(format!("{x:.1},{y:.1}"));
        let _ = write!(
            dots,
            r##"<g class="linpoint"><circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#036"/><text x="{x:.1}" y="{:.1}" class="axis" text-anchor="middle" fill="#036">{}</text></g>"##,
            y - 6.0,
            marks.first + i
        );
    }
    if path.len() > 1 {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#036" stroke-width="1" stroke-dasharray="3 2"/>"##,
            path.join(" ")
        );
    }
    svg.push_str(&dots);
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Ticks at round times (1, 2 or 5 times a power of ten of the unit)
/// along the bottom of a drawing.
pub fn axis(svg: &mut String, timeline: &Timeline, scale: &Scale, y: f64) {
    let span = (scale.to - scale.from).max(1) as f64;
    let step = (super::plots::nice_step(span, 8.0).round() as u64).max(1);
    let mut t = scale.from.div_ceil(step) * step;
    while t <= scale.to {
        let x = scale.x(t);
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}" class="axis" text-anchor="middle">{}</text>"#,
            escape(&tick(timeline, t, step))
        );
        t += step;
    }
}

/// A round time for an axis: seconds with as many decimals as the step
/// needs, or an event position.
fn tick(timeline: &Timeline, t: u64, step: u64) -> String {
    if !timeline.nanos {
        return format!("{t}");
    }
    let decimals = match step {
        1_000_000_000.. => 0,
        100_000_000.. => 1,
        10_000_000.. => 2,
        _ => 3,
    };
    format!("{:.*}s", decimals, t as f64 / 1e9)
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
