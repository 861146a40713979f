//! A linearizability violation as Porcupine shows it: the longest partial
//! linearization the search found (its last operations in the order they
//! take effect, each with the state after it), the operation that could
//! not be placed, every operation that could have gone next and why not,
//! and the window on a timeline with the linearization points joined.

use super::svg::{self, escape};
use super::timeline::{TimedOp, Timeline};
use crate::linear::NonLinearizable;
use std::fmt::Write;

/// One failure, explained.
pub fn render(h: &mut String, f: &NonLinearizable, timeline: Option<&Timeline>) {
    let _ = write!(
        h,
        "<div class=\"violation\"><h4>Object {} is not linearizable</h4><p>{}</p>",
        escape(&f.object),
        escape(&f.message)
    );
    partial(h, f);
    window(h, f);
    if let Some(t) = timeline {
        drawing(h, f, t);
    }
    h.push_str("</div>");
}

/// The partial linearization, numbered from its start.
fn partial(h: &mut String, f: &NonLinearizable) {
    let first = f.linearized + 1 - f.prefix_tail.len();
    let _ = write!(
        h,
        "<h4>Partial linearization</h4><p>The longest prefix the search could linearize holds {} of {} operations; \
         its last {}, in the order they take effect:</p>\
         <table class=\"partial\"><tr><th>#</th><th>process</th><th>operation</th><th>line</th><th>state after it</th></tr>",
        f.linearized,
        f.operations,
        f.prefix_tail.len()
    );
    for (i, o) in f.prefix_tail.iter().enumerate() {
        let state = f.prefix_states.get(i).map_or("", String::as_str);
        let _ = write!(
            h,
            "<tr class=\"linearized\"><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            first + i,
            o.process,
            escape(&o.description),
            o.line,
            escape(state)
        );
    }
    if let Some(b) = f.window.iter().find(|b| Some(b.op.line) == f.blocking_line) {
        let _ = write!(
            h,
            "<tr class=\"marked unplaced\"><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>could not be placed: {}</td></tr>",
            f.linearized + 1,
            b.op.process,
            escape(&b.op.description),
            b.op.line,
            escape(&b.reason)
        );
    }
    h.push_str("</table>");
}

/// Every operation that could have gone next, and why none can.
fn window(h: &mut String, f: &NonLinearizable) {
    let _ = write!(
        h,
        "<p>State after the prefix: <code>{}</code>. The operations that could go next, and why none can:</p>",
        escape(&f.state)
    );
    h.push_str("<table><tr><th>process</th><th>operation</th><th>line</th><th>why it cannot be placed</th></tr>");
    for b in &f.window {
        let class = if Some(b.op.line) == f.blocking_line {
            " class=\"marked\""
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr{class}><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            b.op.process,
            escape(&b.op.description),
            b.op.line,
            escape(&b.reason)
        );
    }
    h.push_str("</table>");
}

/// The prefix's tail and the window on a timeline, the linearization
/// points numbered and joined in order.
fn drawing(h: &mut String, f: &NonLinearizable, t: &Timeline) {
    let order: Vec<usize> = f.prefix_tail.iter().map(|o| o.line).collect();
    let marked: Vec<usize> = f.window.iter().map(|b| b.op.line).collect();
    let ops: Vec<&TimedOp> = t
        .ops
        .iter()
        .filter(|o| order.contains(&o.line) || marked.contains(&o.line))
        .collect();
    if ops.is_empty() {
        return;
    }
    let from = ops.iter().map(|o| o.call).min().unwrap_or(0);
    let to = ops
        .iter()
        .map(|o| o.ret.unwrap_or(o.call))
        .max()
        .unwrap_or(from)
        .max(from + 1);
    h.push_str(
        "<p class=\"note\">The window on a timeline: numbered dots are the partial linearization's points, \
         in order; outlined operations could go next; red: it must have taken effect before it returned, and cannot.</p>",
    );
    h.push_str(&svg::timeline(
        t,
        &ops,
        (from, to),
        &svg::Marks {
            marked: &marked,
            blocking: f.blocking_line,
            order: &order,
            first: f.linearized + 1 - order.len(),
        },
    ));
}
