//! One node of five is a hostile peer: it holds a valid certificate, so its
//! messages arrive, but it sends whatever harms most. Each single-message
//! attack of issue 12 is sent into a running cluster of the other four,
//! which must stay live (every command proposed is learned by all four),
//! learn nothing that was never proposed, and hold state that does not grow
//! with the numbers the attack carries.

use gpaxos_node::command::{CmdId, Command, Op};
use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{Ballot, Config, InstanceVote, Message, NodeId, Replica, Suggestion};
use std::collections::VecDeque;

const N: usize = 5;
/// The hostile node: n5. Its replica does not run.
const HOSTILE: NodeId = 4;

struct Cluster {
    nodes: Vec<Replica<History>>,
    wire: VecDeque<(NodeId, NodeId, Message)>,
    learned: Vec<Vec<Command>>,
    written: Vec<u64>,
}

impl Cluster {
    fn with(config: Config) -> Cluster {
        Cluster {
            nodes: (0..N as NodeId)
                .map(|i| Replica::new(i, config.clone()))
                .collect(),
            wire: VecDeque::new(),
            learned: vec![Vec::new(); N],
            written: vec![0; N],
        }
    }

    /// Drains node `i` until it hands out nothing more (every write made
    /// durable at once), puts its messages on the wire and returns them.
    fn pump(&mut self, i: usize) -> Vec<Message> {
        let mut sent = Vec::new();
        loop {
            let out = self.nodes[i].drain();
            if out.writes.is_empty() && out.messages.is_empty() && out.learned.is_empty() {
                return sent;
            }
            for (to, msg) in out.messages {
                sent.push(msg.clone());
                self.wire.push_back((i as NodeId, to, msg));
            }
            self.learned[i].extend(out.learned.into_iter().map(|l| l.cmd));
            self.written[i] += out.writes.len() as u64;
            let written = self.written[i];
            self.nodes[i].durable(written);
        }
    }

    fn honest(&self) -> impl Iterator<Item = usize> {
        (0..N).filter(|&i| i != HOSTILE as usize)
    }

    /// Drains every honest node (every write durable at once) and delivers
    /// what it sent, until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            for i in self.honest().collect::<Vec<_>>() {
                self.pump(i);
            }
            let Some((from, to, msg)) = self.wire.pop_front() else {
                return;
            };
            if to != HOSTILE {
                self.nodes[to as usize].step(from, msg);
            }
        }
        panic!("the cluster did not settle");
    }

    fn ticks(&mut self, n: usize) {
        for _ in 0..n {
            for i in self.honest().collect::<Vec<_>>() {
                self.nodes[i].tick();
            }
            self.settle();
        }
    }

    /// The hostile peer's message reaches every honest node.
    fn attack(&mut self, msg: Message) {
        for i in self.honest().collect::<Vec<_>>() {
            self.nodes[i].step(HOSTILE, msg.clone());
        }
        self.settle();
    }

    /// Proposes `count` commands at honest nodes and runs until all four
    /// learned them (or gives up after a long while).
    fn serve(&mut self, first: u64, count: u64) -> Vec<Command> {
        let cmds: Vec<Command> = (first..first + count).map(put).collect();
        for (k, c) in cmds.iter().enumerate() {
            let at = self.honest().nth(k % 4).unwrap();
            self.nodes[at].propose(c.clone());
        }
        for _ in 0..400 {
            self.ticks(1);
            if self.honest().all(|i| {
                cmds.iter()
                    .all(|c| self.learned[i].iter().any(|l| l.id == c.id))
            }) {
                break;
            }
        }
        cmds
    }

    fn assert_live(&self, cmds: &[Command], what: &str) {
        for i in self.honest() {
            let missing = cmds
                .iter()
                .filter(|c| !self.learned[i].iter().any(|l| l.id == c.id))
                .count();
            assert_eq!(
                missing,
                0,
                "{what}: n{} did not learn {missing} of {} commands; {}",
                i + 1,
                cmds.len(),
                self.nodes[i].describe()
            );
        }
    }

    fn assert_bounded(&self, what: &str) {
        for i in self.honest() {
            let held = self.nodes[i].held_instances();
            assert!(
                held < 10_000,
                "{what}: n{} holds state for {held} instances",
                i + 1
            );
            let payloads = self.nodes[i].payloads_held();
            assert!(
                payloads < 70_000,
                "{what}: n{} holds {payloads} commands for 2bs to name",
                i + 1
            );
        }
    }

    fn refused(&self) -> u64 {
        self.honest().map(|i| self.nodes[i].stats().refused).sum()
    }
}

fn put(seq: u64) -> Command {
    Command::new(
        1,
        seq,
        Op::Put {
            key: format!("k{}", seq % 3),
            value: seq.to_string(),
        },
    )
}

fn hostile_ballot(round: u64) -> Ballot {
    Ballot {
        round,
        leader: HOSTILE,
        fast: false,
    }
}

/// A cluster that has elected a leader and learned a few commands.
fn running() -> Cluster {
    running_with(Config::new(N).unwrap())
}

fn running_with(config: Config) -> Cluster {
    let mut c = Cluster::with(config);
    let first = c.serve(1, 10);
    c.assert_live(&first, "before the attack");
    c
}

/// The attack, then more work: the four honest nodes learn it all.
fn survives(mut c: Cluster, attack: Message, what: &str) -> Cluster {
    c.attack(attack);
    c.ticks(50);
    let after = c.serve(100, 20);
    c.assert_live(&after, what);
    c.assert_bounded(what);
    c
}

fn refused(c: Cluster, what: &str) {
    assert!(c.refused() > 0, "{what}: no node refused the message");
}

#[test]
fn a_2a_start_with_a_far_rest_allocates_nothing() {
    let c = running();
    let round = c.nodes[0].mbal().round + 1;
    let what = "2a-start with rest_from 2^60";
    let attack = Message::Phase2Start {
        bal: hostile_ballot(round),
        values: vec![],
        rest_from: 1 << 60,
    };
    refused(survives(c, attack, what), what);
}

#[test]
fn a_1b_reporting_a_far_vote_does_not_wedge_the_leader() {
    let mut c = running();
    // n1 starts a ballot; its first 1b is the hostile one, reporting a vote
    // at instance 2^60.
    c.nodes[0].start_election();
    let bal = c
        .pump(0)
        .iter()
        .find_map(|m| match m {
            Message::Phase1a { bal } => Some(*bal),
            _ => None,
        })
        .expect("n1 sent a 1a");
    let attack = Message::Phase1b {
        bal,
        acc: HOSTILE,
        from: 0,
        votes: vec![InstanceVote {
            instance: 1 << 60,
            vbal: bal,
            vote: vec![put(999)],
        }],
        rests: vec![(0, Ballot::ZERO)],
    };
    c.nodes[0].step(HOSTILE, attack);
    let what = "1b with a vote at instance 2^60";
    let nothing = Message::Propose { cmds: vec![] };
    refused(survives(c, nothing, what), what);
}

#[test]
fn a_1a_with_the_last_round_does_not_stop_elections() {
    let c = running();
    let what = "1a with round u64::MAX";
    let attack = Message::Phase1a {
        bal: hostile_ballot(u64::MAX),
    };
    let mut c = survives(c, attack, what);
    // And elections still work after it: every honest node tries one.
    for i in 0..4 {
        c.nodes[i].start_election();
        c.ticks(30);
        let more = c.serve(1_000 + 10 * i as u64, 10);
        c.assert_live(&more, &format!("{what}, then an election at n{}", i + 1));
    }
    refused(c, what);
}

#[test]
fn a_peer_cannot_vote_for_other_acceptors() {
    let mut c = running();
    // n5 casts fast votes in the open instance in the others' names for a
    // command nobody proposed: with its own, a fast quorum of four.
    let forged = Command::new(
        66,
        1,
        Op::Put {
            key: "forged".into(),
            value: "x".into(),
        },
    );
    let instance = c.nodes[0].closed_below();
    let bal = c.nodes[0].mbal();
    // Appended to each acceptor's vote, whatever its length.
    for acc in 0..N as NodeId {
        for base in 0..=40 {
            c.attack(Message::Phase2b {
                bal,
                acc,
                instance,
                base,
                cmds: vec![forged.clone()],
                fast: bal.fast,
            });
        }
    }
    c.ticks(20);
    for i in c.honest() {
        assert!(
            !c.learned[i].iter().any(|l| l.id == forged.id),
            "n{} learned a command no acceptor voted for",
            i + 1
        );
    }
    let after = c.serve(100, 20);
    c.assert_live(&after, "forged 2b votes");
    assert!(c.refused() > 0);
}

#[test]
fn a_peer_cannot_lead_in_another_nodes_name() {
    let c = running();
    let mbal = c.nodes[0].mbal();
    let instance = c.nodes[0].closed_below();
    let what = "2a-start in n1's name";
    let attack = Message::Phase2Start {
        bal: Ballot {
            round: mbal.round + 1,
            leader: 0,
            fast: false,
        },
        values: vec![Suggestion {
            instance,
            value: vec![put(777)],
        }],
        rest_from: instance + 1,
    };
    let c = survives(c, attack, what);
    for i in c.honest() {
        assert!(
            !c.learned[i].iter().any(|l| l.id == put(777).id),
            "n{} learned a value n1 never suggested",
            i + 1
        );
    }
    refused(c, what);
}

#[test]
fn votes_for_far_instances_do_not_grow_the_state() {
    let mut c = running();
    let bal = c.nodes[0].mbal();
    for k in 0..20_000u64 {
        c.attack(Message::Phase2b {
            bal,
            acc: HOSTILE,
            instance: 1_000_000 + k,
            base: 0,
            cmds: vec![put(5_000 + k)],
            fast: bal.fast,
        });
    }
    let after = c.serve(100, 20);
    let what = "2b votes for 20,000 far instances";
    c.assert_live(&after, what);
    c.assert_bounded(what);
    refused(c, what);
}

#[test]
fn a_heartbeat_from_far_ahead_does_not_stop_leadership() {
    // Classic ballots and short instances: every command needs a leader
    // that leads, and every instance a checkpoint it proposes.
    let mut config = Config::new(N).unwrap();
    config.fast = false;
    config.checkpoint_every = 4;
    let c = running_with(config);
    let mbal = c.nodes[0].mbal();
    // A heartbeat of an old ballot claiming the cluster learned far more:
    // a node that believed it would wait to catch up and never lead. The
    // message itself is well formed; what it claims is not taken.
    let mut c = survives(
        c,
        Message::Heartbeat {
            bal: Ballot {
                round: 0,
                leader: HOSTILE,
                fast: true,
            },
            closed_below: 1 << 40,
            open_len: 0,
        },
        &format!("heartbeat of a ballot below {mbal:?} claiming instance 2^40"),
    );
    for i in 0..4 {
        c.nodes[i].start_election();
        c.ticks(30);
        let more = c.serve(1_000 + 10 * i as u64, 10);
        c.assert_live(
            &more,
            &format!("after the heartbeat, an election at n{}", i + 1),
        );
    }
    // 70 commands, in bursts of 10 or 20, in instances of 4 or more: the
    // instances closed as they filled.
    for i in c.honest() {
        let closed = c.nodes[i].closed_below();
        assert!(
            closed >= 3,
            "n{} closed only {closed} instances: no checkpoints after the heartbeat",
            i + 1
        );
    }
}

#[test]
fn a_cluster_above_the_supported_size_is_refused() {
    let err = Config::new(32).expect_err("32 nodes are refused");
    assert!(err.to_string().contains("at most 31"), "{err}");
    assert!(Config::new(31).is_ok());
}

/// 2bs name their commands by id and digest (issue 13). A peer naming
/// commands nobody proposed, or a proposed command with another digest,
/// gets nothing learned: the learners ask the acceptor (the hostile one)
/// for the commands whole, and what waits for an answer is bounded.
#[test]
fn votes_naming_unknown_commands_learn_nothing_and_hold_little() {
    let mut c = running();
    let bal = c.nodes[0].mbal();
    let instance = c.nodes[0].closed_below();
    let proposed = put(3);
    let mut wrong = put(3);
    wrong.op = put(4).op;
    let mut refs = vec![(proposed.id, wrong.digest())];
    refs.extend((0..20_000u64).map(|k| {
        let cmd = put(9_000 + k);
        (cmd.id, cmd.digest())
    }));
    for chunk in refs.chunks(100) {
        c.attack(Message::Phase2bIds {
            bal,
            acc: HOSTILE,
            instance,
            base: 0,
            cmds: chunk.to_vec(),
            fast: bal.fast,
        });
    }
    let what = "2bs naming 20,000 commands nobody proposed";
    c.assert_bounded(what);
    c.ticks(5);
    for i in c.honest() {
        assert!(
            !c.learned[i]
                .iter()
                .any(|l| l.id.seq >= 9_000 || *l.op != *proposed.op && l.id == proposed.id),
            "n{} learned a command nobody proposed",
            i + 1
        );
        assert!(c.nodes[i].stats().payloads_missed > 0);
    }
    let after = c.serve(100, 20);
    c.assert_live(&after, what);
}

/// Issue 13's closing messages from a peer that does not lead: a `Closing`
/// and a `Close` in the hostile node's own fast ballot, naming commands
/// nobody proposed, and answers in other acceptors' names. The cluster
/// stays live and learns nothing that was not proposed.
#[test]
fn closing_messages_from_a_peer_that_does_not_lead_change_nothing() {
    let mut c = running();
    let instance = c.nodes[0].closed_below();
    let bal = Ballot {
        round: c.nodes[0].mbal().round + 1,
        leader: HOSTILE,
        fast: true,
    };
    let forged = put(8_888);
    c.attack(Message::Closing { bal, instance });
    c.attack(Message::Close {
        bal,
        instance,
        upto: vec![(forged.id, forged.digest())],
        ckpt: Command::checkpoint(CmdId {
            client: u64::MAX - 1,
            seq: 1,
        }),
    });
    c.attack(Message::ClosingAck {
        bal: c.nodes[0].mbal(),
        acc: 0,
        instance,
    });
    let what = "closing messages from n5";
    let after = c.serve(100, 20);
    c.assert_live(&after, what);
    c.assert_bounded(what);
    for i in c.honest() {
        assert!(
            !c.learned[i].iter().any(|l| l.id == forged.id),
            "n{} learned a command nobody proposed",
            i + 1
        );
    }
    assert!(c.refused() > 0, "the answer in n1's name is refused");
}
