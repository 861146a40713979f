//! The search against brute force on many small random histories: every
//! subset of the indeterminate operations, every order that respects real
//! time.

use super::model::{Model, ValueModel};
use super::ops::{Action, Operation, Values, ABSENT};
use super::search::{search, Budget, Outcome};
use std::sync::atomic::AtomicUsize;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn legal(model: &mut ValueModel, ops: &[Operation], order: &[usize]) -> bool {
    let mut s = model.init();
    for &i in order {
        match model.step(&s, &ops[i].action) {
            Some(n) => s = n,
            None => return false,
        }
    }
    true
}

fn permutations(
    ops: &[Operation],
    chosen: &mut Vec<usize>,
    left: &mut Vec<usize>,
    model: &mut ValueModel,
) -> bool {
    if left.is_empty() {
        return legal(model, ops, chosen);
    }
    for k in 0..left.len() {
        let i = left[k];
        // i may go next only if no other remaining op returned before
        // i was invoked.
        let blocked = left
            .iter()
            .any(|&j| ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked {
            continue;
        }
        left.remove(k);
        chosen.push(i);
        let found = permutations(ops, chosen, left, model);
        chosen.pop();
        left.insert(k, i);
        if found {
            return true;
        }
    }
    false
}

fn linearizable(values: &Values, ops: &[Operation]) -> bool {
    let optional: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    for subset in 0..(1u32 << optional.len()) {
        let mut left: Vec<usize> = (0..ops.len())
            .filter(|&i| {
                ops[i].ret.is_some()
                    || subset & (1 << optional.iter().position(|&o| o == i).unwrap()) != 0
            })
            .collect();
        if permutations(
            ops,
            &mut Vec::new(),
            &mut left,
            &mut ValueModel::new(values),
        ) {
            return true;
        }
    }
    false
}

#[test]
fn agrees_with_brute_force() {
    let mut values = Values::default();
    let vals: Vec<u32> = (1..=3).map(|i| values.intern(&i.to_string())).collect();
    // Values appends make, for reads to see (and the search's early
    // detection to weigh).
    let joined: Vec<u32> = ["12", "21", "123", "31", "1"]
        .iter()
        .map(|s| values.intern(s))
        .collect();
    let mut rng = Lcg(7);
    let used = AtomicUsize::new(0);
    let budget = Budget {
        deadline: None,
        memory: None,
        used: &used,
    };
    let (mut yes, mut no) = (0, 0);
    for _ in 0..20_000 {
        let n = 2 + rng.next(5) as usize;
        let mut ops: Vec<Operation> = (0..n)
            .map(|p| {
                let call = rng.next(10);
                let ret = (rng.next(6) != 0).then(|| call + rng.next(6));
                let v = |r: &mut Lcg| {
                    if r.next(4) == 0 {
                        ABSENT
                    } else {
                        vals[r.next(3) as usize]
                    }
                };
                let action = match rng.next(5) {
                    0 => Action::Read(v(&mut rng)),
                    4 => Action::Read(joined[rng.next(5) as usize]),
                    1 => Action::Write(v(&mut rng)),
                    2 => Action::Append(vals[rng.next(3) as usize]),
                    _ => Action::Cas {
                        from: v(&mut rng),
                        to: v(&mut rng),
                        swapped: ret.map(|_| rng.next(2) == 0),
                    },
                };
                // Reads with unknown outcomes are dropped before the
                // search; do the same here.
                let ret = if matches!(action, Action::Read(_)) {
                    Some(ret.unwrap_or(call))
                } else {
                    ret
                };
                Operation {
                    process: p as i64,
                    call,
                    ret,
                    action,
                    line: p,
                }
            })
            .collect();
        ops.sort_by_key(|o| o.call);
        let expected = linearizable(&values, &ops);
        let got = match search(&mut ValueModel::new(&values), &ops, &budget) {
            Outcome::Linearizable { .. } => true,
            Outcome::NotLinearizable(_) => false,
            Outcome::Exhausted(_) => panic!("no budget was set"),
        };
        assert_eq!(got, expected, "{ops:#?}");
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 2000 && no > 2000, "{yes} linearizable, {no} not");
}
