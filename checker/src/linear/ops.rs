//! Client operations as the linearizability search sees them: an action,
//! its real-time interval, and whether its outcome is known.

use crate::intern::Interner;
use std::fmt;

/// An interned value. `ABSENT` is the value of a key never written.
pub type Val = u32;
pub const ABSENT: Val = 0;

/// An account's index within its partition.
pub type Account = u32;

/// What an operation did, with what it observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read this value.
    Read(Val),
    Write(Val),
    /// Appended this value to the current one (absent reads as empty).
    Append(Val),
    /// Compare-and-set; `swapped` is `None` when the outcome is unknown.
    Cas {
        from: Val,
        to: Val,
        swapped: Option<bool>,
    },
    /// Moves `amount` iff `from` can afford it; `moved` is `None` when the
    /// outcome is unknown.
    Transfer {
        from: Account,
        to: Account,
        amount: i64,
        moved: Option<bool>,
    },
    /// Read these balances at once.
    Balances(Vec<(Account, i64)>),
}

/// One client operation in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub process: i64,
    /// When it was invoked.
    pub call: u64,
    /// When it completed; `None` for an indeterminate operation, which may
    /// take effect at any point after its call, or never.
    pub ret: Option<u64>,
    pub action: Action,
    /// Where the operation is in its source: a line of the history file.
    pub line: usize,
}

/// Interned values shared by every partition of a history.
#[derive(Clone, Debug, Default)]
pub struct Values {
    /// Value `v` is `strings` entry `v - 1`: `ABSENT` has no text of its
    /// own, so interning `""` gives a value distinct from `ABSENT`.
    strings: Interner,
    /// Jepsen key-value histories read an unwritten key as `""`: there the
    /// empty string and absence are one value.
    pub empty_is_absent: bool,
}

impl Values {
    /// The value of `s`; `ABSENT` for `""` where the two are one value.
    pub fn intern(&mut self, s: &str) -> Val {
        if s.is_empty() && self.empty_is_absent {
            return ABSENT;
        }
        self.strings.intern(s).0 + 1
    }

    /// Makes room for `more` values of `bytes` bytes in all.
    pub fn reserve(&mut self, more: usize, bytes: usize) {
        self.strings.reserve(more, bytes);
    }

    pub fn lookup(&self, s: &str) -> Option<Val> {
        self.strings.get(s).map(|v| v + 1)
    }

    /// The text of a value; `ABSENT` reads as the empty string.
    pub fn text(&self, v: Val) -> &str {
        match v {
            ABSENT => "",
            v => self.strings.text(v - 1),
        }
    }

    pub fn len(&self) -> usize {
        self.strings.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// A value for people: quoted, or `absent`.
    pub fn show(&self, v: Val) -> String {
        if v == ABSENT {
            "absent".to_owned()
        } else {
            format!("{:?}", self.text(v))
        }
    }
}

/// What kind of object a partition is, which decides its model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// One register or one key of a key-value store.
    Value,
    /// A set of accounts, coupled by transfers and reads.
    Bank {
        accounts: Vec<String>,
        initial: Vec<i64>,
    },
}

/// The operations on one independent object (P-compositionality:
/// a history is linearizable iff each object's subhistory is).
#[derive(Clone, Debug)]
pub struct Partition {
    /// The key, or the accounts, for people.
    pub name: String,
    pub object: Object,
    pub ops: Vec<Operation>,
}

impl Partition {
    /// Describes an operation for people.
    pub fn describe(&self, values: &Values, op: &Operation) -> String {
        let account = |a: Account| match &self.object {
            Object::Bank { accounts, .. } => accounts[a as usize].clone(),
            Object::Value => a.to_string(),
        };
        let outcome = |known: Option<bool>, yes: &str, no: &str| match known {
            Some(true) => yes.to_owned(),
            Some(false) => no.to_owned(),
            None => "unknown".to_owned(),
        };
        match &op.action {
            Action::Read(v) => format!("read {}", values.show(*v)),
            Action::Write(v) => format!("write {}", values.show(*v)),
            Action::Append(v) => format!("append {}", values.show(*v)),
            Action::Cas { from, to, swapped } => format!(
                "cas {}->{} ({})",
                values.show(*from),
                values.show(*to),
                outcome(*swapped, "ok", "fail")
            ),
            Action::Transfer {
                from,
                to,
                amount,
                moved,
            } => format!(
                "transfer {amount} {}->{} ({})",
                account(*from),
                account(*to),
                outcome(*moved, "moved", "refused")
            ),
            Action::Balances(read) => {
                let parts: Vec<String> = read
                    .iter()
                    .map(|(a, b)| format!("{}={b}", account(*a)))
                    .collect();
                format!("balances {{{}}}", parts.join(", "))
            }
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Value => f.write_str("value"),
            Object::Bank { accounts, .. } => write!(f, "bank of {} accounts", accounts.len()),
        }
    }
}
