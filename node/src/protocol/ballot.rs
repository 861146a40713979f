//! Ballot numbers and quorums, Sections 5.1 and 6.1.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a node in the cluster configuration: 0 for `n1`, 1 for `n2`, ...
/// Every node is a proposer, an acceptor, a learner and a possible leader.
pub type NodeId = u32;

/// The name of a node as users see it: `n1`, `n2`, ...
/// Ids come from peers too, so the last one must not wrap.
pub fn node_name(id: NodeId) -> String {
    format!("n{}", u64::from(id) + 1)
}

/// A ballot number (Section 5.1): totally ordered `(round, leader, kind)`
/// triples, so every possible leader owns unbounded sets of both fast and
/// classic ballots. `Ballot::ZERO` is fast and belongs to `n1`; every
/// acceptor starts in it having voted `⊥` (Section 5.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub leader: NodeId,
    pub fast: bool,
}

impl Ballot {
    pub const ZERO: Ballot = Ballot {
        round: 0,
        leader: 0,
        fast: true,
    };

    /// `LeaderOf(m)` of appendix C.6.
    pub fn leader_of(self) -> NodeId {
        self.leader
    }

    /// The smallest ballot of the given kind owned by `leader` that is
    /// greater than `self`.
    pub fn next(self, leader: NodeId, fast: bool) -> Ballot {
        let candidate = Ballot {
            round: self.round,
            leader,
            fast,
        };
        if candidate > self {
            candidate
        } else {
            // Peers' rounds are kept below `validate::MAX_ROUND`, so this
            // never saturates in practice; it must not wrap to round 0.
            Ballot {
                round: self.round.saturating_add(1),
                leader,
                fast,
            }
        }
    }
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.fast { 'f' } else { 'c' };
        write!(f, "{}.{}{}", self.round, node_name(self.leader), kind)
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a quorum configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error("a cluster needs at least one acceptor")]
    NoAcceptors,
    #[error("a cluster of {n} nodes: at most {max} are supported (quorums are sets of acceptors in a 32-bit mask)")]
    TooManyAcceptors { n: usize, max: usize },
    #[error("classic quorum {classic} of {n} acceptors: two classic quorums need not intersect (Quorum Assumption 1, Section 5.1)")]
    ClassicTooSmall { n: usize, classic: usize },
    #[error("fast quorum {fast} of {n} acceptors: two fast quorums and a classic quorum of {classic} need not intersect (Quorum Assumption 2, Section 5.1)")]
    FastTooSmall {
        n: usize,
        fast: usize,
        classic: usize,
    },
    #[error("quorum size {size} exceeds the {n} acceptors")]
    TooLarge { n: usize, size: usize },
}

/// Quorum sizes for `n` acceptors. Any set of at least `classic` acceptors
/// is a classic-ballot quorum and any set of at least `fast` acceptors a
/// fast-ballot quorum (Section 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorums {
    pub n: usize,
    pub classic: usize,
    pub fast: usize,
}

impl Quorums {
    /// The sizes of Section 6.1: `⌊N/2⌋+1` and `⌈3N/4⌉`.
    pub fn for_cluster(n: usize) -> Result<Quorums, QuorumError> {
        Quorums::new(n, n / 2 + 1, (3 * n).div_ceil(4))
    }

    /// Checks the Quorum Assumption of Section 5.1 for threshold quorums:
    /// any k-quorum and m-quorum intersect (`2c > n`, `c + f > n`,
    /// `2f > n`), and any two fast quorums and any quorum intersect
    /// (`2f + c > 2n`, `3f > 2n`).
    pub fn new(n: usize, classic: usize, fast: usize) -> Result<Quorums, QuorumError> {
        if n == 0 {
            return Err(QuorumError::NoAcceptors);
        }
        if n > super::validate::MAX_NODES {
            return Err(QuorumError::TooManyAcceptors {
                n,
                max: super::validate::MAX_NODES,
            });
        }
        for size in [classic, fast] {
            if size > n {
                return Err(QuorumError::TooLarge { n, size });
            }
        }
        if 2 * classic <= n {
            return Err(QuorumError::ClassicTooSmall { n, classic });
        }
        if 2 * fast + classic <= 2 * n || 3 * fast <= 2 * n || classic + fast <= n {
            return Err(QuorumError::FastTooSmall { n, fast, classic });
        }
        Ok(Quorums { n, classic, fast })
    }

    /// The size of an m-quorum: `Quorum(m)` depends on the ballot (docs/PAPER.md
    /// trap 3).
    pub fn size(&self, m: Ballot) -> usize {
        if m.fast {
            self.fast
        } else {
            self.classic
        }
    }
}

/// Every `k`-element subset of the set bits of `mask`, as masks: the
/// quorums of a given size among some acceptors.
pub(crate) fn subsets_of(mask: u32, k: usize) -> impl Iterator<Item = u32> {
    let top = if mask == 0 {
        1
    } else {
        1u64 << (32 - mask.leading_zeros())
    };
    (0..top)
        .map(|m| m as u32)
        .filter(move |m| m & !mask == 0 && m.count_ones() as usize == k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_count() {
        assert_eq!(subsets_of(0b11111, 3).count(), 10);
        assert_eq!(subsets_of(0b10111, 3).count(), 4);
        assert_eq!(subsets_of(0b00011, 3).count(), 0);
        assert_eq!(subsets_of(0b10100, 0).collect::<Vec<_>>(), vec![0]);
        assert!(subsets_of(0b10110, 2).all(|m| m & !0b10110 == 0));
    }

    #[test]
    fn section_6_1_sizes() {
        let q = Quorums::for_cluster(5).unwrap();
        assert_eq!((q.classic, q.fast), (3, 4));
        let q = Quorums::for_cluster(3).unwrap();
        assert_eq!((q.classic, q.fast), (2, 3));
        for n in 1..=15 {
            Quorums::for_cluster(n).unwrap();
        }
    }

    #[test]
    fn quorum_assumption_refused() {
        assert!(matches!(
            Quorums::new(5, 2, 4),
            Err(QuorumError::ClassicTooSmall { .. })
        ));
        assert!(matches!(
            Quorums::new(5, 3, 3),
            Err(QuorumError::FastTooSmall { .. })
        ));
        assert!(matches!(
            Quorums::new(5, 3, 6),
            Err(QuorumError::TooLarge { .. })
        ));
        assert!(Quorums::new(4, 3, 3).is_ok());
        assert!(matches!(
            Quorums::new(0, 0, 0),
            Err(QuorumError::NoAcceptors)
        ));
    }

    #[test]
    fn ballots_are_ordered_and_owned() {
        let b = Ballot::ZERO.next(2, false);
        assert!(b > Ballot::ZERO);
        assert_eq!(b.leader_of(), 2);
        let c = b.next(1, true);
        assert!(c > b);
        assert_eq!(c.leader_of(), 1);
        assert!(c.fast);
    }
}
