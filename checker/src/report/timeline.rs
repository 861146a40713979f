//! What the report draws: operations on a per-process timeline, nemesis
//! bands, and latency and throughput over time.

use crate::fxhash::{FxHashMap, FxHashSet};
use crate::history::{EventKind, History, JepsenEvent, Process, Record};

/// Operations drawn on the whole-run timeline at most; the rest are
/// counted, and the ones a violation names are always drawn.
const MAX_DRAWN: usize = 1500;
/// Time buckets of the latency and throughput plots.
const BUCKETS: usize = 60;

/// How an operation ended, for colouring it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Ok,
    Fail,
    /// Indeterminate, or never completed.
    Info,
}

#[derive(Clone, Debug)]
pub struct TimedOp {
    pub process: String,
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

/// Operations completing in one slice of time.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    pub start: u64,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Latency quantiles (p50, p95, p99, max) of the completions.
    pub latency: Option<[u64; 4]>,
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
    pub buckets: Vec<Bucket>,
    pub bucket_width: u64,
    /// Overall latency quantiles: (quantile, latency).
    pub quantiles: Vec<(f64, u64)>,
}

/// The value at quantile `q` of sorted values.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
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
        let width = end.div_ceil(BUCKETS as u64).max(1);
        let mut buckets: Vec<Bucket> = (0..BUCKETS)
            .map(|i| Bucket {
                start: i as u64 * width,
                ..Bucket::default()
            })
            .collect();
        let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); BUCKETS];
        let mut all = Vec::with_capacity(ops.len());
        for o in &ops {
            let Some(ret) = o.ret else { continue };
            let b = ((ret / width) as usize).min(BUCKETS - 1);
            match o.ending {
                Ending::Ok => buckets[b].ok += 1,
                Ending::Fail => buckets[b].fail += 1,
                Ending::Info => buckets[b].info += 1,
            }
            if o.ending != Ending::Info {
                let latency = ret.saturating_sub(o.call);
                latencies[b].push(latency);
                all.push(latency);
            }
        }
        for (bucket, mut l) in buckets.iter_mut().zip(latencies) {
            if !l.is_empty() {
                l.sort_unstable();
                bucket.latency = Some([
                    quantile(&l, 0.5),
                    quantile(&l, 0.95),
                    quantile(&l, 0.99),
                    quantile(&l, 1.0),
                ]);
            }
        }
        all.sort_unstable();
        let quantiles = if all.is_empty() {
            Vec::new()
        } else {
            [0.5, 0.9, 0.99, 0.999, 1.0]
                .iter()
                .map(|&q| (q, quantile(&all, q)))
                .collect()
        };
        let total_ops = ops.len();
        if ops.len() > MAX_DRAWN {
            let mut kept = 0;
            ops.retain(|o| {
                kept += 1;
                kept <= MAX_DRAWN || focus.contains(&o.line)
            });
        }
        Timeline {
            nanos,
            end,
            ops,
            total_ops,
            bands,
            final_heal,
            buckets,
            bucket_width: width,
            quantiles,
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
                        call: e.time,
                        ret: None,
                        ending: Ending::Info,
                        label: e.command.to_string(),
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
