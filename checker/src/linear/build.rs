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
use super::jepsen::JepsenOps;
use super::ops::{Action, Object, Operation, Partition, Values};
use crate::fxhash::FxHashMap;
use crate::history::pairing::{Numbering, Pairing};
use crate::history::{History, JepsenEvent, Record};
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
    let mut pairing = Pairing::new(Numbering::Exact);
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
    let mut ops = JepsenOps::new(fail);
    for e in events {
        ops.event(file, e)?;
    }
    ops.finish(file, model)
}
