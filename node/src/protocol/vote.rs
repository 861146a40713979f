//! A c-struct built by appends within one ballot, kept with the order of its
//! appends so it can be sent as deltas (Section 6.3).

use super::ballot::Ballot;
use crate::command::Command;
use crate::cstruct::CStruct;

/// `val = ⊥ • log` in ballot `bal`. Within a ballot a vote or suggestion only
/// grows, so `log[..n]` is a valid earlier state for every `n` and a receiver
/// holding `log[..base]` can apply `log[base..]`.
#[derive(Clone, Debug)]
pub struct VoteLog<C> {
    pub bal: Ballot,
    pub val: C,
    pub log: Vec<Command>,
}

impl<C: CStruct> VoteLog<C> {
    pub fn bottom(bal: Ballot) -> Self {
        VoteLog {
            bal,
            val: C::bottom(),
            log: Vec::new(),
        }
    }

    pub fn from_commands(bal: Ballot, cmds: &[Command]) -> Self {
        let mut v = VoteLog::bottom(bal);
        for c in cmds {
            v.append(c);
        }
        v
    }

    /// `val • C`; returns whether the c-struct changed (appending a command
    /// already present, or anything to a closed c-struct, is a no-op).
    pub fn append(&mut self, cmd: &Command) -> bool {
        if self.val.is_closed() || self.val.contains(&cmd.id) {
            return false;
        }
        self.val.append(cmd);
        self.log.push(cmd.clone());
        true
    }

    pub fn len(&self) -> u32 {
        self.log.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Applies a delta `cmds` that starts at position `base` of the sender's
    /// log. Returns `Err(have)` when part of the delta is missing.
    pub fn apply_delta(&mut self, base: u32, cmds: &[Command]) -> Result<(), u32> {
        let have = self.len();
        if base > have {
            return Err(have);
        }
        let skip = (have - base) as usize;
        for c in cmds.iter().skip(skip) {
            self.append(c);
        }
        Ok(())
    }
}
