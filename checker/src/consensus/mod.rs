//! The consensus requirements of Section 4.3, checked over the learners'
//! observations of a run: Nontriviality, Stability, Consistency, and
//! Liveness from the final heal on.
//!
//! The learned c-structs are command histories without duplicates
//! (Section 4.4); [`cstruct::KeyedHistory`] is the checker's own model of
//! them.

mod consistency;
pub mod cstruct;
pub mod learner;
mod liveness;
pub mod table;
pub mod violation;

#[cfg(test)]
mod tests;

pub use violation::{Property, SideBySide, Violation};

use crate::fxhash::{FxHashMap, FxHashSet};
use crate::history::{CmdId, Command, EventKind, History, Record};
use crate::verdict::Verdict;
use cstruct::{Divergence, KeyedHistory};
use learner::{Finding, Replay, Seen, Timeline};
use serde::Serialize;
use std::collections::BTreeMap;
use table::{CmdIx, CommandTable};

/// At most this many violations of one property are explained; the rest
/// are counted.
const MAX_EXPLAINED: usize = 50;
/// Commands listed in one Liveness violation.
const MAX_LISTED: usize = 20;
/// Projection entries shown on each side of a divergence.
const CONTEXT: usize = 5;

/// What the learners looked like, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LearnerSummary {
    pub node: String,
    pub observations: usize,
    /// Commands in its last learned history.
    pub learned: usize,
    /// Runs: more than one means a Stability violation cut its timeline.
    pub runs: usize,
    pub has_final: bool,
}

/// The outcome of [`check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsensusResult {
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
    /// Violations found beyond the explained ones, per property.
    pub unexplained: BTreeMap<Property, usize>,
    /// What was not judged, and why; a reason here without a violation
    /// makes the verdict `unknown`.
    pub unknown_reasons: Vec<String>,
    /// Other things a reader should know (what was vacuous).
    pub notes: Vec<String>,
    pub learners: Vec<LearnerSummary>,
    /// Whether Liveness was judged (there was a final heal).
    pub liveness_judged: bool,
}

/// A client operation, gathered from its invocation and completion.
struct ClientOp<'h> {
    command: &'h Command,
    invoked: u64,
    completed: Option<(EventKind, u64)>,
}

/// Checks the four requirements of Section 4.3 over every learner
/// observation of `history`.
pub fn check(history: &History) -> ConsensusResult {
    // Client operations matter only to judge what learners learned.
    let ops = if history.observations().next().is_some() {
        client_ops(history)
    } else {
        FxHashMap::default()
    };
    let mut table = CommandTable::new();
    let mut checker = Checker::default();

    let mut replays: Vec<Replay> = Vec::new();
    let mut by_node: FxHashMap<&str, usize> = FxHashMap::default();
    let mut unproposed_seen: FxHashSet<(usize, &CmdId)> = FxHashSet::default();
    for (record, &line) in history.records.iter().zip(&history.lines) {
        let Record::Learned(obs) = record else {
            continue;
        };
        let learner = *by_node.entry(obs.node.as_str()).or_insert_with(|| {
            replays.push(Replay::new(&obs.node));
            replays.len() - 1
        });
        replays[learner].apply(&mut table, obs, line);
        for cmd in &obs.cmds {
            if cmd.is_checkpoint() || !unproposed_seen.insert((learner, &cmd.id)) {
                continue;
            }
            checker.proposed(&obs.node, cmd, ops.get(&cmd.id), obs.time, line);
        }
    }
    let timelines: Vec<Timeline> = replays.into_iter().map(Replay::finish).collect();
    if timelines.is_empty() {
        checker
            .notes
            .push("no learner observations: the consensus requirements hold vacuously".into());
    }

    for timeline in &timelines {
        checker.findings(&table, timeline);
    }
    checker.consistency(&table, &timelines);
    let liveness_judged = checker.liveness(&table, &timelines, &ops, history.final_heal_time());

    let verdict = if !checker.violations.is_empty() {
        Verdict::Invalid
    } else if !checker.unknown_reasons.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let learners = timelines
        .iter()
        .map(|t| LearnerSummary {
            node: t.node.clone(),
            observations: t.observations,
            learned: t.last_seq().len(),
            runs: t.runs.len(),
            has_final: t.final_seen.is_some(),
        })
        .collect();
    ConsensusResult {
        verdict,
        violations: checker.violations,
        unexplained: checker.unexplained,
        unknown_reasons: checker.unknown_reasons,
        notes: checker.notes,
        learners,
        liveness_judged,
    }
}

fn client_ops(history: &History) -> FxHashMap<&CmdId, ClientOp<'_>> {
    let mut ops: FxHashMap<&CmdId, ClientOp<'_>> = FxHashMap::default();
    for event in history.client_events() {
        let id = &event.command.id;
        match event.kind {
            EventKind::Invoke => {
                ops.entry(id).or_insert(ClientOp {
                    command: &event.command,
                    invoked: event.time,
                    completed: None,
                });
            }
            kind => {
                if let Some(op) = ops.get_mut(id) {
                    op.completed.get_or_insert((kind, event.time));
                }
            }
        }
    }
    ops
}

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
    unexplained: BTreeMap<Property, usize>,
    explained: BTreeMap<Property, usize>,
    unknown_reasons: Vec<String>,
    notes: Vec<String>,
}

/// A time since the run started, in the unit that reads best.
pub(crate) fn time_label(ns: u64) -> String {
    let t = ns as f64;
    match ns {
        0..1_000 => format!("t={ns}ns"),
        1_000..1_000_000 => format!("t={:.3}µs", t / 1e3),
        1_000_000..1_000_000_000 => format!("t={:.3}ms", t / 1e6),
        _ => format!("t={:.3}s", t / 1e9),
    }
}

fn describe(table: &CommandTable, cmd: CmdIx) -> String {
    table.command(cmd).to_string()
}

fn key_label(table: &CommandTable, d: &Divergence) -> String {
    match d.key {
        Some(k) => format!("key {:?}", table.key_name(k)),
        None => "the checkpoints (they touch every key)".into(),
    }
}

fn side_by_side(
    table: &CommandTable,
    d: &Divergence,
    (left, left_label): (&KeyedHistory, String),
    (right, right_label): (&KeyedHistory, String),
) -> SideBySide {
    let start = d.index.saturating_sub(CONTEXT);
    let window = |h: &KeyedHistory| -> Vec<CmdIx> {
        let p = h.projection(d.key);
        let end = (d.index + CONTEXT + 1).min(p.len());
        p.get(start..end).unwrap_or(&[]).to_vec()
    };
    let (l, r) = (window(left), window(right));
    let ids = |w: &[CmdIx]| w.iter().map(|&c| table.id(c).clone()).collect();
    let ops = |w: &[CmdIx]| w.iter().map(|&c| describe(table, c)).collect();
    SideBySide {
        key: d.key.map(|k| table.key_name(k).to_owned()),
        left_label,
        right_label,
        start,
        left: ids(&l),
        right: ids(&r),
        left_ops: ops(&l),
        right_ops: ops(&r),
        marked: d.index - start,
    }
}

impl Checker {
    fn push(&mut self, violation: Violation) {
        let explained = self.explained.entry(violation.property).or_default();
        if *explained < MAX_EXPLAINED {
            *explained += 1;
            self.violations.push(violation);
        } else {
            *self.unexplained.entry(violation.property).or_default() += 1;
        }
    }

    /// Nontriviality: a learned command must have been proposed, that is
    /// invoked by some client with the same operation. Checkpoints are
    /// proposed by leaders and exempt.
    fn proposed(
        &mut self,
        node: &str,
        cmd: &Command,
        op: Option<&ClientOp<'_>>,
        time: u64,
        line: usize,
    ) {
        let message = match op {
            None => format!(
                "learner {node} learned {cmd}, which no client invoked (observation at {}, line {line})",
                time_label(time)
            ),
            Some(op) if op.command.op != cmd.op => format!(
                "learner {node} learned {cmd}, but the client invoked {} under that id (observation at {}, line {line})",
                op.command,
                time_label(time)
            ),
            Some(_) => return,
        };
        self.push(Violation {
            property: Property::Nontriviality,
            message,
            learners: vec![node.to_owned()],
            commands: vec![cmd.id.clone()],
            times: vec![time],
            lines: vec![line],
            side_by_side: None,
        });
    }

    /// Turns what the replay of one learner found into violations.
    fn findings(&mut self, table: &CommandTable, timeline: &Timeline) {
        let node = &timeline.node;
        for finding in &timeline.findings {
            match finding {
                Finding::Duplicate {
                    cmd,
                    first_position,
                    position,
                    at,
                } => self.push(Violation {
                    property: Property::Nontriviality,
                    message: format!(
                        "learner {node} learned {} twice, at positions {first_position} and {position} of its sequence \
                         (observation at {}, line {}); a history without duplicates holds each command once",
                        describe(table, *cmd),
                        time_label(at.time),
                        at.line
                    ),
                    learners: vec![node.clone()],
                    commands: vec![table.id(*cmd).clone()],
                    times: vec![at.time],
                    lines: vec![at.line],
                    side_by_side: None,
                }),
                Finding::Unstable {
                    previous,
                    at,
                    before,
                    after,
                    divergences,
                } => self.unstable(table, node, *previous, *at, before, after, divergences),
                Finding::Gap { at, from, known } => self.unknown_reasons.push(format!(
                    "learner {node}: the observation at {} (line {}) starts at position {from} but only {known} \
                     positions are known; its later observations were not judged",
                    time_label(at.time),
                    at.line
                )),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn unstable(
        &mut self,
        table: &CommandTable,
        node: &str,
        previous: Seen,
        at: Seen,
        before: &[CmdIx],
        after: &[CmdIx],
        divergences: &[Divergence],
    ) {
        let old = KeyedHistory::from_sequence(table, before);
        let new = KeyedHistory::from_sequence(table, after);
        // Report where the learner went back earliest in its own sequence.
        let Some(d) = divergences
            .iter()
            .min_by_key(|d| d.left.and_then(|c| old.position(c)).unwrap_or(usize::MAX))
        else {
            return;
        };
        let lost = d
            .left
            .expect("a prefix check fails on a command of the left side");
        let what = match d.right {
            None => "no longer has it, nor anything in its place".to_owned(),
            Some(r) if new.contains(lost) => format!(
                "now has {} there, before it ({})",
                describe(table, r),
                if old.contains(r) {
                    "it had ordered them the other way"
                } else {
                    "a command it had not learned"
                }
            ),
            Some(r) => format!("has dropped it and has {} in its place", describe(table, r)),
        };
        let message = format!(
            "learner {node}'s history at {} (line {}) does not extend its history at {} (line {}): at index {} \
             of {}, it had learned {}, and {what}",
            time_label(at.time),
            at.line,
            time_label(previous.time),
            previous.line,
            d.index,
            key_label(table, d),
            describe(table, lost),
        );
        let mut commands = vec![table.id(lost).clone()];
        commands.extend(d.right.map(|r| table.id(r).clone()));
        self.push(Violation {
            property: Property::Stability,
            message,
            learners: vec![node.to_owned()],
            commands,
            times: vec![previous.time, at.time],
            lines: vec![previous.line, at.line],
            side_by_side: Some(side_by_side(
                table,
                d,
                (&old, format!("{node} at {}", time_label(previous.time))),
                (&new, format!("{node} at {}", time_label(at.time))),
            )),
        });
    }
}
