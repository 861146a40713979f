//! Command sets (Section 4.4): finite sets of commands, `⊥ = {}` and
//! `v • C = v ∪ {C}`.
//!
//! Every two sets are compatible, `⊑` is `⊆`, `⊓` is `∩` and `⊔` is `∪`.
//! A checkpoint is just another element here: a set never closes, so the
//! consensus problem stays the trivial one the paper describes.

use super::CStruct;
use crate::command::{CmdId, Command};
use std::collections::BTreeMap;

/// A finite set of commands, keyed by id. Ids are unique per command
/// (`command.rs`), so keying by id is the set of the paper; it also makes
/// equality independent of insertion order and `linearize` deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandSet(BTreeMap<CmdId, Command>);

impl CommandSet {
    pub fn get(&self, id: &CmdId) -> Option<&Command> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.0.values()
    }
}

impl CStruct for CommandSet {
    fn bottom() -> Self {
        CommandSet(BTreeMap::new())
    }

    fn append(&mut self, cmd: &Command) {
        self.0.entry(cmd.id).or_insert_with(|| cmd.clone());
    }

    fn is_prefix_of(&self, other: &Self) -> bool {
        self.0.len() <= other.0.len() && self.0.keys().all(|id| other.0.contains_key(id))
    }

    fn glb(&self, other: &Self) -> Self {
        CommandSet(
            self.0
                .iter()
                .filter(|(id, _)| other.0.contains_key(id))
                .map(|(id, c)| (*id, c.clone()))
                .collect(),
        )
    }

    fn lub(&self, other: &Self) -> Option<Self> {
        let mut out = self.clone();
        for c in other.0.values() {
            out.append(c);
        }
        Some(out)
    }

    fn compatible(&self, _other: &Self) -> bool {
        true
    }

    fn contains(&self, id: &CmdId) -> bool {
        self.0.contains_key(id)
    }

    fn linearize(&self) -> Vec<Command> {
        self.0.values().cloned().collect()
    }

    fn suffix_after(&self, prefix: &Self) -> Vec<Command> {
        debug_assert!(prefix.is_prefix_of(self), "suffix_after needs a prefix");
        self.0
            .values()
            .filter(|c| !prefix.0.contains_key(&c.id))
            .cloned()
            .collect()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}
