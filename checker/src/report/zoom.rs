//! The whole run on one timeline a person can zoom and pan: every
//! operation, as data in the page, drawn on a canvas by a short inline
//! script (wheel or buttons to zoom, drag to pan, double-click to see it
//! all, hover for the operation). Nothing is fetched.

use super::timeline::{Ending, Timeline};
use serde_json::json;

/// The script every zoomable timeline of a page shares; it finds them by
/// their `zoom` class and reads each one's data from the JSON beside it.
pub const SCRIPT: &str = include_str!("zoom.js");

/// The data of a timeline, as the script reads it: processes, then every
/// operation as `[row, call, return or -1, 0 ok | 1 fail | 2 info, label,
/// line]`, the bands as `[start, end, label]`, and the final heal.
pub fn data(t: &Timeline) -> serde_json::Value {
    let mut processes: Vec<&str> = t.ops.iter().map(|o| o.process.as_str()).collect();
    processes.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    processes.dedup();
    let rows: std::collections::HashMap<&str, usize> =
        processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let ops: Vec<serde_json::Value> = t
        .ops
        .iter()
        .map(|o| {
            let row = rows.get(o.process.as_str()).copied().unwrap_or(0);
            let ending = match o.ending {
                Ending::Ok => 0,
                Ending::Fail => 1,
                Ending::Info => 2,
            };
            let ret = o.ret.map_or(-1, |r| r as i64);
            json!([row, o.call, ret, ending, o.label, o.line])
        })
        .collect();
    let bands: Vec<serde_json::Value> = t
        .bands
        .iter()
        .map(|b| json!([b.start, b.end, b.label]))
        .collect();
    json!({
        "nanos": t.nanos,
        "end": t.end,
        "total": t.total_ops,
        "processes": processes,
        "ops": ops,
        "bands": bands,
        "heal": t.final_heal,
    })
}

/// The timeline's element and its data; `id` must be unique in the page.
pub fn timeline(t: &Timeline, id: &str) -> String {
    // `<` only occurs inside JSON strings, where `\u003c` means the same;
    // escaped, no label can close the script element.
    let json = data(t).to_string().replace('<', "\\u003c");
    let rows = t
        .ops
        .iter()
        .map(|o| o.process.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let row = (640.0 / rows.max(1) as f64).clamp(4.0, 14.0);
    // Room for three rows of band labels above and the axis below.
    let height = 40.0 + rows as f64 * row + 36.0;
    format!(
        r#"<div class="zoom" id="{id}" data-ops="{}" data-row="{row:.1}"><div class="zoombar"><button type="button" data-act="in">zoom in</button> <button type="button" data-act="out">zoom out</button> <button type="button" data-act="reset">whole run</button> <span class="note">wheel to zoom, drag to pan, double-click for the whole run, hover for an operation; #zoom=FROM,TO (seconds) in the address opens a range</span> <span class="zoomstatus">the timeline needs JavaScript</span></div><canvas width="1100" height="{height:.0}"></canvas><div class="zoomtip mono"></div></div><script type="application/json" id="{id}-data">{json}</script>"#,
        t.ops.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::TimedOp;

    fn op(process: &str, call: u64, ret: Option<u64>, line: usize) -> TimedOp {
        TimedOp {
            process: process.into(),
            kind: "put".into(),
            call,
            ret,
            ending: if ret.is_some() {
                Ending::Ok
            } else {
                Ending::Info
            },
            label: format!("put x </script>{line}"),
            line,
        }
    }

    #[test]
    fn every_operation_is_in_the_data_and_no_label_closes_the_script() {
        let ops: Vec<TimedOp> = (0..5000)
            .map(|i| {
                op(
                    &(i % 13).to_string(),
                    i * 10,
                    (i % 7 != 0).then_some(i * 10 + 25),
                    i as usize + 1,
                )
            })
            .collect();
        let t = Timeline {
            nanos: true,
            end: 50_000,
            total_ops: ops.len(),
            ops,
            ..Timeline::default()
        };
        let html = timeline(&t, "tl0");
        assert_eq!(
            html.matches("</script>").count(),
            1,
            "only the data's own end"
        );
        let start = html.find("id=\"tl0-data\">").unwrap() + "id=\"tl0-data\">".len();
        let end = html.rfind("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        let ops = data["ops"].as_array().unwrap();
        assert_eq!(ops.len(), 5000, "every operation, not a sample");
        let mut lines: Vec<u64> = ops.iter().map(|o| o[5].as_u64().unwrap()).collect();
        lines.sort_unstable();
        assert_eq!(lines, (1..=5000).collect::<Vec<_>>());
        assert_eq!(data["processes"].as_array().unwrap().len(), 13);
        assert_eq!(ops[0][2], -1, "an operation without a return is open");
        assert_eq!(ops[3][0], 3, "row of process 3");
        assert_eq!(ops[3][4], "put x </script>4", "labels survive the escape");
    }
}
