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

use super::budget::{grow, Meter};
pub use super::budget::{Budget, Exhausted, Stopped};
use super::memo::{Memo, OpSet};
use super::model::{mix, Model};
use super::ops::{Action, Operation};
use std::time::Instant;

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;
/// Steps between looks at the clock: a step is well under a microsecond,
/// so the clock is read every millisecond or so.
const CLOCK_EVERY: u64 = 1 << 10;
/// Up to this many indeterminate operations are kept in the memo's
/// dominance mask; more are memoised exactly, like the others.
const MASKED_MAX: usize = 256;

/// The deepest configuration the search reached: the operations it had
/// linearized, in order, and the state they leave.
pub struct Deepest<S> {
    /// How many operations; `linearized` lists them when `explained`.
    pub depth: usize,
    pub linearized: Vec<usize>,
    pub state: S,
    /// The unlinearized operations invoked before the first pending return,
    /// in list order; the last one's return is that return.
    pub window: Vec<usize>,
    /// The operation whose return ended the window.
    pub blocking: Option<usize>,
    /// False when the budget ran out while the search was replayed to
    /// explain the failure: only `depth` is known then.
    pub explained: bool,
}

pub enum Outcome<S> {
    Linearizable {
        /// One linearization, as indices into the operations.
        order: Vec<usize>,
    },
    NotLinearizable(Deepest<S>),
    Exhausted(Stopped),
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

    /// Bytes the list holds.
    fn bytes(&self) -> usize {
        (self.op.capacity() + self.ret.capacity() + self.next.capacity() + self.prev.capacity()) * 4
            + self.is_call.capacity()
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

/// Searches for a linearization of `ops` (sorted by call time) in `model`,
/// within `budget`. A failure is explained by replaying the search to the
/// step at which it first reached its deepest configuration.
pub fn search<M: Model>(
    model: &mut M,
    ops: &[Operation],
    budget: &Budget<'_>,
) -> Outcome<M::State> {
    match run(model, ops, budget, None) {
        Run::Done(order) => Outcome::Linearizable { order },
        Run::Exhausted(s) => Outcome::Exhausted(s),
        Run::Failed {
            deepest_step,
            depth,
        } => match run(model, ops, budget, Some(deepest_step)) {
            Run::Stopped(deepest) => Outcome::NotLinearizable(deepest),
            // The replay ran out of budget: the history is still not
            // linearizable (the first run covered every order), but the
            // failure goes unexplained.
            _ => Outcome::NotLinearizable(Deepest {
                depth,
                linearized: Vec::new(),
                state: model.init(),
                window: Vec::new(),
                blocking: None,
                explained: false,
            }),
        },
        // Only a replay stops at a step.
        Run::Stopped(d) => Outcome::NotLinearizable(d),
    }
}

enum Run<S> {
    Done(Vec<usize>),
    Failed { deepest_step: u64, depth: usize },
    Stopped(Deepest<S>),
    Exhausted(Stopped),
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

/// One search of one object's operations.
struct Search<'m, 'b, M: Model> {
    model: &'m mut M,
    ops: &'m [Operation],
    budget: &'b Budget<'b>,
    meter: Meter<'b>,
    events: Events,
    /// Indeterminate operations' places in the dominance mask, if few.
    mask_bit: Vec<u32>,
    mask: Vec<u64>,
    memo: Memo<M::State>,
    set: OpSet,
    set_hash: u64,
    state: M::State,
    stack: Vec<(u32, M::State, Phase)>,
    phase: Phase,
    /// Operations with a return not yet linearized.
    remaining: usize,
    entry: u32,
    steps: u64,
    deepest: usize,
    deepest_step: u64,
    /// Bytes of the model's own tables charged so far.
    model_bytes: usize,
    /// The configuration entered last cannot lead anywhere (`doomed`).
    doomed: bool,
}

impl<'m, 'b, M: Model> Search<'m, 'b, M> {
    fn new(model: &'m mut M, ops: &'m [Operation], budget: &'b Budget<'b>) -> Self {
        let events = Events::new(ops);
        let indeterminate = ops.iter().filter(|o| o.ret.is_none()).count();
        let masked = indeterminate <= MASKED_MAX;
        let mut mask_bit = vec![NONE; ops.len()];
        if masked {
            let open = ops.iter().enumerate().filter(|(_, o)| o.ret.is_none());
            for (bit, (i, _)) in open.enumerate() {
                mask_bit[i] = bit as u32;
            }
        }
        let mask = vec![
            0u64;
            if masked {
                indeterminate.div_ceil(64)
            } else {
                0
            }
        ];
        let memo = Memo::new(mask.len());
        let state = model.init();
        let mut search = Search {
            model,
            ops,
            budget,
            meter: Meter::new(budget),
            entry: events.next[HEAD as usize],
            events,
            mask_bit,
            memo,
            set: OpSet::new(ops.len()),
            set_hash: 0,
            state,
            stack: Vec::new(),
            phase: Phase::Determinate,
            remaining: ops.len() - indeterminate,
            mask,
            steps: 0,
            deepest: 0,
            deepest_step: 0,
            model_bytes: 0,
            doomed: false,
        };
        search.model_bytes = search.model.heap_bytes();
        search
    }

    /// Bytes the search holds before it takes a step.
    fn fixed_bytes(&self) -> usize {
        self.events.bytes() + self.mask_bit.capacity() * 4 + self.set.bytes() + self.model_bytes
    }

    fn stopped(&self, budget: Exhausted) -> Run<M::State> {
        Run::Exhausted(Stopped {
            budget,
            steps: self.steps,
            deepest: self.deepest,
            operations: self.ops.len(),
            configurations: self.memo.len(),
            bytes: self.meter.used(),
        })
    }

    /// Adds or removes an operation from the configuration.
    fn toggle(&mut self, op: usize, on: bool) {
        let bit = self.mask_bit[op];
        if bit != NONE {
            self.mask[bit as usize / 64] ^= 1 << (bit % 64);
        } else {
            self.set_hash ^= zobrist(op);
            if on {
                self.set.insert(op);
            } else {
                self.set.remove(op);
            }
        }
    }

    /// Charges what the model's tables grew by.
    fn charge_model(&mut self) -> bool {
        let now = self.model.heap_bytes();
        let grown = now.saturating_sub(self.model_bytes);
        self.model_bytes = now.max(self.model_bytes);
        grown == 0 || self.meter.take(grown)
    }

    /// Tries to linearize the call at `entry` now. `Err` when the budget
    /// cannot pay for the configuration.
    fn try_call(&mut self, op: usize) -> Result<bool, Exhausted> {
        let indeterminate = self.ops[op].ret.is_none();
        if indeterminate != (self.phase == Phase::Indeterminate) {
            return Ok(false);
        }
        if !self.model.reserve(&mut self.meter) {
            return Err(Exhausted::Memory);
        }
        let next = self.model.step(&self.state, &self.ops[op].action);
        if !self.charge_model() {
            return Err(Exhausted::Memory);
        }
        let Some(next) = next else { return Ok(false) };
        // An indeterminate operation that changes nothing here is better
        // left out: not placing it dominates.
        if indeterminate && next == self.state {
            return Ok(false);
        }
        self.toggle(op, true);
        let heap = M::bytes(&next).saturating_sub(std::mem::size_of::<M::State>());
        if !self.memo.reserve(self.set.span_len(), &mut self.meter)
            || !grow(&mut self.stack, 1, &mut self.meter)
            || !self.meter.take(2 * heap)
        {
            self.toggle(op, false);
            return Err(Exhausted::Memory);
        }
        if !self
            .memo
            .insert(self.set_hash ^ M::hash(&next), &self.set, &self.mask, &next)
        {
            self.meter.give(2 * heap);
            self.toggle(op, false);
            return Ok(false);
        }
        let previous = std::mem::replace(&mut self.state, next);
        self.stack.push((self.entry, previous, self.phase));
        self.events.lift(self.entry);
        if !indeterminate {
            self.remaining -= 1;
        }
        if self.stack.len() > self.deepest {
            self.deepest = self.stack.len();
            self.deepest_step = self.steps;
        }
        self.entry = self.events.next[HEAD as usize];
        self.phase = Phase::Determinate;
        // Memoised, so never entered again: the next step leaves it.
        self.doomed = self.doomed();
        Ok(true)
    }

    /// Whether the configuration just entered cannot lead anywhere: the
    /// first operation with a return that constrains the state (a read)
    /// must be placed before that return, and the model says that what may
    /// go before it (the calls before that return) cannot make it succeed.
    fn doomed(&mut self) -> bool {
        let mut resetters: Vec<&Action> = Vec::new();
        let mut e = self.events.next[HEAD as usize];
        while e != NONE {
            let op = self.events.op[e as usize] as usize;
            let action = &self.ops[op].action;
            if !self.events.is_call[e as usize] {
                if M::observes(action) {
                    return !self.model.may_reach(&self.state, action, &resetters);
                }
            } else if M::resets(action) {
                resetters.push(action);
            }
            e = self.events.next[e as usize];
        }
        false
    }

    /// Undoes the last choice; `false` when there is none left.
    fn backtrack(&mut self) -> bool {
        let Some((call, previous, previous_phase)) = self.stack.pop() else {
            return false;
        };
        let op = self.events.op[call as usize] as usize;
        self.toggle(op, false);
        // The state on the stack stays in the memo; its copy is given back.
        let heap = M::bytes(&self.state).saturating_sub(std::mem::size_of::<M::State>());
        self.meter.give(heap);
        self.state = previous;
        self.phase = previous_phase;
        self.events.unlift(call);
        if self.ops[op].ret.is_some() {
            self.remaining += 1;
        }
        self.entry = self.events.next[call as usize];
        true
    }

    fn run(mut self, stop_at: Option<u64>) -> Run<M::State> {
        if !self.meter.take(self.fixed_bytes()) {
            return self.stopped(Exhausted::Memory);
        }
        loop {
            if self.remaining == 0 {
                let ops = &self.events.op;
                return Run::Done(
                    self.stack
                        .iter()
                        .map(|&(e, _, _)| ops[e as usize] as usize)
                        .collect(),
                );
            }
            self.steps += 1;
            if stop_at == Some(self.steps) {
                return Run::Stopped(snapshot(&self.events, &self.stack, self.state));
            }
            if self.steps.is_multiple_of(CLOCK_EVERY)
                && self.budget.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return self.stopped(Exhausted::Time);
            }
            if std::mem::take(&mut self.doomed) {
                // Go on with the next candidate where this one was tried.
                self.backtrack();
                continue;
            }
            let entry = self.entry;
            if entry != NONE && self.events.is_call[entry as usize] {
                let op = self.events.op[entry as usize] as usize;
                match self.try_call(op) {
                    Ok(true) => continue,
                    Ok(false) => self.entry = self.events.next[entry as usize],
                    Err(e) => return self.stopped(e),
                }
            } else if self.phase == Phase::Determinate {
                // Every operation with a return has been tried here; now
                // the indeterminate ones, which may be what the next needs.
                self.phase = Phase::Indeterminate;
                self.entry = self.events.next[HEAD as usize];
            } else if !self.backtrack() {
                // The deepest configuration is reached right after the step
                // that first got there; a replay stops one step later.
                return Run::Failed {
                    deepest_step: self.deepest_step + 1,
                    depth: self.deepest,
                };
            }
        }
    }
}

fn run<M: Model>(
    model: &mut M,
    ops: &[Operation],
    budget: &Budget<'_>,
    stop_at: Option<u64>,
) -> Run<M::State> {
    Search::new(model, ops, budget).run(stop_at)
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
        depth: stack.len(),
        linearized,
        state,
        window,
        blocking,
        explained: true,
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
        let used = std::sync::atomic::AtomicUsize::new(0);
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
