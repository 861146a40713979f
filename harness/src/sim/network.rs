//! The simulated network: per-link delay with jitter, loss, duplication
//! (reordering follows from jitter), and partitions as a grudge: the set of
//! directed links that drop everything (Jepsen's nemesis vocabulary).

use gpaxos_node::protocol::NodeId;
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub struct LinkFaults {
    /// One-way delay in µs: `base + uniform(0, jitter)`.
    pub base_us: u64,
    pub jitter_us: u64,
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a copy is held back `straggle_us` more: messages
    /// arrive long after newer ones, as a stale 1a or 2a can.
    pub straggle: f64,
    pub straggle_us: (u64, u64),
    /// Probability that a message is delivered once more, `straggle_us`
    /// later: a stale 1a, 2a or 2b replayed after newer ones.
    pub replay: f64,
}

#[derive(Clone, Debug)]
pub struct Network {
    pub faults: LinkFaults,
    /// Directed links `(from, to)` that drop every packet.
    grudge: BTreeSet<(NodeId, NodeId)>,
    /// A node kept away from every other (the lagging-node nemesis), apart
    /// from the partitions that come and go.
    pub away: Option<NodeId>,
}

impl Network {
    pub fn new(faults: LinkFaults) -> Self {
        Network {
            faults,
            grudge: BTreeSet::new(),
            away: None,
        }
    }

    /// Cuts every link between the two sides, both ways.
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                self.grudge.insert((a, b));
                self.grudge.insert((b, a));
            }
        }
    }

    /// Jepsen's bridge: two halves that cannot talk to each other, and one
    /// node that talks to both. Quorums on either side then meet only in
    /// the bridge, which is where a protocol's intersection argument is
    /// thinnest.
    pub fn bridge(&mut self, order: &[NodeId]) {
        let mid = order.len() / 2;
        let (left, right) = (&order[..mid], &order[mid + 1..]);
        self.partition(left, right);
    }

    /// Cuts one node off from every other.
    pub fn isolate(&mut self, node: NodeId, n: usize) {
        let others: Vec<NodeId> = (0..n as NodeId).filter(|&x| x != node).collect();
        self.partition(&[node], &others);
    }

    pub fn heal(&mut self) {
        self.grudge.clear();
    }

    pub fn is_partitioned(&self) -> bool {
        !self.grudge.is_empty()
    }

    /// The delays after which copies of one message arrive: none if dropped,
    /// two if duplicated.
    pub fn transmit(&self, from: NodeId, to: NodeId, rng: &mut SmallRng) -> Vec<u64> {
        if self.grudge.contains(&(from, to)) || self.away == Some(from) || self.away == Some(to) {
            return Vec::new();
        }
        let f = &self.faults;
        if f.loss > 0.0 && rng.gen_bool(f.loss) {
            return Vec::new();
        }
        let delay = |rng: &mut SmallRng| {
            let mut d = f.base_us
                + if f.jitter_us > 0 {
                    rng.gen_range(0..=f.jitter_us)
                } else {
                    0
                };
            if f.straggle > 0.0 && rng.gen_bool(f.straggle) {
                d += rng.gen_range(f.straggle_us.0..=f.straggle_us.1);
            }
            d
        };
        let first = delay(rng);
        let mut copies = vec![first];
        if f.duplicate > 0.0 && rng.gen_bool(f.duplicate) {
            copies.push(delay(rng));
        }
        if f.replay > 0.0 && rng.gen_bool(f.replay) {
            copies.push(first + rng.gen_range(f.straggle_us.0..=f.straggle_us.1));
        }
        copies
    }
}
