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
}

#[derive(Clone, Debug)]
pub struct Network {
    pub faults: LinkFaults,
    /// Directed links `(from, to)` that drop every packet.
    grudge: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    pub fn new(faults: LinkFaults) -> Self {
        Network { faults, grudge: BTreeSet::new() }
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
        if self.grudge.contains(&(from, to)) {
            return Vec::new();
        }
        let f = &self.faults;
        if f.loss > 0.0 && rng.gen_bool(f.loss) {
            return Vec::new();
        }
        let delay = |rng: &mut SmallRng| f.base_us + if f.jitter_us > 0 { rng.gen_range(0..=f.jitter_us) } else { 0 };
        let first = delay(rng);
        if f.duplicate > 0.0 && rng.gen_bool(f.duplicate) {
            return vec![first, delay(rng)];
        }
        vec![first]
    }
}
