//! Sequential specifications: what each operation does to an object's
//! state, and whether the outcome a client saw is possible in it.

use super::budget::{grow, grow_map, Meter};
use super::ops::{Action, Val, Values, ABSENT};
use crate::fxhash::FxHashMap;

/// A sequential object. `step` is the whole specification: the state after
/// the operation, or `None` when the operation cannot have had the outcome
/// its client saw in that state.
pub trait Model {
    type State: Clone + Eq;
    fn init(&self) -> Self::State;
    fn step(&mut self, state: &Self::State, action: &Action) -> Option<Self::State>;
    /// A well-mixed 64-bit hash (the search memoises on it).
    fn hash(state: &Self::State) -> u64;
    /// Bytes one stored state costs, for the memory budget.
    fn bytes(state: &Self::State) -> usize;
    /// Bytes of the values the model made, for the memory budget.
    fn heap_bytes(&self) -> usize {
        0
    }
    /// Makes room in the model's tables for what one step may add,
    /// charging `meter` before they grow; `false` if the budget cannot pay.
    fn reserve(&mut self, _meter: &mut Meter<'_>) -> bool {
        true
    }
    /// Whether `action` may set the state to anything at all (a write);
    /// `true` unless the model knows better.
    fn resets(_action: &Action) -> bool {
        true
    }
    /// Whether `may_reach` can say no about `action`; `false` unless the
    /// model knows better.
    fn observes(_action: &Action) -> bool {
        false
    }
    /// Whether `action` may still succeed after some of the operations
    /// that may go before it take `state` on, where `resetters` are those
    /// of them that `resets`; `true` unless the model knows better. The
    /// search abandons a configuration at once when the operation it must
    /// place next can never be placed (Lowe's early detection).
    fn may_reach(
        &mut self,
        _state: &Self::State,
        _action: &Action,
        _resetters: &[&Action],
    ) -> bool {
        true
    }
    fn show(&self, state: &Self::State) -> String;
    /// Why `action` cannot be placed in `state`, for people.
    fn why_not(&mut self, state: &Self::State, action: &Action) -> String;
}

/// splitmix64's finaliser: a cheap, well-mixed hash of one word.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A register, or one key of a key-value store: read, write, append and
/// compare-and-set. Appended values are interned as the search meets them.
pub struct ValueModel<'v> {
    values: &'v Values,
    extra: Vec<String>,
    extra_index: FxHashMap<String, Val>,
    appended: FxHashMap<(Val, Val), Val>,
    /// Bytes of the values made.
    made_bytes: usize,
    /// Bytes charged for `extra_index` and `appended`.
    index_bytes: usize,
    appended_bytes: usize,
}

impl<'v> ValueModel<'v> {
    pub fn new(values: &'v Values) -> Self {
        ValueModel {
            values,
            extra: Vec::new(),
            extra_index: FxHashMap::default(),
            appended: FxHashMap::default(),
            made_bytes: 0,
            index_bytes: 0,
            appended_bytes: 0,
        }
    }

    fn text(&self, v: Val) -> &str {
        let base = self.values.len();
        if (v as usize) < base {
            self.values.text(v)
        } else {
            &self.extra[v as usize - base]
        }
    }

    fn show_value(&self, v: Val) -> String {
        if v == ABSENT {
            "absent".into()
        } else {
            format!("{:?}", self.text(v))
        }
    }

    fn append(&mut self, state: Val, suffix: Val) -> Val {
        if let Some(&v) = self.appended.get(&(state, suffix)) {
            return v;
        }
        let joined = format!("{}{}", self.text(state), self.text(suffix));
        // A value some client read is interned already; only values no one
        // read get an id of their own, which no read can then match.
        let v = match self.values.lookup(&joined) {
            Some(v) => v,
            None if joined.is_empty() && self.values.empty_is_absent => ABSENT,
            None => match self.extra_index.get(&joined) {
                Some(&v) => v,
                None => {
                    let v = (self.values.len() + self.extra.len()) as Val;
                    // The text twice: in the list and in the index.
                    self.made_bytes += 2 * joined.capacity();
                    self.extra.push(joined.clone());
                    self.extra_index.insert(joined, v);
                    v
                }
            },
        };
        self.appended.insert((state, suffix), v);
        v
    }
}

impl Model for ValueModel<'_> {
    type State = Val;

    fn init(&self) -> Val {
        ABSENT
    }

    fn step(&mut self, &state: &Val, action: &Action) -> Option<Val> {
        match *action {
            Action::Read(v) => (v == state).then_some(state),
            Action::Write(v) => Some(v),
            Action::Append(v) => Some(self.append(state, v)),
            Action::Cas { from, to, swapped } => {
                let matches = state == from;
                match swapped {
                    Some(true) => matches.then_some(to),
                    Some(false) => (!matches).then_some(state),
                    None => Some(if matches { to } else { state }),
                }
            }
            Action::Transfer { .. } | Action::Balances(_) => None,
        }
    }

    fn hash(&state: &Val) -> u64 {
        mix(u64::from(state))
    }

    fn bytes(_: &Val) -> usize {
        std::mem::size_of::<Val>()
    }

    fn heap_bytes(&self) -> usize {
        self.made_bytes
    }

    fn reserve(&mut self, meter: &mut Meter<'_>) -> bool {
        grow(&mut self.extra, 1, meter)
            && grow_map(&mut self.extra_index, &mut self.index_bytes, meter)
            && grow_map(&mut self.appended, &mut self.appended_bytes, meter)
    }

    fn resets(action: &Action) -> bool {
        matches!(action, Action::Write(_) | Action::Cas { .. })
    }

    fn observes(action: &Action) -> bool {
        matches!(
            action,
            Action::Read(_)
                | Action::Cas {
                    swapped: Some(true),
                    ..
                }
        )
    }

    /// Between writes, the value only grows by appends: what a read (or a
    /// cas that swapped) needs must start with the value now, or with a
    /// value some write that may go first writes.
    fn may_reach(&mut self, &state: &Val, action: &Action, resetters: &[&Action]) -> bool {
        let target = match *action {
            Action::Read(v) => v,
            Action::Cas {
                from,
                swapped: Some(true),
                ..
            } => from,
            _ => return true,
        };
        if state == target {
            return true;
        }
        let wanted = self.text(target);
        let grows_from = |v: Val| wanted.starts_with(self.text(v));
        grows_from(state)
            || resetters.iter().any(|a| match **a {
                Action::Write(v) | Action::Cas { to: v, .. } => grows_from(v),
                _ => true,
            })
    }

    fn show(&self, &state: &Val) -> String {
        self.show_value(state)
    }

    fn why_not(&mut self, &state: &Val, action: &Action) -> String {
        let now = self.show_value(state);
        match *action {
            Action::Read(v) => format!("it read {} but the value was {now}", self.show_value(v)),
            Action::Cas {
                from,
                swapped: Some(true),
                ..
            } => {
                format!(
                    "it swapped, so the value was {}, but it was {now}",
                    self.show_value(from)
                )
            }
            Action::Cas {
                swapped: Some(false),
                ..
            } => {
                format!("it failed, so the value was not {now}, but it was")
            }
            _ => "it is not an operation of this object".into(),
        }
    }
}

/// A group of bank accounts: transfers that move money only when the
/// source can afford it, and reads of several balances at once.
pub struct BankModel {
    initial: Box<[i64]>,
    accounts: Vec<String>,
}

impl BankModel {
    pub fn new(accounts: &[String], initial: &[i64]) -> Self {
        BankModel {
            initial: initial.into(),
            accounts: accounts.to_vec(),
        }
    }
}

impl Model for BankModel {
    type State = Box<[i64]>;

    fn init(&self) -> Box<[i64]> {
        self.initial.clone()
    }

    fn step(&mut self, state: &Box<[i64]>, action: &Action) -> Option<Box<[i64]>> {
        match action {
            &Action::Transfer {
                from,
                to,
                amount,
                moved,
            } => {
                // A negative amount would take money from `to` without asking
                // whether it can afford it; it never moves.
                let can = amount >= 0 && state[from as usize] >= amount;
                let moves = match moved {
                    Some(m) if m != can => return None,
                    _ => can,
                };
                let mut next = state.clone();
                if moves {
                    next[from as usize] -= amount;
                    next[to as usize] += amount;
                }
                Some(next)
            }
            Action::Balances(read) => read
                .iter()
                .all(|&(a, b)| state[a as usize] == b)
                .then(|| state.clone()),
            _ => None,
        }
    }

    fn hash(state: &Box<[i64]>) -> u64 {
        state
            .iter()
            .fold(0x51_7C_C1_B7_27_22_0A_95, |h, &b| mix(h ^ b as u64))
    }

    fn bytes(state: &Box<[i64]>) -> usize {
        std::mem::size_of::<Box<[i64]>>() + state.len() * 8
    }

    fn show(&self, state: &Box<[i64]>) -> String {
        let parts: Vec<String> = self
            .accounts
            .iter()
            .zip(state.iter())
            .map(|(a, b)| format!("{a}={b}"))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn why_not(&mut self, state: &Box<[i64]>, action: &Action) -> String {
        match action {
            &Action::Transfer {
                from,
                amount,
                moved,
                ..
            } => {
                let name = &self.accounts[from as usize];
                let balance = state[from as usize];
                match moved {
                    Some(true) => format!("it moved {amount} but {name} held only {balance}"),
                    _ => format!("it was refused but {name} held {balance}, enough for {amount}"),
                }
            }
            Action::Balances(read) => {
                let wrong: Vec<String> = read
                    .iter()
                    .filter(|&&(a, b)| state[a as usize] != b)
                    .map(|&(a, b)| {
                        format!(
                            "{}={b} (held {})",
                            self.accounts[a as usize], state[a as usize]
                        )
                    })
                    .collect();
                format!("it read {}", wrong.join(", "))
            }
            _ => "it is not an operation of this object".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_model_steps() {
        let mut values = Values::default();
        let (a, b, ab) = (values.intern("a"), values.intern("b"), values.intern("ab"));
        let mut m = ValueModel::new(&values);
        let s = m.init();
        assert_eq!(m.step(&s, &Action::Read(ABSENT)), Some(ABSENT));
        assert_eq!(m.step(&s, &Action::Read(a)), None);
        let s = m.step(&s, &Action::Append(a)).unwrap();
        assert_eq!(s, a);
        let s = m.step(&s, &Action::Append(b)).unwrap();
        assert_eq!(s, ab, "an appended value that was read has the read's id");
        let s2 = m.step(&s, &Action::Append(b)).unwrap();
        assert!(
            s2 as usize >= values.len(),
            "an appended value no one read gets its own id"
        );
        assert_eq!(m.show(&s2), "\"abb\"");
        let cas = |from, to, swapped| Action::Cas { from, to, swapped };
        assert_eq!(m.step(&a, &cas(a, b, Some(true))), Some(b));
        assert_eq!(m.step(&a, &cas(b, b, Some(true))), None);
        assert_eq!(m.step(&a, &cas(a, b, Some(false))), None);
        assert_eq!(m.step(&a, &cas(b, b, Some(false))), Some(a));
        assert_eq!(m.step(&a, &cas(a, b, None)), Some(b));
        assert_eq!(m.step(&a, &cas(b, ab, None)), Some(a));
    }

    #[test]
    fn bank_model_steps() {
        let mut m = BankModel::new(&["a".into(), "b".into()], &[10, 0]);
        let s = m.init();
        let t = |amount, moved| Action::Transfer {
            from: 0,
            to: 1,
            amount,
            moved,
        };
        let s1 = m.step(&s, &t(7, Some(true))).unwrap();
        assert_eq!(&*s1, &[3, 7]);
        assert_eq!(m.step(&s1, &t(7, Some(true))), None);
        assert_eq!(m.step(&s1, &t(7, Some(false))), Some(s1.clone()));
        assert_eq!(m.step(&s1, &t(-1, Some(true))), None);
        assert!(m
            .step(&s1, &Action::Balances(vec![(0, 3), (1, 7)]))
            .is_some());
        assert!(m.step(&s1, &Action::Balances(vec![(0, 10)])).is_none());
        assert!(m.why_not(&s1, &t(7, Some(true))).contains("held only 3"));
    }
}
