//! Client sessions: exactly-once delivery with state bounded by the number
//! of active clients, not by the number of commands ever run (as Raft's
//! client sessions, Ongaro's thesis §6.3).
//!
//! A command id is `(client, seq)`; a client numbers its commands 1, 2, 3
//! ... in order. A retried command keeps its id, and Section 6.3 lets a
//! retry be chosen again in a later instance, so a learner must recognise
//! an id it already handed out. Per client it keeps a watermark `below`
//! (every seq under it is done: handed out, or given up by its client) and
//! the few seqs at or above it that were handed out.
//!
//! Every learner must make the same decisions, but commands of one client
//! on different keys commute, so learners may hand them out in different
//! orders within an instance. The decisions are therefore order-independent
//! within an instance: whether an id is new depends only on the session as
//! it stood when the instance opened plus the ids of this instance, each of
//! which appears once (histories have no duplicates). Everything that is
//! not a set operation (expiring idle sessions, closing gaps) happens when
//! an instance closes, at the checkpoint, which every learner hands out at
//! the same point.

use super::message::Instance;
use super::planted::{planted, Planted};
use crate::command::CmdId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A session keeps at most this many handed-out seqs above its watermark;
/// beyond that, at an instance's close, the oldest gap is given up (the
/// commands in it were abandoned by their client and now never apply).
pub const MAX_ABOVE: usize = 64;

/// One client's exactly-once state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Every seq below this is done.
    pub below: u64,
    /// Seqs at or above `below` that were handed out.
    pub above: BTreeSet<u64>,
    /// The instance in which the session last handed out a command.
    pub active: Instance,
}

impl Session {
    fn done(&self, seq: u64) -> bool {
        seq < self.below || self.above.contains(&seq)
    }

    fn done_planted(&self, seq: u64, planted: Planted) -> bool {
        // The planted bug: a retry of the latest contiguous command is not
        // recognised, so it runs twice.
        if planted!(planted, SessionOffByOne) {
            seq + 1 < self.below || self.above.contains(&seq)
        } else {
            self.done(seq)
        }
    }

    fn advance(&mut self) {
        while self.above.remove(&self.below) {
            self.below += 1;
        }
    }
}

/// What a node knows of a command id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdStatus {
    /// Already handed out (or given up): a retry must not run again.
    Done,
    /// Not handed out yet (or its session expired).
    New,
}

/// Every client's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    clients: BTreeMap<u64, Session>,
}

impl Sessions {
    /// The status of `id`, for a node deciding whether to propose a
    /// client's command or answer it from its reply cache.
    // `Planted` is `()` in builds without planted bugs.
    #[allow(clippy::unit_arg)]
    pub fn status(&self, id: CmdId) -> IdStatus {
        self.status_planted(id, Planted::default())
    }

    /// [`Sessions::status`], with the planted off-by-one if it is on.
    pub fn status_planted(&self, id: CmdId, planted: Planted) -> IdStatus {
        match self.clients.get(&id.client) {
            Some(s) if s.done_planted(id.seq, planted) => IdStatus::Done,
            _ => IdStatus::New,
        }
    }

    /// A learner hands out `id`, learned in `instance`, iff this returns
    /// true. A client without a session gets one at any seq: learners must
    /// agree, and a client's first commands may be handed out in either
    /// order. So a retry delayed past its session's expiry would run again;
    /// sessions expire only after many idle instances, long after any
    /// client gave up on the command and its proposer dropped it.
    pub fn admit(&mut self, id: CmdId, instance: Instance, planted: Planted) -> bool {
        let s = self.clients.entry(id.client).or_insert_with(|| Session {
            below: 1,
            ..Session::default()
        });
        let done = s.done_planted(id.seq, planted);
        s.active = s.active.max(instance);
        if done {
            return false;
        }
        s.above.insert(id.seq);
        s.advance();
        true
    }

    /// Instance `closed` was handed out whole: expire sessions idle for
    /// more than `idle` instances and close gaps too wide to keep.
    pub fn close_instance(&mut self, closed: Instance, idle: u64) {
        if idle > 0 {
            self.clients
                .retain(|_, s| s.active.saturating_add(idle) >= closed);
        }
        for s in self.clients.values_mut() {
            while s.above.len() > MAX_ABOVE {
                let first = *s.above.first().expect("non-empty");
                s.below = first;
                s.advance();
            }
        }
    }

    /// Whether `client` has a session.
    pub fn has(&self, client: u64) -> bool {
        self.clients.contains_key(&client)
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client: u64, seq: u64) -> CmdId {
        CmdId { client, seq }
    }

    #[allow(clippy::unit_arg)]
    fn admit(s: &mut Sessions, client: u64, seq: u64) -> bool {
        s.admit(id(client, seq), 0, Planted::default())
    }

    #[test]
    fn a_retry_is_refused_and_state_stays_small() {
        let mut s = Sessions::default();
        for seq in 1..=10_000 {
            assert!(admit(&mut s, 7, seq));
            assert!(!admit(&mut s, 7, seq), "retry of {seq}");
        }
        let session = &s.clients[&7];
        assert_eq!((session.below, session.above.len()), (10_001, 0));
        assert_eq!(s.status(id(7, 9_999)), IdStatus::Done);
        assert_eq!(s.status(id(7, 10_001)), IdStatus::New);
    }

    #[test]
    fn decisions_within_an_instance_do_not_depend_on_order() {
        let ids = [id(1, 3), id(1, 1), id(2, 5), id(1, 2), id(2, 4)];
        let mut a = Sessions::default();
        let mut b = Sessions::default();
        let fwd: Vec<bool> = ids
            .iter()
            .map(|&i| a.admit(i, 0, Default::default()))
            .collect();
        let rev: Vec<bool> = ids
            .iter()
            .rev()
            .map(|&i| b.admit(i, 0, Default::default()))
            .collect();
        let rev: Vec<bool> = rev.into_iter().rev().collect();
        assert_eq!(fwd, rev);
        a.close_instance(1, 10);
        b.close_instance(1, 10);
        assert_eq!(a, b);
    }

    #[test]
    fn idle_sessions_expire() {
        let mut s = Sessions::default();
        assert!(s.admit(id(1, 1), 3, Default::default()));
        assert!(s.admit(id(2, 1), 9, Default::default()));
        assert_eq!(s.status(id(1, 1)), IdStatus::Done);
        s.close_instance(10, 5);
        assert!(!s.has(1) && s.has(2));
        assert_eq!(s.len(), 1);
        assert_eq!(s.status(id(1, 1)), IdStatus::New);
    }

    #[test]
    fn a_gap_left_by_an_abandoned_command_is_closed() {
        let mut s = Sessions::default();
        assert!(admit(&mut s, 1, 1));
        // Seq 2 was abandoned; 3.. go on.
        for seq in 3..3 + MAX_ABOVE as u64 + 5 {
            assert!(admit(&mut s, 1, seq));
        }
        s.close_instance(1, 0);
        let session = &s.clients[&1];
        assert!(session.above.len() <= MAX_ABOVE);
        assert!(!admit(&mut s, 1, 2), "a command given up never applies");
    }
}
