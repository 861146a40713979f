//! The index page: one table row per run, newest first. Self-contained
//! HTML (no scripts, fonts or styles from the network), so it reads the
//! same on a machine without one.

use super::files::href_segment;
use super::runs::{fault_kinds, Run};
/// The report's escaping, for HTML content and attribute values alike.
pub use gpaxos_checker::report::svg::escape;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em}\
table{border-collapse:collapse}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;\
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right}\
.v{font-weight:600;padding:.1em .5em;border-radius:3px;color:#fff}\
.valid{background:#2e7d32}.invalid{background:#c62828}.unknown{background:#f9a825;color:#000}\
.none{background:#9e9e9e}a{margin-right:.6em}small{color:#666}";

/// The whole index page for `runs` (already newest first).
pub fn table(runs: &[Run]) -> String {
    let rows: String = runs.iter().map(row).collect();
    let empty = if runs.is_empty() {
        "<p>No runs in this store yet: <code>gpaxos-harness test</code> makes one.</p>"
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=en><meta charset=utf-8>\
         <title>gpaxos runs</title><style>{STYLE}</style>\
         <h1>gpaxos runs</h1><p>{} run(s), newest first.</p>{empty}\
         <table><thead><tr><th>test</th><th>time (UTC)</th><th>verdict</th>\
         <th>ok</th><th>fail</th><th>info</th><th>faults</th><th>files</th></tr></thead>\
         <tbody>{rows}</tbody></table></html>",
        runs.len()
    )
}

fn row(run: &Run) -> String {
    let base = format!(
        "/{}/",
        run.path
            .split('/')
            .map(href_segment)
            .collect::<Vec<_>>()
            .join("/")
    );
    let (verdict, counts, faults) = match &run.summary {
        Some(s) => (
            verdict_badge(&s.verdict),
            format!(
                "<td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>",
                s.ok, s.fail, s.info
            ),
            faults_cell(&s.faults),
        ),
        None => (
            "<span class=\"v none\">not judged</span>".to_owned(),
            "<td></td><td></td><td></td>".to_owned(),
            "<td></td>".to_owned(),
        ),
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{verdict}</td>{counts}{faults}<td>{}</td></tr>",
        escape(&run.test),
        escape(&readable_stamp(&run.stamp)),
        links(run, &base)
    )
}

fn verdict_badge(verdict: &str) -> String {
    let class = match verdict {
        "valid" | "invalid" | "unknown" => verdict,
        _ => "none",
    };
    format!("<span class=\"v {class}\">{}</span>", escape(verdict))
}

/// The count and kinds of faults; every fault's line on hover.
fn faults_cell(faults: &[String]) -> String {
    let kinds = fault_kinds(faults).join(", ");
    let title = faults
        .iter()
        .map(|f| f.trim())
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "<td title=\"{}\">{} <small>{}</small></td>",
        escape(&title),
        faults.len(),
        escape(&kinds)
    )
}

fn links(run: &Run, base: &str) -> String {
    let mut out = String::new();
    let mut link = |target: &str, text: &str| {
        out.push_str(&format!(
            "<a href=\"{}{}\">{}</a>",
            escape(base),
            escape(target),
            escape(text)
        ));
    };
    if run.report {
        link("report.html", "report");
    }
    if run.history {
        link("history.jsonl", "history");
    }
    for log in &run.logs {
        link(log, log.trim_start_matches("nodes/"));
    }
    link("", "files");
    out
}

/// `20261206T231005` as `2026-12-06 23:10:05`; other names as they are.
fn readable_stamp(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() == 15 && b[8] == b'T' && stamp.chars().filter(char::is_ascii_digit).count() == 14 {
        format!(
            "{}-{}-{} {}:{}:{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    } else {
        stamp.to_owned()
    }
}
