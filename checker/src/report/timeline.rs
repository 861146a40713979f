//! What the report draws: operations on a per-process timeline, nemesis
//! bands, and the latencies of the run's operations.

use crate::fxhash::{FxHashMap, FxHashSet};
use crate::history::{EventKind, History, JepsenEvent, Process, Record};
use crate::latency::{Latencies, Percentiles};

/// Operations kept for the whole-run timeline at most (every operation of
/// a harness run; a synthetic history of millions would make a page no
/// browser opens). The rest are counted, and the ones a violation names are
/// always kept.
const MAX_KEPT: usize = 250_000;

/// How an operation ended, for colouring it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ending {
    Ok,
    Fail,
    /// Indeterminate, or never completed.
    Info,
}

impl Ending {
    /// Jepsen's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Ending::Ok => "ok",
            Ending::Fail => "fail",
            Ending::Info => "info",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TimedOp {
    pub process: String,
    /// The operation's kind (`get`, `put`, `cas`, `transfer`...).
    pub kind: String,
    pub call: u64,
    /// `None`: no completion by the end of the history.
    pub ret: Option<u64>,
    pub ending: Ending,
    pub label: String,
    /// The invocation's line in the history file.
    pub line: usize,
}

/// A fault, from its start to its stop (or to the end of the history).
#[derive(Clone, Debug)]
pub struct Band {
    pub start: u64,
    pub end: u64,
    pub label: String,
}

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Nanoseconds, or event positions for histories without times.
    pub nanos: bool,
    pub end: u64,
    /// Sorted by call.
    pub ops: Vec<TimedOp>,
    pub total_ops: usize,
    pub bands: Vec<Band>,
    /// When the final heal happened, if it did.
    pub final_heal: Option<u64>,
    /// Of the time from each invocation to its `ok` or `fail`, as the
    /// harness's summary computes them.
    pub percentiles: Percentiles,
}

/// The latencies from invocations to their `ok` or `fail`: what the
/// summary, the report and the bench call latency.
pub fn completed_latencies(ops: &[TimedOp]) -> Latencies {
    ops.iter()
        .filter(|o| o.ending != Ending::Info)
        .filter_map(|o| Some(o.ret?.saturating_sub(o.call)))
        .collect()
}

impl Timeline {
    fn finish(
        mut ops: Vec<TimedOp>,
        mut bands: Vec<Band>,
        final_heal: Option<u64>,
        nanos: bool,
        focus: &FxHashSet<usize>,
    ) -> Self {
        ops.sort_by_key(|o| (o.call, o.line));
        let end = ops
            .iter()
            .map(|o| o.ret.unwrap_or(o.call))
            .chain(bands.iter().map(|b| b.start))
            .chain(final_heal)
            .max()
            .unwrap_or(0)
            .max(1);
        for b in &mut bands {
            b.end = b.end.min(end);
        }
        let percentiles = completed_latencies(&ops).percentiles();
        let total_ops = ops.len();
        if ops.len() > MAX_KEPT {
            let mut kept = 0;
            ops.retain(|o| {
                kept += 1;
                kept <= MAX_KEPT || focus.contains(&o.line)
            });
        }
        Timeline {
            nanos,
            end,
            ops,
            total_ops,
            bands,
            final_heal,
            percentiles,
        }
    }

    /// The timeline of a project history. `focus` lines are drawn even
    /// past the cap.
    pub fn of_history(history: &History, focus: &FxHashSet<usize>) -> Self {
        let mut ops: Vec<TimedOp> = Vec::new();
        let mut open: FxHashMap<&str, usize> = FxHashMap::default();
        let mut bands: Vec<Band> = Vec::new();
        let mut started: FxHashMap<&str, usize> = FxHashMap::default();
        let mut final_heal = None;
        for (record, &line) in history.records.iter().zip(&history.lines) {
            match record {
                Record::Client(e) if e.kind == EventKind::Invoke => {
                    open.insert(&e.command.id.0, ops.len());
                    ops.push(TimedOp {
                        process: e.process.to_string(),
                        kind: e.command.op.name().to_owned(),
                        call: e.time,
                        ret: None,
                        ending: Ending::Info,
                        // The id is long and in the history at `line`;
                        // what the operation does is what a person scans.
                        label: op_text(&e.command),
                        line,
                    });
                }
                Record::Client(e) => {
                    if let Some(i) = open.remove(e.command.id.0.as_str()) {
                        ops[i].ret = Some(e.time);
                        ops[i].ending = match e.kind {
                            EventKind::Ok => Ending::Ok,
                            EventKind::Fail => Ending::Fail,
                            _ => Ending::Info,
                        };
                    }
                }
                Record::Nemesis(n) if n.is_final_heal() => final_heal = Some(n.time),
                Record::Nemesis(n) => match n.phase.as_deref() {
                    Some("stop") => {
                        if let Some(i) = started.remove(n.f.as_str()) {
                            bands[i].end = n.time;
                        }
                    }
                    phase => {
                        let label = match &n.value {
                            Some(serde_json::Value::String(s)) => format!("{} {s}", n.f),
                            Some(v) => format!("{} {v}", n.f),
                            None => n.f.clone(),
                        };
                        if phase == Some("start") {
                            started.insert(&n.f, bands.len());
                        }
                        bands.push(Band {
                            start: n.time,
                            // Until its stop; an event without phases is
                            // drawn as a thin band.
                            end: if phase == Some("start") {
                                u64::MAX
                            } else {
                                n.time
                            },
                            label,
                        });
                    }
                },
                _ => {}
            }
        }
        Timeline::finish(ops, bands, final_heal, true, focus)
    }

    /// The timeline of a Jepsen history; times are event positions.
    pub fn of_jepsen(events: &[JepsenEvent], focus: &FxHashSet<usize>) -> Self {
        let mut ops: Vec<TimedOp> = Vec::new();
        let mut open: FxHashMap<i64, usize> = FxHashMap::default();
        let mut bands: Vec<Band> = Vec::new();
        let mut band_open: Option<usize> = None;
        for (t, e) in events.iter().enumerate() {
            let t = t as u64;
            match &e.process {
                Process::Client(p) if e.kind == EventKind::Invoke => {
                    open.insert(*p, ops.len());
                    let key = e.key.as_ref().map(|k| format!("{k} ")).unwrap_or_default();
                    ops.push(TimedOp {
                        process: p.to_string(),
                        kind: e.f.clone(),
                        call: t,
                        ret: None,
                        ending: Ending::Info,
                        label: format!("{key}{} {}", e.f, e.value),
                        line: e.line,
                    });
                }
                Process::Client(p) => {
                    if let Some(i) = open.remove(p) {
                        ops[i].ret = Some(t);
                        ops[i].ending = match e.kind {
                            _ if e.timed_out() => Ending::Info,
                            EventKind::Ok => Ending::Ok,
                            EventKind::Fail => Ending::Fail,
                            _ => Ending::Info,
                        };
                        if e.kind == EventKind::Ok
                            && !matches!(e.value, crate::history::edn::Edn::Nil)
                        {
                            ops[i].label = format!("{} -> {}", ops[i].label, e.value);
                        }
                    }
                }
                Process::Named(_) => match (e.f.as_str(), band_open) {
                    ("stop", Some(i)) => {
                        bands[i].end = t;
                        band_open = None;
                    }
                    ("start", None) => {
                        band_open = Some(bands.len());
                        bands.push(Band {
                            start: t,
                            end: u64::MAX,
                            label: format!("{}", e.value),
                        });
                    }
                    _ => {}
                },
            }
        }
        Timeline::finish(ops, bands, None, false, focus)
    }

    /// A time for people, in the timeline's unit.
    pub fn show(&self, t: u64) -> String {
        if self.nanos {
            crate::consensus::time_label(t)
        } else {
            format!("event {t}")
        }
    }
}

/// What a command does, without its id (`put x 3`).
fn op_text(command: &crate::history::Command) -> String {
    let text = command.to_string();
    let id = format!("{} ", command.id);
    match text.strip_prefix(&id) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}
