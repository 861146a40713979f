//! Command structures (c-structs), Section 4.2 and appendix C.1.
//!
//! A c-struct set is a set with a bottom element `⊥` and an append operator
//! `v • C`. From these come the prefix order `⊑` (`v ⊑ w` iff `w = v • σ` for
//! some command sequence σ), the greatest lower bound `⊓` and, for
//! compatible c-structs, the least upper bound `⊔`. The axioms CS1 to CS4 are
//! checked by property tests in `node/tests/cstruct_laws.rs`.
//!
//! The cluster uses [`History`]: command histories without duplicates
//! (Section 4.4) in which a checkpoint closes the instance (Section 6.3). The
//! other sets exist for tests and as baselines.

mod history;
mod sequence;
mod set;
mod single;

pub use history::History;
pub use sequence::Sequence;
pub use set::CommandSet;
pub use single::SingleValue;

use crate::command::{CmdId, Command};
use std::fmt::Debug;

/// A c-struct set (Section 4.2). Implementations must satisfy CS1 to CS4.
pub trait CStruct: Clone + PartialEq + Eq + Debug + Send + 'static {
    /// `⊥`.
    fn bottom() -> Self;

    /// `v • C`, in place.
    fn append(&mut self, cmd: &Command);

    /// `self ⊑ other`: `other` extends `self`.
    fn is_prefix_of(&self, other: &Self) -> bool;

    /// `self ⊓ other`, which always exists (CS3).
    fn glb(&self, other: &Self) -> Self;

    /// `self ⊔ other` if the two are compatible (CS3), `None` otherwise.
    fn lub(&self, other: &Self) -> Option<Self>;

    /// Whether the two have a common upper bound.
    fn compatible(&self, other: &Self) -> bool {
        self.lub(other).is_some()
    }

    /// Whether the command with this id is in the c-struct (Section 4.2,
    /// "contains").
    fn contains(&self, id: &CmdId) -> bool;

    /// A command sequence σ with `⊥ • σ = self`: the commands in an order
    /// consistent with the c-struct.
    fn linearize(&self) -> Vec<Command>;

    /// A command sequence σ with `prefix • σ = self`. Requires
    /// `prefix ⊑ self`; used to send deltas instead of whole c-structs
    /// (Section 6.3).
    fn suffix_after(&self, prefix: &Self) -> Vec<Command>;

    /// The number of commands in the c-struct.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether appending any further command is a no-op because the c-struct
    /// ends with a checkpoint (Section 6.3). Sets without checkpoints never
    /// close.
    fn is_closed(&self) -> bool {
        false
    }

    /// `⊥ • σ`.
    fn from_commands<'a>(cmds: impl IntoIterator<Item = &'a Command>) -> Self {
        let mut v = Self::bottom();
        for c in cmds {
            v.append(c);
        }
        v
    }

    /// Whether `self` and `other` are still compatible after `self` grew by
    /// `appended`, given that they were compatible before. Sets where only
    /// part of the c-struct can be affected by an append override this.
    fn still_compatible(&self, other: &Self, appended: &[Command]) -> bool {
        let _ = appended;
        self.compatible(other)
    }

    /// `⊓ S` of a non-empty set.
    fn glb_all<'a>(mut items: impl Iterator<Item = &'a Self>) -> Option<Self> {
        let first = items.next()?.clone();
        Some(items.fold(first, |acc, v| acc.glb(v)))
    }

    /// `⊔ S`, or `None` if `S` is not compatible. `⊔ {} = ⊥`.
    fn lub_all<'a>(items: impl Iterator<Item = &'a Self>) -> Option<Self> {
        let mut acc = Self::bottom();
        for v in items {
            acc = acc.lub(v)?;
        }
        Some(acc)
    }
}
