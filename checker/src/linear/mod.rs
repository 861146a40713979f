//! Linearizability of client histories: the black-box check, for histories
//! no one here wrote as much as for our own.
//!
//! The history is split into independent objects (keys of a key-value
//! store, groups of coupled bank accounts): a history is linearizable iff
//! every object's subhistory is (Herlihy and Wing's locality,
//! "P-compositionality" in Horn and Kroening). Objects are checked in
//! parallel, each with the Wing-Gong search and Lowe's memoisation
//! (`search`). A search that runs out of its time or memory budget answers
//! `unknown`, never a guess.

pub mod budget;
pub mod build;
mod clients;
pub mod jepsen;
pub mod memo;
pub mod model;
pub mod ops;
pub mod search;

pub use build::{
    from_history, from_jepsen, from_jepsen_with, BuildError, FailReading, LinearHistory, ModelKind,
};
pub(crate) use clients::ClientOps;

use crate::verdict::Verdict;
use budget::{Budget, Stopped};
use model::{BankModel, Model, ValueModel};
use ops::{Object, Operation, Partition, Values};
use search::{Deepest, Outcome};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Histories with fewer operations are checked on the calling thread.
const PARALLEL_FROM: usize = 20_000;
/// Operations of the linearizable prefix shown before a failure.
const PREFIX_SHOWN: usize = 10;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub time_limit: Option<Duration>,
    /// Bytes the memo tables of all searches may take together.
    pub memory_limit: Option<usize>,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
}

/// An operation, for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpView {
    pub process: i64,
    pub call: u64,
    /// `None`: indeterminate.
    pub ret: Option<u64>,
    pub description: String,
    /// Line of the invocation in the history file.
    pub line: usize,
}

/// An operation that could have gone next at the point the search got
/// furthest, and why it cannot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocked {
    pub op: OpView,
    pub reason: String,
}

/// An object whose subhistory is not linearizable, explained in the spirit
/// of Porcupine's and Knossos' reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NonLinearizable {
    pub object: String,
    pub operations: usize,
    /// Length of the longest linearizable prefix found.
    pub linearized: usize,
    /// Its last operations, in linearization order.
    pub prefix_tail: Vec<OpView>,
    /// The state after each operation of `prefix_tail`, as Porcupine shows
    /// a partial linearization.
    pub prefix_states: Vec<String>,
    /// The state after that prefix.
    pub state: String,
    /// Every operation that could have gone next, and why it cannot; the
    /// smallest window of operations the search could not linearize.
    pub window: Vec<Blocked>,
    /// The line of the operation whose return closed the window: it had to
    /// take effect, and nothing could.
    pub blocking_line: Option<usize>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinearResult {
    pub verdict: Verdict,
    pub objects: usize,
    pub operations: usize,
    pub failures: Vec<NonLinearizable>,
    /// Objects whose search ran out of budget.
    pub unknown: Vec<String>,
    pub elapsed_us: u64,
}

fn view(partition: &Partition, values: &Values, op: &Operation) -> OpView {
    OpView {
        process: op.process,
        call: op.call,
        ret: op.ret,
        description: partition.describe(values, op),
        line: op.line,
    }
}

enum Checked {
    Ok,
    Failed(NonLinearizable),
    Exhausted(Stopped),
}

/// A failure the budget left no room to explain.
fn unexplained(partition: &Partition, operations: usize, depth: usize) -> NonLinearizable {
    NonLinearizable {
        object: partition.name.clone(),
        operations,
        linearized: depth,
        prefix_tail: Vec::new(),
        prefix_states: Vec::new(),
        state: String::new(),
        window: Vec::new(),
        blocking_line: None,
        message: format!(
            "{}: no order of its {operations} operations is legal (at most {depth} linearize); the budget ran \
             out before the failure could be explained",
            partition.name
        ),
    }
}

fn explain<M: Model>(
    model: &mut M,
    partition: &Partition,
    values: &Values,
    ops: &[Operation],
    deepest: Deepest<M::State>,
) -> NonLinearizable {
    if !deepest.explained {
        return unexplained(partition, ops.len(), deepest.depth);
    }
    let prefix_tail: Vec<OpView> = deepest
        .linearized
        .iter()
        .rev()
        .take(PREFIX_SHOWN)
        .rev()
        .map(|&i| view(partition, values, &ops[i]))
        .collect();
    let prefix_states = states_after(model, ops, &deepest.linearized, prefix_tail.len());
    let window: Vec<Blocked> = deepest
        .window
        .iter()
        .map(|&i| {
            let op = &ops[i];
            let mut reason = match model.step(&deepest.state, &op.action) {
                None => model.why_not(&deepest.state, &op.action),
                Some(_) => {
                    "it can take effect here, but no order of the operations left then works".into()
                }
            };
            if deepest.blocking == Some(i) {
                reason = format!("it must take effect before it returned, and {reason}");
            }
            Blocked {
                op: view(partition, values, op),
                reason,
            }
        })
        .collect();
    let state = model.show(&deepest.state);
    let message = match deepest.blocking.map(|i| &ops[i]) {
        Some(op) => format!(
            "{}: after {} of {} operations linearize, leaving {state}, no operation can take effect before \
             process {}'s {} (line {}) returns",
            partition.name,
            deepest.linearized.len(),
            ops.len(),
            op.process,
            partition.describe(values, op),
            op.line
        ),
        None => format!(
            "{}: after {} of {} operations linearize, leaving {state}, nothing can follow",
            partition.name,
            deepest.linearized.len(),
            ops.len()
        ),
    };
    NonLinearizable {
        object: partition.name.clone(),
        operations: ops.len(),
        linearized: deepest.linearized.len(),
        prefix_tail,
        prefix_states,
        state,
        window,
        blocking_line: deepest.blocking.map(|i| ops[i].line),
        message,
    }
}

/// The states after each of the last `last` operations of `order`, found
/// by replaying the whole linearization from the initial state.
fn states_after<M: Model>(
    model: &mut M,
    ops: &[Operation],
    order: &[usize],
    last: usize,
) -> Vec<String> {
    let mut state = model.init();
    let mut shown = Vec::with_capacity(last);
    for (n, &i) in order.iter().enumerate() {
        let Some(next) = model.step(&state, &ops[i].action) else {
            // The search found this order legal; a model that disagrees
            // with itself is a bug, and the states after it mean nothing.
            debug_assert!(false, "a linearized prefix must replay");
            return Vec::new();
        };
        state = next;
        if n + last >= order.len() {
            shown.push(model.show(&state));
        }
    }
    shown
}

fn check_with<M: Model>(
    model: &mut M,
    partition: &Partition,
    values: &Values,
    budget: &Budget<'_>,
) -> Checked {
    // Operations usually come in call order already; a copy of a million
    // of them costs more than their search.
    let key = |o: &Operation| (o.call, o.line);
    let sorted;
    let ops: &[Operation] = if partition.ops.is_sorted_by_key(key) {
        &partition.ops
    } else {
        let mut ops = partition.ops.clone();
        ops.sort_by_key(key);
        sorted = ops;
        &sorted
    };
    match search::search(model, ops, budget) {
        Outcome::Linearizable { .. } => Checked::Ok,
        Outcome::NotLinearizable(deepest) => {
            Checked::Failed(explain(model, partition, values, ops, deepest))
        }
        Outcome::Exhausted(e) => Checked::Exhausted(e),
    }
}

fn check_partition(partition: &Partition, values: &Values, budget: &Budget<'_>) -> Checked {
    if partition.ops.iter().all(|o| o.ret.is_none()) {
        return Checked::Ok;
    }
    match &partition.object {
        Object::Value => check_with(&mut ValueModel::new(values), partition, values, budget),
        Object::Bank { accounts, initial } => check_with(
            &mut BankModel::new(accounts, initial),
            partition,
            values,
            budget,
        ),
    }
}

/// Checks every object of `history`, in parallel.
pub fn check(history: &LinearHistory, options: &Options) -> LinearResult {
    let started = Instant::now();
    let used = AtomicUsize::new(0);
    let budget = Budget {
        deadline: options.time_limit.map(|t| started + t),
        memory: options.memory_limit,
        used: &used,
    };
    // Largest objects first, so that one long search does not start last.
    let mut order: Vec<usize> = (0..history.partitions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(history.partitions[i].ops.len()));
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(order.len())
    .max(1);
    // Threads cost more than they save on small histories.
    let threads = if history.operations() < PARALLEL_FROM {
        1
    } else {
        threads
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Checked)>> = Mutex::new(Vec::with_capacity(order.len()));
    let work = || loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(&i) = order.get(k) else { break };
        let checked = check_partition(&history.partitions[i], &history.values, &budget);
        results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, checked));
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut failures = Vec::new();
    let mut unknown = Vec::new();
    for (i, checked) in results {
        let name = &history.partitions[i].name;
        match checked {
            Checked::Ok => {}
            Checked::Failed(f) => failures.push(f),
            Checked::Exhausted(stopped) => {
                unknown.push(format!("{name}: {}", stopped.describe(&budget)))
            }
        }
    }
    let verdict = if !failures.is_empty() {
        Verdict::Invalid
    } else if !unknown.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    LinearResult {
        verdict,
        objects: history.partitions.len(),
        operations: history.operations(),
        failures,
        unknown,
        elapsed_us: started.elapsed().as_micros() as u64,
    }
}

#[cfg(test)]
mod brute_force;
#[cfg(test)]
mod tests;
