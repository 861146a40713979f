//! The run's latencies and rates, as Jepsen draws them (`latency-raw` and
//! `rate`): every completed operation a point on a log latency axis, and
//! completions per second over time, one series per operation kind and
//! outcome, over the nemesis bands.

use super::bands;
use super::svg::{self, escape, Scale, LEFT, WIDTH};
use super::timeline::{Ending, TimedOp, Timeline};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Height of a plotting area.
const PLOT: f64 = 240.0;
/// Points drawn on the latency plot at most; past it every series is
/// thinned evenly (and the page says so).
const MAX_POINTS: usize = 40_000;
/// Time slices of the rate plot.
const SLICES: u64 = 100;
/// One colour per operation kind, in order of first sight.
const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The completed operations of one kind and outcome.
pub struct Series<'a> {
    pub kind: &'a str,
    pub ending: Ending,
    pub colour: &'static str,
    pub ops: Vec<&'a TimedOp>,
}

/// The completed operations, one series per kind and outcome, kinds in
/// name order and outcomes ok, fail, info.
pub fn series(t: &Timeline) -> Vec<Series<'_>> {
    let mut groups: BTreeMap<(&str, Ending), Vec<&TimedOp>> = BTreeMap::new();
    for o in t.ops.iter().filter(|o| o.ret.is_some()) {
        groups.entry((&o.kind, o.ending)).or_default().push(o);
    }
    let mut kinds: Vec<&str> = groups.keys().map(|(k, _)| *k).collect();
    kinds.dedup();
    groups
        .into_iter()
        .map(|((kind, ending), ops)| Series {
            kind,
            ending,
            colour: COLOURS[kinds.iter().position(|k| *k == kind).unwrap_or(0) % COLOURS.len()],
            ops,
        })
        .collect()
}

/// The marker of one point: a dot for ok, a cross for fail, a hollow
/// diamond for info (Jepsen's shapes, in spirit).
fn marker(ending: Ending, x: f64, y: f64) -> String {
    match ending {
        Ending::Ok => format!("M{x:.1} {y:.1}h0"),
        Ending::Fail => format!("M{:.1} {:.1}l5 5m0 -5l-5 5", x - 2.5, y - 2.5),
        Ending::Info => format!("M{x:.1} {:.1}l3 3l-3 3l-3 -3z", y - 3.0),
    }
}

fn stroke(ending: Ending) -> &'static str {
    match ending {
        Ending::Ok => r#"stroke-width="3.2" stroke-linecap="round" fill="none""#,
        Ending::Fail => r#"stroke-width="1.3" fill="none""#,
        Ending::Info => r#"stroke-width="1" fill="none""#,
    }
}

/// Decades of a log axis covering `lo..=hi`: (first, last) exponents.
pub fn decades(lo: u64, hi: u64) -> (i32, i32) {
    let d0 = (lo.max(1) as f64).log10().floor() as i32;
    let d1 = (hi.max(1) as f64).log10().ceil() as i32;
    (d0, d1.max(d0 + 1))
}

/// A power of ten of the timeline's unit, for a tick.
fn power_label(t: &Timeline, exp: i32) -> String {
    let v = 10u64.pow(exp.max(0) as u32);
    if !t.nanos {
        return format!("{v}");
    }
    match v {
        0..1_000 => format!("{v}ns"),
        1_000..1_000_000 => format!("{}µs", v / 1_000),
        1_000_000..1_000_000_000 => format!("{}ms", v / 1_000_000),
        _ => format!("{}s", v / 1_000_000_000),
    }
}

/// The frame of one plot: bands, time axis, and where the plot area lies.
struct Frame {
    svg: String,
    scale: Scale,
    top: f64,
    bottom: f64,
}

fn frame(t: &Timeline, class: &str, legend_rows: usize) -> Frame {
    let scale = Scale { from: 0, to: t.end };
    let laid = bands::lay_out(&t.bands, &scale);
    let top = bands::header(&laid) + 8.0;
    let bottom = top + PLOT;
    let height = bottom + 24.0 + legend_rows as f64 * 16.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" class="plot {class}">"#
    );
    bands::draw(&mut svg, &laid, top, bottom);
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#999"/>"##,
        WIDTH - 10.0
    );
    svg::axis(&mut svg, t, &scale, bottom + 14.0);
    Frame {
        svg,
        scale,
        top,
        bottom,
    }
}

/// Legend entries: (marker or line, text), laid left to right in rows.
fn legend(svg: &mut String, y0: f64, entries: &[(String, String)]) {
    let (mut x, mut y) = (LEFT, y0);
    for (mark, text) in entries {
        let w = 30.0 + text.chars().count() as f64 * 6.2;
        if x + w > WIDTH - 10.0 {
            x = LEFT;
            y += 16.0;
        }
        let _ = write!(
            svg,
            r#"<g transform="translate({x:.1},{y:.1})">{mark}<text x="22" y="4" class="axis">{}</text></g>"#,
            escape(text)
        );
        x += w;
    }
}

fn legend_rows(entries: &[(String, String)]) -> usize {
    let (mut rows, mut x) = (1, LEFT);
    for (_, text) in entries {
        let w = 30.0 + text.chars().count() as f64 * 6.2;
        if x + w > WIDTH - 10.0 {
            rows += 1;
            x = LEFT;
        }
        x += w;
    }
    rows
}

/// Gridlines of a log axis: labelled ones at the powers of ten
/// (`logtick`), faint ones at 2 and 5 times them.
fn log_grid(svg: &mut String, t: &Timeline, (d0, d1): (i32, i32), y: &dyn Fn(u64) -> f64) {
    for exp in d0..=d1 {
        for (m, major) in [(1u64, true), (2, false), (5, false)] {
            let v = 10u64.pow(exp.max(0) as u32) * m;
            if (!major && exp == d1) || v == 0 {
                continue;
            }
            let yy = y(v);
            let (class, colour) = if major {
                ("logtick", "#ccc")
            } else {
                ("minortick", "#eee")
            };
            let _ = write!(
                svg,
                r##"<line class="{class}" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{colour}"/>"##,
                WIDTH - 10.0
            );
            if major {
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{}</text>"#,
                    LEFT - 4.0,
                    yy + 3.0,
                    power_label(t, exp)
                );
            }
        }
    }
}

/// Every completed operation's latency over the time it completed, on a
/// log axis.
pub fn latency_raw(t: &Timeline) -> String {
    let all = series(t);
    let latency = |o: &TimedOp| o.ret.unwrap_or(o.call).saturating_sub(o.call).max(1);
    let lats = all.iter().flat_map(|s| s.ops.iter().map(|o| latency(o)));
    let (lo, hi) = lats.fold((u64::MAX, 1), |(lo, hi), l| (lo.min(l), hi.max(l)));
    let (d0, d1) = decades(lo, hi);
    let entries: Vec<(String, String)> = all
        .iter()
        .map(|s| {
            let mark = marker(s.ending, 8.0, 0.0);
            let mark = format!(
                r#"<path d="{mark}" stroke="{}" {}/>"#,
                s.colour,
                stroke(s.ending)
            );
            (
                mark,
                format!("{} {} ({})", s.kind, s.ending.name(), s.ops.len()),
            )
        })
        .collect();
    let mut f = frame(t, "latency-raw", legend_rows(&entries));
    let (top, bottom) = (f.top, f.bottom);
    let y = |v: u64| {
        let frac = ((v as f64).log10() - d0 as f64) / (d1 - d0) as f64;
        bottom - (bottom - top) * frac.clamp(0.0, 1.0)
    };
    log_grid(&mut f.svg, t, (d0, d1), &y);
    let total: usize = all.iter().map(|s| s.ops.len()).sum();
    let stride = total.div_ceil(MAX_POINTS).max(1);
    for s in &all {
        let mut d = String::new();
        for o in s.ops.iter().step_by(stride) {
            d.push_str(&marker(
                s.ending,
                f.scale.x(o.ret.unwrap_or(o.call)),
                y(latency(o)),
            ));
        }
        let _ = write!(
            f.svg,
            r#"<path class="series" data-kind="{}" data-outcome="{}" data-points="{}" d="{d}" stroke="{}" {}><title>{} {}</title></path>"#,
            escape(s.kind),
            s.ending.name(),
            s.ops.len().div_ceil(stride),
            s.colour,
            stroke(s.ending),
            escape(s.kind),
            s.ending.name()
        );
    }
    legend(&mut f.svg, bottom + 34.0, &entries);
    f.svg.push_str("</svg>");
    if stride > 1 {
        f.svg.push_str(&format!(
            "<p class=\"note\">Every {stride}th operation of each series is drawn ({total} completed).</p>"
        ));
    }
    f.svg
}

/// A round step that cuts `top` into about `ticks` pieces: 1, 2 or 5 times
/// a power of ten.
pub fn nice_step(top: f64, ticks: f64) -> f64 {
    let raw = (top / ticks).max(f64::MIN_POSITIVE);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// Labelled gridlines of a linear axis, every `step` up to `top`.
fn linear_grid(svg: &mut String, top: f64, step: f64, y: &dyn Fn(f64) -> f64) {
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{v}</text>"##,
            y(v),
            WIDTH - 10.0,
            y(v),
            LEFT - 4.0,
            y(v) + 3.0
        );
        v += step;
    }
}

/// Completions per second (per slice for histories without times) over
/// time, one line per kind and outcome.
pub fn rate(t: &Timeline) -> String {
    let all = series(t);
    let width = t.end.div_ceil(SLICES).max(1);
    let per = if t.nanos { 1e9 / width as f64 } else { 1.0 };
    let counts: Vec<Vec<f64>> = all
        .iter()
        .map(|s| {
            let mut c = vec![0.0; SLICES as usize];
            for o in &s.ops {
                let i = (o.ret.unwrap_or(o.call) / width).min(SLICES - 1) as usize;
                c[i] += per;
            }
            c
        })
        .collect();
    let peak = counts.iter().flatten().copied().fold(1.0, f64::max);
    let step = nice_step(peak, 5.0);
    let top_value = (peak / step).ceil() * step;
    let entries: Vec<(String, String)> = all
        .iter()
        .map(|s| {
            let mark = format!(
                r#"<path d="M0 0h16" stroke="{}" stroke-width="2" {}/>"#,
                s.colour,
                dash(s.ending)
            );
            (mark, format!("{} {}", s.kind, s.ending.name()))
        })
        .collect();
    let mut f = frame(t, "rate", legend_rows(&entries));
    let (top, bottom) = (f.top, f.bottom);
    let y = |v: f64| bottom - (bottom - top) * (v / top_value);
    linear_grid(&mut f.svg, top_value, step, &y);
    for (s, c) in all.iter().zip(&counts) {
        let points: Vec<String> = c
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "{:.1},{:.1}",
                    f.scale.x(i as u64 * width + width / 2),
                    y(*n)
                )
            })
            .collect();
        let _ = write!(
            f.svg,
            r#"<polyline class="series" data-kind="{}" data-outcome="{}" points="{}" fill="none" stroke="{}" stroke-width="1.5" {}><title>{} {}</title></polyline>"#,
            escape(s.kind),
            s.ending.name(),
            points.join(" "),
            s.colour,
            dash(s.ending),
            escape(s.kind),
            s.ending.name()
        );
    }
    let unit = if t.nanos { "ops/s" } else { "ops per slice" };
    let _ = write!(
        f.svg,
        r#"<text x="4" y="{:.1}" class="axis">{unit}</text>"#,
        top + 10.0
    );
    legend(&mut f.svg, bottom + 34.0, &entries);
    f.svg.push_str("</svg>");
    f.svg
}

fn dash(ending: Ending) -> &'static str {
    match ending {
        Ending::Ok => "",
        Ending::Fail => r#"stroke-dasharray="6 3""#,
        Ending::Info => r#"stroke-dasharray="1.5 2.5""#,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::Band;

    fn op(kind: &str, call: u64, latency: u64, ending: Ending, line: usize) -> TimedOp {
        TimedOp {
            process: (line % 4).to_string(),
            kind: kind.into(),
            call,
            ret: Some(call + latency),
            ending,
            label: format!("{kind} x"),
            line,
        }
    }

    /// Milliseconds to seconds of latency, three kinds, three outcomes.
    fn run() -> Timeline {
        let mut ops = Vec::new();
        for i in 0..300u64 {
            let (kind, ending) = match i % 5 {
                0 => ("get", Ending::Ok),
                1 => ("put", Ending::Ok),
                2 => ("put", Ending::Info),
                3 => ("cas", Ending::Fail),
                _ => ("cas", Ending::Ok),
            };
            let latency = if i == 7 {
                4_000_000_000
            } else {
                1_000_000 + i * 10_000
            };
            ops.push(op(kind, i * 30_000_000, latency, ending, i as usize + 1));
        }
        ops.push(TimedOp {
            ret: None,
            ..op("get", 5, 1, Ending::Info, 999)
        });
        Timeline {
            nanos: true,
            end: 13_000_000_000,
            total_ops: ops.len(),
            ops,
            bands: vec![Band {
                start: 1_000_000_000,
                end: 3_000_000_000,
                label: "partition n1 | n2 n3".into(),
            }],
            ..Timeline::default()
        }
    }

    fn series_of(svg: &str) -> Vec<(String, String)> {
        svg.match_indices("class=\"series\" data-kind=\"")
            .map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                let kind = &rest[..rest.find('"').unwrap()];
                let rest = &rest[rest.find("data-outcome=\"").unwrap() + 14..];
                (kind.to_owned(), rest[..rest.find('"').unwrap()].to_owned())
            })
            .collect()
    }

    #[test]
    fn latency_is_on_a_log_axis_with_one_series_per_kind_and_outcome() {
        let t = run();
        let svg = latency_raw(&t);
        let want = [
            ("cas", "ok"),
            ("cas", "fail"),
            ("get", "ok"),
            ("put", "ok"),
            ("put", "info"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, o)| (k.to_string(), o.to_string()))
            .collect();
        assert_eq!(series_of(&svg), want);
        // 1ms to 4s: the decades 1ms, 10ms, 100ms, 1s, 10s.
        assert_eq!(svg.matches("class=\"logtick\"").count(), 5);
        for label in [">1ms<", ">10ms<", ">100ms<", ">1s<", ">10s<"] {
            assert!(svg.contains(label), "tick {label}");
        }
        assert!(
            svg.contains("data-points=\"60\""),
            "every operation is a point"
        );
        assert!(svg.contains("put info (60)"), "the legend counts");
        assert!(svg.contains("partition n1 | n2 n3"), "the band is labelled");
    }

    #[test]
    fn rate_has_one_line_per_kind_and_outcome() {
        let t = run();
        let svg = rate(&t);
        assert_eq!(series_of(&svg).len(), 5);
        // 60 operations of each series over 9 s, in slices of 130 ms:
        // about 7.7 ops/s per slice holding one.
        assert!(svg.contains(">ops/s<"));
        assert_eq!(svg.matches("<polyline").count(), 5);
    }

    #[test]
    fn log_decades_cover_the_values() {
        assert_eq!(decades(1_000_000, 4_000_000_000), (6, 10));
        assert_eq!(decades(5, 5), (0, 1), "at least one decade");
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(13.0, 5.0), 5.0);
        assert_eq!(nice_step(13.0, 8.0), 2.0);
    }
}
