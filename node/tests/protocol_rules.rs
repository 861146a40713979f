//! The rules docs/PAPER.md lists as traps, checked directly on the roles.

use gpaxos_node::cstruct::{CStruct, History};
use gpaxos_node::protocol::acceptor::Acceptor;
use gpaxos_node::protocol::leader::{Leader, OneB};
use gpaxos_node::protocol::learner::Learner;
use gpaxos_node::protocol::outbox::{Effect, Outbox};
use gpaxos_node::protocol::{Ballot, Config, InstanceVote, Message, Quorums, Record, Replica};
use gpaxos_node::{Command, Op};

fn put(client: u64, key: &str) -> Command {
    Command::new(
        client,
        1,
        Op::Put {
            key: key.into(),
            value: format!("{client}"),
        },
    )
}

fn sent(out: &Outbox) -> Vec<&Message> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(_, m) => Some(m),
            _ => None,
        })
        .collect()
}

fn classic(round: u64, leader: u32) -> Ballot {
    Ballot {
        round,
        leader,
        fast: false,
    }
}

#[test]
fn phase1b_joins_only_higher_ballots() {
    let mut a = Acceptor::<History>::new(2, true, Default::default());
    let mut out = Outbox::default();
    a.phase1b(classic(5, 1), &mut out);
    assert_eq!(a.mbal(), classic(5, 1));
    assert!(out
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Write(Record::Promise { .. }))));
    assert!(sent(&out)
        .iter()
        .any(|m| matches!(m, Message::Phase1b { .. })));
    let mut out = Outbox::default();
    a.phase1b(classic(4, 3), &mut out);
    assert_eq!(
        a.mbal(),
        classic(5, 1),
        "trap 1: mbal[a] < m is required to join"
    );
    assert!(matches!(sent(&out)[..], [Message::Preempted { .. }]));
}

#[test]
fn no_fast_vote_in_a_classic_ballot() {
    let mut a = Acceptor::<History>::new(0, true, Default::default());
    let mut out = Outbox::default();
    a.phase1b(classic(1, 1), &mut out);
    a.phase2b_classic_start(classic(1, 1), &[], 0, &mut out);
    let mut out = Outbox::default();
    a.phase2b_fast(&[put(1, "a")], &mut out);
    assert!(
        out.effects.is_empty(),
        "trap 2: an acceptor in a classic ballot never appends on its own"
    );
    // In a fast ballot it does.
    let fast = Ballot {
        round: 2,
        leader: 1,
        fast: true,
    };
    a.phase1b(fast, &mut out);
    a.phase2b_classic_start(fast, &[], 0, &mut out);
    let mut out = Outbox::default();
    a.phase2b_fast(&[put(1, "a")], &mut out);
    assert!(sent(&out)
        .iter()
        .any(|m| matches!(m, Message::Phase2bIds { fast: true, .. })));
}

#[test]
fn no_reply_before_the_write_is_durable() {
    let mut r = Replica::<History>::new(1, Config::new(5).unwrap());
    r.step(
        2,
        Message::Propose {
            cmds: vec![put(7, "k")],
        },
    );
    let out = r.drain();
    assert!(!out.writes.is_empty(), "the fast vote is written");
    assert!(
        !out.messages
            .iter()
            .any(|(_, m)| matches!(m, Message::Phase2b { .. } | Message::Phase2bIds { .. })),
        "trap 9: no 2b before the vote is durable"
    );
    r.durable(out.writes.len() as u64);
    let out = r.drain();
    assert!(out
        .messages
        .iter()
        .any(|(_, m)| matches!(m, Message::Phase2bIds { .. })));
}

fn two_b(learner: &mut Learner<History>, bal: Ballot, acc: u32, cmds: &[Command]) -> Outbox {
    let mut out = Outbox::default();
    learner.on_phase2b(bal, acc, 0, 0, cmds, bal.fast, 0, &mut out);
    out
}

fn learned(out: &Outbox) -> usize {
    out.effects
        .iter()
        .filter(|e| matches!(e, Effect::Learn { .. }))
        .count()
}

#[test]
fn a_fast_ballot_needs_a_fast_quorum() {
    let q = Quorums::for_cluster(5).unwrap();
    let mut l = Learner::<History>::new(5, q, 0, Default::default());
    let cmds = [put(1, "a")];
    for acc in 0..3 {
        assert_eq!(
            learned(&two_b(&mut l, Ballot::ZERO, acc, &cmds)),
            0,
            "trap 3: 3 votes of 5 in a fast ballot"
        );
    }
    assert_eq!(
        learned(&two_b(&mut l, Ballot::ZERO, 3, &cmds)),
        1,
        "4 votes are a fast quorum"
    );

    let mut l = Learner::<History>::new(5, q, 0, Default::default());
    for acc in 0..2 {
        assert_eq!(learned(&two_b(&mut l, classic(1, 0), acc, &cmds)), 0);
    }
    assert_eq!(
        learned(&two_b(&mut l, classic(1, 0), 2, &cmds)),
        1,
        "3 votes are a classic quorum"
    );
}

#[test]
fn a_learner_learns_the_glb_of_a_quorum() {
    let q = Quorums::for_cluster(5).unwrap();
    let mut l = Learner::<History>::new(5, q, 0, Default::default());
    let (a, b) = (put(1, "k"), put(2, "k"));
    // Four acceptors voted a then b, except one that voted b then a: only
    // quorums whose glb holds a command teach it (trap 4).
    two_b(&mut l, Ballot::ZERO, 0, &[a.clone(), b.clone()]);
    two_b(&mut l, Ballot::ZERO, 1, &[a.clone(), b.clone()]);
    two_b(&mut l, Ballot::ZERO, 2, &[b.clone(), a.clone()]);
    let out = two_b(&mut l, Ballot::ZERO, 3, &[a.clone(), b.clone()]);
    assert_eq!(
        learned(&out),
        0,
        "no four votes agree on the order of a and b"
    );
    let out = two_b(&mut l, Ballot::ZERO, 4, &[a.clone(), b.clone()]);
    assert_eq!(learned(&out), 2, "n1, n2, n4, n5 agree on a before b");
}

/// `ProvedSafe` (Definition 5) over 1b messages of a fast ballot k: the
/// leader must suggest an extension of every value that may have been
/// chosen in k, which is the lub of the glbs over k-quorums, not one vote.
#[test]
fn proved_safe_is_the_lub_of_the_glbs() {
    let q = Quorums::for_cluster(5).unwrap();
    let k = Ballot {
        round: 1,
        leader: 0,
        fast: true,
    };
    let m = Ballot {
        round: 2,
        leader: 1,
        fast: true,
    };
    let (x, y, z) = (put(1, "k"), put(2, "k"), put(3, "j"));
    // In k, n1, n3, n4 and n5 voted x•y, a fast quorum, so x•y may be
    // chosen; n2 voted y•x•z. The leader of m hears from n2..n5: taking
    // n2's vote alone would lose x•y.
    let oneb = |vote: &[Command]| OneB {
        from: 0,
        votes: vec![InstanceVote {
            instance: 0,
            vbal: k,
            vote: vote.to_vec(),
        }],
        rests: vec![(0, k)],
    };
    let mut leader = Leader::<History>::new(1, 5, q, Default::default());
    let mut out = Outbox::default();
    leader.phase1a(m, 0, &mut out);
    let mut out = Outbox::default();
    leader
        .on_phase1b(m, 1, oneb(&[y.clone(), x.clone(), z.clone()]), &mut out)
        .unwrap();
    leader
        .on_phase1b(m, 2, oneb(&[x.clone(), y.clone()]), &mut out)
        .unwrap();
    leader
        .on_phase1b(m, 3, oneb(&[x.clone(), y.clone()]), &mut out)
        .unwrap();
    assert!(
        sent(&out).is_empty(),
        "three 1b messages are not a fast quorum"
    );
    leader
        .on_phase1b(m, 4, oneb(&[x.clone(), y.clone()]), &mut out)
        .unwrap();
    let suggestion = sent(&out)
        .into_iter()
        .find_map(|msg| match msg {
            Message::Phase2Start { values, .. } => Some(values[0].value.clone()),
            _ => None,
        })
        .expect("phase 2 started");
    let suggested = History::from_commands(&suggestion);
    let maybe_chosen = History::from_commands(&[x.clone(), y.clone()]);
    assert!(
        maybe_chosen.is_prefix_of(&suggested),
        "suggested {suggestion:?}"
    );
    assert!(
        suggested.contains(&z.id),
        "commands the quorum reported are not dropped"
    );
}
