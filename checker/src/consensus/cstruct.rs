//! The checker's own model of command histories without duplicates
//! (Section 4.4, "Command Histories").
//!
//! A history `[σ]` is determined by its per-key projections: for each key
//! `k`, the subsequence of `σ` of the commands touching `k`. Two commands
//! interfere iff they share a key, so the graph `G(σ)` of Section 4.4 has an
//! edge between two commands iff they are adjacent-or-ordered in some
//! projection. From the graph characterisation in Section 4.4:
//!
//! * `[σ] ⊑ [τ]` iff every projection of `σ` is a sequence prefix of the
//!   same projection of `τ` (and `τ` holds `σ`'s commands that touch no
//!   key);
//! * `[σ]` and `[τ]` are compatible iff, key by key, one projection is a
//!   prefix of the other. (Section 4.4 states compatibility as "same
//!   subgraph on the common commands, and no interfering pair split between
//!   the two sides"; an upper bound must also keep the common commands
//!   downward closed in each side, which the per-key prefix test enforces.)
//!
//! A checkpoint touches every key, including keys no command names. Rather
//! than copying every checkpoint into every key's projection, the model keeps
//! the checkpoints once (the projection on a key no one else touches, called
//! `⊤` below) and tags each per-key entry with its epoch: how many
//! checkpoints precede it. Projections are then compared in time linear in
//! the entries, not in keys times checkpoints.

use super::table::{CmdIx, CommandTable, KeyIx, Touch};
use crate::fxhash::FxHashMap;

const ABSENT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Checkpoints before this command in the sequence.
    epoch: u32,
    cmd: CmdIx,
}

/// A command history without duplicates, stored as per-key projections.
#[derive(Clone, Debug, Default)]
pub struct KeyedHistory {
    /// The checkpoints, in order: the projection on `⊤`.
    checkpoints: Vec<CmdIx>,
    per_key: FxHashMap<KeyIx, Vec<Entry>>,
    /// Commands that touch no key; they commute with everything.
    keyless: Vec<CmdIx>,
    /// `position[c]` is `c`'s index in the sequence the history was built
    /// from, or `ABSENT`.
    position: Vec<u32>,
    len: usize,
}

/// Where the projections of two histories first part, on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The key, or `None` for the order of checkpoints (`⊤`).
    pub key: Option<KeyIx>,
    /// Index in the projection at which they part.
    pub index: usize,
    /// The command the left history has there (`None`: it has ended).
    pub left: Option<CmdIx>,
    /// The command the right history has there (`None`: it has ended).
    pub right: Option<CmdIx>,
}

/// How a walk of two projections ended.
enum Walk {
    /// The left projection is a prefix of the right one (maybe equal).
    LeftEnded,
    /// The right projection is a proper prefix of the left one.
    RightEnded(Divergence),
    Parted(Divergence),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Cmd(CmdIx),
    /// The checkpoint with this index in `⊤`.
    Checkpoint(u32),
    End,
}

impl KeyedHistory {
    /// The history `[seq]`; `seq` must hold no command twice (the caller
    /// drops repeats, as appending a present command is a no-op).
    pub fn from_sequence(table: &CommandTable, seq: &[CmdIx]) -> Self {
        let mut h = KeyedHistory {
            position: vec![ABSENT; table.len()],
            len: seq.len(),
            ..KeyedHistory::default()
        };
        for (pos, &cmd) in seq.iter().enumerate() {
            debug_assert_eq!(
                h.position[cmd as usize], ABSENT,
                "a history without duplicates"
            );
            h.position[cmd as usize] = pos as u32;
            match table.touch(cmd) {
                Touch::All => h.checkpoints.push(cmd),
                Touch::Keys(keys) if keys.is_empty() => h.keyless.push(cmd),
                Touch::Keys(keys) => {
                    let epoch = h.checkpoints.len() as u32;
                    for &key in keys.iter() {
                        h.per_key.entry(key).or_default().push(Entry { epoch, cmd });
                    }
                }
            }
        }
        h.keyless.sort_unstable();
        h
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, cmd: CmdIx) -> bool {
        self.position(cmd).is_some()
    }

    /// The command's index in the sequence the history was built from.
    pub fn position(&self, cmd: CmdIx) -> Option<usize> {
        match self.position.get(cmd as usize) {
            Some(&p) if p != ABSENT => Some(p as usize),
            _ => None,
        }
    }

    /// The projection on `key` (`None`: on `⊤`), checkpoints included.
    pub fn projection(&self, key: Option<KeyIx>) -> Vec<CmdIx> {
        let Some(key) = key else {
            return self.checkpoints.clone();
        };
        let mut out = Vec::new();
        let mut ck = 0usize;
        for e in self.per_key.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
            while ck < e.epoch as usize {
                out.push(self.checkpoints[ck]);
                ck += 1;
            }
            out.push(e.cmd);
        }
        out.extend_from_slice(&self.checkpoints[ck..]);
        out
    }

    /// `self ⊑ other`; otherwise the divergence on every key where a
    /// projection of `self` is not a prefix of `other`'s (`left` is `self`).
    pub fn prefix_of(&self, other: &KeyedHistory) -> Result<(), Vec<Divergence>> {
        if let Some(d) = first_difference(&self.checkpoints, &other.checkpoints) {
            return Err(vec![d]);
        }
        if self.checkpoints.len() > other.checkpoints.len() {
            let index = other.checkpoints.len();
            return Err(vec![Divergence {
                key: None,
                index,
                left: Some(self.checkpoints[index]),
                right: None,
            }]);
        }
        let mut out = Vec::new();
        for (&key, entries) in &self.per_key {
            let theirs = other.per_key.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            match self.walk(key, entries, other, theirs) {
                Walk::LeftEnded => {}
                Walk::RightEnded(d) | Walk::Parted(d) => out.push(d),
            }
        }
        // On a key only `other` touches, `self`'s projection is its
        // checkpoints, which `other` may have preceded by commands on it.
        for (&key, theirs) in &other.per_key {
            if !self.per_key.contains_key(&key) {
                if let Walk::RightEnded(d) | Walk::Parted(d) = self.walk(key, &[], other, theirs) {
                    out.push(d);
                }
            }
        }
        for &cmd in &self.keyless {
            if other.keyless.binary_search(&cmd).is_err() {
                out.push(Divergence {
                    key: None,
                    index: 0,
                    left: Some(cmd),
                    right: None,
                });
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    /// Whether `self` and `other` have a common upper bound; otherwise the
    /// divergence on every key where neither projection is a prefix of the
    /// other (`left` is `self`).
    pub fn compatible(&self, other: &KeyedHistory) -> Result<(), Vec<Divergence>> {
        if let Some(d) = first_difference(&self.checkpoints, &other.checkpoints) {
            return Err(vec![d]);
        }
        let mut out = Vec::new();
        for (&key, entries) in &self.per_key {
            let theirs = other.per_key.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            if let Walk::Parted(d) = self.walk(key, entries, other, theirs) {
                out.push(d);
            }
        }
        for (&key, theirs) in &other.per_key {
            if !self.per_key.contains_key(&key) {
                if let Walk::Parted(d) = self.walk(key, &[], other, theirs) {
                    out.push(d);
                }
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    /// Walks the projections of `self` and `other` on `key` side by side.
    /// The checkpoint lists must already be known to be prefix-related, so
    /// the `i`th checkpoint is the same command on both sides.
    fn walk(&self, key: KeyIx, mine: &[Entry], other: &KeyedHistory, theirs: &[Entry]) -> Walk {
        let (my_cks, their_cks) = (self.checkpoints.len(), other.checkpoints.len());
        let next = |entries: &[Entry], i: usize, ck: usize, cks: usize| -> Token {
            match entries.get(i) {
                Some(e) if e.epoch as usize > ck => Token::Checkpoint(ck as u32),
                Some(e) => Token::Cmd(e.cmd),
                None if ck < cks => Token::Checkpoint(ck as u32),
                None => Token::End,
            }
        };
        let (mut i, mut j, mut ck, mut index) = (0usize, 0usize, 0usize, 0usize);
        loop {
            let a = next(mine, i, ck, my_cks);
            let b = next(theirs, j, ck, their_cks);
            let divergence = |a: Token, b: Token| Divergence {
                key: Some(key),
                index,
                left: self.token_cmd(a),
                right: self.token_cmd(b).or(other.token_cmd(b)),
            };
            match (a, b) {
                (Token::End, _) => return Walk::LeftEnded,
                (_, Token::End) => return Walk::RightEnded(divergence(a, b)),
                (Token::Cmd(x), Token::Cmd(y)) if x == y => {
                    i += 1;
                    j += 1;
                    index += 1;
                }
                (Token::Checkpoint(_), Token::Checkpoint(_)) => {
                    // Both sides are in the same run of checkpoints; skip to
                    // where the first of them leaves it.
                    let until = |entries: &[Entry], i: usize, cks: usize| {
                        entries.get(i).map_or(cks, |e| e.epoch as usize)
                    };
                    let end = until(mine, i, my_cks).min(until(theirs, j, their_cks));
                    index += end - ck;
                    ck = end;
                }
                _ => return Walk::Parted(divergence(a, b)),
            }
        }
    }

    fn token_cmd(&self, t: Token) -> Option<CmdIx> {
        match t {
            Token::Cmd(c) => Some(c),
            Token::Checkpoint(i) => self.checkpoints.get(i as usize).copied(),
            Token::End => None,
        }
    }
}

/// The first index at which two checkpoint lists differ, if neither is a
/// prefix of the other.
fn first_difference(left: &[CmdIx], right: &[CmdIx]) -> Option<Divergence> {
    let index = left.iter().zip(right).position(|(a, b)| a != b)?;
    Some(Divergence {
        key: None,
        index,
        left: Some(left[index]),
        right: Some(right[index]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{CmdId, Command, Op};

    /// Commands named by a letter and the keys they touch: `"a:x"` touches
    /// `x`, `"t:x,y"` touches `x` and `y`, `"c:*"` is a checkpoint.
    fn table(specs: &[&str]) -> CommandTable {
        let mut t = CommandTable::new();
        for spec in specs {
            let (name, keys) = spec.split_once(':').unwrap();
            let op = match keys {
                "*" => Op::Checkpoint,
                "" => Op::Balances { accounts: vec![] },
                keys => Op::Balances {
                    accounts: keys.split(',').map(String::from).collect(),
                },
            };
            t.intern(&Command {
                id: CmdId(name.into()),
                op,
            });
        }
        t
    }

    fn hist(t: &CommandTable, names: &str) -> KeyedHistory {
        let seq: Vec<CmdIx> = names
            .split_whitespace()
            .map(|n| t.lookup(&CmdId(n.into())).unwrap())
            .collect();
        KeyedHistory::from_sequence(t, &seq)
    }

    fn t() -> CommandTable {
        table(&["a:x", "b:x", "c:y", "d:y", "e:x,y", "k:*", "m:*", "z:"])
    }

    #[test]
    fn equivalent_sequences_are_prefixes_of_each_other() {
        let t = t();
        // a and c commute, so [a c] = [c a].
        assert!(hist(&t, "a c").prefix_of(&hist(&t, "c a")).is_ok());
        assert!(hist(&t, "c a").prefix_of(&hist(&t, "a c")).is_ok());
        assert!(hist(&t, "a c b").prefix_of(&hist(&t, "c a b d")).is_ok());
        // ...but a and b do not.
        assert!(hist(&t, "a b").prefix_of(&hist(&t, "b a")).is_err());
    }

    #[test]
    fn prefix_requires_downward_closure() {
        let t = t();
        // [b] is not a prefix of [a b]: a precedes b on x.
        let err = hist(&t, "b").prefix_of(&hist(&t, "a b")).unwrap_err();
        assert_eq!(err[0].left, t.lookup(&"b".into()));
        assert_eq!(err[0].right, t.lookup(&"a".into()));
        // [c] is a prefix of [a c] (they commute).
        assert!(hist(&t, "c").prefix_of(&hist(&t, "a c")).is_ok());
        assert!(hist(&t, "a b").prefix_of(&hist(&t, "a")).is_err());
    }

    #[test]
    fn compatibility_is_per_key_prefix() {
        let t = t();
        assert!(hist(&t, "a").compatible(&hist(&t, "c")).is_ok());
        assert!(hist(&t, "a c").compatible(&hist(&t, "c d")).is_ok());
        // Different commands learned on the same key: no upper bound.
        assert!(hist(&t, "a").compatible(&hist(&t, "b")).is_err());
        // The same two commands in the other order.
        let err = hist(&t, "a b").compatible(&hist(&t, "b a")).unwrap_err();
        assert_eq!(err.len(), 1);
        // [a b] and [b]: b has a before it on one side only.
        assert!(hist(&t, "a b").compatible(&hist(&t, "b")).is_err());
    }

    #[test]
    fn multi_key_commands_order_both_keys() {
        let t = t();
        // e touches x and y: [a e] and [e a] differ on x only.
        let err = hist(&t, "a e c")
            .compatible(&hist(&t, "e a c"))
            .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].key, Some(0));
        // [c e] vs [e c] differ on y.
        assert!(hist(&t, "a c e").compatible(&hist(&t, "a e c")).is_err());
        // [a c e] and [c a e] are the same history.
        assert!(hist(&t, "a c e").compatible(&hist(&t, "c a e")).is_ok());
        assert!(hist(&t, "a c e").prefix_of(&hist(&t, "c a e b")).is_ok());
    }

    #[test]
    fn checkpoints_touch_every_key() {
        let t = t();
        // k orders a before it and c after it.
        assert!(hist(&t, "a k c").compatible(&hist(&t, "a k")).is_ok());
        assert!(hist(&t, "a k").prefix_of(&hist(&t, "a k c")).is_ok());
        // [k] is not a prefix of [a k]: a precedes k.
        assert!(hist(&t, "k").prefix_of(&hist(&t, "a k")).is_err());
        assert!(hist(&t, "k").prefix_of(&hist(&t, "k a")).is_ok());
        assert!(hist(&t, "a k c").compatible(&hist(&t, "c k a")).is_err());
        // One learner put a before k, the other after.
        assert!(hist(&t, "a k").compatible(&hist(&t, "k a")).is_err());
        // b learned before k on one side, absent on the other that has k.
        assert!(hist(&t, "a b k").compatible(&hist(&t, "a k")).is_err());
        assert!(hist(&t, "a b").compatible(&hist(&t, "a k")).is_err());
        // Checkpoints in a different order.
        assert!(hist(&t, "k m").compatible(&hist(&t, "m k")).is_err());
        assert!(hist(&t, "k").compatible(&hist(&t, "k m c")).is_ok());
        assert!(hist(&t, "k m").prefix_of(&hist(&t, "k")).is_err());
        // A key touched only by commands after several checkpoints.
        assert!(hist(&t, "k m c").compatible(&hist(&t, "k c m")).is_err());
        assert!(hist(&t, "k m c d").compatible(&hist(&t, "k m c")).is_ok());
    }

    #[test]
    fn keyless_commands_only_need_membership() {
        let t = t();
        assert!(hist(&t, "z a").prefix_of(&hist(&t, "a z")).is_ok());
        assert!(hist(&t, "z").prefix_of(&hist(&t, "a")).is_err());
        assert!(hist(&t, "z").compatible(&hist(&t, "a")).is_ok());
    }

    #[test]
    fn projection_interleaves_checkpoints() {
        let t = t();
        let h = hist(&t, "a k c b m");
        let names = |v: Vec<CmdIx>| {
            v.iter()
                .map(|&c| t.id(c).0.clone())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(names(h.projection(Some(0))), "a k b m");
        assert_eq!(names(h.projection(Some(1))), "k c m");
        assert_eq!(names(h.projection(None)), "k m");
    }
}
