//! The execution check: replay one learner's learned sequence through the
//! checker's own state machine and compare every result a client saw with
//! the replayed one.
//!
//! Executions of equivalent sequences yield the same results when
//! non-interfering commands commute (Section 4.4), so any one order of a
//! learned history will do. For the project's own runs this check is cheap
//! and complete: if every client saw what the learned history computes, and
//! the consensus requirements hold, the clients saw one agreed execution.

pub mod machine;

use crate::fxhash::{FxHashMap, FxHashSet};
use crate::history::{CmdId, Command, EventKind, History, Op, OpResult, Record};
use crate::verdict::Verdict;
use machine::{Machine, Outcome};
use serde::Serialize;

/// At most this many mismatches are explained; the rest are counted.
const MAX_EXPLAINED: usize = 50;

/// A client that saw something the replay does not give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub id: CmdId,
    pub process: u64,
    /// When the client's operation completed.
    pub time: u64,
    /// Where the command is in the replayed sequence; `None` if it is not.
    pub position: Option<usize>,
    pub client_saw: String,
    pub replayed: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExecutionResult {
    pub verdict: Verdict,
    /// False when there was no learned sequence to replay.
    pub judged: bool,
    /// The learner whose sequence was replayed.
    pub learner: Option<String>,
    /// Distinct commands replayed.
    pub replayed: usize,
    /// Client completions compared.
    pub compared: usize,
    /// The first mismatches, in the order of the replayed sequence (those
    /// missing from it last).
    pub mismatches: Vec<Mismatch>,
    pub mismatch_count: usize,
    pub unknown_reasons: Vec<String>,
    pub notes: Vec<String>,
}

/// Learned sequences rebuilt from the observations, by learner.
struct Sequences<'h> {
    nodes: Vec<(&'h str, Vec<&'h Command>, bool)>,
    broken: FxHashSet<&'h str>,
}

fn sequences(history: &History) -> Sequences<'_> {
    let mut nodes: Vec<(&str, Vec<&Command>, bool)> = Vec::new();
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut broken = FxHashSet::default();
    for record in &history.records {
        let Record::Learned(obs) = record else {
            continue;
        };
        let i = *index.entry(&obs.node).or_insert_with(|| {
            nodes.push((&obs.node, Vec::new(), false));
            nodes.len() - 1
        });
        let (_, seq, is_final) = &mut nodes[i];
        if obs.from > seq.len() {
            broken.insert(obs.node.as_str());
            continue;
        }
        seq.truncate(obs.from);
        seq.extend(obs.cmds.iter());
        *is_final = obs.is_final;
    }
    Sequences { nodes, broken }
}

/// What a client's completion says about its command.
enum Expected {
    /// It took effect with this outcome.
    Outcome(Outcome),
    /// It took effect, with a result the client did not see (an `ok`
    /// without `result`, as a retry answered from the exactly-once table).
    Unseen,
    /// It certainly did not take effect.
    NoEffect,
}

fn client_outcome(kind: EventKind, op: &Op, result: Option<&OpResult>) -> Expected {
    let ok = kind == EventKind::Ok;
    Expected::Outcome(match op {
        Op::Get { .. } if ok => match result {
            Some(OpResult::Value(v)) => Outcome::Read(v.clone()),
            _ => return Expected::Unseen,
        },
        Op::Balances { .. } if ok => match result {
            Some(OpResult::Balances(b)) => Outcome::Balances(b.clone()),
            _ => return Expected::Unseen,
        },
        Op::Put { .. } | Op::Append { .. } if ok => Outcome::Written,
        Op::Cas { .. } => Outcome::Swapped(ok),
        Op::Transfer { .. } => Outcome::Moved(ok),
        Op::Checkpoint => Outcome::Checkpointed,
        // A failed get, put, append or balances certainly did not happen.
        _ => return Expected::NoEffect,
    })
}

/// Replays the longest final learned sequence (or, without final
/// observations, the longest one) and compares every `ok` and `fail`
/// completion with it. `info` operations may or may not be in it.
pub fn check(history: &History) -> ExecutionResult {
    let mut result = ExecutionResult {
        verdict: Verdict::Unknown,
        judged: false,
        learner: None,
        replayed: 0,
        compared: 0,
        mismatches: Vec::new(),
        mismatch_count: 0,
        unknown_reasons: Vec::new(),
        notes: Vec::new(),
    };
    let seqs = sequences(history);
    let chosen = seqs
        .nodes
        .iter()
        .filter(|(node, _, _)| !seqs.broken.contains(node))
        .max_by_key(|(_, seq, is_final)| (*is_final, seq.len()));
    let Some((node, seq, is_final)) = chosen else {
        result
            .unknown_reasons
            .push("no learner's learned sequence could be rebuilt: nothing to replay".into());
        return result;
    };
    result.judged = true;
    result.learner = Some(node.to_string());
    if !is_final {
        result.notes.push(format!(
            "no learner has a final observation; replayed {node}'s last one"
        ));
    }

    let accounts = history
        .init()
        .map(|i| i.accounts.clone())
        .unwrap_or_default();
    let mut machine = Machine::new(&accounts);
    let mut replayed: FxHashMap<&CmdId, (usize, Outcome)> = FxHashMap::default();
    for (position, cmd) in seq.iter().enumerate() {
        // Appending a command already in a history without duplicates is a
        // no-op (Section 4.4): only the first occurrence executes.
        if replayed.contains_key(&cmd.id) {
            continue;
        }
        replayed.insert(&cmd.id, (position, machine.apply(&cmd.op)));
    }
    result.replayed = replayed.len();

    let mut mismatches: Vec<Mismatch> = Vec::new();
    let mut missing_unjudged = 0usize;
    let mut completed: FxHashSet<&CmdId> = FxHashSet::default();
    for event in history.client_events() {
        if !matches!(event.kind, EventKind::Ok | EventKind::Fail)
            || !completed.insert(&event.command.id)
        {
            continue;
        }
        result.compared += 1;
        let cmd = &event.command;
        let expected = client_outcome(event.kind, &cmd.op, event.result.as_ref());
        let seen = replayed.get(&cmd.id);
        let mismatch =
            |position: Option<usize>, client_saw: String, got: String, message: String| Mismatch {
                id: cmd.id.clone(),
                process: event.process,
                time: event.time,
                position,
                client_saw,
                replayed: got,
                message,
            };
        let saw = |e: &Expected| match e {
            Expected::Outcome(want) => want.to_string(),
            _ => "an unseen result".to_owned(),
        };
        match (expected, seen) {
            (Expected::Outcome(want), Some((position, got))) if want != *got => mismatches.push(mismatch(
                Some(*position),
                want.to_string(),
                got.to_string(),
                format!(
                    "process {} saw {cmd} complete {} ({want}), but replaying {node}'s learned sequence gives {got} \
                     at position {position}",
                    event.process,
                    event.kind.name()
                ),
            )),
            (Expected::Outcome(_) | Expected::Unseen, Some(_)) | (Expected::NoEffect, None) => {}
            (want, None) if *is_final => mismatches.push(mismatch(
                None,
                saw(&want),
                "not learned".into(),
                format!(
                    "process {} saw {cmd} complete {} ({}), but it is not in {node}'s final learned sequence",
                    event.process,
                    event.kind.name(),
                    saw(&want)
                ),
            )),
            (_, None) => missing_unjudged += 1,
            (Expected::NoEffect, Some((position, got))) => mismatches.push(mismatch(
                Some(*position),
                "failed: did not take effect".into(),
                got.to_string(),
                format!(
                    "process {} was told {cmd} failed, but {node} learned it at position {position} ({got})",
                    event.process
                ),
            )),
        }
    }
    if missing_unjudged > 0 {
        result.unknown_reasons.push(format!(
            "{missing_unjudged} completed operation(s) are not in {node}'s last learned sequence, which is not final"
        ));
    }
    mismatches.sort_by_key(|m| (m.position.unwrap_or(usize::MAX), m.time));
    result.mismatch_count = mismatches.len();
    mismatches.truncate(MAX_EXPLAINED);
    result.mismatches = mismatches;
    result.verdict = if result.mismatch_count > 0 {
        Verdict::Invalid
    } else if !result.unknown_reasons.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    result
}

#[cfg(test)]
mod tests;
