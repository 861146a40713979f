//! The client operations of a project history, gathered per command id as
//! the history is read and turned into partitions at the end.
//!
//! A command is its first invocation and its first completion, wherever
//! they are in the file (a completion may even come first); commands come
//! numbered (`history::pairing`). Keys and values are interned as they are
//! read, and each command is one fixed-size slot: a million operations take
//! tens of megabytes, and reading the history never needs its records kept.

use super::build::{BuildError, Builder, FailReading, LinearHistory, ModelKind, Outcome};
use super::ops::{Action, Operation, Val, ABSENT};
use crate::history::scan::{ScannedEvent, ScannedOp};
use crate::history::{ClientEvent, EventKind, Op, OpResult};
use crate::intern::{Interner, Strings};
use std::collections::BTreeMap;

/// `Slot::op`: no invocation yet, one of the keyed operations, or another
/// (transfer, balances, checkpoint) kept whole in `others`.
const NO_OP: u8 = 0;
const GET: u8 = 1;
const PUT: u8 = 2;
const APPEND: u8 = 3;
const CAS: u8 = 4;
const OTHER: u8 = 5;

/// `Slot::result`: what the completion's `result` was.
const NO_RESULT: u8 = 0;
const READ: u8 = 1;
const BALANCES: u8 = 2;

#[derive(Clone, Copy)]
struct Slot {
    process: u64,
    call: u64,
    line: usize,
    /// The completion's time.
    ret: u64,
    key: u32,
    /// The operands: the value written or appended, the cas's `from` and
    /// `to`; for `OTHER`, `a` is the invocation's index in `others`.
    a: u32,
    b: u32,
    /// A read value, or the index of a balances read in `balances`.
    read: u32,
    op: u8,
    /// `None`, or the completion's kind.
    done: Option<EventKind>,
    result: u8,
}

const EMPTY: Slot = Slot {
    process: 0,
    call: 0,
    line: 0,
    ret: 0,
    key: 0,
    a: 0,
    b: 0,
    read: 0,
    op: NO_OP,
    done: None,
    result: NO_RESULT,
};

/// Commands by number (`history::pairing`).
#[derive(Default)]
pub struct ClientOps {
    keys: Interner,
    /// Per key, the value its last put or cas on the fast path wrote.
    last_written: Vec<Val>,
    values: super::ops::Values,
    slots: Vec<Slot>,
    others: Vec<ClientEvent>,
    balances: Vec<BTreeMap<String, i64>>,
    /// How `fail` is read: `None` in the project's meaning (a failed cas
    /// or transfer is a refusal that took effect), or as a Jepsen history
    /// reads it.
    jepsen_fail: Option<FailReading>,
}

impl ClientOps {
    /// Operations of a Jepsen history: `fail` read as `fail` says, and
    /// `""` the same value as absent.
    pub fn jepsen(fail: FailReading) -> Self {
        let mut ops = ClientOps {
            jepsen_fail: Some(fail),
            ..ClientOps::default()
        };
        ops.values.empty_is_absent = true;
        ops
    }

    /// Whether a failed operation is left out.
    fn fail_left_out(&self, op: u8) -> bool {
        match self.jepsen_fail {
            None => matches!(op, PUT | APPEND),
            Some(FailReading::NotApplied) => true,
            Some(FailReading::CasRefused) => op != CAS,
        }
    }

    /// Makes room for `commands` commands, and for values for half of them
    /// (reads mostly read what was written): a value table larger than
    /// needed costs a miss of the TLB on every lookup.
    pub fn reserve(&mut self, commands: usize) {
        self.values.reserve(commands / 2, commands * 3);
        self.slots.reserve(commands);
    }

    fn slot(&mut self, command: u32) -> usize {
        let slot = command as usize;
        if slot >= self.slots.len() {
            self.slots.resize(slot + 1, EMPTY);
        }
        slot
    }

    fn invoked(&mut self, slot: usize, process: u64, time: u64, line: usize) {
        let s = &mut self.slots[slot];
        s.process = process;
        s.call = time;
        s.line = line;
    }

    fn key(&mut self, key: &str) -> u32 {
        let (key, new) = self.keys.intern(key);
        if new {
            self.last_written.push(ABSENT);
        }
        key
    }

    /// The value `s` read or compared on `key`: usually the one the key's
    /// last write wrote, and found then without a lookup in the big value
    /// table (each a cache miss).
    fn value_on(&mut self, key: u32, s: &str) -> Val {
        match self.last_written[key as usize] {
            v if v != ABSENT && self.values.text(v) == s => v,
            _ => self.values.intern(s),
        }
    }

    /// A client event read by the fast path, of command number `command`.
    pub fn scanned(&mut self, command: u32, e: &ScannedEvent<&str>, line: usize) {
        let slot = self.slot(command);
        if e.kind == EventKind::Invoke {
            if self.slots[slot].op != NO_OP {
                return;
            }
            let key = self.key(e.op.key());
            let (op, a, b) = match e.op {
                ScannedOp::Get { .. } => (GET, 0, 0),
                ScannedOp::Put { value, .. } => {
                    let value = self.values.intern(value);
                    self.last_written[key as usize] = value;
                    (PUT, value, 0)
                }
                ScannedOp::Append { value, .. } => (APPEND, self.values.intern(value), 0),
                ScannedOp::Cas { from, to, .. } => {
                    let from = from.map_or(ABSENT, |f| self.value_on(key, f));
                    let to = self.values.intern(to);
                    self.last_written[key as usize] = to;
                    (CAS, from, to)
                }
            };
            self.invoked(slot, e.process, e.time, line);
            let s = &mut self.slots[slot];
            (s.op, s.key, s.a, s.b) = (op, key, a, b);
        } else {
            if self.slots[slot].done.is_some() {
                return;
            }
            let read = e.read.map(|r| match r {
                None => ABSENT,
                Some(r) => {
                    let key = self.key(e.op.key());
                    self.value_on(key, r)
                }
            });
            let s = &mut self.slots[slot];
            s.done = Some(e.kind);
            s.ret = e.time;
            if let Some(read) = read {
                (s.result, s.read) = (READ, read);
            }
        }
    }

    /// A client event of a parsed history, of command number `command`.
    pub fn event(&mut self, command: u32, e: &ClientEvent, line: usize) {
        let slot = self.slot(command);
        if e.kind == EventKind::Invoke {
            if self.slots[slot].op != NO_OP {
                return;
            }
            let v = &mut self.values;
            let (op, key, a, b) = match &e.command.op {
                Op::Get { key } => (GET, Some(key), 0, 0),
                Op::Put { key, value } => (PUT, Some(key), v.intern(value), 0),
                Op::Append { key, value } => (APPEND, Some(key), v.intern(value), 0),
                Op::Cas { key, from, to } => {
                    let from = from.as_deref().map_or(ABSENT, |f| v.intern(f));
                    (CAS, Some(key), from, v.intern(to))
                }
                Op::Transfer { .. } | Op::Balances { .. } | Op::Checkpoint => {
                    self.others.push(e.clone());
                    (OTHER, None, self.others.len() as u32 - 1, 0)
                }
            };
            let key = key.map_or(0, |k| self.key(k));
            self.invoked(slot, e.process, e.time, line);
            let s = &mut self.slots[slot];
            (s.op, s.key, s.a, s.b) = (op, key, a, b);
        } else {
            if self.slots[slot].done.is_some() {
                return;
            }
            let (result, read) = match &e.result {
                None => (NO_RESULT, 0),
                Some(OpResult::Value(r)) => {
                    (READ, r.as_deref().map_or(ABSENT, |r| self.values.intern(r)))
                }
                Some(OpResult::Balances(b)) => {
                    self.balances.push(b.clone());
                    (BALANCES, self.balances.len() as u32 - 1)
                }
            };
            let s = &mut self.slots[slot];
            s.done = Some(e.kind);
            s.ret = e.time;
            (s.result, s.read) = (result, read);
        }
    }

    /// The partitions: per key, and per group of coupled bank accounts
    /// with their `initial` balances. Commands keep the order of their
    /// numbers, and so does the first operation the model refuses; `ids`
    /// names them.
    pub fn build(
        self,
        ids: &Strings,
        file: &str,
        model: Option<ModelKind>,
        initial: &BTreeMap<String, i64>,
    ) -> Result<LinearHistory, BuildError> {
        let left_out: [bool; 6] = std::array::from_fn(|op| self.fail_left_out(op as u8));
        let ClientOps {
            keys,
            last_written: _,
            values,
            slots,
            others,
            balances,
            jepsen_fail: _,
        } = self;
        let keys = keys.into_strings();
        let mut b = Builder::new(file, model);
        b.values = values;
        // Each key's operations in one allocation: the invocations bound
        // them, and growing by doubling would leave up to half unused.
        let mut bound = vec![0usize; keys.len()];
        for s in slots.iter().filter(|s| matches!(s.op, GET..=CAS)) {
            bound[s.key as usize] += 1;
        }
        let mut parts: Vec<Vec<Operation>> = bound.into_iter().map(Vec::with_capacity).collect();
        for (id, s) in slots.iter().enumerate() {
            if s.op == NO_OP {
                continue;
            }
            let outcome = match s.done {
                Some(EventKind::Ok) => Outcome::Ok,
                Some(EventKind::Fail) if left_out[s.op as usize] => continue,
                Some(EventKind::Fail) => Outcome::Fail,
                _ => Outcome::Unknown,
            };
            // Whether a cas swapped, or a transfer moved.
            let took = match outcome {
                Outcome::Ok => Some(true),
                Outcome::Fail => Some(false),
                Outcome::Unknown => None,
            };
            let op = |action: Action| Operation {
                process: s.process as i64,
                call: s.call,
                ret: (outcome != Outcome::Unknown).then_some(s.ret),
                action,
                line: s.line,
            };
            let action = match s.op {
                GET if outcome == Outcome::Ok && s.result == READ => Action::Read(s.read),
                GET => continue,
                PUT => Action::Write(s.a),
                APPEND => Action::Append(s.a),
                CAS => Action::Cas {
                    from: s.a,
                    to: s.b,
                    swapped: took,
                },
                _ => {
                    let event = &others[s.a as usize];
                    let result = (s.result == BALANCES).then(|| &balances[s.read as usize]);
                    push_other(&mut b, event, result, outcome, &op)?;
                    continue;
                }
            };
            b.check_model_with(&action, s.line, || {
                let name = ["get", "put", "append", "cas"][s.op as usize - 1];
                match ids.get(id as u32) {
                    Some(id) => format!("{name} ({id})"),
                    None => format!(":{name}"),
                }
            })?;
            parts[s.key as usize].push(op(action));
        }
        drop(slots);
        b.by_key = parts
            .into_iter()
            .enumerate()
            .filter(|(_, ops)| !ops.is_empty())
            .map(|(k, ops)| (keys.text(k as u32).to_owned(), ops))
            .collect();
        Ok(b.finish(initial))
    }
}

/// A transfer or a read of balances, into the bank operations.
fn push_other(
    b: &mut Builder<'_>,
    event: &ClientEvent,
    result: Option<&BTreeMap<String, i64>>,
    outcome: Outcome,
    op: &dyn Fn(Action) -> Operation,
) -> Result<(), BuildError> {
    let what = format!("{} ({})", event.command.op.name(), event.command.id);
    match &event.command.op {
        Op::Transfer { from, to, amount } => {
            let action = Action::Transfer {
                from: b.account(from),
                to: b.account(to),
                amount: *amount,
                moved: match outcome {
                    Outcome::Ok => Some(true),
                    Outcome::Fail => Some(false),
                    Outcome::Unknown => None,
                },
            };
            b.push_bank(op(action), vec![from.clone(), to.clone()], &what)
        }
        Op::Balances { .. } => {
            let (Outcome::Ok, Some(read)) = (outcome, result) else {
                return Ok(());
            };
            let accounts: Vec<String> = read.keys().cloned().collect();
            if accounts.is_empty() {
                return Ok(());
            }
            let read: Vec<(u32, i64)> = read.iter().map(|(a, x)| (b.account(a), *x)).collect();
            b.push_bank(op(Action::Balances(read)), accounts, &what)
        }
        _ => Ok(()),
    }
}
