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
            base: next - recent.len() as u64,
            cmds: recent.into(),
        };
        log.trim();
        log
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
    fn a_resumed_log_starts_where_the_snapshot_ended() {
        let log = LearnedLog::resume(100, vec![cmd(98), cmd(99)]);
        assert_eq!((log.base(), log.len()), (98, 100));
        assert_eq!(log.tail(1), vec![cmd(99)]);
        assert_eq!(log.range(99, 5).unwrap(), vec![cmd(99)]);
    }
}
