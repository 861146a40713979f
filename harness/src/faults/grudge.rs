//! Grudges in Jepsen's manner, over node indices: the directed links a
//! partition cuts. The order of `nodes` matters (which half, which ring);
//! shuffle it first for random ones.

use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeSet;

/// Directed links `(from, to)` whose packets are all dropped, in both
/// directions of the link's connection: with `(j, i)` cut, node `i` hears
/// nothing from node `j`. A partition between `i` and `j` holds both
/// `(i, j)` and `(j, i)`.
pub type Grudge = BTreeSet<(usize, usize)>;

/// Every node hears only the nodes of its own component: every link
/// between two components is cut, both ways. Nodes in no component
/// keep all their links.
pub fn complete(components: &[Vec<usize>]) -> Grudge {
    let mut g = Grudge::new();
    for (a, ca) in components.iter().enumerate() {
        for (b, cb) in components.iter().enumerate() {
            if a != b {
                for &x in ca {
                    for &y in cb {
                        if x != y {
                            g.insert((x, y));
                        }
                    }
                }
            }
        }
    }
    g
}

/// `nodes` split in two, the smaller half first: the halves' lists.
pub fn split(nodes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (a, b) = nodes.split_at(nodes.len() / 2);
    (a.to_vec(), b.to_vec())
}

/// The first `len / 2` nodes against the rest.
pub fn halves(nodes: &[usize]) -> Grudge {
    let (a, b) = split(nodes);
    complete(&[a, b])
}

/// [`halves`] of the nodes in a random order.
pub fn random_halves(nodes: &[usize], rng: &mut impl Rng) -> Grudge {
    halves(&shuffled(nodes, rng))
}

/// `node` alone against the rest.
pub fn isolate(nodes: &[usize], node: usize) -> Grudge {
    let rest = nodes.iter().copied().filter(|&x| x != node).collect();
    complete(&[vec![node], rest])
}

/// [`halves`], except that the first node of the larger half keeps its
/// links to everyone: it bridges two components that each hold it.
pub fn bridge(nodes: &[usize]) -> Grudge {
    let (a, b) = split(nodes);
    let Some(&bridge) = b.first() else {
        return Grudge::new();
    };
    complete(&[a, b])
        .into_iter()
        .filter(|&(x, y)| x != bridge && y != bridge)
        .collect()
}

/// Each node hears a majority (itself counted), and no two nodes hear
/// the same one: the nodes sit on a ring in the order of `nodes`, and
/// each keeps the links to its neighbours within distance
/// `majority / 2`, both ways. With three nodes no such symmetric cut
/// exists, so each node hears only itself and its successor (links
/// cut one way).
pub fn majorities_ring(nodes: &[usize]) -> Grudge {
    let n = nodes.len();
    let mut g = Grudge::new();
    if n < 3 {
        return g;
    }
    if n == 3 {
        // Node k hears k+1 but not k+2: cut the link k+2 -> k.
        for k in 0..3 {
            g.insert((nodes[(k + 2) % 3], nodes[k]));
        }
        return g;
    }
    let majority = n / 2 + 1;
    let reach = majority / 2;
    for a in 0..n {
        for b in 0..n {
            let d = a.abs_diff(b);
            if d.min(n - d) > reach {
                g.insert((nodes[a], nodes[b]));
            }
        }
    }
    g
}

/// The nodes that node `i` hears under `g`: those whose link to `i` is
/// not cut, itself included.
pub fn hears(g: &Grudge, nodes: &[usize], i: usize) -> Vec<usize> {
    nodes
        .iter()
        .copied()
        .filter(|&j| j == i || !g.contains(&(j, i)))
        .collect()
}

/// `nodes` in a random order: a random ring or split.
pub fn shuffled(nodes: &[usize], rng: &mut impl Rng) -> Vec<usize> {
    let mut v = nodes.to_vec();
    v.shuffle(rng);
    v
}
