//! The time and memory a linearizability search may take, and what it had
//! done when one ran out.
//!
//! Memory is counted as the search holds it: the capacity of every table
//! of the memo and of the frontier (the stack of choices and the event
//! list), states' heap bytes, and the values the model makes. A table is
//! charged *before* it grows, so the bytes counted never pass the budget;
//! the searches of one history draw from one shared count, a chunk at a
//! time. A table that grows stays charged for the buffer it leaves: the
//! allocator keeps most of what is freed, so the process still holds it
//! (charging only the difference, the resident set came out about a third
//! above the count).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Bytes a search draws from the shared count at a time.
const CHUNK: usize = 1 << 20;

/// Limits after which the search gives up with `unknown`.
pub struct Budget<'a> {
    pub deadline: Option<Instant>,
    /// Bytes all searches of a history may hold together.
    pub memory: Option<usize>,
    /// Bytes all searches have drawn now.
    pub used: &'a AtomicUsize,
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    Time,
    Memory,
}

/// Where a search was when a budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub budget: Exhausted,
    /// Steps taken (a step tries one operation at one configuration).
    pub steps: u64,
    /// The most operations it had linearized at once.
    pub deepest: usize,
    pub operations: usize,
    /// Configurations in the memo.
    pub configurations: usize,
    /// Bytes the search held.
    pub bytes: usize,
}

impl Stopped {
    /// For people: which budget, and how far the search got.
    pub fn describe(&self, budget: &Budget<'_>) -> String {
        let which = match self.budget {
            Exhausted::Time => "out of time".to_owned(),
            Exhausted::Memory => format!(
                "out of memory (budget {} for the whole history)",
                show_bytes(budget.memory.unwrap_or(0))
            ),
        };
        format!(
            "{which} after {} steps: at most {} of {} operations linearized at once, {} configurations \
             explored, {} held",
            self.steps,
            self.deepest,
            self.operations,
            self.configurations,
            show_bytes(self.bytes)
        )
    }
}

/// Bytes for people.
pub fn show_bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

/// What one search holds, drawn from the shared count in chunks.
pub struct Meter<'a> {
    budget: &'a Budget<'a>,
    /// Drawn from the shared count.
    held: usize,
    /// Of which in use.
    used: usize,
}

impl<'a> Meter<'a> {
    pub fn new(budget: &'a Budget<'a>) -> Self {
        Meter {
            budget,
            held: 0,
            used: 0,
        }
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Takes `bytes` more, or nothing and `false` if the budget cannot
    /// give them.
    pub fn take(&mut self, bytes: usize) -> bool {
        let want = self.used + bytes;
        if want > self.held && !self.draw(want - self.held) {
            return false;
        }
        self.used = want;
        true
    }

    /// Gives back `bytes` taken before (kept drawn, for the next take).
    pub fn give(&mut self, bytes: usize) {
        self.used -= bytes.min(self.used);
    }

    fn draw(&mut self, need: usize) -> bool {
        let shared = self.budget.used;
        let Some(limit) = self.budget.memory else {
            let chunk = need.max(CHUNK);
            shared.fetch_add(chunk, Ordering::Relaxed);
            self.held += chunk;
            return true;
        };
        let mut now = shared.load(Ordering::Relaxed);
        loop {
            let chunk = if now + need.max(CHUNK) <= limit {
                need.max(CHUNK)
            } else if now + need <= limit {
                need
            } else {
                return false;
            };
            match shared.compare_exchange_weak(
                now,
                now + chunk,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.held += chunk;
                    return true;
                }
                Err(seen) => now = seen,
            }
        }
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// Makes room in `v` for `more` elements, charging `meter` for the growth
/// before it happens; `false`, and no growth, if the budget cannot pay.
pub fn grow<T>(v: &mut Vec<T>, more: usize, meter: &mut Meter<'_>) -> bool {
    if v.len() + more <= v.capacity() {
        return true;
    }
    let new_cap = (v.capacity() * 2).max(v.len() + more).max(16);
    // The old buffer stays charged: the allocator keeps most of what is
    // freed, so the process holds it still.
    let bytes = new_cap * std::mem::size_of::<T>();
    if !meter.take(bytes) {
        return false;
    }
    v.reserve_exact(new_cap - v.len());
    // `reserve_exact` may give more than asked; charge what it gave.
    let extra = (v.capacity() - new_cap) * std::mem::size_of::<T>();
    extra == 0 || meter.take(extra)
}

/// Bytes a hash table with room for `capacity` entries of `entry` bytes
/// holds: a power of two of buckets, seven eighths usable, each with its
/// entry and a control byte.
pub fn table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity * 8 / 7).next_power_of_two().max(4);
    buckets * (entry + 1) + 16
}

/// Makes room in `map` for one more entry, charging `meter` for the
/// growth before it happens; `charged` is what the table was charged so
/// far. `false`, and no growth, if the budget cannot pay.
pub fn grow_map<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    map: &mut std::collections::HashMap<K, V, S>,
    charged: &mut usize,
    meter: &mut Meter<'_>,
) -> bool {
    let capacity = map.capacity();
    if map.len() < capacity {
        return true;
    }
    let entry = std::mem::size_of::<(K, V)>();
    let wanted = table_bytes((capacity * 2).max(16), entry);
    // The old table stays charged, as a vector's old buffer does.
    if !meter.take(wanted) {
        return false;
    }
    map.reserve(capacity.max(16));
    let now = table_bytes(map.capacity(), entry);
    *charged += now;
    if now > wanted {
        meter.take(now - wanted)
    } else {
        meter.give(wanted - now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_never_draw_past_the_budget() {
        let used = AtomicUsize::new(0);
        let budget = Budget {
            deadline: None,
            memory: Some(3 << 20),
            used: &used,
        };
        let mut a = Meter::new(&budget);
        let mut b = Meter::new(&budget);
        assert!(a.take(100));
        assert_eq!(used.load(Ordering::Relaxed), CHUNK, "a chunk at a time");
        assert!(b.take(CHUNK + 1));
        assert!(!a.take(2 << 20), "more than is left");
        assert!(a.take(CHUNK - 100), "what is left of its chunk");
        assert!(used.load(Ordering::Relaxed) <= 3 << 20);
        let mut v: Vec<u64> = Vec::new();
        assert!(!grow(&mut v, 1 << 20, &mut a));
        assert_eq!(v.capacity(), 0, "no growth that is not paid for");
        drop(a);
        drop(b);
        assert_eq!(used.load(Ordering::Relaxed), 0);
    }
}
