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
use crate::command::{CmdId, Command, FastHash, IdMap, IdSet, Key};
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every command, in the order appended: one linearization of the history.
    cmds: Vec<Command>,
    /// Position of each command in `cmds`.
    index: IdMap<usize>,
    /// The projection on each key, in order.
    per_key: HashMap<Key, Vec<CmdId>, FastHash>,
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
        small
            .per_key
            .iter()
            .all(|(k, a)| match large.per_key.get(k) {
                None => true,
                Some(b) => {
                    let n = a.len().min(b.len());
                    a[..n] == b[..n]
                }
            })
    }

    /// The commands of the greatest common prefix of `self` and `others`.
    ///
    /// A command belongs to it iff it is in every other history and, on
    /// every key it touches, everything before it in `self` belongs too and
    /// it sits at the same position in every other history's projection.
    /// Going through `self` in the order its commands were appended (a
    /// linearization) visits every command after its predecessors, so one
    /// pass finds this greatest fix-point (docs/PAPER.md trap 5): once a key has
    /// lost a command, every later command on that key is out, and with it,
    /// on its other keys, everything after it.
    fn common_prefix_ids(&self, others: &[&History]) -> IdSet {
        // Per key: commands of `self` seen so far, and whether all of them
        // were kept.
        let mut seen: HashMap<&str, (usize, bool), FastHash> = HashMap::default();
        let mut ids = IdSet::default();
        for cmd in &self.cmds {
            if cmd.is_checkpoint() {
                continue;
            }
            let mut keep = others.iter().all(|o| o.index.contains_key(&cmd.id));
            if keep {
                cmd.for_each_key(|k| {
                    let (n, intact) = *seen.get(k.as_str()).unwrap_or(&(0, true));
                    keep &= intact
                        && others
                            .iter()
                            .all(|o| o.per_key.get(k).and_then(|p| p.get(n)) == Some(&cmd.id));
                });
            }
            cmd.for_each_key(|k| {
                let e = seen.entry(k.as_str()).or_insert((0, true));
                e.0 += 1;
                e.1 &= keep;
            });
            if keep {
                ids.insert(cmd.id);
            }
        }
        ids
    }

    fn filtered(&self, ids: &IdSet) -> History {
        let mut out = History::bottom();
        for c in &self.cmds {
            if ids.contains(&c.id) {
                out.append(c);
            }
        }
        out
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
        let per_key = &mut self.per_key;
        let has_keys = cmd.for_each_key(|k| match per_key.get_mut(k) {
            Some(p) => p.push(cmd.id),
            None => {
                per_key.insert(k.clone(), vec![cmd.id]);
            }
        });
        self.closed = !has_keys;
        self.cmds.push(cmd.clone());
    }

    fn is_prefix_of(&self, other: &Self) -> bool {
        if self.closed {
            return self == other;
        }
        self.cmds.len() <= other.cmds.len()
            && self.cmds.iter().all(|c| other.index.contains_key(&c.id))
            && self
                .per_key
                .iter()
                .all(|(k, a)| match other.per_key.get(k) {
                    Some(b) => b.len() >= a.len() && b[..a.len()] == a[..],
                    None => a.is_empty(),
                })
    }

    fn glb(&self, other: &Self) -> Self {
        if self == other {
            return self.clone();
        }
        self.filtered(&self.common_prefix_ids(&[other]))
    }

    fn glb_all<'a>(mut items: impl Iterator<Item = &'a Self>) -> Option<Self> {
        let first = items.next()?;
        let others: Vec<&History> = items.collect();
        if others.iter().all(|o| *o == first) {
            return Some(first.clone());
        }
        Some(first.filtered(&first.common_prefix_ids(&others)))
    }

    fn still_compatible(&self, other: &Self, appended: &[Command]) -> bool {
        if self.closed || other.closed || appended.iter().any(Command::is_checkpoint) {
            return self.compatible(other);
        }
        // Per key, how many of the appended commands landed on it: only the
        // tail they form can disagree with `other`.
        let mut touched: Vec<(&str, usize)> = Vec::new();
        for c in appended {
            c.for_each_key(
                |k| match touched.iter_mut().find(|(t, _)| *t == k.as_str()) {
                    Some((_, n)) => *n += 1,
                    None => touched.push((k.as_str(), 1)),
                },
            );
        }
        let mut ok = true;
        for (k, m) in touched {
            if let (Some(a), Some(b)) = (self.per_key.get(k), other.per_key.get(k)) {
                let n = a.len().min(b.len());
                let start = a.len().saturating_sub(m).min(n);
                ok &= a[start..n] == b[start..n];
            }
        }
        ok
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
        // With every shared key's projections prefix-related, a command in
        // both histories has only shared predecessors, and a command only in
        // `other` precedes nothing in `self`; so appending `other`'s extra
        // commands in its own order gives the lub.
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
        self.cmds
            .iter()
            .filter(|c| !prefix.contains(&c.id))
            .cloned()
            .collect()
    }

    fn len(&self) -> usize {
        self.cmds.len()
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}
