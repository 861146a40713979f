//! Command sequences without duplicates (Section 4.4, "Nonduplicate Command
//! Sequences"), in which a checkpoint closes the sequence (Section 6.3).
//!
//! This is the c-struct of classic state-machine replication: `⊑` is the
//! prefix relation and two sequences are compatible iff one is a prefix of
//! the other. As in [`super::History`], appending after a checkpoint is a
//! no-op because later commands belong to the next instance; the set stays
//! monoidal because `⊥ • σ` depends only on σ up to its first checkpoint.

use super::CStruct;
use crate::command::{CmdId, Command};
use std::collections::HashSet;

#[derive(Clone, Debug, Default)]
pub struct Sequence {
    cmds: Vec<Command>,
    /// The ids in `cmds`, so that the duplicate test of `•` is O(1).
    ids: HashSet<CmdId>,
}

/// By id, like `•` and [`super::History`]: an id names one command.
impl PartialEq for Sequence {
    fn eq(&self, other: &Self) -> bool {
        self.cmds.len() == other.cmds.len() && self.common_prefix_len(other) == self.cmds.len()
    }
}

impl Eq for Sequence {}

impl Sequence {
    pub fn as_slice(&self) -> &[Command] {
        &self.cmds
    }

    /// Length of the longest common prefix, compared by id as `•` does.
    fn common_prefix_len(&self, other: &Self) -> usize {
        self.cmds
            .iter()
            .zip(&other.cmds)
            .take_while(|(a, b)| a.id == b.id)
            .count()
    }
}

impl CStruct for Sequence {
    fn bottom() -> Self {
        Sequence::default()
    }

    fn append(&mut self, cmd: &Command) {
        if self.is_closed() || !self.ids.insert(cmd.id) {
            return;
        }
        self.cmds.push(cmd.clone());
    }

    fn is_prefix_of(&self, other: &Self) -> bool {
        // A closed sequence has no proper extension; a checkpoint is always
        // last, so the plain prefix test already says so.
        self.cmds.len() <= other.cmds.len() && self.common_prefix_len(other) == self.cmds.len()
    }

    fn glb(&self, other: &Self) -> Self {
        let n = self.common_prefix_len(other);
        Sequence {
            cmds: self.cmds[..n].to_vec(),
            ids: self.cmds[..n].iter().map(|c| c.id).collect(),
        }
    }

    fn lub(&self, other: &Self) -> Option<Self> {
        if self.is_prefix_of(other) {
            Some(other.clone())
        } else if other.is_prefix_of(self) {
            Some(self.clone())
        } else {
            None
        }
    }

    fn compatible(&self, other: &Self) -> bool {
        self.common_prefix_len(other) == self.cmds.len().min(other.cmds.len())
    }

    fn contains(&self, id: &CmdId) -> bool {
        self.ids.contains(id)
    }

    fn linearize(&self) -> Vec<Command> {
        self.cmds.clone()
    }

    fn suffix_after(&self, prefix: &Self) -> Vec<Command> {
        debug_assert!(prefix.is_prefix_of(self), "suffix_after needs a prefix");
        self.cmds[prefix.cmds.len().min(self.cmds.len())..].to_vec()
    }

    fn len(&self) -> usize {
        self.cmds.len()
    }

    fn is_closed(&self) -> bool {
        self.cmds.last().is_some_and(Command::is_checkpoint)
    }
}
