//! Strings to dense `u32` ids, every string stored once in one buffer.
//!
//! A million-operation history has a million command ids and about as many
//! values; a heap allocation and a hash-map entry of owned keys for each
//! costs more memory than the history's text, and the allocator's time
//! dominated reading such histories.

use std::fmt;

const EMPTY: u64 = u64::MAX;
/// Ids stop short of the id half of `EMPTY`.
const MAX_ID: u32 = u32::MAX - 1;

/// Strings by id, without the index that finds ids.
#[derive(Clone, Default)]
pub struct Strings {
    text: String,
    /// `ends[i]` is where string `i` ends in `text`; it starts where `i - 1`
    /// ends.
    ends: Vec<usize>,
}

impl Strings {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The text of `id`, if there is one.
    pub fn get(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.len()).then(|| self.text(id))
    }

    pub fn text(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// Appends `s`, distinct or not, and returns its id.
    ///
    /// # Panics
    /// With more than `u32::MAX - 1` strings.
    pub fn push(&mut self, s: &str) -> u32 {
        let id = u32::try_from(self.len())
            .ok()
            .filter(|&id| id <= MAX_ID)
            .expect("fewer than 2^32 - 1 strings");
        self.text.push_str(s);
        self.ends.push(self.text.len());
        id
    }

    pub fn reserve(&mut self, more: usize, bytes: usize) {
        self.text.reserve(bytes);
        self.ends.reserve(more);
    }

    /// Whether no string is listed twice. Sorting the hashes reads memory
    /// in order, unlike a table of a million entries.
    pub fn all_distinct(&self) -> bool {
        let mut hashes: Vec<u64> = (0..self.len() as u32).map(|i| hash(self.text(i))).collect();
        hashes.sort_unstable();
        if hashes.windows(2).all(|w| w[0] != w[1]) {
            return true;
        }
        // Equal hashes: settle it exactly.
        drop(hashes);
        let mut seen = Interner::default();
        (0..self.len() as u32).all(|i| seen.intern(self.text(i)).1)
    }
}

#[derive(Clone, Default)]
pub struct Interner {
    strings: Strings,
    /// Open addressing with linear probing: an id in the low half and the
    /// low half of its string's hash above it (so that a probe reads a
    /// string only when the hashes agree: each read is a cache miss in a
    /// big table), or `EMPTY`. At most half full, so probes stay short.
    table: Vec<u64>,
}

/// The table size for `n` strings: at most five eighths full.
fn room(n: usize) -> usize {
    (n * 8 / 5).next_power_of_two().max(16)
}

/// A hash with every bit of every byte mixed into every bit of the result
/// (a folded 128-bit multiply per word). Fx, the crate's map hash, lets a
/// word's high byte reach only the next word's low bits, and ids such as
/// `10010.113` and `10010.198` collide in it outright.
fn hash(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut h = fold(bytes.len() as u64 ^ SEED);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h = fold(h ^ u64::from_le_bytes(word.try_into().expect("eight bytes")));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(word));
    }
    h
}

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

fn fold(x: u64) -> u64 {
    let m = u128::from(x) * u128::from(0xBF58_476D_1CE4_E5B9u64);
    (m as u64) ^ (m >> 64) as u64
}

impl Interner {
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    pub fn text(&self, id: u32) -> &str {
        self.strings.text(id)
    }

    fn shift(&self) -> u32 {
        64 - self.table.len().trailing_zeros()
    }

    /// The id of `s`, if it has one.
    pub fn get(&self, s: &str) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        self.find(s, hash(s)).ok()
    }

    /// The id of `s` (hashed to `h`), or the empty entry where it goes.
    fn find(&self, s: &str, h: u64) -> Result<u32, usize> {
        let mask = self.table.len() - 1;
        let tag = h << 32;
        let mut at = (h >> self.shift()) as usize;
        loop {
            let entry = self.table[at];
            if entry == EMPTY {
                return Err(at);
            }
            let id = entry as u32;
            if entry & !0xFFFF_FFFF == tag && self.text(id) == s {
                return Ok(id);
            }
            at = (at + 1) & mask;
        }
    }

    /// The id of `s`, and whether it is new.
    ///
    /// # Panics
    /// With more than `u32::MAX - 1` distinct strings.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        if room(self.len() + 1) > self.table.len() {
            self.grow();
        }
        let h = hash(s);
        let at = match self.find(s, h) {
            Ok(id) => return (id, false),
            Err(at) => at,
        };
        let id = self.strings.push(s);
        self.table[at] = h << 32 | u64::from(id);
        (id, true)
    }

    /// Makes room for `more` strings of `bytes` bytes in all without
    /// growing on the way.
    pub fn reserve(&mut self, more: usize, bytes: usize) {
        self.strings.reserve(more, bytes);
        let want = room(self.len() + more);
        if want > self.table.len() {
            self.rebuild(want);
        }
    }

    fn grow(&mut self) {
        self.rebuild(room(self.len() + 1).max(self.table.len() * 2));
    }

    fn rebuild(&mut self, size: usize) {
        self.table = vec![EMPTY; size];
        let shift = self.shift();
        let mask = size - 1;
        for id in 0..self.len() as u32 {
            let h = hash(self.text(id));
            let mut at = (h >> shift) as usize;
            while self.table[at] != EMPTY {
                at = (at + 1) & mask;
            }
            self.table[at] = h << 32 | u64::from(id);
        }
    }

    /// The strings without their index, for when no more lookups come.
    pub fn into_strings(mut self) -> Strings {
        self.strings.text.shrink_to_fit();
        self.strings.ends.shrink_to_fit();
        self.strings
    }
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len() as u32).map(|i| self.text(i)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut t = Interner::default();
        let words: Vec<String> = (0..10_000).map(|i| format!("w{i}")).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.intern(w), (i as u32, true));
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.intern(w), (i as u32, false));
            assert_eq!(t.get(w), Some(i as u32));
            assert_eq!(t.text(i as u32), w);
        }
        assert_eq!(t.get("nope"), None);
        t.reserve(100_000, 0);
        assert_eq!(t.intern("w77"), (77, false));
        assert_eq!(t.intern(""), (10_000, true));
        assert_eq!(t.text(10_000), "");
        let mut s = t.into_strings();
        assert_eq!(s.text(3), "w3");
        assert_eq!(s.len(), 10_001);
        assert!(s.all_distinct());
        assert_eq!(s.push("w3"), 10_001);
        assert!(!s.all_distinct());
    }
}
