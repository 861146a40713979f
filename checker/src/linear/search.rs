//! The Wing-Gong linearizability search with Lowe's memoisation (as in
//! Lowe, "Testing for linearizability", 2017, and Porcupine).
//!
//! Call and return events of one object's operations are kept in a
//! doubly-linked list in time order. The search walks it from the front:
//! at a call it tries to linearize that operation now (the model must
//! accept it, and the resulting configuration must be new), taking its call
//! and return out of the list; at a return whose operation is not yet
//! linearized it has gone too far, and backtracks. An indeterminate
//! operation has no return: it may be linearized at any point after its
//! call, or never, so the search succeeds once every operation with a
//! return is linearized (the models accept any indeterminate operation).

use super::memo::{Memo, OpSet};
use super::model::{mix, Model};
use super::ops::Operation;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;
/// Steps between looks at the clock.
const CLOCK_EVERY: u64 = 1 << 12;
/// Up to this many indeterminate operations are kept in the memo's
/// dominance mask; more are memoised exactly, like the others.
const MASKED_MAX: usize = 256;

/// Limits after which the search gives up with `unknown`.
pub struct Budget<'a> {
    pub deadline: Option<Instant>,
    /// Bytes of memo all searches may take together.
    pub memory: Option<usize>,
    /// Bytes of memo all searches take now.
    pub used: &'a AtomicUsize,
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    Time,
    Memory,
}

/// The deepest configuration the search reached: the operations it had
/// linearized, in order, and the state they leave.
pub struct Deepest<S> {
    pub linearized: Vec<usize>,
    pub state: S,
    /// The unlinearized operations invoked before the first pending return,
    /// in list order; the last one's return is that return.
    pub window: Vec<usize>,
    /// The operation whose return ended the window.
    pub blocking: Option<usize>,
}

pub enum Outcome<S> {
    Linearizable {
        /// One linearization, as indices into the operations.
        order: Vec<usize>,
    },
    NotLinearizable(Deepest<S>),
    Exhausted(Exhausted),
}

/// The events of one partition as a linked list.
struct Events {
    /// Per entry (index 0 is the head sentinel): its operation, whether it
    /// is a call, and for a call the entry of its return.
    op: Vec<u32>,
    is_call: Vec<bool>,
    ret: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Events {
    /// `ops` must be sorted by call time.
    fn new(ops: &[Operation]) -> Self {
        // (time, call before return at the same time, op)
        let mut entries: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.call, 0, i as u32));
            if let Some(ret) = op.ret {
                // A return before its call would be a malformed history; a
                // zero-length operation is still concurrent with itself.
                entries.push((ret.max(op.call), 1, i as u32));
            }
        }
        entries.sort_unstable();
        let m = entries.len() + 1;
        let mut ev = Events {
            op: vec![NONE; m],
            is_call: vec![false; m],
            ret: vec![NONE; m],
            next: (1..=m as u32).collect(),
            prev: (0..m as u32).map(|i| i.wrapping_sub(1)).collect(),
        };
        ev.next[m - 1] = NONE;
        ev.prev[0] = NONE;
        let mut call_entry = vec![NONE; ops.len()];
        for (e, &(_, kind, op)) in entries.iter().enumerate() {
            let e = e + 1;
            ev.op[e] = op;
            ev.is_call[e] = kind == 0;
            if kind == 0 {
                call_entry[op as usize] = e as u32;
            } else {
                ev.ret[call_entry[op as usize] as usize] = e as u32;
            }
        }
        ev
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NONE {
            self.prev[n as usize] = e;
        }
    }

    /// Takes a linearized operation's call and return out of the list.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.ret[call as usize];
        if ret != NONE {
            self.unlink(ret);
        }
    }

    /// Puts them back, in the reverse order (dancing links).
    fn unlift(&mut self, call: u32) {
        let ret = self.ret[call as usize];
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// Searches for a linearization of `ops` (sorted by call time) in `model`.
/// With `stop_at`, stops at that step and reports the configuration there
/// (used to explain a failure: the step at which the deepest configuration
/// was first reached).
pub fn search<M: Model>(
    model: &mut M,
    ops: &[Operation],
    budget: &Budget<'_>,
) -> Outcome<M::State> {
    match run(model, ops, budget, None) {
        Run::Done(order) => Outcome::Linearizable { order },
        Run::Exhausted(e) => Outcome::Exhausted(e),
        Run::Failed { deepest_step } => match run(model, ops, budget, Some(deepest_step)) {
            Run::Stopped(deepest) => Outcome::NotLinearizable(deepest),
            // The replay is deterministic and stops before the first run
            // ended, so it cannot end otherwise; should it, say so honestly.
            _ => Outcome::Exhausted(Exhausted::Time),
        },
        Run::Stopped(_) => Outcome::Exhausted(Exhausted::Time),
    }
}

enum Run<S> {
    Done(Vec<usize>),
    Failed { deepest_step: u64 },
    Stopped(Deepest<S>),
    Exhausted(Exhausted),
}

/// The candidates at a configuration are the calls before the first
/// pending return; operations with a return are tried first, since a
/// linearization must place them, and indeterminate ones only after.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Determinate,
    Indeterminate,
}

fn zobrist(op: usize) -> u64 {
    mix(op as u64 ^ 0xA076_1D64_78BD_642F)
}

fn run<M: Model>(
    model: &mut M,
    ops: &[Operation],
    budget: &Budget<'_>,
    stop_at: Option<u64>,
) -> Run<M::State> {
    let mut events = Events::new(ops);
    // Indeterminate operations' places in the dominance mask, if few.
    let indeterminate = ops.iter().filter(|o| o.ret.is_none()).count();
    let mut mask_bit = vec![NONE; ops.len()];
    if indeterminate <= MASKED_MAX {
        for (bit, (i, _)) in ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.ret.is_none())
            .enumerate()
        {
            mask_bit[i] = bit as u32;
        }
    }
    let mut mask = vec![
        0u64;
        if indeterminate <= MASKED_MAX {
            indeterminate.div_ceil(64)
        } else {
            0
        }
    ];
    let mut memo: Memo<M::State> = Memo::new(mask.len());
    let mut set = OpSet::new(ops.len());
    let mut set_hash = 0u64;
    let mut state = model.init();
    let mut stack: Vec<(u32, M::State, Phase)> = Vec::new();
    let mut phase = Phase::Determinate;
    let mut remaining = ops.len() - indeterminate;
    let mut entry = events.next[HEAD as usize];
    let (mut steps, mut deepest, mut deepest_step) = (0u64, 0usize, 0u64);
    let mut charged = 0usize;
    // Adds or removes an operation from the configuration.
    let toggle = |op: usize, set: &mut OpSet, set_hash: &mut u64, mask: &mut [u64], on: bool| {
        let bit = mask_bit[op];
        if bit != NONE {
            mask[bit as usize / 64] ^= 1 << (bit % 64);
        } else {
            *set_hash ^= zobrist(op);
            if on {
                set.insert(op);
            } else {
                set.remove(op);
            }
        }
    };
    let result = loop {
        if remaining == 0 {
            break Run::Done(
                stack
                    .iter()
                    .map(|&(e, _, _)| events.op[e as usize] as usize)
                    .collect(),
            );
        }
        steps += 1;
        if stop_at == Some(steps) {
            break Run::Stopped(snapshot(&events, &stack, state));
        }
        if steps % CLOCK_EVERY == 0 {
            if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                break Run::Exhausted(Exhausted::Time);
            }
            let now = budget
                .used
                .fetch_add(memo.bytes - charged, Ordering::Relaxed)
                + memo.bytes
                - charged;
            charged = memo.bytes;
            if budget.memory.is_some_and(|limit| now > limit) {
                break Run::Exhausted(Exhausted::Memory);
            }
        }
        if entry != NONE && events.is_call[entry as usize] {
            let op = events.op[entry as usize] as usize;
            let indeterminate_op = ops[op].ret.is_none();
            if indeterminate_op == (phase == Phase::Indeterminate) {
                if let Some(next) = model.step(&state, &ops[op].action) {
                    // An indeterminate operation that changes nothing here
                    // is better left out: not placing it dominates.
                    if !(indeterminate_op && next == state) {
                        toggle(op, &mut set, &mut set_hash, &mut mask, true);
                        if memo.insert(
                            set_hash ^ M::hash(&next),
                            &set,
                            &mask,
                            &next,
                            M::bytes(&next),
                        ) {
                            stack.push((entry, std::mem::replace(&mut state, next), phase));
                            events.lift(entry);
                            if !indeterminate_op {
                                remaining -= 1;
                            }
                            if stack.len() > deepest {
                                deepest = stack.len();
                                deepest_step = steps;
                            }
                            entry = events.next[HEAD as usize];
                            phase = Phase::Determinate;
                            continue;
                        }
                        toggle(op, &mut set, &mut set_hash, &mut mask, false);
                    }
                }
            }
            entry = events.next[entry as usize];
        } else if phase == Phase::Determinate {
            // Every operation with a return has been tried here; now the
            // indeterminate ones, which may be what the next one needs.
            phase = Phase::Indeterminate;
            entry = events.next[HEAD as usize];
        } else {
            // A return whose operation is not linearized (or the end of the
            // list): undo the last choice.
            let Some((call, previous, previous_phase)) = stack.pop() else {
                break Run::Failed { deepest_step };
            };
            let op = events.op[call as usize] as usize;
            toggle(op, &mut set, &mut set_hash, &mut mask, false);
            state = previous;
            phase = previous_phase;
            events.unlift(call);
            if ops[op].ret.is_some() {
                remaining += 1;
            }
            entry = events.next[call as usize];
        }
    };
    budget.used.fetch_sub(charged, Ordering::Relaxed);
    // The deepest configuration of a failed search is reached right after
    // the step that first got there; replaying stops one step later.
    match result {
        Run::Failed { deepest_step } => Run::Failed {
            deepest_step: deepest_step + 1,
        },
        other => other,
    }
}

fn snapshot<S>(events: &Events, stack: &[(u32, S, Phase)], state: S) -> Deepest<S> {
    let linearized = stack
        .iter()
        .map(|&(e, _, _)| events.op[e as usize] as usize)
        .collect();
    let mut window = Vec::new();
    let mut blocking = None;
    let mut e = events.next[HEAD as usize];
    while e != NONE {
        let op = events.op[e as usize] as usize;
        if !events.is_call[e as usize] {
            blocking = Some(op);
            break;
        }
        window.push(op);
        e = events.next[e as usize];
    }
    Deepest {
        linearized,
        state,
        window,
        blocking,
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::ValueModel;
    use super::super::ops::{Action, Values, ABSENT};
    use super::*;

    fn op(call: u64, ret: Option<u64>, action: Action) -> Operation {
        Operation {
            process: 0,
            call,
            ret,
            action,
            line: 0,
        }
    }

    fn check(ops: &[Operation], values: &Values) -> Outcome<u32> {
        let used = AtomicUsize::new(0);
        let budget = Budget {
            deadline: None,
            memory: None,
            used: &used,
        };
        let mut sorted = ops.to_vec();
        sorted.sort_by_key(|o| o.call);
        search(&mut ValueModel::new(values), &sorted, &budget)
    }

    fn values() -> (Values, u32, u32) {
        let mut v = Values::default();
        let (a, b) = (v.intern("1"), v.intern("2"));
        (v, a, b)
    }

    #[test]
    fn sequential_and_concurrent_histories() {
        let (v, a, b) = values();
        // write 1; then read 1: fine.
        let ok = [
            op(0, Some(1), Action::Write(a)),
            op(2, Some(3), Action::Read(a)),
        ];
        assert!(matches!(check(&ok, &v), Outcome::Linearizable { .. }));
        // read 1 before the write of 1 was invoked: not linearizable.
        let bad = [
            op(2, Some(3), Action::Write(a)),
            op(0, Some(1), Action::Read(a)),
        ];
        match check(&bad, &v) {
            Outcome::NotLinearizable(d) => {
                assert_eq!(d.linearized, Vec::<usize>::new());
                assert_eq!(d.blocking, Some(0));
            }
            _ => panic!("expected not linearizable"),
        }
        // Concurrent write and read: the read may see either.
        let conc = [
            op(0, Some(5), Action::Write(a)),
            op(1, Some(2), Action::Read(ABSENT)),
        ];
        assert!(matches!(check(&conc, &v), Outcome::Linearizable { .. }));
        let stale = [
            op(0, Some(1), Action::Write(a)),
            op(2, Some(3), Action::Write(b)),
            op(4, Some(5), Action::Read(a)),
        ];
        assert!(matches!(check(&stale, &v), Outcome::NotLinearizable(_)));
    }

    #[test]
    fn indeterminate_operations_may_happen_or_not() {
        let (v, a, b) = values();
        // An indeterminate write of 1 may explain a later read of 1...
        let took = [
            op(0, None, Action::Write(a)),
            op(5, Some(6), Action::Read(a)),
        ];
        assert!(matches!(check(&took, &v), Outcome::Linearizable { .. }));
        // ...or never happen.
        let never = [
            op(0, None, Action::Write(a)),
            op(5, Some(6), Action::Read(ABSENT)),
        ];
        assert!(matches!(check(&never, &v), Outcome::Linearizable { .. }));
        // But it cannot take effect before it was invoked.
        let early = [
            op(0, Some(1), Action::Read(b)),
            op(5, None, Action::Write(b)),
        ];
        assert!(matches!(check(&early, &v), Outcome::NotLinearizable(_)));
        // Nor flip-flop: read 1, read absent, read 1 with one write.
        let flip = [
            op(0, None, Action::Write(a)),
            op(1, Some(2), Action::Read(a)),
            op(3, Some(4), Action::Read(ABSENT)),
        ];
        assert!(matches!(check(&flip, &v), Outcome::NotLinearizable(_)));
    }

    #[test]
    fn zero_length_operations_at_the_same_time_are_concurrent() {
        let (v, a, _) = values();
        let ops = [
            op(5, Some(5), Action::Read(a)),
            op(5, Some(5), Action::Write(a)),
        ];
        assert!(matches!(check(&ops, &v), Outcome::Linearizable { .. }));
    }
}
