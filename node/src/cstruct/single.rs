//! Commands with `⊥` (Section 4.4): the c-struct set `Cmd ∪ {⊥}` whose
//! generalized consensus is ordinary consensus on a single command.
//!
//! `⊥ • C = C` and `v • C = v` for `v ≠ ⊥`, so `v ⊑ w` iff `v = ⊥` or
//! `v = w`, and two commands are compatible iff they are equal.

use super::CStruct;
use crate::command::{CmdId, Command};

/// `⊥` (`None`) or the one command that was appended first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SingleValue(Option<Command>);

impl SingleValue {
    /// The command, or `None` for `⊥`.
    pub fn value(&self) -> Option<&Command> {
        self.0.as_ref()
    }
}

impl CStruct for SingleValue {
    fn bottom() -> Self {
        SingleValue(None)
    }

    fn append(&mut self, cmd: &Command) {
        if self.0.is_none() {
            self.0 = Some(cmd.clone());
        }
    }

    fn is_prefix_of(&self, other: &Self) -> bool {
        self.0.is_none() || self == other
    }

    fn glb(&self, other: &Self) -> Self {
        if self == other {
            self.clone()
        } else {
            SingleValue(None)
        }
    }

    fn lub(&self, other: &Self) -> Option<Self> {
        match (&self.0, &other.0) {
            (None, _) => Some(other.clone()),
            (_, None) => Some(self.clone()),
            (Some(a), Some(b)) => (a == b).then(|| self.clone()),
        }
    }

    /// Membership, as in [`super::History`], not the paper's `contains`:
    /// Section 4.4 notes that with `⊥` "every command contains every
    /// command, since `C = C • ⟨D⟩`", which would tell the proposer of a
    /// losing command that it was chosen. Membership satisfies CS4 as well
    /// (two compatible values that hold `C` are both `C`).
    fn contains(&self, id: &CmdId) -> bool {
        self.0.as_ref().is_some_and(|c| c.id == *id)
    }

    fn linearize(&self) -> Vec<Command> {
        self.0.iter().cloned().collect()
    }

    fn suffix_after(&self, prefix: &Self) -> Vec<Command> {
        debug_assert!(prefix.is_prefix_of(self), "suffix_after needs a prefix");
        if prefix.0.is_none() {
            self.linearize()
        } else {
            Vec::new()
        }
    }

    fn len(&self) -> usize {
        usize::from(self.0.is_some())
    }

    /// Once a command is in, every further append is a no-op, which is what
    /// `is_closed` promises callers: the single-decree instance is decided
    /// (Section 4.4), whether or not the command is a checkpoint.
    fn is_closed(&self) -> bool {
        self.0.is_some()
    }
}
