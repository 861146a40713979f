//! The simulator's partitions, drawn from the shapes of
//! [`crate::faults::Partition`] that the other backends' nemesis uses:
//! splits of any size, Jepsen's bridge, the majorities ring and isolating
//! the node that leads.

use super::{Event, Heal, Sim, MS};
use crate::faults::{grudge, Grudge, Kind, Partition};
use crate::record;
use gpaxos_node::protocol::NodeId;
use rand::Rng;

/// One partition of a seed's fault log.
#[derive(Clone, Debug)]
pub struct Injected {
    /// Simulated time, µs.
    pub at_us: u64,
    pub shape: Partition,
    /// The links the network cut.
    pub cut: Grudge,
}

impl Sim {
    /// Cuts the links of a drawn shape, records it, and heals it 100 to
    /// 600 ms later.
    pub(super) fn inject_partition(&mut self) {
        if self.cfg.nodes < 2 {
            return;
        }
        let shape = self.partition_shape();
        self.net.partition(shape.grudge(self.cfg.nodes));
        self.partitions.push(Injected {
            at_us: self.now,
            shape: shape.clone(),
            cut: self.net.grudge().clone(),
        });
        self.history.push(record::nemesis(
            self.now * 1000,
            Kind::Partition.name(),
            "start",
            Some(shape.describe()),
        ));
        let d = self.rng.gen_range(100 * MS..600 * MS);
        self.schedule(
            d,
            Event::Heal {
                what: Heal::Partition,
            },
        );
    }

    /// A split of any size, a bridge, a majorities ring or the leader
    /// isolated, equally likely (only splits below three nodes).
    fn partition_shape(&mut self) -> Partition {
        let n = self.cfg.nodes;
        let nodes: Vec<usize> = (0..n).collect();
        let order = grudge::shuffled(&nodes, &mut self.rng);
        let pick = if n >= 3 { self.rng.gen_range(0..4) } else { 0 };
        match pick {
            0 => Partition::Split {
                cut: self.rng.gen_range(1..n),
                order,
            },
            1 => Partition::Bridge(order),
            2 => Partition::MajoritiesRing(order),
            _ => Partition::IsolateLeader(self.believed_leader() as usize),
        }
    }

    /// The live node leading the highest ballot in phase 2; else the node
    /// the first live node believes leads; else n1.
    fn believed_leader(&self) -> NodeId {
        let live = || {
            self.nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.replica.as_ref().map(|r| (i as NodeId, r)))
        };
        live()
            .filter_map(|(i, r)| r.leading().map(|b| (b, i)))
            .max()
            .map(|(_, i)| i)
            .or_else(|| live().next().map(|(_, r)| r.leader_hint()))
            .unwrap_or(0)
    }
}
