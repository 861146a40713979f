//! Commands proposed to the cluster and their interference relation
//! (Section 4.4, "Command Histories").
//!
//! Two commands interfere iff they touch a common key; a checkpoint touches
//! every key (Section 6.3). Every command carries a unique id `(client, seq)`
//! so that appending it twice to a history without duplicates is a no-op.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A key of the replicated store; bank accounts are keys too.
pub type Key = String;

/// The unique identifier of a command: the client that proposed it and that
/// client's sequence number. Retries keep the id, which makes them idempotent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CmdId {
    pub client: u64,
    pub seq: u64,
}

impl fmt::Debug for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.client, self.seq)
    }
}

impl fmt::Display for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.client, self.seq)
    }
}

/// What a command does to the state machine (`node::app` executes it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Get { key: Key },
    Put { key: Key, value: String },
    /// Compare-and-set: succeeds iff the current value equals `from`
    /// (`None` meaning the key is absent).
    Cas { key: Key, from: Option<String>, to: String },
    Append { key: Key, value: String },
    /// Moves `amount` from one account to another if `from` can afford it.
    Transfer { from: Key, to: Key, amount: i64 },
    /// Reads every listed account at once.
    Balances { accounts: Vec<Key> },
    /// Interferes with every command; closes an instance (Section 6.3).
    Checkpoint,
}

/// The keys a command touches; its interference footprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Footprint<'a> {
    /// Touches every key: a checkpoint.
    All,
    One(&'a Key),
    Two(&'a Key, &'a Key),
    Many(&'a [Key]),
}

impl<'a> Footprint<'a> {
    /// The keys, or `None` for a footprint that covers every key.
    pub fn keys(self) -> Option<Vec<&'a Key>> {
        match self {
            Footprint::All => None,
            Footprint::One(a) => Some(vec![a]),
            Footprint::Two(a, b) if a == b => Some(vec![a]),
            Footprint::Two(a, b) => Some(vec![a, b]),
            Footprint::Many(ks) => {
                let mut v: Vec<&Key> = ks.iter().collect();
                v.sort();
                v.dedup();
                Some(v)
            }
        }
    }
}

/// A proposed command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    pub id: CmdId,
    pub op: Op,
}

impl Command {
    pub fn new(client: u64, seq: u64, op: Op) -> Self {
        Command { id: CmdId { client, seq }, op }
    }

    /// A checkpoint command. Its id is chosen by the leader that proposes it.
    pub fn checkpoint(id: CmdId) -> Self {
        Command { id, op: Op::Checkpoint }
    }

    pub fn is_checkpoint(&self) -> bool {
        matches!(self.op, Op::Checkpoint)
    }

    pub fn footprint(&self) -> Footprint<'_> {
        match &self.op {
            Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } | Op::Append { key, .. } => {
                Footprint::One(key)
            }
            Op::Transfer { from, to, .. } => Footprint::Two(from, to),
            Op::Balances { accounts } => Footprint::Many(accounts),
            Op::Checkpoint => Footprint::All,
        }
    }

    /// The interference relation `≍` of Section 4.4: a common key, or a
    /// checkpoint on either side. Symmetric by construction.
    pub fn interferes(&self, other: &Command) -> bool {
        match (self.footprint().keys(), other.footprint().keys()) {
            (None, _) | (_, None) => true,
            (Some(a), Some(b)) => a.iter().any(|k| b.contains(k)),
        }
    }
}
