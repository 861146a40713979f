//! What a replica refuses from a peer before anything changes.
//!
//! Peers are authenticated (mutual TLS), so every message comes from a
//! holder of a node certificate, and the transport's framing bounds its
//! size. What it says is still unchecked: a single well-formed message
//! could claim to come from another node, move ballots to the end of their
//! range, or name an instance so far ahead that acting on it allocates in
//! proportion to the number. [`check`] refuses such a message whole; the
//! replica counts it and drops it. Refusing is safe for Paxos: it is the
//! same as losing the message.
//!
//! The windows are far wider than anything a correct cluster sends: ballot
//! rounds grow by one per election, and the instances in flight lie a few
//! checkpoints above the ones a node has closed. A node behind by more
//! than the window refuses the far votes it could not use anyway and
//! catches up by sync and state transfer, which carry no such numbers.

use super::ballot::{node_name, Ballot, NodeId};
use super::message::{Instance, Message};

/// How many rounds above the highest ballot this node has seen a message's
/// ballot may be. Rounds then stay far below `u64::MAX`, so `round + 1`
/// never wraps.
pub const ROUND_WINDOW: u64 = 1 << 20;

/// No ballot round above this is taken, however high the rounds seen:
/// `round + 1` stays far from wrapping even after many windows' climb.
pub const MAX_ROUND: u64 = u64::MAX >> 1;

/// How many instances above the first one this node has not closed a
/// message may name.
pub const INSTANCE_WINDOW: u64 = 1 << 12;

/// The largest cluster: quorums are sets of acceptors held in a `u32` mask,
/// and `1 << n` must not overflow it.
pub const MAX_NODES: usize = 31;

/// What the receiving replica knows, against which a message is judged.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub n: usize,
    /// The highest ballot this node has seen or joined.
    pub max_seen: Ballot,
    /// The first instance this node has neither closed nor forgotten.
    pub next: Instance,
}

impl Window {
    fn ballot(&self, bal: Ballot) -> Result<(), String> {
        if bal.leader as usize >= self.n {
            return Err(format!("ballot {bal:?} names a leader outside the cluster"));
        }
        let limit = self.max_seen.round.saturating_add(ROUND_WINDOW);
        if bal.round > MAX_ROUND {
            return Err(format!("ballot round {} is above {MAX_ROUND}", bal.round));
        }
        if bal.round > limit {
            return Err(format!(
                "ballot round {} is more than {ROUND_WINDOW} above the highest seen ({})",
                bal.round, self.max_seen.round
            ));
        }
        Ok(())
    }

    fn instance(&self, i: Instance) -> Result<(), String> {
        let limit = self.next.saturating_add(INSTANCE_WINDOW);
        if i > limit {
            return Err(format!(
                "instance {i} is more than {INSTANCE_WINDOW} above the first open one ({})",
                self.next
            ));
        }
        Ok(())
    }

    fn acceptor(&self, from: NodeId, acc: NodeId) -> Result<(), String> {
        if acc != from {
            return Err(format!(
                "sent by {} but claims to be acceptor {}",
                node_name(from),
                node_name(acc)
            ));
        }
        Ok(())
    }

    fn leader(&self, from: NodeId, bal: Ballot) -> Result<(), String> {
        self.ballot(bal)?;
        if bal.leader != from {
            return Err(format!(
                "sent by {} but claims to lead ballot {bal:?}",
                node_name(from)
            ));
        }
        Ok(())
    }
}

/// Why a message from `from` must be refused, or `Ok` to take it.
pub fn check(w: &Window, from: NodeId, msg: &Message) -> Result<(), String> {
    if from as usize >= w.n {
        return Err(format!("sender {} is outside the cluster", node_name(from)));
    }
    match msg {
        Message::Propose { .. } => Ok(()),
        Message::Phase1a { bal } => w.leader(from, *bal),
        Message::Phase1b {
            bal,
            acc,
            from: first,
            votes,
            rests,
        } => {
            w.acceptor(from, *acc)?;
            w.ballot(*bal)?;
            w.instance(*first)?;
            increasing(votes.iter().map(|v| v.instance), *first, "1b votes")?;
            increasing(rests.iter().map(|r| r.0), *first, "1b rests")?;
            if rests.first().map(|r| r.0) != Some(*first) {
                return Err("1b rests do not start at its first instance".into());
            }
            for v in votes {
                w.ballot(v.vbal)?;
                w.instance(v.instance)?;
            }
            for &(i, b) in rests {
                w.ballot(b)?;
                w.instance(i)?;
            }
            Ok(())
        }
        Message::Preempted { bal, mbal } => {
            w.ballot(*bal)?;
            w.ballot(*mbal)
        }
        Message::Phase2Start {
            bal,
            values,
            rest_from,
        } => {
            w.leader(from, *bal)?;
            w.instance(*rest_from)?;
            increasing(values.iter().map(|s| s.instance), 0, "2a suggestions")?;
            if values.last().is_some_and(|s| s.instance > *rest_from) {
                return Err("a 2a suggestion lies above the ballot's rest".into());
            }
            Ok(())
        }
        Message::Phase2a { bal, instance, .. } => {
            w.leader(from, *bal)?;
            w.instance(*instance)
        }
        Message::Phase2b {
            bal, acc, instance, ..
        }
        | Message::Phase2bIds {
            bal, acc, instance, ..
        } => {
            w.acceptor(from, *acc)?;
            w.ballot(*bal)?;
            w.instance(*instance)
        }
        Message::Close {
            bal,
            instance,
            ckpt,
            ..
        } => {
            w.leader(from, *bal)?;
            if !bal.fast {
                return Err("a close in a classic ballot".into());
            }
            if !ckpt.is_checkpoint() {
                return Err("a close whose checkpoint is another command".into());
            }
            w.instance(*instance)
        }
        Message::Closing { bal, instance } => {
            w.leader(from, *bal)?;
            if !bal.fast {
                return Err("a closing in a classic ballot".into());
            }
            w.instance(*instance)
        }
        Message::ClosingAck { bal, acc, instance } => {
            w.acceptor(from, *acc)?;
            w.ballot(*bal)?;
            w.instance(*instance)
        }
        Message::Resend { bal, instance, .. } => {
            w.ballot(*bal)?;
            w.instance(*instance)
        }
        Message::Sync { instance, have } => {
            w.instance(*instance)?;
            if have.len() > w.n {
                return Err(format!("a sync lists {} acceptors", have.len()));
            }
            for (acc, bal, _) in have {
                if *acc as usize >= w.n {
                    return Err(format!("a sync names acceptor {}", node_name(*acc)));
                }
                w.ballot(*bal)?;
            }
            Ok(())
        }
        Message::Chosen { instance, .. } => w.instance(*instance),
        // A snapshot covers instances far ahead of a node that is behind;
        // the transfer bounds what it holds by bytes, not by instances.
        Message::SnapshotOffer { .. }
        | Message::SnapshotFetch { .. }
        | Message::SnapshotChunk { .. } => Ok(()),
        // A hint of how far a peer has learned allocates nothing; the
        // learner takes it only as far as the window reaches.
        Message::Heartbeat { bal, .. } => w.leader(from, *bal),
        Message::HeartbeatAck { acc, mbal, .. } => {
            w.acceptor(from, *acc)?;
            w.ballot(*mbal)
        }
    }
}

/// Checks that `items` increase strictly and start at `first` or above.
fn increasing(
    items: impl Iterator<Item = Instance>,
    first: Instance,
    what: &str,
) -> Result<(), String> {
    let mut below = None;
    for i in items {
        if i < first || below.is_some_and(|b| i <= b) {
            return Err(format!("{what} are not in increasing order from {first}"));
        }
        below = Some(i);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `fuzz/run replica_messages` found in CI: naming the leader of
    /// a ballot with the last id overflowed while explaining the refusal.
    #[test]
    fn the_last_node_id_is_named_without_wrapping() {
        let w = Window {
            n: 5,
            max_seen: Ballot::ZERO,
            next: 0,
        };
        let bal = Ballot {
            round: 1,
            leader: NodeId::MAX,
            fast: false,
        };
        let err = check(&w, 1, &Message::Phase1a { bal }).unwrap_err();
        assert!(err.contains("n4294967296"), "{err}");
        let err = check(
            &w,
            1,
            &Message::HeartbeatAck {
                acc: NodeId::MAX,
                mbal: Ballot::ZERO,
                closed_below: 0,
            },
        )
        .unwrap_err();
        assert!(err.contains("acceptor n4294967296"), "{err}");
    }
}
