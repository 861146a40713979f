//! Lowe's memoisation for the Wing-Gong search: the set of configurations
//! (linearized operations, model state) already explored.
//!
//! Operations are numbered in invocation order, so the linearized set is
//! almost always "every operation up to some point, plus a few": it is
//! stored from its first word that is not all ones to its last word that is
//! not all zeros. A configuration costs a few words, not one bit per
//! operation of the history, which is what lets long histories fit.
//!
//! Indeterminate operations have no deadline, so linearizing fewer of them
//! never hurts: a configuration whose indeterminate operations are a
//! superset of an explored one's, with the same determinate set and state,
//! can do nothing the explored one could not (whatever completes it
//! completes the explored one too). They are kept apart in a small mask and
//! such dominated configurations are pruned.

use super::budget::{grow, grow_map, Meter};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const NONE: u32 = u32::MAX;

/// Keys are already well-mixed hashes; hashing them again is waste.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of operations, tracking the span that is neither all ones nor all
/// zeros.
#[derive(Clone, Debug)]
pub struct OpSet {
    words: Vec<u64>,
    /// Every word before `full` is all ones.
    full: usize,
    /// Every word from `end` on is all zeros.
    end: usize,
}

impl OpSet {
    pub fn new(ops: usize) -> Self {
        OpSet {
            words: vec![0; ops.div_ceil(64)],
            full: 0,
            end: 0,
        }
    }

    pub fn insert(&mut self, op: usize) {
        let w = op / 64;
        self.words[w] |= 1 << (op % 64);
        if w >= self.end {
            self.end = w + 1;
        }
        while self.full < self.words.len() && self.words[self.full] == u64::MAX {
            self.full += 1;
        }
    }

    pub fn remove(&mut self, op: usize) {
        let w = op / 64;
        self.words[w] &= !(1 << (op % 64));
        if w < self.full {
            self.full = w;
        }
        while self.end > 0 && self.words[self.end - 1] == 0 {
            self.end -= 1;
        }
    }

    /// Words of the stored form.
    pub fn span_len(&self) -> usize {
        self.span().1.len()
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    /// The stored form: where the span starts, and its words.
    fn span(&self) -> (usize, &[u64]) {
        let start = self.full.min(self.end);
        (start, &self.words[start..self.end.max(start)])
    }
}

/// The explored configurations, with the bytes they take.
pub struct Memo<S> {
    heads: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    next: Vec<u32>,
    starts: Vec<u32>,
    offsets: Vec<usize>,
    words: Vec<u64>,
    states: Vec<S>,
    /// `mask_words` words per configuration: its indeterminate operations.
    masks: Vec<u64>,
    mask_words: usize,
    /// Bytes charged for the hash table.
    table_bytes: usize,
}

impl<S: Clone + Eq> Memo<S> {
    /// A memo whose configurations carry masks of `mask_words` words.
    pub fn new(mask_words: usize) -> Self {
        Memo {
            heads: HashMap::default(),
            next: Vec::new(),
            starts: Vec::new(),
            offsets: vec![0],
            words: Vec::new(),
            states: Vec::new(),
            masks: Vec::new(),
            mask_words,
            table_bytes: 0,
        }
    }

    /// Makes room for one more configuration whose set spans `span`
    /// words, charging `meter` before anything grows; `false` if the
    /// budget cannot pay.
    pub fn reserve(&mut self, span: usize, meter: &mut Meter<'_>) -> bool {
        grow(&mut self.next, 1, meter)
            && grow(&mut self.starts, 1, meter)
            && grow(&mut self.offsets, 1, meter)
            && grow(&mut self.words, span, meter)
            && grow(&mut self.states, 1, meter)
            && grow(&mut self.masks, self.mask_words, meter)
            && grow_map(&mut self.heads, &mut self.table_bytes, meter)
    }

    /// Whether stored configuration `i` has this set and state, and at most
    /// the indeterminate operations of `mask`.
    fn covers(&self, i: usize, start: usize, span: &[u64], state: &S, mask: &[u64]) -> bool {
        let stored = &self.masks[i * self.mask_words..(i + 1) * self.mask_words];
        self.starts[i] as usize == start
            && &self.words[self.offsets[i]..self.offsets[i + 1]] == span
            && stored.iter().zip(mask).all(|(s, m)| s & !m == 0)
            && self.states[i] == *state
    }

    /// Records the configuration; false if it, or one it is dominated by,
    /// was explored already. `hash` must be a function of `set` and `state`
    /// only, not of `mask`.
    pub fn insert(&mut self, hash: u64, set: &OpSet, mask: &[u64], state: &S) -> bool {
        debug_assert_eq!(mask.len(), self.mask_words);
        let (start, span) = set.span();
        let new = self.states.len() as u32;
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut i = head;
        while i != NONE {
            if self.covers(i as usize, start, span, state, mask) {
                return false;
            }
            i = self.next[i as usize];
        }
        self.next.push(head);
        self.heads.insert(hash, new);
        self.starts.push(start as u32);
        self.words.extend_from_slice(span);
        self.offsets.push(self.words.len());
        self.states.push(state.clone());
        self.masks.extend_from_slice(mask);
        true
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opset_span_tracks_full_and_empty_words() {
        let mut s = OpSet::new(200);
        assert_eq!(s.span(), (0, &[][..]));
        for i in 0..64 {
            s.insert(i);
        }
        s.insert(130);
        assert_eq!(s.span().0, 1);
        assert_eq!(s.span().1.len(), 2);
        s.remove(130);
        assert_eq!(s.span(), (1, &[][..]));
        s.remove(3);
        assert_eq!(s.span().0, 0);
        assert_eq!(s.span().1.len(), 1);
    }

    #[test]
    fn memo_tells_explored_configurations() {
        let mut m: Memo<u32> = Memo::new(1);
        let mut s = OpSet::new(100);
        s.insert(70);
        assert!(m.insert(7, &s, &[0b01], &1));
        assert!(!m.insert(7, &s, &[0b01], &1));
        assert!(
            !m.insert(7, &s, &[0b11], &1),
            "dominated: one more indeterminate op"
        );
        assert!(m.insert(7, &s, &[0b10], &1), "not dominated");
        assert!(m.insert(7, &s, &[0b01], &2), "same hash, other state");
        s.insert(1);
        assert!(m.insert(7, &s, &[0b01], &1), "same hash, other set");
        assert_eq!(m.len(), 4);
    }
}
