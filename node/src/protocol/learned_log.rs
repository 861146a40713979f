//! The tail of a node's learned sequence, kept for observers (the harness's
//! `learned --from N`). Positions count every command the node ever
//! learned; only the last [`LearnedLog::KEPT`] are held, so memory stays
//! bounded however long the node runs.

use crate::command::Command;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct LearnedLog {
    /// The position of `cmds[0]`.
    base: u64,
    cmds: VecDeque<Command>,
    /// How many times a snapshot from a peer rewrote the sequence, and the
    /// lowest position the last one changed: an observer that read past it
    /// must read again from there.
    rewrites: u64,
    rewritten_at: u64,
}

/// A request for positions that are no longer held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("positions below {base} of the learned sequence were compacted away (asked from {from})")]
pub struct Compacted {
    pub from: u64,
    pub base: u64,
}

impl LearnedLog {
    /// How many of the latest learned commands are held.
    pub const KEPT: usize = 1 << 16;

    /// A log whose held part is `recent`, ending just before `next`.
    pub fn resume(next: u64, recent: Vec<Command>) -> LearnedLog {
        let mut log = LearnedLog {
            base: next.saturating_sub(recent.len() as u64),
            cmds: recent.into(),
            ..LearnedLog::default()
        };
        log.trim();
        log
    }

    /// A snapshot from a peer replaces the sequence from `at` on (where
    /// this node's partly handed-out instance starts; every learner's
    /// sequence holds the same commands below it) with the peer's, which
    /// ends at `end` with `recent`. Where the peer's tail does not reach
    /// back to `at`, the positions before it are compacted away.
    pub fn splice(&mut self, at: u64, end: u64, recent: Vec<Command>) {
        let start = end.saturating_sub(recent.len() as u64);
        let rewrites = self.rewrites + 1;
        if start <= at && self.base <= at && at <= self.len() && at <= end {
            self.cmds.truncate((at - self.base) as usize);
            self.cmds
                .extend(recent.into_iter().skip((at - start) as usize));
            self.rewritten_at = at;
        } else {
            *self = LearnedLog::resume(end, recent);
            self.rewritten_at = self.base;
        }
        self.rewrites = rewrites;
        self.trim();
    }

    /// How many rewrites [`LearnedLog::splice`] made, and the lowest
    /// position the last one changed.
    pub fn rewrites(&self) -> (u64, u64) {
        (self.rewrites, self.rewritten_at)
    }

    /// Every command ever learned: the next position.
    pub fn len(&self) -> u64 {
        self.base + self.cmds.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first position still held.
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn push(&mut self, cmd: Command) {
        self.cmds.push_back(cmd);
        self.trim();
    }

    fn trim(&mut self) {
        while self.cmds.len() > Self::KEPT {
            self.cmds.pop_front();
            self.base += 1;
        }
    }

    /// Up to `max` commands from position `from` on (none past the end).
    pub fn range(&self, from: u64, max: usize) -> Result<Vec<Command>, Compacted> {
        if from < self.base {
            return Err(Compacted {
                from,
                base: self.base,
            });
        }
        let start = (from - self.base).min(self.cmds.len() as u64) as usize;
        Ok(self.cmds.range(start..).take(max).cloned().collect())
    }

    /// The last `n` commands (fewer if fewer are held).
    pub fn tail(&self, n: usize) -> Vec<Command> {
        let skip = self.cmds.len().saturating_sub(n);
        self.cmds.range(skip..).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Op;

    fn cmd(seq: u64) -> Command {
        Command::new(1, seq, Op::Get { key: "k".into() })
    }

    #[test]
    fn only_the_latest_are_kept_and_positions_go_on() {
        let mut log = LearnedLog::default();
        for i in 0..LearnedLog::KEPT as u64 + 10 {
            log.push(cmd(i));
        }
        assert_eq!(log.len(), LearnedLog::KEPT as u64 + 10);
        assert_eq!(log.base(), 10);
        assert_eq!(log.range(10, 1).unwrap(), vec![cmd(10)]);
        assert_eq!(log.range(9, 1), Err(Compacted { from: 9, base: 10 }));
        assert!(log.range(log.len() + 5, 3).unwrap().is_empty());
    }

    #[test]
    fn a_splice_keeps_the_closed_instances_and_takes_the_peers_rest() {
        let mut log = LearnedLog::default();
        for i in 0..10 {
            log.push(cmd(i));
        }
        // The peer's sequence from 6 on differs in order (one instance's
        // commuting commands) and goes on to 14.
        let recent: Vec<Command> = [3, 4, 5, 7, 6, 8, 9, 10, 11, 12, 13].map(cmd).into();
        log.splice(6, 14, recent);
        assert_eq!(log.len(), 14);
        assert_eq!(log.range(5, 3).unwrap(), vec![cmd(5), cmd(7), cmd(6)]);
        assert_eq!(log.rewrites(), (1, 6));
        // A peer far ahead: the positions in between are compacted away.
        log.splice(12, 100, vec![cmd(98), cmd(99)]);
        assert_eq!((log.base(), log.len()), (98, 100));
        assert_eq!(log.rewrites(), (2, 98));
    }

    #[test]
    fn a_resumed_log_starts_where_the_snapshot_ended() {
        let log = LearnedLog::resume(100, vec![cmd(98), cmd(99)]);
        assert_eq!((log.base(), log.len()), (98, 100));
        assert_eq!(log.tail(1), vec![cmd(99)]);
        assert_eq!(log.range(99, 5).unwrap(), vec![cmd(99)]);
    }
}
