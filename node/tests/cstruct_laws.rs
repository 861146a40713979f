//! The c-struct axioms CS1 to CS4 and the monoid assumption (Section 4.2)
//! for every c-struct set of `node::cstruct`, and [`History`] against a
//! brute-force model of Section 4.4's command histories.
//!
//! The generic laws run on a small pool of commands drawn with repetition,
//! so duplicates, interference on two or three keys, keyless commands and
//! checkpoints all occur. The model of histories works on plain command
//! sequences: `⊥ • σ` is σ without repeated ids, cut after its first
//! checkpoint (Section 6.3); two sequences are the same history iff one is a
//! permutation of the other that keeps every interfering pair in order
//! (Section 4.4, `∼`); and `⊑`, compatibility, `⊓` and `⊔` are searched for
//! over command sequences straight from their definitions. It never looks at
//! keys except through `Command::interferes`.
//!
//! Why `History::lub` may append `other`'s extra commands in `other`'s
//! order: if the per-key projections are prefix-related, a command `D` of
//! `other` that is not in `self` comes, on each of its keys, after the end
//! of `self`'s projection; so no command of `self` follows it in `other`,
//! and everything that precedes it in `other` is in `self` or is one of the
//! extras appended before it.

use gpaxos_node::command::{CmdId, Command, Op};
use gpaxos_node::cstruct::{CStruct, CommandSet, History, Sequence, SingleValue};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};

const KEYS: [&str; 3] = ["a", "b", "c"];
const POOL: usize = 6;

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(&KEYS[..]).prop_map(String::from)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (key(), 0..3u8).prop_map(|(key, v)| Op::Put { key, value: v.to_string() }),
        2 => key().prop_map(|key| Op::Get { key }),
        2 => (key(), key(), 1..5i64)
            .prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => prop::sample::subsequence(KEYS.to_vec(), 0..=3).prop_map(|ks| Op::Balances {
            accounts: ks.into_iter().map(String::from).collect(),
        }),
        1 => Just(Op::Checkpoint),
    ]
}

/// `POOL` commands with distinct ids: an id names one command, as in the
/// cluster, and drawing indices with repetition produces the duplicates.
fn pool() -> impl Strategy<Value = Vec<Command>> {
    prop::collection::vec(op(), POOL).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Command::new(i as u64 % 3, i as u64, op))
            .collect()
    })
}

fn picks(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..POOL, 0..=max)
}

fn pick(pool: &[Command], idx: &[usize]) -> Vec<Command> {
    idx.iter().map(|&i| pool[i].clone()).collect()
}

fn cat(parts: &[&[Command]]) -> Vec<Command> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

fn ids_of(cmds: &[Command]) -> Vec<CmdId> {
    cmds.iter().map(|c| c.id).collect()
}

/// A deterministic shuffle driven by the generated seed.
fn shuffled(cmds: &[Command], mut seed: u64) -> Vec<Command> {
    let mut v = cmds.to_vec();
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (seed >> 33) as usize % (i + 1));
    }
    v
}

/// CS1 to CS4, the monoid assumption and the trait's derived operations for
/// one c-struct set, on values built from the sequences `a`, `b` and `c`.
fn check_laws<T: CStruct>(
    pool: &[Command],
    a: &[Command],
    b: &[Command],
    c: &[Command],
    seed: u64,
) -> Result<(), TestCaseError> {
    let from = |s: &[Command]| T::from_commands(s);
    let half = &a[..a.len() / 2];
    let vals: Vec<T> = vec![
        T::bottom(),
        from(half),
        from(a),
        from(b),
        from(&cat(&[a, b])),
        from(&cat(&[a, c])),
        from(&cat(&[b, a])),
        from(&cat(&[a, b, c])),
        from(&cat(&[a, c, b])),
        from(&shuffled(&cat(&[a, b]), seed)),
    ];
    let id_set = |v: &T| v.linearize().iter().map(|c| c.id).collect::<BTreeSet<_>>();
    let bottom = T::bottom();
    prop_assert!(bottom.is_empty() && bottom.linearize().is_empty());

    for v in &vals {
        // CS1: every value is `⊥ • σ`, and `linearize` is such a σ.
        let lin = v.linearize();
        prop_assert_eq!(&from(&lin), v);
        prop_assert_eq!(lin.len(), v.len());
        prop_assert_eq!(
            lin.iter().map(|c| c.id).collect::<HashSet<_>>().len(),
            lin.len()
        );
        for cmd in pool {
            prop_assert_eq!(v.contains(&cmd.id), lin.iter().any(|l| l.id == cmd.id));
            let mut ext = v.clone();
            ext.append(cmd);
            prop_assert!(v.is_prefix_of(&ext), "v ⊑ v • C");
            prop_assert_eq!(&from(&cat(&[&lin, std::slice::from_ref(cmd)])), &ext);
            if v.is_closed() {
                prop_assert_eq!(&ext, v, "appending to a closed c-struct is a no-op");
            }
        }
        prop_assert!(bottom.is_prefix_of(v) && v.is_prefix_of(v));
        let mut rebuilt = T::bottom();
        for cmd in &v.suffix_after(&bottom) {
            rebuilt.append(cmd);
        }
        prop_assert_eq!(&rebuilt, v);
    }

    for v in &vals {
        for w in &vals {
            // CS2: antisymmetry, and `suffix_after` is the witness σ of
            // `v ⊑ w`.
            if v.is_prefix_of(w) {
                if w.is_prefix_of(v) {
                    prop_assert_eq!(v, w);
                }
                let mut ext = v.clone();
                for cmd in &w.suffix_after(v) {
                    ext.append(cmd);
                }
                prop_assert_eq!(&ext, w, "prefix • suffix_after == self");
            }

            // CS3, glb: a lower bound of both, built from their commands,
            // and above every other lower bound among the values.
            let g = v.glb(w);
            prop_assert_eq!(&g, &w.glb(v));
            prop_assert!(g.is_prefix_of(v) && g.is_prefix_of(w), "glb ⊑ both");
            let both: BTreeSet<CmdId> = id_set(v).union(&id_set(w)).copied().collect();
            prop_assert!(id_set(&g).is_subset(&both));
            for u in &vals {
                if u.is_prefix_of(v) && u.is_prefix_of(w) {
                    prop_assert!(u.is_prefix_of(&g), "glb is greatest");
                }
            }
            prop_assert_eq!(T::glb_all([v, w].into_iter()), Some(g.clone()));

            // CS3, lub: exists iff compatible, and is least.
            let l = v.lub(w);
            prop_assert_eq!(v.compatible(w), l.is_some());
            prop_assert_eq!(v.compatible(w), w.compatible(v));
            prop_assert_eq!(&l, &w.lub(v));
            prop_assert_eq!(T::lub_all([v, w].into_iter()), l.clone());
            for z in &vals {
                if v.is_prefix_of(z) && w.is_prefix_of(z) {
                    let l = l.as_ref();
                    prop_assert!(l.is_some(), "a common upper bound means compatible");
                    prop_assert!(l.unwrap().is_prefix_of(z), "lub is least");
                }
            }
            if let Some(l) = &l {
                prop_assert!(v.is_prefix_of(l) && w.is_prefix_of(l), "lub ⊒ both");
                prop_assert!(id_set(l).is_subset(&both));

                // CS4.
                for cmd in pool {
                    if v.contains(&cmd.id) && w.contains(&cmd.id) {
                        prop_assert!(g.contains(&cmd.id), "CS4: glb contains {:?}", cmd.id);
                    }
                }
            }

            for u in &vals {
                // CS2: transitivity.
                if u.is_prefix_of(v) && v.is_prefix_of(w) {
                    prop_assert!(u.is_prefix_of(w));
                }
                // CS3: {u, v, w} compatible implies u compatible with v ⊔ w.
                if u.compatible(v) && u.compatible(w) {
                    if let Some(l) = &l {
                        prop_assert!(u.compatible(l), "CS3 third clause");
                    }
                }
            }
        }
    }

    // The monoid assumption: ⊥ • σ = ⊥ • τ implies v • σ = v • τ, tried on
    // τs that are often equal to σ as c-structs. Also CS2's equivalent form:
    // v • σ • τ = v implies v • σ = v.
    let sigma = b;
    let taus = [
        sigma.iter().rev().cloned().collect::<Vec<_>>(),
        cat(&[sigma, sigma]),
        cat(&[sigma, c]),
        shuffled(sigma, seed),
        shuffled(&cat(&[sigma, sigma]), seed ^ 0x5555),
    ];
    for v in &vals {
        let v_sigma = from(&cat(&[&v.linearize(), sigma]));
        for tau in &taus {
            if from(sigma) == from(tau) {
                prop_assert_eq!(&v_sigma, &from(&cat(&[&v.linearize(), tau])), "monoid");
            }
            if from(&cat(&[&v.linearize(), sigma, tau])) == *v {
                prop_assert_eq!(&v_sigma, v, "CS2");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn laws_hold_for_every_cstruct_set(
        pool in pool(),
        a in picks(5),
        b in picks(4),
        c in picks(4),
        seed in any::<u64>(),
    ) {
        let (a, b, c) = (pick(&pool, &a), pick(&pool, &b), pick(&pool, &c));
        check_laws::<SingleValue>(&pool, &a, &b, &c, seed)?;
        check_laws::<CommandSet>(&pool, &a, &b, &c, seed)?;
        check_laws::<Sequence>(&pool, &a, &b, &c, seed)?;
        check_laws::<History>(&pool, &a, &b, &c, seed)?;
    }

    #[test]
    fn closing_is_exactly_holding_a_checkpoint(pool in pool(), a in picks(6)) {
        let a = pick(&pool, &a);
        let has_checkpoint = |cmds: Vec<Command>| cmds.iter().any(Command::is_checkpoint);
        let h = History::from_commands(&a);
        prop_assert_eq!(h.is_closed(), has_checkpoint(h.linearize()));
        let s = Sequence::from_commands(&a);
        prop_assert_eq!(s.is_closed(), has_checkpoint(s.linearize()));
        prop_assert!(!CommandSet::from_commands(&a).is_closed());
        prop_assert_eq!(SingleValue::from_commands(&a).is_closed(), !a.is_empty());
    }

    #[test]
    fn baseline_sets_match_their_definitions(pool in pool(), a in picks(5), b in picks(5)) {
        let (a, b) = (pick(&pool, &a), pick(&pool, &b));
        let model = model::normalize;

        // Sequences without duplicates: ⊑ is the prefix relation on ids and
        // compatibility is being prefix-related.
        let (sa, sb) = (Sequence::from_commands(&a), Sequence::from_commands(&b));
        let (ma, mb) = (ids_of(&model(&a)), ids_of(&model(&b)));
        prop_assert_eq!(ids_of(&sa.linearize()), ma.clone());
        prop_assert_eq!(sa.is_prefix_of(&sb), mb.starts_with(&ma));
        prop_assert_eq!(sa.compatible(&sb), mb.starts_with(&ma) || ma.starts_with(&mb));
        let common = ma.iter().zip(&mb).take_while(|(x, y)| x == y).count();
        prop_assert_eq!(ids_of(&sa.glb(&sb).linearize()), ma[..common].to_vec());

        // Sets: ⊑ is ⊆, ⊓ is ∩, ⊔ is ∪.
        let set = |s: &[Command]| s.iter().map(|c| c.id).collect::<BTreeSet<_>>();
        let (ca, cb) = (CommandSet::from_commands(&a), CommandSet::from_commands(&b));
        prop_assert_eq!(ca.is_prefix_of(&cb), set(&a).is_subset(&set(&b)));
        prop_assert_eq!(set(&ca.glb(&cb).linearize()), &set(&a) & &set(&b));
        prop_assert_eq!(set(&ca.lub(&cb).unwrap().linearize()), &set(&a) | &set(&b));

        // Commands with ⊥: the first command wins; compatible iff equal or ⊥.
        let (va, vb) = (SingleValue::from_commands(&a), SingleValue::from_commands(&b));
        prop_assert_eq!(va.value(), a.first());
        prop_assert_eq!(va.compatible(&vb), a.is_empty() || b.is_empty() || a[0] == b[0]);
        prop_assert_eq!(va.is_prefix_of(&vb), a.is_empty() || a.first() == b.first());
    }
}

/// The brute-force model of command histories without duplicates, closed
/// by a checkpoint. A value is a normalized command sequence, one
/// representative of its history.
mod model {
    use super::*;

    /// `⊥ • σ`: drops repeated ids and everything after the first
    /// checkpoint.
    pub fn normalize(seq: &[Command]) -> Vec<Command> {
        let mut out: Vec<Command> = Vec::new();
        for c in seq {
            if out.last().is_some_and(Command::is_checkpoint) {
                break;
            }
            if !out.iter().any(|o| o.id == c.id) {
                out.push(c.clone());
            }
        }
        out
    }

    /// Every sequence equivalent to `seq` under Section 4.4's `∼`: the
    /// permutations that keep each interfering pair in its order.
    pub fn equivalents(seq: &[Command]) -> Vec<Vec<Command>> {
        fn go(
            seq: &[Command],
            left: &mut Vec<usize>,
            cur: &mut Vec<Command>,
            out: &mut Vec<Vec<Command>>,
        ) {
            if left.is_empty() {
                out.push(cur.clone());
                return;
            }
            for pos in 0..left.len() {
                let i = left[pos];
                if left[..pos].iter().any(|&j| seq[j].interferes(&seq[i])) {
                    continue;
                }
                left.remove(pos);
                cur.push(seq[i].clone());
                go(seq, left, cur, out);
                cur.pop();
                left.insert(pos, i);
            }
        }
        let mut out = Vec::new();
        go(
            seq,
            &mut (0..seq.len()).collect(),
            &mut Vec::new(),
            &mut out,
        );
        out
    }

    pub fn same(v: &[Command], w: &[Command]) -> bool {
        v.len() == w.len() && equivalents(v).iter().any(|e| ids_of(e) == ids_of(w))
    }

    fn permutations(items: &[Command]) -> Vec<Vec<Command>> {
        if items.is_empty() {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    /// The commands of `w` missing from `v`. A σ with `v • σ = w` needs
    /// nothing else: another command would either stay (and `v • σ ≠ w`)
    /// or follow a checkpoint (and do nothing), and repeats do nothing.
    fn missing(v: &[Command], w: &[Command]) -> Vec<Command> {
        w.iter()
            .filter(|c| !v.iter().any(|d| d.id == c.id))
            .cloned()
            .collect()
    }

    /// `v ⊑ w` iff `w = v • σ` for some σ, searched over every σ.
    pub fn prefix(v: &[Command], w: &[Command]) -> bool {
        let targets: HashSet<Vec<CmdId>> = equivalents(w).iter().map(|e| ids_of(e)).collect();
        permutations(&missing(v, w))
            .iter()
            .any(|sigma| targets.contains(&ids_of(&normalize(&cat(&[v, sigma])))))
    }

    /// The common upper bounds of `v` and `w` made of their commands. Any
    /// upper bound extends `v`, so `v • σ` for σ over `w`'s other commands
    /// covers them.
    fn upper_bounds(v: &[Command], w: &[Command]) -> Vec<Vec<Command>> {
        permutations(&missing(v, w))
            .iter()
            .map(|sigma| normalize(&cat(&[v, sigma])))
            .filter(|z| prefix(v, z) && prefix(w, z))
            .collect()
    }

    pub fn compatible(v: &[Command], w: &[Command]) -> bool {
        !upper_bounds(v, w).is_empty()
    }

    /// The common upper bound below every other, if the two are compatible.
    pub fn lub(v: &[Command], w: &[Command]) -> Option<Vec<Command>> {
        let ubs = upper_bounds(v, w);
        let least: Vec<&Vec<Command>> = ubs
            .iter()
            .filter(|l| ubs.iter().all(|z| prefix(l, z)))
            .collect();
        assert!(ubs.is_empty() || !least.is_empty(), "no least upper bound");
        least.first().map(|l| (*l).clone())
    }

    /// The common lower bound above every other. Every lower bound is a
    /// prefix of `v`, and every prefix of `v` is the beginning of some
    /// sequence equivalent to `v`.
    pub fn glb(v: &[Command], w: &[Command]) -> Vec<Command> {
        let mut seen = HashSet::new();
        let mut lower = Vec::new();
        for e in equivalents(v) {
            for k in 0..=e.len() {
                let p = normalize(&e[..k]);
                let key: BTreeSet<CmdId> = p.iter().map(|c| c.id).collect();
                if seen.insert(key) && prefix(&p, v) && prefix(&p, w) {
                    lower.push(p);
                }
            }
        }
        let top = lower
            .iter()
            .max_by_key(|p| p.len())
            .expect("⊥ is a lower bound")
            .clone();
        assert!(
            lower.iter().all(|p| prefix(p, &top)),
            "no greatest lower bound"
        );
        top
    }
}

/// `History` against the model on one pair of normalized sequences.
fn agree_with_model(pool: &[Command], v: &[Command], w: &[Command]) -> Result<(), TestCaseError> {
    let (hv, hw) = (History::from_commands(v), History::from_commands(w));
    prop_assert_eq!(hv == hw, model::same(v, w), "== on {:?} / {:?}", v, w);
    prop_assert_eq!(
        hv.is_prefix_of(&hw),
        model::prefix(v, w),
        "⊑ on {:?} / {:?}",
        v,
        w
    );
    prop_assert_eq!(
        hw.is_prefix_of(&hv),
        model::prefix(w, v),
        "⊒ on {:?} / {:?}",
        v,
        w
    );
    prop_assert_eq!(
        hv.compatible(&hw),
        model::compatible(v, w),
        "compatible on {:?} / {:?}",
        v,
        w
    );
    match (hv.lub(&hw), model::lub(v, w)) {
        (None, None) => {}
        (Some(l), Some(m)) => {
            prop_assert!(model::same(&l.linearize(), &m), "⊔ on {:?} / {:?}", v, w)
        }
        (l, m) => prop_assert!(false, "⊔ on {:?} / {:?}: {:?} vs model {:?}", v, w, l, m),
    }
    let g = hv.glb(&hw);
    let m = model::glb(v, w);
    prop_assert!(
        model::same(&g.linearize(), &m),
        "⊓ on {:?} / {:?}: {:?} vs model {:?}",
        v,
        w,
        g,
        m
    );
    prop_assert!(model::same(&hv.linearize(), v), "linearize");
    prop_assert_eq!(hv.is_closed(), v.last().is_some_and(Command::is_checkpoint));
    for c in pool {
        prop_assert_eq!(hv.contains(&c.id), v.iter().any(|d| d.id == c.id));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn history_matches_the_brute_force_model(
        pool in pool(),
        s1 in picks(4),
        s2 in picks(4),
        s3 in picks(5),
        (k1, k2, e1, e2) in (0..=5usize, 0..=5usize, any::<usize>(), any::<usize>()),
    ) {
        let v = model::normalize(&pick(&pool, &s1));
        let w = model::normalize(&pick(&pool, &s2));
        // Two prefixes of one history, from two of its equivalent
        // sequences: always compatible, often neither below the other.
        let z = model::normalize(&pick(&pool, &s3));
        let exts = model::equivalents(&z);
        let (x1, x2) = (&exts[e1 % exts.len()], &exts[e2 % exts.len()]);
        let p1 = x1[..k1.min(x1.len())].to_vec();
        let p2 = x2[..k2.min(x2.len())].to_vec();
        agree_with_model(&pool, &v, &w)?;
        agree_with_model(&pool, &p1, &p2)?;
        agree_with_model(&pool, &model::normalize(&cat(&[&p1, &v])), &p2)?;
        agree_with_model(&pool, &p1, &z)?;

        // ⊔ of two prefixes of z is below z.
        let (h1, h2) = (History::from_commands(&p1), History::from_commands(&p2));
        let hz = History::from_commands(&z);
        prop_assert!(h1.lub(&h2).is_some_and(|l| l.is_prefix_of(&hz)));
    }

    #[test]
    fn equivalent_sequences_build_equal_histories(
        pool in pool(),
        s in picks(6),
        e in any::<usize>(),
        junk in picks(3),
    ) {
        let seq = pick(&pool, &s);
        let z = model::normalize(&seq);
        let exts = model::equivalents(&z);
        let mut other = exts[e % exts.len()].clone();
        // Repeats and anything after a checkpoint change nothing either.
        other.extend(seq.iter().cloned());
        if z.last().is_some_and(Command::is_checkpoint) {
            other.extend(pick(&pool, &junk));
        }
        prop_assert_eq!(History::from_commands(&seq), History::from_commands(&other));
    }
}

fn cmd(client: u64, seq: u64, op: Op) -> Command {
    Command::new(client, seq, op)
}

fn put(seq: u64, key: &str) -> Command {
    cmd(
        1,
        seq,
        Op::Put {
            key: key.into(),
            value: "v".into(),
        },
    )
}

fn transfer(seq: u64, from: &str, to: &str) -> Command {
    cmd(
        2,
        seq,
        Op::Transfer {
            from: from.into(),
            to: to.into(),
            amount: 1,
        },
    )
}

/// docs/PAPER.md trap 5. Per key, the common prefixes of `v` and `w` are
/// `k0: []` and `[t_(i-1)i, t_i(i+1)]` on each later key. `t_01` is not in
/// `k0`'s, which removes it from `k1`'s, which removes `t_12` from `k2`'s,
/// and so on down the chain to `p_4`; only `g` is left. The chain is long so
/// that a single pass over the keys in the wrong order cannot find this.
#[test]
fn glb_of_multi_key_histories_needs_the_fix_point() {
    let q0 = put(1, "k0");
    let t: Vec<Command> = (0..4)
        .map(|i| transfer(10 + i, &format!("k{i}"), &format!("k{}", i + 1)))
        .collect();
    let p4 = put(2, "k4");
    let g = cmd(3, 5, Op::Get { key: "d".into() });
    let v = History::from_commands(&cat(&[
        std::slice::from_ref(&q0),
        &t,
        &[p4.clone(), g.clone()],
    ]));
    let w = History::from_commands(&cat(&[
        &[g.clone(), t[0].clone(), q0],
        &t[1..],
        std::slice::from_ref(&p4),
    ]));
    assert!(!v.compatible(&w));

    let glb = v.glb(&w);
    assert_eq!(glb, History::from_commands(std::slice::from_ref(&g)));
    assert!(glb.is_prefix_of(&v) && glb.is_prefix_of(&w));
    assert!(t.iter().all(|c| !glb.contains(&c.id)) && !glb.contains(&p4.id));

    // Each key's common prefix without the fix-point would keep the whole
    // chain: below `w`, but not below `v`, where `q0` precedes `t_01`.
    let naive = History::from_commands(&cat(&[&t, &[p4, g]]));
    assert!(naive.is_prefix_of(&w) && !naive.is_prefix_of(&v));
}

/// Trap 6: a repeat is a no-op; a checkpoint goes after everything already
/// there and closes the history, in `History` and `Sequence` alike.
#[test]
fn checkpoint_orders_after_everything_and_closes() {
    let (x, y) = (put(1, "a"), put(2, "b"));
    let k = Command::checkpoint(CmdId { client: 0, seq: 9 });
    let late = put(3, "c");
    let h = History::from_commands(&[x.clone(), k.clone(), x.clone(), late.clone()]);
    assert!(h.is_closed() && !h.contains(&late.id));
    assert_eq!(h.linearize(), vec![x.clone(), k.clone()]);
    // x ⊓ (x, k) keeps x; (x, y) and (x, k) are incompatible.
    let xy = History::from_commands(&[x.clone(), y.clone()]);
    assert_eq!(xy.glb(&h), History::from_commands(std::slice::from_ref(&x)));
    assert!(!xy.compatible(&h) && xy.lub(&h).is_none());
    assert_eq!(
        History::from_commands(std::slice::from_ref(&x)).lub(&h),
        Some(h.clone())
    );

    let s = Sequence::from_commands(&[x.clone(), k.clone(), late.clone()]);
    assert!(s.is_closed());
    assert_eq!(s.linearize(), vec![x, k]);
}

/// Section 4.4: with ⊥, two different commands are incompatible and meet at
/// ⊥; a value is a prefix only of itself.
#[test]
fn single_value_is_ordinary_consensus() {
    let (x, y) = (put(1, "a"), put(2, "b"));
    let vx = SingleValue::from_commands(&[x.clone(), y.clone()]);
    let vy = SingleValue::from_commands(std::slice::from_ref(&y));
    assert_eq!(vx.value(), Some(&x));
    assert!(!vx.compatible(&vy));
    assert_eq!(vx.glb(&vy), SingleValue::bottom());
    assert!(SingleValue::bottom().is_prefix_of(&vx) && !vx.is_prefix_of(&vy));
    assert_eq!(vx.suffix_after(&SingleValue::bottom()), vec![x]);
}
