//! `report.html`: one page, nothing fetched, that shows a person every
//! verdict, every violation explained, and the run on a timeline. The one
//! script on it (inline) only draws the zoomable timeline.

use super::svg::{self, escape};
use super::timeline::Timeline;
use super::{divergence, linearization, plots, zoom};
use crate::check::FileResult;
use crate::check::NamedCheck;
use crate::consensus::ConsensusResult;
use crate::execution::ExecutionResult;
use crate::latency::QUANTILES;
use crate::linear::LinearResult;
use crate::verdict::Verdict;
use std::fmt::Write;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 36px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin-top: 22px; } h4 { margin: 10px 0 4px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; color: #fff; font-weight: 600; }
.valid { background: #2f855a; } .invalid { background: #c53030; } .unknown { background: #b7791f; }
table { border-collapse: collapse; margin: 6px 0; } td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } tr.marked td { background: #fde2e2; font-weight: 600; }
.violation { border-left: 4px solid #c53030; padding: 4px 12px; margin: 10px 0; background: #fff8f8; }
.note { color: #666; } code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
svg { display: block; margin: 8px 0; background: #fcfcfc; border: 1px solid #eee; }
svg text.axis { font: 10px sans-serif; fill: #555; } svg text.band { font: 9px sans-serif; fill: #a33; }
svg text.oplabel { font: 9px monospace; fill: #111; }
tr.differs td { background: #fff1d6; } tr.unplaced td { border-top: 2px solid #c53030; }
.zoom canvas { border: 1px solid #eee; cursor: grab; display: block; margin: 4px 0; }
.zoombar button { font-size: 12px; } .zoomtip { min-height: 1.4em; color: #333; }
"#;

fn badge(v: Verdict) -> String {
    format!(r#"<span class="badge {v}">{v}</span>"#)
}

/// The whole report.
pub fn render(results: &[FileResult]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>gpaxos-checker report</title><style>{STYLE}</style></head><body>"
    );
    h.push_str("<h1>gpaxos-checker report</h1><table><tr><th>verdict</th><th>file</th><th>format</th><th>checks</th><th>time</th></tr>");
    for (i, r) in results.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><a href=\"#f{i}\">{}</a></td><td>{}</td><td>{}</td><td>{:.1} ms</td></tr>",
            badge(r.verdict),
            escape(&r.file),
            escape(&r.format),
            checks(r),
            r.elapsed_us as f64 / 1000.0
        );
    }
    h.push_str("</table>");
    for (i, r) in results.iter().enumerate() {
        file(&mut h, i, r, r.timeline.as_ref());
    }
    if results.iter().any(|r| r.timeline.is_some()) {
        let _ = write!(h, "<script>{}</script>", zoom::SCRIPT);
    }
    h.push_str("</body></html>\n");
    h
}

fn checks(r: &FileResult) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &r.consensus {
        parts.push(format!("consensus {}", badge(c.verdict)));
    }
    if let Some(e) = r.execution.as_ref().filter(|e| e.judged) {
        parts.push(format!("execution {}", badge(e.verdict)));
    }
    if let Some(l) = &r.linearizability {
        parts.push(format!("linearizability {}", badge(l.verdict)));
    }
    for c in &r.checks {
        parts.push(format!("{} {}", escape(&c.name), badge(c.verdict)));
    }
    parts.join(" ")
}

/// The checks of a harness run, each with what it found.
fn run_checks(h: &mut String, checks: &[NamedCheck]) {
    if checks.is_empty() {
        return;
    }
    h.push_str("<h3>Run checks</h3><table><tr><th>check</th><th>verdict</th><th>found</th></tr>");
    for c in checks {
        let found: Vec<String> = c.findings.iter().map(|f| escape(f)).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            badge(c.verdict),
            found.join("<br>")
        );
    }
    h.push_str("</table>");
}

fn file(h: &mut String, i: usize, r: &FileResult, timeline: Option<&Timeline>) {
    let _ = write!(
        h,
        "<h2 id=\"f{i}\">{} {}</h2>",
        badge(r.verdict),
        escape(&r.file)
    );
    if let Some(e) = &r.error {
        let _ = write!(
            h,
            "<div class=\"violation\"><h4>Could not check</h4><p class=\"mono\">{}</p></div>",
            escape(e)
        );
    }
    run_checks(h, &r.checks);
    if let Some(c) = &r.consensus {
        consensus(h, c);
    }
    if let Some(e) = r.execution.as_ref().filter(|e| e.judged) {
        execution(h, e);
    }
    if let Some(l) = &r.linearizability {
        linearizability(h, l, timeline);
    }
    if let Some(t) = timeline {
        run(h, i, t);
    }
}

fn consensus(h: &mut String, c: &ConsensusResult) {
    let _ = write!(
        h,
        "<h3>Consensus requirements (Section 4.3) {}</h3>",
        badge(c.verdict)
    );
    if !c.learners.is_empty() {
        h.push_str("<table><tr><th>learner</th><th>observations</th><th>learned</th><th>runs</th><th>final</th></tr>");
        for l in &c.learners {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&l.node),
                l.observations,
                l.learned,
                l.runs,
                if l.has_final { "yes" } else { "no" }
            );
        }
        h.push_str("</table>");
    }
    for v in &c.violations {
        let _ = write!(
            h,
            "<div class=\"violation\"><h4>{}</h4><p>{}</p>",
            v.property,
            escape(&v.message)
        );
        if let Some(s) = &v.side_by_side {
            divergence::render(h, s);
        }
        h.push_str("</div>");
    }
    for (p, n) in &c.unexplained {
        let _ = write!(
            h,
            "<p class=\"note\">{n} more {p} violation(s) not shown.</p>"
        );
    }
    for n in c.unknown_reasons.iter().chain(&c.notes) {
        let _ = write!(h, "<p class=\"note\">{}</p>", escape(n));
    }
}

fn execution(h: &mut String, e: &ExecutionResult) {
    let _ = write!(
        h,
        "<h3>Execution {} <span class=\"note\">(replayed {} commands of {}; compared {} client results)</span></h3>",
        badge(e.verdict),
        e.replayed,
        escape(e.learner.as_deref().unwrap_or("?")),
        e.compared
    );
    if !e.mismatches.is_empty() {
        h.push_str("<table><tr><th>command</th><th>process</th><th>position</th><th>client saw</th><th>replay gives</th></tr>");
        for (i, m) in e.mismatches.iter().enumerate() {
            let class = if i == 0 { " class=\"marked\"" } else { "" };
            let _ = write!(
                h,
                "<tr{class}><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.id.0),
                m.process,
                m.position.map_or("not learned".into(), |p| p.to_string()),
                escape(&m.client_saw),
                escape(&m.replayed)
            );
        }
        h.push_str("</table>");
        if e.mismatch_count > e.mismatches.len() {
            let _ = write!(
                h,
                "<p class=\"note\">{} more not shown.</p>",
                e.mismatch_count - e.mismatches.len()
            );
        }
    }
    for n in e.unknown_reasons.iter().chain(&e.notes) {
        let _ = write!(h, "<p class=\"note\">{}</p>", escape(n));
    }
}

fn linearizability(h: &mut String, l: &LinearResult, timeline: Option<&Timeline>) {
    let _ = write!(
        h,
        "<h3>Linearizability {} <span class=\"note\">({} operations, {} independent objects, {:.1} ms)</span></h3>",
        badge(l.verdict),
        l.operations,
        l.objects,
        l.elapsed_us as f64 / 1000.0
    );
    for f in &l.failures {
        linearization::render(h, f, timeline);
    }
    for u in &l.unknown {
        let _ = write!(h, "<p class=\"note\">unknown: {}</p>", escape(u));
    }
}

/// The whole run: every operation on a zoomable timeline, then latencies
/// and rates per kind and outcome, then the percentiles the summary shows.
fn run(h: &mut String, i: usize, t: &Timeline) {
    h.push_str("<h3>The run</h3>");
    if t.total_ops > t.ops.len() {
        let _ = write!(
            h,
            "<p class=\"note\">The timeline holds {} of {} operations (the first ones, and every one a violation names).</p>",
            t.ops.len(),
            t.total_ops
        );
    }
    h.push_str(&zoom::timeline(t, &format!("timeline{i}")));
    h.push_str("<h4>Latency of every operation (log scale), by kind and outcome</h4>");
    h.push_str(&plots::latency_raw(t));
    h.push_str("<h4>Rate of completions, by kind and outcome</h4>");
    h.push_str(&plots::rate(t));
    percentiles(h, t);
}

/// p50, p95, p99 and max of the time from invocation to `ok` or `fail`,
/// from `latency`, as the harness's summary computes them.
fn percentiles(h: &mut String, t: &Timeline) {
    let p = t.percentiles;
    if p.count == 0 {
        return;
    }
    let _ = write!(
        h,
        "<table class=\"percentiles\"><tr><th>latency of {} ok and fail operations</th>",
        p.count
    );
    for (name, _) in QUANTILES {
        let _ = write!(h, "<th>{name}</th>");
    }
    h.push_str("</tr><tr><td></td>");
    for ((name, _), v) in QUANTILES.iter().zip(p.values()) {
        // In the summary's own words (`p99 12.3 ms`), so the two read alike.
        let shown = if t.nanos {
            format!("{:.1} ms", v as f64 / 1e6)
        } else {
            svg::duration(t, v)
        };
        let _ = write!(
            h,
            "<td data-quantile=\"{name}\" data-value=\"{v}\">{shown}</td>"
        );
    }
    h.push_str("</tr></table>");
}
