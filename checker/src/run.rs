//! The checks of a harness run beyond what its records call for: the set
//! workload's final read, the nodes' own invariant reports, nodes that
//! crashed on their own, and a run in which nothing completed. They live
//! here, with the other checks, so that a run's `results.json`,
//! `report.html`, `summary.json` and exit code all come from one
//! `FileResult`, and `analyze` finds what the run found.
//!
//! The harness writes the facts into the history as nemesis records:
//! `{"f":"crash","phase":"start"}` when a node exited without being told
//! to, `{"f":"self-report","phase":"report"}` when a node's own invariant
//! check counted a violation.

use crate::check::NamedCheck;
use crate::history::{EventKind, History, Op, OpResult, Record};
use crate::verdict::Verdict;
use std::collections::BTreeSet;

/// What a harness run asks of its history besides consensus, execution
/// and linearizability.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunChecks {
    /// The key of an append-only set (the `set` workload, whose elements
    /// are appended with a trailing `,`): every acknowledged add must be in
    /// the last read of the key. Jepsen checks sets this way because the
    /// linearizability search of one ever-growing value explodes.
    pub set_key: Option<String>,
}

/// The `f` of the nemesis record of a node that exited on its own.
pub const CRASH: &str = "crash";
/// The `f` of the nemesis record of a node's own invariant report.
pub const SELF_REPORT: &str = "self-report";

/// Every run check that applies to `history`.
pub fn check(history: &History, checks: &RunChecks) -> Vec<NamedCheck> {
    let mut out = Vec::new();
    if let Some(key) = &checks.set_key {
        out.push(set(history, key));
    }
    out.push(reported(history, SELF_REPORT, "node-self-reports", |v| v));
    out.push(reported(history, CRASH, "crashes", |v| {
        format!("node crashed on its own: {v}")
    }));
    out.push(progress(history));
    out
}

/// Invalid if the history has any nemesis record named `f`; each one's
/// value is a finding.
fn reported(history: &History, f: &str, name: &str, say: impl Fn(String) -> String) -> NamedCheck {
    let findings: Vec<String> = history
        .nemesis_events()
        .filter(|e| e.f == f)
        .map(|e| {
            say(match &e.value {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => format!("at {:.1} s", e.time as f64 / 1e9),
            })
        })
        .collect();
    let verdict = if findings.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    NamedCheck::new(name, verdict, findings)
}

/// A run in which no operation was acknowledged tested nothing: unknown.
fn progress(history: &History) -> NamedCheck {
    if history.client_events().any(|e| e.kind == EventKind::Ok) {
        NamedCheck::new("progress", Verdict::Valid, Vec::new())
    } else {
        NamedCheck::new(
            "progress",
            Verdict::Unknown,
            vec!["no operation completed: the run tested nothing".into()],
        )
    }
}

/// Jepsen's set check: every acknowledged add is in the final read.
fn set(history: &History, key: &str) -> NamedCheck {
    const NAME: &str = "set-final-read";
    let mut added = Vec::new();
    let mut final_read = None;
    for record in &history.records {
        let Record::Client(e) = record else { continue };
        match (&e.command.op, e.kind, &e.result) {
            (Op::Append { key: k, value }, EventKind::Ok, _) if k == key => {
                added.push(value.trim_end_matches(','))
            }
            (Op::Get { key: k }, EventKind::Ok, Some(OpResult::Value(v))) if k == key => {
                final_read = Some(v.as_deref().unwrap_or_default())
            }
            _ => {}
        }
    }
    let Some(read) = final_read else {
        let why = format!("set: no read of {key:?} completed");
        return NamedCheck::new(NAME, Verdict::Unknown, vec![why]);
    };
    let present: BTreeSet<&str> = read.split(',').filter(|s| !s.is_empty()).collect();
    let lost: Vec<&str> = added.into_iter().filter(|a| !present.contains(a)).collect();
    if lost.is_empty() {
        return NamedCheck::new(NAME, Verdict::Valid, Vec::new());
    }
    let first: Vec<&str> = lost.iter().take(5).copied().collect();
    let why = format!(
        "set: {} acknowledged adds missing from the final read, first {first:?}",
        lost.len()
    );
    NamedCheck::new(NAME, Verdict::Invalid, vec![why])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lines: &[&str]) -> History {
        History::from_jsonl_str(&lines.join("\n")).unwrap()
    }

    const ADD_A: [&str; 2] = [
        r#"{"type":"invoke","process":1,"time":10,"id":"1.1","f":"append","key":"set","value":"a,"}"#,
        r#"{"type":"ok","process":1,"time":20,"id":"1.1","f":"append","key":"set","value":"a,"}"#,
    ];

    fn read(result: &str) -> [String; 2] {
        [
            r#"{"type":"invoke","process":2,"time":30,"id":"2.1","f":"get","key":"set"}"#.into(),
            format!(
                r#"{{"type":"ok","process":2,"time":40,"id":"2.1","f":"get","key":"set","result":{result}}}"#
            ),
        ]
    }

    fn verdict_of(h: &History, name: &str) -> Verdict {
        let checks = RunChecks {
            set_key: Some("set".into()),
        };
        check(h, &checks)
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.verdict)
            .unwrap()
    }

    #[test]
    fn a_lost_add_is_invalid_and_a_kept_one_valid() {
        let kept = read(r#""a,""#);
        let lost = read(r#""b,""#);
        let h = |r: &[String; 2]| history(&[ADD_A[0], ADD_A[1], &r[0], &r[1]]);
        assert_eq!(verdict_of(&h(&kept), "set-final-read"), Verdict::Valid);
        assert_eq!(verdict_of(&h(&lost), "set-final-read"), Verdict::Invalid);
        assert_eq!(
            verdict_of(&history(&ADD_A), "set-final-read"),
            Verdict::Unknown
        );
    }

    #[test]
    fn crashes_self_reports_and_no_progress_are_judged() {
        let crash = r#"{"type":"nemesis","time":5,"f":"crash","phase":"start","value":"n2 exited: signal 6"}"#;
        let report = r#"{"type":"nemesis","time":6,"f":"self-report","phase":"report","value":"n1 refused 2 chosen values"}"#;
        let h = history(&[ADD_A[0], ADD_A[1], crash, report]);
        assert_eq!(verdict_of(&h, "crashes"), Verdict::Invalid);
        assert_eq!(verdict_of(&h, "node-self-reports"), Verdict::Invalid);
        assert_eq!(verdict_of(&h, "progress"), Verdict::Valid);
        let idle = history(&[ADD_A[0]]);
        assert_eq!(verdict_of(&idle, "crashes"), Verdict::Valid);
        assert_eq!(verdict_of(&idle, "progress"), Verdict::Unknown);
    }
}
