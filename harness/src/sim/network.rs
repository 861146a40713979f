//! The simulated network: per-link delay with jitter, loss, duplication
//! (reordering follows from jitter), and partitions as a grudge: the set of
//! directed links that drop everything, in the vocabulary of
//! [`crate::faults`] that every backend shares.

use crate::faults::Grudge;
use gpaxos_node::protocol::NodeId;
use rand::rngs::SmallRng;
use rand::Rng;

#[derive(Clone, Debug)]
pub struct LinkFaults {
    /// One-way delay in µs: `base + uniform(0, jitter)`, where `base` is
    /// this or, with a latency matrix, the link's entry in it.
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
    grudge: Grudge,
    /// One-way delay in µs of each directed link `[from][to]`, replacing
    /// `faults.base_us` (`--latency`).
    pub latency_us: Option<Vec<Vec<u64>>>,
    /// A node kept away from every other (the lagging-node nemesis), apart
    /// from the partitions that come and go.
    pub away: Option<NodeId>,
}

impl Network {
    pub fn new(faults: LinkFaults, latency_us: Option<Vec<Vec<u64>>>) -> Self {
        Network {
            faults,
            grudge: Grudge::new(),
            latency_us,
            away: None,
        }
    }

    /// Cuts exactly the links of `grudge`, replacing any partition in
    /// force.
    pub fn partition(&mut self, grudge: Grudge) {
        self.grudge = grudge;
    }

    /// The links cut now.
    pub fn grudge(&self) -> &Grudge {
        &self.grudge
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
        let cut = self.grudge.contains(&(from as usize, to as usize));
        if cut || self.away == Some(from) || self.away == Some(to) {
            return Vec::new();
        }
        let f = &self.faults;
        let base_us = match &self.latency_us {
            Some(m) => m[from as usize][to as usize],
            None => f.base_us,
        };
        if f.loss > 0.0 && rng.gen_bool(f.loss) {
            return Vec::new();
        }
        let delay = |rng: &mut SmallRng| {
            let mut d = base_us
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
