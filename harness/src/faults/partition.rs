//! Partition shapes: what a partition fault cuts, named once for every
//! backend. The local, docker and ssh nemesis draws one with
//! [`Partition::draw`]; the simulator draws its own mix (it keeps splits of
//! any size) from the same shapes. Each shape knows its grudge, its name
//! and its description for the history.

use super::grudge::{self, Grudge};
use gpaxos_node::protocol::node_name;
use rand::Rng;

/// A partition's shape, with the node order that fixes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// The first half of the nodes, by number, against the rest.
    Halves,
    /// Halves of the nodes taken in this (random) order.
    RandomHalves(Vec<usize>),
    /// The nodes in this order cut at `cut`: two sides of any sizes.
    Split { order: Vec<usize>, cut: usize },
    /// The nodes on a ring in this order, each hearing a majority and no
    /// two the same one.
    MajoritiesRing(Vec<usize>),
    /// One node against the rest.
    Isolate(usize),
    /// The node believed to lead against the rest.
    IsolateLeader(usize),
    /// Two halves that meet only in one node (this order's middle one).
    Bridge(Vec<usize>),
}

impl Partition {
    /// The shapes' names, as [`Partition::name`] gives them.
    pub const NAMES: [&'static str; 7] = [
        "halves",
        "random-halves",
        "split",
        "majorities-ring",
        "isolate",
        "isolate-leader",
        "bridge",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Partition::Halves => "halves",
            Partition::RandomHalves(_) => "random-halves",
            Partition::Split { .. } => "split",
            Partition::MajoritiesRing(_) => "majorities-ring",
            Partition::Isolate(_) => "isolate",
            Partition::IsolateLeader(_) => "isolate-leader",
            Partition::Bridge(_) => "bridge",
        }
    }

    /// The directed links this shape cuts in a cluster of `n` nodes.
    pub fn grudge(&self, n: usize) -> Grudge {
        let nodes: Vec<usize> = (0..n).collect();
        match self {
            Partition::Halves => grudge::halves(&nodes),
            Partition::RandomHalves(order) => grudge::halves(order),
            Partition::Split { order, cut } => {
                let (a, b) = order.split_at((*cut).min(order.len()));
                grudge::complete(&[a.to_vec(), b.to_vec()])
            }
            Partition::MajoritiesRing(order) => grudge::majorities_ring(order),
            Partition::Isolate(v) | Partition::IsolateLeader(v) => grudge::isolate(&nodes, *v),
            Partition::Bridge(order) => grudge::bridge(order),
        }
    }

    /// What the history records: the shape's name and the nodes it
    /// involves, by node name.
    pub fn describe(&self) -> String {
        let names = |v: &[usize]| v.iter().map(|&i| name(i)).collect::<Vec<_>>().join(",");
        match self {
            Partition::Halves => "halves".to_owned(),
            Partition::RandomHalves(order) => {
                let (a, b) = grudge::split(order);
                format!("random-halves {} | {}", names(&a), names(&b))
            }
            Partition::Split { order, cut } => {
                let (a, b) = order.split_at((*cut).min(order.len()));
                format!("split {} | {}", names(a), names(b))
            }
            Partition::MajoritiesRing(order) => {
                let ring: Vec<String> = order.iter().map(|&i| name(i)).collect();
                format!("majorities-ring {}", ring.join("-"))
            }
            Partition::Isolate(v) => format!("isolate {}", name(*v)),
            Partition::IsolateLeader(v) => format!("isolate-leader {}", name(*v)),
            Partition::Bridge(order) => {
                let (a, b) = grudge::split(order);
                let bridge = b.first().map_or(String::new(), |&x| name(x));
                let rest = b.get(1..).unwrap_or_default();
                format!("bridge {} - {bridge} - {}", names(&a), names(rest))
            }
        }
    }

    /// Jepsen's six shapes, equally likely, for `n` nodes; isolate-leader
    /// takes `leader` (node 0 if nobody is known to lead).
    pub fn draw(n: usize, leader: Option<usize>, rng: &mut impl Rng) -> Partition {
        let nodes: Vec<usize> = (0..n).collect();
        let order = grudge::shuffled(&nodes, rng);
        match rng.gen_range(0..6) {
            0 => Partition::Halves,
            1 => Partition::RandomHalves(order),
            2 => Partition::MajoritiesRing(order),
            3 => Partition::Isolate(rng.gen_range(0..n)),
            4 => Partition::IsolateLeader(leader.unwrap_or(0)),
            _ => Partition::Bridge(order),
        }
    }
}

fn name(i: usize) -> String {
    node_name(i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn every_drawn_shape_is_named_and_cuts_something() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let p = Partition::draw(5, Some(3), &mut rng);
            assert!(Partition::NAMES.contains(&p.name()));
            assert!(p.describe().starts_with(p.name()), "{}", p.describe());
            assert!(!p.grudge(5).is_empty(), "{p:?} cuts nothing");
            seen.insert(p.name());
        }
        assert_eq!(seen.len(), 6, "Jepsen's six shapes: {seen:?}");
    }

    #[test]
    fn isolate_leader_cuts_exactly_the_leaders_links() {
        let g = Partition::IsolateLeader(2).grudge(4);
        let want: Grudge = [0, 1, 3].iter().flat_map(|&j| [(2, j), (j, 2)]).collect();
        assert_eq!(g, want);
        assert_eq!(Partition::IsolateLeader(2).describe(), "isolate-leader n3");
    }

    #[test]
    fn a_split_cuts_between_its_sides_only() {
        let p = Partition::Split {
            order: vec![4, 0, 1, 2, 3],
            cut: 1,
        };
        assert_eq!(p.grudge(5), grudge::isolate(&[0, 1, 2, 3, 4], 4));
        assert_eq!(p.describe(), "split n5 | n1,n2,n3,n4");
    }
}
