//! Issue 13: a checkpoint in a fast ballot must not collide with commands
//! that reach one acceptor late. On a loaded cluster an acceptor's inbound
//! queues run behind, so it may see the leader's checkpoint before
//! proposals the others voted long ago; it then closed the instance
//! without them, the instance collided, and so did the next one (72% to
//! 78% of commands on the fast path at 500 clients). The leader now
//! announces the closing (`Closing`), waits for every live acceptor's
//! answer, and closes the instance after the commands it learned there
//! (`Close`), which a late acceptor appends, waiting for their proposals
//! if it must.

use gpaxos_node::command::{Command, Op};
use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{Config, Message, NodeId, Replica};
use std::collections::VecDeque;

const N: usize = 5;
/// The proposer whose proposals reach `LATE` only at the end.
const PROPOSER: NodeId = 2;
const LATE: NodeId = 4;

struct Cluster {
    nodes: Vec<Replica<History>>,
    wire: VecDeque<(NodeId, NodeId, Message)>,
    /// Proposals from `PROPOSER` to `LATE`, held back while `late` is set.
    withheld: Vec<Message>,
    late: bool,
    learned: Vec<Vec<Command>>,
    written: Vec<u64>,
}

impl Cluster {
    fn new(config: Config) -> Cluster {
        Cluster {
            nodes: (0..N as NodeId)
                .map(|i| Replica::new(i, config.clone()))
                .collect(),
            wire: VecDeque::new(),
            withheld: Vec::new(),
            late: false,
            learned: vec![Vec::new(); N],
            written: vec![0; N],
        }
    }

    /// Drains node `i` until it hands out nothing more, every write
    /// durable at once.
    fn pump(&mut self, i: usize) {
        loop {
            let out = self.nodes[i].drain();
            if out.writes.is_empty() && out.messages.is_empty() && out.learned.is_empty() {
                return;
            }
            for (to, msg) in out.messages {
                self.wire.push_back((i as NodeId, to, msg));
            }
            self.learned[i].extend(out.learned.into_iter().map(|l| l.cmd));
            self.written[i] += out.writes.len() as u64;
            let written = self.written[i];
            self.nodes[i].durable(written);
        }
    }

    fn settle(&mut self) {
        for _ in 0..100_000 {
            for i in 0..N {
                self.pump(i);
            }
            let Some((from, to, msg)) = self.wire.pop_front() else {
                return;
            };
            if self.late && from == PROPOSER && to == LATE && matches!(msg, Message::Propose { .. })
            {
                self.withheld.push(msg);
                continue;
            }
            self.nodes[to as usize].step(from, msg);
        }
        panic!("the cluster did not settle");
    }

    fn ticks(&mut self, n: usize) {
        for _ in 0..n {
            for node in &mut self.nodes {
                node.tick();
            }
            self.settle();
        }
    }

    fn release(&mut self) {
        self.late = false;
        for msg in std::mem::take(&mut self.withheld) {
            self.nodes[LATE as usize].step(PROPOSER, msg);
        }
        self.settle();
    }

    fn collisions(&self) -> u64 {
        self.nodes.iter().map(|n| n.stats().collisions).sum()
    }
}

fn put(seq: u64) -> Command {
    Command::new(
        7,
        seq,
        Op::Put {
            key: format!("k{seq}"),
            value: seq.to_string(),
        },
    )
}

#[test]
fn a_late_acceptor_closes_the_instance_after_the_same_commands() {
    let mut config = Config::new(N).unwrap();
    config.checkpoint_every = 8;
    let mut c = Cluster::new(config);
    c.ticks(30);
    assert!(
        c.nodes[0].mbal().fast,
        "a fast ballot: {:?}",
        c.nodes[0].mbal()
    );
    c.late = true;
    let cmds: Vec<Command> = (1..=8).map(put).collect();
    for cmd in &cmds {
        c.nodes[PROPOSER as usize].propose(cmd.clone());
    }
    c.settle();
    // The leader closes the instance while n5 has not seen the proposals.
    c.ticks(3);
    c.release();
    c.ticks(20);
    for (i, learned) in c.learned.iter().enumerate() {
        let missing = cmds
            .iter()
            .filter(|x| !learned.iter().any(|l| l.id == x.id))
            .count();
        assert_eq!(missing, 0, "n{} did not learn {missing} commands", i + 1);
        assert!(
            learned.iter().any(|l| l.is_checkpoint()),
            "n{} learned no checkpoint",
            i + 1
        );
    }
    assert_eq!(
        c.collisions(),
        0,
        "the checkpoint collided with the commands n5 saw late"
    );
    let slow: u64 = c.nodes.iter().map(|n| n.stats().learned_slow).sum();
    assert_eq!(slow, 0, "every command learned on the fast path");
}
