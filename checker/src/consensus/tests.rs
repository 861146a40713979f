//! Hand-made observation sets, valid and violating, for every requirement.

use super::*;
use crate::fxhash::FxHashMap;
use crate::history::{ClientEvent, LearnerObservation, NemesisEvent, Op};

/// A command from a short spelling: `"put k v"`, `"get k"`, `"cas k - v"`
/// (`-` is absent), `"append k v"`, `"transfer a b 5"`, `"balances a,b"`,
/// `"checkpoint"`.
fn cmd(id: &str, spec: &str) -> Command {
    let w: Vec<&str> = spec.split_whitespace().collect();
    let s = |i: usize| w[i].to_owned();
    let op = match w[0] {
        "get" => Op::Get { key: s(1) },
        "put" => Op::Put {
            key: s(1),
            value: s(2),
        },
        "append" => Op::Append {
            key: s(1),
            value: s(2),
        },
        "cas" => Op::Cas {
            key: s(1),
            from: (w[2] != "-").then(|| s(2)),
            to: s(3),
        },
        "transfer" => Op::Transfer {
            from: s(1),
            to: s(2),
            amount: w[3].parse().unwrap(),
        },
        "balances" => Op::Balances {
            accounts: w[1].split(',').map(String::from).collect(),
        },
        "checkpoint" => Op::Checkpoint,
        other => panic!("unknown op {other}"),
    };
    Command {
        id: CmdId(id.into()),
        op,
    }
}

/// A run being written: commands are declared once and named by id.
#[derive(Default)]
struct Run {
    h: History,
    cmds: FxHashMap<String, Command>,
}

impl Run {
    fn new(decl: &[(&str, &str)]) -> Self {
        let mut r = Run::default();
        for (id, spec) in decl {
            r.cmds.insert(id.to_string(), cmd(id, spec));
        }
        r
    }

    fn client(&mut self, kind: EventKind, id: &str, time: u64) -> &mut Self {
        let command = self.cmds[id].clone();
        let process = id.split('.').next().unwrap().parse().unwrap_or(0);
        self.h.push(Record::Client(ClientEvent {
            kind,
            process,
            time,
            command,
            result: None,
        }));
        self
    }

    /// Invokes at `time` and completes `ok` at `time + 1`.
    fn ok(&mut self, id: &str, time: u64) -> &mut Self {
        self.client(EventKind::Invoke, id, time)
            .client(EventKind::Ok, id, time + 1)
    }

    fn invoke(&mut self, id: &str, time: u64) -> &mut Self {
        self.client(EventKind::Invoke, id, time)
    }

    fn learned(
        &mut self,
        node: &str,
        time: u64,
        from: usize,
        ids: &str,
        is_final: bool,
    ) -> &mut Self {
        let cmds: Vec<Command> = ids
            .split_whitespace()
            .map(|i| self.cmds[i].clone())
            .collect();
        self.h.push(Record::Learned(LearnerObservation {
            node: node.into(),
            time,
            from,
            len: from + cmds.len(),
            cmds,
            is_final,
        }));
        self
    }

    fn heal(&mut self, time: u64) -> &mut Self {
        self.h.push(Record::Nemesis(NemesisEvent {
            time,
            f: "heal".into(),
            phase: Some("final".into()),
            value: None,
        }));
        self
    }

    fn check(&self) -> ConsensusResult {
        check(&self.h)
    }
}

fn kv() -> Run {
    Run::new(&[
        ("1.1", "put x 1"),
        ("2.1", "put x 2"),
        ("3.1", "get y"),
        ("4.1", "put y 4"),
        ("5.1", "transfer a b 5"),
        ("6.1", "transfer b c 1"),
        ("7.1", "balances a,c"),
        ("n1.c1", "checkpoint"),
        ("n1.c2", "checkpoint"),
    ])
}

fn only(result: &ConsensusResult, property: Property) -> &Violation {
    assert_eq!(result.verdict, Verdict::Invalid, "{result:#?}");
    let of: Vec<&Violation> = result
        .violations
        .iter()
        .filter(|v| v.property == property)
        .collect();
    assert_eq!(of.len(), 1, "{result:#?}");
    assert_eq!(result.violations.len(), 1, "{result:#?}");
    of[0]
}

#[test]
fn commuting_orders_and_deltas_are_valid() {
    let mut r = kv();
    r.ok("1.1", 10)
        .ok("3.1", 11)
        .ok("5.1", 12)
        .ok("7.1", 13)
        .ok("2.1", 14);
    r.learned("n1", 20, 0, "1.1 3.1", false)
        .learned("n2", 21, 0, "3.1 1.1 5.1", false)
        .learned("n1", 22, 2, "5.1 n1.c1", false)
        .learned("n2", 23, 3, "n1.c1 7.1 2.1", false)
        .heal(30)
        .learned("n1", 40, 4, "2.1 7.1", true)
        .learned("n2", 41, 0, "1.1 3.1 5.1 n1.c1 2.1 7.1", true);
    let result = r.check();
    assert_eq!(result.verdict, Verdict::Valid, "{result:#?}");
    assert!(result.liveness_judged);
    assert_eq!(result.learners.len(), 2);
    assert_eq!(result.learners[1].learned, 6);
}

#[test]
fn empty_history_is_vacuously_valid() {
    let result = check(&History::new());
    assert_eq!(result.verdict, Verdict::Valid);
    assert!(!result.liveness_judged);
}

#[test]
fn nontriviality_catches_an_unproposed_command() {
    let mut r = kv();
    r.ok("1.1", 10).learned("n1", 20, 0, "1.1 2.1", false);
    let result = r.check();
    let v = only(&result, Property::Nontriviality);
    assert_eq!(v.commands, vec![CmdId("2.1".into())]);
    assert!(v.message.contains("no client invoked"), "{}", v.message);
}

#[test]
fn nontriviality_catches_a_changed_command() {
    let mut r = kv();
    r.ok("1.1", 10);
    r.cmds.insert("1.1".into(), cmd("1.1", "put x 999"));
    r.learned("n1", 20, 0, "1.1", false);
    let result = r.check();
    let v = only(&result, Property::Nontriviality);
    assert!(v.message.contains("999"), "{}", v.message);
}

#[test]
fn nontriviality_exempts_checkpoints_and_catches_duplicates() {
    let mut r = kv();
    r.ok("1.1", 10)
        .ok("3.1", 11)
        .learned("n1", 20, 0, "1.1 n1.c1", false)
        .learned("n1", 21, 2, "3.1 1.1", false);
    let result = r.check();
    let v = only(&result, Property::Nontriviality);
    assert!(v.message.contains("twice"), "{}", v.message);
    assert!(v.message.contains("positions 0 and 3"), "{}", v.message);
}

#[test]
fn stability_allows_a_restart_that_reports_an_equivalent_sequence() {
    let mut r = kv();
    r.ok("1.1", 10).ok("3.1", 11).ok("2.1", 12);
    r.learned("n1", 20, 0, "1.1 3.1", false)
        .learned("n1", 30, 0, "3.1 1.1 2.1", false)
        .learned("n1", 31, 1, "1.1 2.1", false);
    let result = r.check();
    assert_eq!(result.verdict, Verdict::Valid, "{result:#?}");
    assert_eq!(result.learners[0].runs, 1);
}

#[test]
fn stability_catches_a_forgotten_command() {
    let mut r = kv();
    r.ok("1.1", 10).ok("3.1", 11);
    r.learned("n1", 20, 0, "1.1 3.1", false)
        .learned("n1", 30, 0, "3.1", false);
    let result = r.check();
    let v = only(&result, Property::Stability);
    assert_eq!(v.commands[0], CmdId("1.1".into()));
    assert_eq!(v.times, vec![20, 30]);
    assert!(v.message.contains("no longer has it"), "{}", v.message);
}

#[test]
fn stability_catches_a_reordered_interfering_pair() {
    let mut r = kv();
    r.ok("1.1", 10).ok("2.1", 11);
    r.learned("n1", 20, 0, "1.1 2.1", false)
        .learned("n1", 30, 1, "2.1", false)
        .learned("n1", 40, 0, "2.1 1.1", false);
    let result = r.check();
    let v = only(&result, Property::Stability);
    let sbs = v.side_by_side.as_ref().unwrap();
    assert_eq!(sbs.key.as_deref(), Some("x"));
    assert_eq!(sbs.left[sbs.marked], CmdId("1.1".into()));
    assert_eq!(sbs.right[sbs.marked], CmdId("2.1".into()));
    assert_eq!(v.lines.len(), 2);
}

#[test]
fn stability_catches_a_command_moved_across_a_checkpoint() {
    let mut r = kv();
    r.ok("1.1", 10).ok("3.1", 11);
    r.learned("n1", 20, 0, "1.1 n1.c1", false)
        .learned("n1", 30, 0, "n1.c1 1.1", false);
    only(&r.check(), Property::Stability);
}

#[test]
fn consistency_catches_a_single_pair_ordered_differently() {
    let mut r = kv();
    r.ok("1.1", 10).ok("2.1", 11).ok("3.1", 12).ok("4.1", 13);
    r.learned("n1", 20, 0, "3.1 1.1 4.1 2.1", false)
        .learned("n2", 21, 0, "3.1 2.1 4.1 1.1", false);
    let result = r.check();
    let v = only(&result, Property::Consistency);
    assert!(
        v.message.contains("order the interfering commands"),
        "{}",
        v.message
    );
    assert!(v.message.contains("key \"x\""), "{}", v.message);
    assert_eq!(v.learners, vec!["n1".to_string(), "n2".to_string()]);
    assert_eq!(v.commands, vec![CmdId("1.1".into()), CmdId("2.1".into())]);
    assert_eq!(v.times, vec![20, 21]);
}

#[test]
fn consistency_catches_different_commands_in_the_same_place() {
    let mut r = kv();
    r.ok("1.1", 10).ok("2.1", 11);
    r.learned("n1", 20, 0, "1.1", false)
        .learned("n2", 21, 0, "2.1", false);
    let result = r.check();
    let v = only(&result, Property::Consistency);
    assert!(v.message.contains("has not learned"), "{}", v.message);
}

#[test]
fn consistency_catches_a_command_missing_before_a_common_one() {
    // n2 has 2.1 without the 1.1 that n1 ordered before it.
    let mut r = kv();
    r.ok("1.1", 10).ok("2.1", 11);
    r.learned("n1", 20, 0, "1.1 2.1", false)
        .learned("n2", 21, 0, "2.1", false);
    only(&r.check(), Property::Consistency);
}

#[test]
fn consistency_orders_transfers_on_both_accounts() {
    // 5.1 touches a,b and 6.1 touches b,c: they interfere on b only.
    let mut r = kv();
    r.ok("5.1", 10).ok("6.1", 11).ok("7.1", 12);
    r.learned("n1", 20, 0, "5.1 6.1 7.1", false)
        .learned("n2", 21, 0, "6.1 5.1 7.1", false)
        .learned("n3", 22, 0, "5.1 7.1 6.1", false);
    let result = r.check();
    assert_eq!(result.verdict, Verdict::Invalid);
    let pairs: Vec<(String, String, Option<String>)> = result
        .violations
        .iter()
        .map(|v| {
            (
                v.learners[0].clone(),
                v.learners[1].clone(),
                v.side_by_side.as_ref().unwrap().key.clone(),
            )
        })
        .collect();
    // n1/n2 part on b; n1/n3 part on c (7.1 reads c); n2/n3 on b.
    assert!(
        pairs.contains(&("n1".into(), "n2".into(), Some("b".into()))),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("n1".into(), "n3".into(), Some("c".into()))),
        "{pairs:?}"
    );
    assert!(
        pairs.iter().any(|p| p.0 == "n2" && p.1 == "n3"),
        "{pairs:?}"
    );
    assert_eq!(result.violations.len(), 3);
}

#[test]
fn consistency_accepts_transfers_on_disjoint_accounts_in_any_order() {
    let mut r = Run::new(&[("1.1", "transfer a b 1"), ("2.1", "transfer c d 1")]);
    r.ok("1.1", 10).ok("2.1", 11);
    r.learned("n1", 20, 0, "1.1 2.1", false)
        .learned("n2", 21, 0, "2.1 1.1", false);
    assert_eq!(r.check().verdict, Verdict::Valid);
}

#[test]
fn consistency_orders_every_key_around_a_checkpoint() {
    // y is touched by one command; the learners put it on either side of
    // the checkpoint, which touches y too.
    let mut r = kv();
    r.ok("1.1", 10).ok("3.1", 11);
    r.learned("n1", 20, 0, "1.1 3.1 n1.c1", false)
        .learned("n2", 21, 0, "1.1 n1.c1 3.1", false);
    let result = r.check();
    let v = only(&result, Property::Consistency);
    assert!(v.message.contains("3.1"), "{}", v.message);
    assert!(v.message.contains("n1.c1"), "{}", v.message);
}

#[test]
fn consistency_catches_checkpoints_in_different_orders() {
    let mut r = kv();
    r.learned("n1", 20, 0, "n1.c1 n1.c2", false)
        .learned("n2", 21, 0, "n1.c2 n1.c1", false);
    let result = r.check();
    let v = only(&result, Property::Consistency);
    assert_eq!(v.side_by_side.as_ref().unwrap().key, None);
    assert!(v.message.contains("checkpoints"), "{}", v.message);
}

#[test]
fn consistency_reports_when_both_sides_had_learned_the_pair() {
    let mut r = kv();
    r.ok("1.1", 10).ok("2.1", 11).ok("3.1", 12);
    r.learned("n1", 20, 0, "3.1", false)
        .learned("n2", 21, 0, "3.1", false)
        .learned("n1", 30, 1, "1.1 2.1", false)
        .learned("n2", 50, 1, "2.1 1.1", false);
    let result = r.check();
    let v = only(&result, Property::Consistency);
    assert_eq!(v.times, vec![30, 50]);
}

#[test]
fn liveness_catches_a_completed_command_missing_from_a_final_history() {
    let mut r = kv();
    r.ok("1.1", 10).ok("3.1", 11);
    r.heal(30)
        .learned("n1", 40, 0, "1.1 3.1", true)
        .learned("n2", 41, 0, "1.1", true);
    let result = r.check();
    let v = only(&result, Property::Liveness);
    assert_eq!(v.learners, vec!["n2".to_string()]);
    assert_eq!(v.commands, vec![CmdId("3.1".into())]);
    assert!(v.message.contains("completed ok"), "{}", v.message);
}

#[test]
fn liveness_requires_what_any_learner_learned_even_if_indeterminate() {
    let mut r = kv();
    r.invoke("1.1", 10)
        .client(EventKind::Info, "1.1", 12)
        .invoke("2.1", 13)
        .heal(30)
        .learned("n1", 40, 0, "1.1", true)
        .learned("n2", 41, 0, "", true);
    let result = r.check();
    let v = only(&result, Property::Liveness);
    assert_eq!(v.commands, vec![CmdId("1.1".into())]);
    assert!(v.message.contains("learned by n1"), "{}", v.message);
}

#[test]
fn liveness_requires_learned_checkpoints_and_ok_commands_no_one_learned() {
    let mut r = kv();
    r.ok("1.1", 10)
        .learned("n1", 20, 0, "n1.c1", false)
        .heal(30)
        .learned("n1", 40, 0, "n1.c1", true)
        .learned("n2", 41, 0, "", true);
    let result = r.check();
    let v: Vec<&Violation> = result.violations.iter().collect();
    assert_eq!(v.len(), 2, "{result:#?}");
    assert!(v.iter().all(|v| v.property == Property::Liveness));
    assert!(v[1].message.contains("lacks 2"), "{}", v[1].message);
}

#[test]
fn liveness_ignores_commands_invoked_after_the_heal_and_dead_learners() {
    let mut r = kv();
    r.ok("1.1", 10)
        .learned("n3", 15, 0, "1.1", false)
        .heal(30)
        .ok("2.1", 31)
        .learned("n1", 40, 0, "1.1 2.1", true)
        .learned("n2", 41, 0, "1.1", true);
    let result = r.check();
    assert_eq!(result.verdict, Verdict::Valid, "{result:#?}");
    assert!(result.notes.iter().any(|n| n.contains("n3")));
}

#[test]
fn liveness_is_not_judged_without_a_final_heal() {
    let mut r = kv();
    r.ok("1.1", 10).learned("n1", 40, 0, "", true);
    let result = r.check();
    assert_eq!(result.verdict, Verdict::Valid);
    assert!(!result.liveness_judged);
}

#[test]
fn a_gap_in_the_observations_makes_the_verdict_unknown() {
    let mut r = kv();
    r.ok("1.1", 10).ok("2.1", 11);
    r.learned("n1", 20, 0, "1.1", false)
        .learned("n1", 30, 3, "2.1", false);
    let result = r.check();
    assert_eq!(result.verdict, Verdict::Unknown, "{result:#?}");
    assert!(result.unknown_reasons[0].contains("position 3"));
}

#[test]
fn many_commands_are_checked_quickly() {
    // 100k commands over 1000 keys, two learners in commuting orders.
    let n = 100_000;
    let mut h = History::new();
    let cmds: Vec<Command> = (0..n)
        .map(|i| Command {
            id: CmdId(format!("{}.{}", i % 50, i)),
            op: if i % 10_000 == 9_999 {
                Op::Checkpoint
            } else {
                Op::Put {
                    key: format!("k{}", i % 1000),
                    value: i.to_string(),
                }
            },
        })
        .collect();
    for (i, c) in cmds.iter().enumerate() {
        if !c.is_checkpoint() {
            h.push(Record::Client(ClientEvent {
                kind: EventKind::Invoke,
                process: (i % 50) as u64,
                time: i as u64,
                command: c.clone(),
                result: None,
            }));
        }
    }
    let mut swapped = cmds.clone();
    for pair in swapped.chunks_mut(2) {
        if pair.iter().all(|c| !c.is_checkpoint()) {
            pair.swap(0, 1);
        }
    }
    for (node, seq) in [("n1", &cmds), ("n2", &swapped)] {
        for (chunk_no, chunk) in seq.chunks(1000).enumerate() {
            h.push(Record::Learned(LearnerObservation {
                node: node.into(),
                time: (n + chunk_no) as u64,
                from: chunk_no * 1000,
                len: chunk_no * 1000 + chunk.len(),
                cmds: chunk.to_vec(),
                is_final: false,
            }));
        }
    }
    let started = std::time::Instant::now();
    let result = check(&h);
    assert_eq!(
        result.verdict,
        Verdict::Valid,
        "{:#?}",
        result.violations.first()
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn liveness_does_not_require_operations_that_failed_without_effect() {
    let mut r = Run::new(&[("1.1", "put x 1"), ("2.1", "cas x - 2")]);
    r.client(EventKind::Invoke, "1.1", 10)
        .client(EventKind::Fail, "1.1", 11)
        .client(EventKind::Invoke, "2.1", 12)
        .client(EventKind::Fail, "2.1", 13)
        .heal(30)
        .learned("n1", 40, 0, "", true);
    let result = r.check();
    let v = only(&result, Property::Liveness);
    assert_eq!(
        v.commands,
        vec![CmdId("2.1".into())],
        "the refused cas took effect; the failed put did not"
    );
}
