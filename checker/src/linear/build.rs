//! Turning a loaded history into partitions of operations for the search.
//!
//! Completions are read with Jepsen's meanings: `ok` took effect with this
//! result; `info`, `:timed-out`, or no completion at all is indeterminate:
//! it may take effect at any point after its invocation, or never. Reads
//! whose outcome is unknown constrain nothing and are dropped.
//!
//! `fail` differs by source. In a Jepsen history (and in Knossos) it means
//! only that the operation certainly did not take effect; it says nothing
//! about the state, so the operation is left out (`FailReading::NotApplied`).
//! Porcupine's etcd model reads a failed `cas` as a comparison that failed,
//! an observation of the register (`FailReading::CasRefused`, asked for
//! explicitly). In the project's own JSON Lines the node answers `fail` on a
//! `cas` or `transfer` only when its condition failed, so there it is that
//! refusal, which took effect as a no-op.

use super::clients::ClientOps;
use super::ops::{Action, Object, Operation, Partition, Val, Values, ABSENT};
use crate::fxhash::FxHashMap;
use crate::history::edn::Edn;
use crate::history::pairing::Pairing;
use crate::history::{EventKind, History, JepsenEvent, Process, Record};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// How a `fail` completion of a Jepsen history is read (`--jepsen-fail`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailReading {
    /// Jepsen's and Knossos' meaning: the operation certainly did not take
    /// effect, and the completion says nothing about the state; the
    /// operation is left out. Leaving an operation out can never turn a
    /// linearizable history into one that is not.
    #[default]
    NotApplied,
    /// Porcupine's etcd model: a failed `cas` took effect as a comparison
    /// that failed (the value differed from its `from`); any other failed
    /// operation is left out.
    CasRefused,
}

impl FailReading {
    pub fn name(self) -> &'static str {
        match self {
            FailReading::NotApplied => "not-applied",
            FailReading::CasRefused => "cas-refused",
        }
    }
}

/// The model a history is checked against (`--model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Reads and writes.
    Register,
    /// Reads, writes and compare-and-set.
    CasRegister,
    /// Per key: get, put, append and compare-and-set.
    Kv,
    /// Transfers between accounts and reads of balances.
    Bank,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Bank => "bank",
        }
    }

    fn allows(self, action: &Action) -> bool {
        match self {
            ModelKind::Register => matches!(action, Action::Read(_) | Action::Write(_)),
            ModelKind::CasRegister => matches!(
                action,
                Action::Read(_) | Action::Write(_) | Action::Cas { .. }
            ),
            ModelKind::Kv => matches!(
                action,
                Action::Read(_) | Action::Write(_) | Action::Append(_) | Action::Cas { .. }
            ),
            ModelKind::Bank => matches!(action, Action::Transfer { .. } | Action::Balances(_)),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("{file}:{line}: {message}")]
    Unsupported {
        file: String,
        line: usize,
        message: String,
    },
}

/// A history ready for the search: its values and its independent objects.
#[derive(Clone, Debug, Default)]
pub struct LinearHistory {
    pub values: Values,
    pub partitions: Vec<Partition>,
}

impl LinearHistory {
    pub fn operations(&self) -> usize {
        self.partitions.iter().map(|p| p.ops.len()).sum()
    }
}

/// How an operation ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Ok,
    Fail,
    Unknown,
}

/// Collects operations per key, and bank operations for splitting into
/// groups of coupled accounts at the end.
pub(super) struct Builder<'a> {
    file: &'a str,
    model: Option<ModelKind>,
    pub(super) values: Values,
    /// Operations per key, and each key's place in `by_key`.
    pub(super) by_key: Vec<(String, Vec<Operation>)>,
    key_index: FxHashMap<String, usize>,
    bank: Vec<(Operation, Vec<String>)>,
    /// Account names of the bank operations, by the `Account` index they
    /// carry until the accounts are split into groups.
    account_names: Vec<String>,
    account_index: FxHashMap<String, u32>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(file: &'a str, model: Option<ModelKind>) -> Self {
        Builder {
            file,
            model,
            values: Values::default(),
            by_key: Vec::new(),
            key_index: FxHashMap::default(),
            bank: Vec::new(),
            account_names: Vec::new(),
            account_index: FxHashMap::default(),
        }
    }

    fn check_model(&self, action: &Action, line: usize, what: &str) -> Result<(), BuildError> {
        self.check_model_with(action, line, || what.to_owned())
    }

    /// Names the operation (`what`) only when it is refused: a million
    /// names cost more than the rest of building.
    pub(super) fn check_model_with(
        &self,
        action: &Action,
        line: usize,
        what: impl FnOnce() -> String,
    ) -> Result<(), BuildError> {
        match self.model {
            Some(model) if !model.allows(action) => Err(BuildError::Unsupported {
                file: self.file.to_owned(),
                line,
                message: format!("{} is not an operation of the {model} model", what()),
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn account(&mut self, name: &str) -> u32 {
        if let Some(&a) = self.account_index.get(name) {
            return a;
        }
        let a = self.account_names.len() as u32;
        self.account_names.push(name.to_owned());
        self.account_index.insert(name.to_owned(), a);
        a
    }

    fn push_value(&mut self, key: &str, op: Operation, what: &str) -> Result<(), BuildError> {
        self.check_model(&op.action, op.line, what)?;
        let k = match self.key_index.get(key) {
            Some(&k) => k,
            None => {
                self.by_key.push((key.to_owned(), Vec::new()));
                self.key_index.insert(key.to_owned(), self.by_key.len() - 1);
                self.by_key.len() - 1
            }
        };
        self.by_key[k].1.push(op);
        Ok(())
    }

    pub(super) fn push_bank(
        &mut self,
        op: Operation,
        accounts: Vec<String>,
        what: &str,
    ) -> Result<(), BuildError> {
        self.check_model(&op.action, op.line, what)?;
        self.bank.push((op, accounts));
        Ok(())
    }

    /// Splits bank operations into groups of accounts that operations
    /// couple (union-find); each group is an independent object.
    pub(super) fn finish(mut self, initial: &BTreeMap<String, i64>) -> LinearHistory {
        let mut by_key = std::mem::take(&mut self.by_key);
        by_key.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut partitions: Vec<Partition> = by_key
            .into_iter()
            .map(|(name, ops)| Partition {
                name,
                object: Object::Value,
                ops,
            })
            .collect();
        let n = self.account_names.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn root(parent: &mut [usize], mut a: usize) -> usize {
            while parent[a] != a {
                parent[a] = parent[parent[a]];
                a = parent[a];
            }
            a
        }
        for (_, accounts) in &self.bank {
            let ixs: Vec<usize> = accounts
                .iter()
                .map(|a| self.account_index[a] as usize)
                .collect();
            for w in ixs.windows(2) {
                let (x, y) = (root(&mut parent, w[0]), root(&mut parent, w[1]));
                parent[x] = y;
            }
        }
        // Group index per root, local account index per account.
        let mut group_of_root: FxHashMap<usize, usize> = FxHashMap::default();
        let mut groups: Vec<(Vec<String>, Vec<i64>, Vec<Operation>)> = Vec::new();
        let local: Vec<u32> = (0..n)
            .map(|a| {
                let r = root(&mut parent, a);
                let g = *group_of_root.entry(r).or_insert_with(|| {
                    groups.push((Vec::new(), Vec::new(), Vec::new()));
                    groups.len() - 1
                });
                let name = &self.account_names[a];
                groups[g].0.push(name.clone());
                groups[g].1.push(initial.get(name).copied().unwrap_or(0));
                groups[g].0.len() as u32 - 1
            })
            .collect();
        for (mut op, accounts) in std::mem::take(&mut self.bank) {
            let Some(first) = accounts.first() else {
                continue;
            };
            let g = group_of_root[&root(&mut parent, self.account_index[first] as usize)];
            match &mut op.action {
                Action::Transfer { from, to, .. } => {
                    *from = local[*from as usize];
                    *to = local[*to as usize];
                }
                Action::Balances(read) => {
                    for (a, _) in read.iter_mut() {
                        *a = local[*a as usize];
                    }
                }
                _ => {}
            }
            groups[g].2.push(op);
        }
        for (accounts, initial, ops) in groups {
            if ops.is_empty() {
                continue;
            }
            partitions.push(Partition {
                name: format!("accounts {}", accounts.join(",")),
                object: Object::Bank { accounts, initial },
                ops,
            });
        }
        LinearHistory {
            values: self.values,
            partitions,
        }
    }
}

/// The client operations of a project history (JSON Lines).
pub fn from_history(
    file: &str,
    history: &History,
    model: Option<ModelKind>,
) -> Result<LinearHistory, BuildError> {
    let mut pairing = Pairing::new(true);
    let mut ops = ClientOps::default();
    for (record, &line) in history.records.iter().zip(&history.lines) {
        if let Record::Client(e) = record {
            let command = pairing.command(e.kind, &e.command.id.0, e.process);
            ops.event(command, e, line);
        }
    }
    let initial = history.init().map(|i| &i.accounts);
    let ids = pairing.into_ids().unwrap_or_default();
    ops.build(&ids, file, model, initial.unwrap_or(&BTreeMap::new()))
}

/// A Jepsen value as a register value. Jepsen key-value histories read an
/// unwritten key as `""` where this project reads `nil`; in them the two
/// are the same value.
fn jepsen_value(values: &mut Values, v: &Edn) -> Val {
    match v {
        Edn::Nil => ABSENT,
        Edn::Str(s) if s.is_empty() => ABSENT,
        Edn::Str(s) => values.intern(s),
        other => values.intern(&other.to_string()),
    }
}

fn jepsen_key(key: &Option<Edn>) -> String {
    match key {
        None => "register".to_owned(),
        Some(Edn::Str(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The client operations of a Jepsen history, `fail` read as Jepsen reads
/// it (`FailReading::NotApplied`).
pub fn from_jepsen(
    file: &str,
    events: &[JepsenEvent],
    model: Option<ModelKind>,
) -> Result<LinearHistory, BuildError> {
    from_jepsen_with(file, events, model, FailReading::default())
}

/// The client operations of a Jepsen history, `fail` read as `fail` says.
/// Times are event positions: the history's order is its real-time order.
pub fn from_jepsen_with(
    file: &str,
    events: &[JepsenEvent],
    model: Option<ModelKind>,
    fail: FailReading,
) -> Result<LinearHistory, BuildError> {
    let mut b = Builder::new(file, model);
    b.values.empty_is_absent = true;
    let mut pending: FxHashMap<i64, usize> = FxHashMap::default();
    // (invoke index, completion index or None)
    let mut pairs: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventKind::Invoke {
            if let Some(previous) = pending.insert(p, i) {
                // A process invoked again without completing: the earlier
                // operation's outcome is unknown.
                pairs.push((previous, None));
            }
        } else if let Some(invoke) = pending.remove(&p) {
            pairs.push((invoke, Some(i)));
        }
    }
    pairs.extend(pending.into_values().map(|i| (i, None)));
    pairs.sort_unstable();

    for (call, ret) in pairs {
        let invoke = &events[call];
        let done = ret.map(|r| &events[r]);
        let outcome = match done {
            Some(d) if d.timed_out() => Outcome::Unknown,
            Some(d) if d.kind == EventKind::Ok => Outcome::Ok,
            Some(d) if d.kind == EventKind::Fail => Outcome::Fail,
            _ => Outcome::Unknown,
        };
        let cas = matches!(invoke.f.as_str(), "cas" | "compare-and-set");
        if outcome == Outcome::Fail && !(cas && fail == FailReading::CasRefused) {
            continue;
        }
        let Process::Client(process) = invoke.process else {
            continue;
        };
        let op = |action: Action| Operation {
            process,
            call: call as u64,
            ret: if outcome == Outcome::Unknown {
                None
            } else {
                ret.map(|r| r as u64)
            },
            action,
            line: invoke.line,
        };
        let key = jepsen_key(&invoke.key);
        // The completion's value, falling back to the invocation's.
        let value = done
            .map(|d| &d.value)
            .filter(|v| !matches!(v, Edn::Nil | Edn::Keyword(_)))
            .unwrap_or(&invoke.value);
        let what = format!(":{}", invoke.f);
        let unsupported = |message: String| BuildError::Unsupported {
            file: file.to_owned(),
            line: invoke.line,
            message,
        };
        match invoke.f.as_str() {
            "read" | "get" => {
                if outcome != Outcome::Ok {
                    continue;
                }
                let read = done.map_or(&Edn::Nil, |d| &d.value);
                if let Edn::Map(entries) = read {
                    if model.is_some_and(|m| m != ModelKind::Bank) {
                        return Err(unsupported(format!("a read of balances {read} needs the bank model")));
                    }
                    let mut accounts = Vec::new();
                    let mut balances = Vec::new();
                    for (k, x) in entries {
                        let name = jepsen_key(&Some(k.clone()));
                        let Some(x) = x.as_int() else {
                            return Err(unsupported(format!("expected integer balances in {read}")));
                        };
                        balances.push((b.account(&name), x));
                        accounts.push(name);
                    }
                    b.push_bank(op(Action::Balances(balances)), accounts, &what)?;
                } else {
                    let read = jepsen_value(&mut b.values, read);
                    b.push_value(&key, op(Action::Read(read)), &what)?;
                }
            }
            "write" | "put" | "append" => {
                let v = jepsen_value(&mut b.values, value);
                let action = if invoke.f == "append" { Action::Append(v) } else { Action::Write(v) };
                b.push_value(&key, op(action), &what)?;
            }
            "cas" | "compare-and-set" => {
                let Some([from, to]) = invoke.value.as_seq().and_then(|s| <&[Edn; 2]>::try_from(s).ok()) else {
                    return Err(unsupported(format!("expected :cas's value to be [from to], found {}", invoke.value)));
                };
                let from = jepsen_value(&mut b.values, from);
                let to = jepsen_value(&mut b.values, to);
                let swapped = match outcome {
                    Outcome::Ok => Some(true),
                    Outcome::Fail => Some(false),
                    Outcome::Unknown => None,
                };
                b.push_value(&key, op(Action::Cas { from, to, swapped }), &what)?;
            }
            "transfer" => {
                let field = |name: &str| invoke.value.get(name);
                let (Some(from), Some(to), Some(amount)) =
                    (field("from"), field("to"), field("amount").and_then(Edn::as_int))
                else {
                    return Err(unsupported(format!(
                        "expected :transfer's value to be {{:from a :to b :amount n}}, found {}",
                        invoke.value
                    )));
                };
                let (from, to) = (jepsen_key(&Some(from.clone())), jepsen_key(&Some(to.clone())));
                let moved = (outcome == Outcome::Ok).then_some(true);
                let action = Action::Transfer {
                    from: b.account(&from),
                    to: b.account(&to),
                    amount,
                    moved,
                };
                b.push_bank(op(action), vec![from, to], &what)?;
            }
            other => {
                return Err(unsupported(format!(
                    "unknown operation :{other}: expected :read, :write, :cas, :append, :get, :put or :transfer"
                )))
            }
        }
    }
    // Jepsen does not record the initial balances, and guessing them could
    // turn a valid history invalid.
    if let Some((op, _)) = b.bank.first() {
        return Err(BuildError::Unsupported {
            file: file.to_owned(),
            line: op.line,
            message: "Jepsen bank histories do not record the initial balances; write the history in the JSON \
                      Lines format with an init record"
                .into(),
        });
    }
    Ok(b.finish(&BTreeMap::new()))
}
