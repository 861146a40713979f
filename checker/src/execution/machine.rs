//! The checker's own model of the replicated state machine: a key-value
//! store beside a bank (`docs/history-format.md`).

use crate::fxhash::FxHashMap;
use crate::history::Op;
use std::collections::BTreeMap;
use std::fmt;

/// What executing a command answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A `get`: the value, or `None` for an absent key.
    Read(Option<String>),
    /// A `put` or `append`, which always take effect.
    Written,
    /// A `cas`: whether it swapped.
    Swapped(bool),
    /// A `transfer`: whether the money moved.
    Moved(bool),
    /// A `balances`: every listed account's balance.
    Balances(BTreeMap<String, i64>),
    /// A checkpoint changes nothing.
    Checkpointed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Read(Some(v)) => write!(f, "read {v:?}"),
            Outcome::Read(None) => f.write_str("read absent"),
            Outcome::Written => f.write_str("written"),
            Outcome::Swapped(true) => f.write_str("swapped"),
            Outcome::Swapped(false) => f.write_str("did not swap"),
            Outcome::Moved(true) => f.write_str("moved the money"),
            Outcome::Moved(false) => f.write_str("did not move the money"),
            Outcome::Balances(b) => {
                let parts: Vec<String> = b.iter().map(|(a, v)| format!("{a}={v}")).collect();
                write!(f, "balances {{{}}}", parts.join(", "))
            }
            Outcome::Checkpointed => f.write_str("checkpoint"),
        }
    }
}

/// Key-value state (keys start absent) and account balances (accounts
/// start at the `init` record's balance, or 0 when it does not name them).
#[derive(Clone, Debug, Default)]
pub struct Machine {
    values: FxHashMap<String, String>,
    balances: FxHashMap<String, i64>,
}

impl Machine {
    pub fn new(accounts: &BTreeMap<String, i64>) -> Self {
        Machine {
            values: FxHashMap::default(),
            balances: accounts.iter().map(|(a, b)| (a.clone(), *b)).collect(),
        }
    }

    pub fn balance(&self, account: &str) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    pub fn total(&self) -> i64 {
        self.balances.values().sum()
    }

    pub fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Get { key } => Outcome::Read(self.values.get(key).cloned()),
            Op::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                Outcome::Written
            }
            Op::Append { key, value } => {
                self.values.entry(key.clone()).or_default().push_str(value);
                Outcome::Written
            }
            Op::Cas { key, from, to } => {
                let swaps = self.values.get(key) == from.as_ref();
                if swaps {
                    self.values.insert(key.clone(), to.clone());
                }
                Outcome::Swapped(swaps)
            }
            Op::Transfer { from, to, amount } => {
                // A negative amount would take money from `to` without
                // asking whether it can afford it; it never moves.
                let moves = *amount >= 0 && self.balance(from) >= *amount;
                if moves {
                    *self.balances.entry(from.clone()).or_insert(0) -= amount;
                    *self.balances.entry(to.clone()).or_insert(0) += amount;
                }
                Outcome::Moved(moves)
            }
            Op::Balances { accounts } => Outcome::Balances(
                accounts
                    .iter()
                    .map(|a| (a.clone(), self.balance(a)))
                    .collect(),
            ),
            Op::Checkpoint => Outcome::Checkpointed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn kv_operations() {
        let mut m = Machine::default();
        assert_eq!(m.apply(&Op::Get { key: s("k") }), Outcome::Read(None));
        assert_eq!(
            m.apply(&Op::Cas {
                key: s("k"),
                from: None,
                to: s("a")
            }),
            Outcome::Swapped(true)
        );
        assert_eq!(
            m.apply(&Op::Cas {
                key: s("k"),
                from: None,
                to: s("b")
            }),
            Outcome::Swapped(false)
        );
        m.apply(&Op::Append {
            key: s("k"),
            value: s("c"),
        });
        assert_eq!(
            m.apply(&Op::Get { key: s("k") }),
            Outcome::Read(Some(s("ac")))
        );
        m.apply(&Op::Append {
            key: s("j"),
            value: s("x"),
        });
        assert_eq!(
            m.apply(&Op::Get { key: s("j") }),
            Outcome::Read(Some(s("x")))
        );
        m.apply(&Op::Put {
            key: s("j"),
            value: s("y"),
        });
        assert_eq!(
            m.apply(&Op::Cas {
                key: s("j"),
                from: Some(s("y")),
                to: s("z")
            }),
            Outcome::Swapped(true)
        );
    }

    #[test]
    fn bank_operations_conserve_money() {
        let mut m = Machine::new(&[(s("a"), 10), (s("b"), 5)].into_iter().collect());
        let t = |from: &str, to: &str, amount| Op::Transfer {
            from: s(from),
            to: s(to),
            amount,
        };
        assert_eq!(m.apply(&t("a", "b", 10)), Outcome::Moved(true));
        assert_eq!(m.apply(&t("a", "b", 1)), Outcome::Moved(false));
        assert_eq!(m.apply(&t("b", "a", -1)), Outcome::Moved(false));
        assert_eq!(m.apply(&t("b", "c", 15)), Outcome::Moved(true));
        let read = m.apply(&Op::Balances {
            accounts: vec![s("a"), s("c"), s("z")],
        });
        assert_eq!(
            read,
            Outcome::Balances(
                [(s("a"), 0), (s("c"), 15), (s("z"), 0)]
                    .into_iter()
                    .collect()
            )
        );
        assert_eq!(m.total(), 15);
    }
}
