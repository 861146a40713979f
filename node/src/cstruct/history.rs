//! Command histories without duplicates (Section 4.4), in which a checkpoint
//! closes the instance (Section 6.3).
//!
//! A history is an equivalence class of command sequences under swapping
//! adjacent non-interfering commands (a Mazurkiewicz trace). Because two
//! commands interfere iff they share a key, a history is determined by its
//! projection on every key: the sequence of commands touching that key. So a
//! history is stored as per-key sequences of command ids, and `⊑`, `⊓`, `⊔`
//! and compatibility are computed key by key.
//!
//! A checkpoint interferes with every command, so everything appended before
//! it precedes it. Once a history holds a checkpoint it is *closed*: appending
//! more is a no-op, because later commands belong to the next instance
//! (Section 6.3: instance i chooses `v_i • C`). This keeps the set a monoidal
//! c-struct set: `⊥ • σ` depends only on σ up to its first checkpoint.

use super::CStruct;
use crate::command::{CmdId, Command, Key};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every command, in the order appended: one linearization of the history.
    cmds: Vec<Command>,
    /// Position of each command in `cmds`.
    index: HashMap<CmdId, usize>,
    /// The projection on each key, in order.
    per_key: BTreeMap<Key, Vec<CmdId>>,
    /// Whether the last command is a checkpoint.
    closed: bool,
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.cmds.len() == other.cmds.len()
            && self.closed == other.closed
            && self.per_key == other.per_key
            && self.cmds.iter().all(|c| other.index.contains_key(&c.id))
            && (!self.closed || self.cmds.last().map(|c| c.id) == other.cmds.last().map(|c| c.id))
    }
}

impl Eq for History {}

impl History {
    /// The projection of the history on one key.
    pub fn projection(&self, key: &str) -> &[CmdId] {
        self.per_key.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.per_key.keys()
    }

    pub fn get(&self, id: &CmdId) -> Option<&Command> {
        self.index.get(id).map(|&i| &self.cmds[i])
    }

    /// Per key, whether one projection is a prefix of the other, for every
    /// key the two share.
    fn projections_prefix_related(&self, other: &Self) -> bool {
        let (small, large) = if self.per_key.len() <= other.per_key.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.per_key.iter().all(|(k, a)| match large.per_key.get(k) {
            None => true,
            Some(b) => {
                let n = a.len().min(b.len());
                a[..n] == b[..n]
            }
        })
    }

    /// The commands of `self` that are in every c-struct below both `self`
    /// and `other`: the greatest set downward closed in both whose
    /// projections agree. Needs a fix-point because a multi-key command may
    /// be in the common prefix of one key but not of another, which then
    /// cuts the first key's prefix too (PAPER.md trap 5).
    fn common_prefix_ids(&self, other: &Self) -> HashSet<CmdId> {
        // Per key, the length of the common prefix of the two projections.
        let mut cut: HashMap<&Key, usize> = HashMap::new();
        for (k, a) in &self.per_key {
            let n = match other.per_key.get(k) {
                Some(b) => a.iter().zip(b).take_while(|(x, y)| x == y).count(),
                None => 0,
            };
            cut.insert(k, n);
        }
        // Position of each command within each of its keys' projections.
        loop {
            let inside = |id: &CmdId, cut: &HashMap<&Key, usize>| -> bool {
                let cmd = &self.cmds[self.index[id]];
                match cmd.footprint().keys() {
                    None => false,
                    Some(keys) => keys.iter().all(|k| {
                        let proj = &self.per_key[*k];
                        let c = cut.get(k).copied().unwrap_or(0);
                        proj[..c].contains(id)
                    }),
                }
            };
            let mut changed = false;
            let keys: Vec<&Key> = cut.keys().copied().collect();
            for k in keys {
                let c = cut[k];
                let proj = &self.per_key[k];
                if let Some(bad) = (0..c).find(|&i| !inside(&proj[i], &cut)) {
                    cut.insert(k, bad);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut ids = HashSet::new();
        for (k, &c) in &cut {
            ids.extend(self.per_key[*k][..c].iter().copied());
        }
        // Commands that touch no key interfere with nothing.
        for cmd in &self.cmds {
            if matches!(cmd.footprint().keys(), Some(ks) if ks.is_empty())
                && other.index.contains_key(&cmd.id)
            {
                ids.insert(cmd.id);
            }
        }
        ids
    }
}

impl CStruct for History {
    fn bottom() -> Self {
        History::default()
    }

    fn append(&mut self, cmd: &Command) {
        if self.closed || self.index.contains_key(&cmd.id) {
            return;
        }
        self.index.insert(cmd.id, self.cmds.len());
        match cmd.footprint().keys() {
            None => self.closed = true,
            Some(keys) => {
                for k in keys {
                    self.per_key.entry(k.clone()).or_default().push(cmd.id);
                }
            }
        }
        self.cmds.push(cmd.clone());
    }

    fn is_prefix_of(&self, other: &Self) -> bool {
        if self.closed {
            return self == other;
        }
        self.cmds.len() <= other.cmds.len()
            && self.cmds.iter().all(|c| other.index.contains_key(&c.id))
            && self.per_key.iter().all(|(k, a)| match other.per_key.get(k) {
                Some(b) => b.len() >= a.len() && b[..a.len()] == a[..],
                None => a.is_empty(),
            })
    }

    fn glb(&self, other: &Self) -> Self {
        if self == other {
            return self.clone();
        }
        let ids = self.common_prefix_ids(other);
        let mut out = History::bottom();
        for c in &self.cmds {
            if ids.contains(&c.id) {
                out.append(c);
            }
        }
        out
    }

    fn lub(&self, other: &Self) -> Option<Self> {
        if self.closed {
            return other.is_prefix_of(self).then(|| self.clone());
        }
        if other.closed {
            return self.is_prefix_of(other).then(|| other.clone());
        }
        if !self.projections_prefix_related(other) {
            return None;
        }
        // Commands in only one history precede nothing in the other (see the
        // proof sketch in the module docs of `tests/cstruct_laws.rs`), so
        // appending `other`'s extra commands in its own order is valid.
        let mut out = self.clone();
        for c in &other.cmds {
            out.append(c);
        }
        Some(out)
    }

    fn compatible(&self, other: &Self) -> bool {
        if self.closed {
            return other.is_prefix_of(self);
        }
        if other.closed {
            return self.is_prefix_of(other);
        }
        self.projections_prefix_related(other)
    }

    fn contains(&self, id: &CmdId) -> bool {
        self.index.contains_key(id)
    }

    fn linearize(&self) -> Vec<Command> {
        self.cmds.clone()
    }

    fn suffix_after(&self, prefix: &Self) -> Vec<Command> {
        debug_assert!(prefix.is_prefix_of(self), "suffix_after needs a prefix");
        self.cmds.iter().filter(|c| !prefix.contains(&c.id)).cloned().collect()
    }

    fn len(&self) -> usize {
        self.cmds.len()
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}
