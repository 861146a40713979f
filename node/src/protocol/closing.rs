//! An acceptor's side of closing an instance in a fast ballot.
//!
//! The leader announces that it will close the open instance (`Closing`);
//! from then on this acceptor votes into it only commands some acceptor
//! already voted there (so every acceptor ends up with the same ones) and
//! holds the others back for the next instance. Its answer (`ClosingAck`)
//! travels behind every vote it sent before, so once the leader has every
//! live acceptor's answer it has seen every command any of them put in the
//! instance, and it closes the instance after exactly those (`Close`).
//! Without this, proposals sent before the proposers' fence reached the
//! acceptors around the checkpoint, some before it and some after, and
//! each such command collided with it, and again in the next instance
//! (issue 13).
//!
//! Holding a vote back is always allowed (an acceptor may vote later), so
//! safety never depends on this. A gate is lowered when the instance
//! closes or the ballot changes (the leader closes the instance after
//! `fence::MAX_HOLD_TICKS` at the latest, and resends its `Close`), and
//! after four such holds whatever happens; lowering it earlier would vote
//! the held commands into the instance the leader is about to close.

use super::ballot::Ballot;
use super::fence::MAX_HOLD_TICKS;
use super::message::Instance;
use crate::command::{CmdId, Command};

/// Commands held back at most; beyond that they are voted as usual.
const MAX_HELD: usize = 4096;

#[derive(Debug, Default)]
pub struct Closing {
    /// The ballot and instance being closed, and since when.
    gate: Option<(Ballot, Instance, u64)>,
    held: Vec<Command>,
}

impl Closing {
    pub fn raise(&mut self, bal: Ballot, instance: Instance, now: u64) {
        if self.gate.map(|(b, i, _)| (b, i)) != Some((bal, instance)) {
            self.gate = Some((bal, instance, now));
        }
    }

    /// The instance closing in ballot `bal`, if any.
    pub fn gate(&self, bal: Ballot) -> Option<Instance> {
        self.gate.filter(|g| g.0 == bal).map(|g| g.1)
    }

    /// Holds `cmd` back for the next instance; `Err` if too many are.
    pub fn hold(&mut self, cmd: Command) -> Result<(), Command> {
        if self.held.len() >= MAX_HELD {
            return Err(cmd);
        }
        if !self.held.iter().any(|c| c.id == cmd.id) {
            self.held.push(cmd);
        }
        Ok(())
    }

    /// The held commands that `voted` says another acceptor voted into the
    /// closing instance: this one may vote them there too.
    pub fn release(&mut self, mut voted: impl FnMut(&CmdId) -> bool) -> Vec<Command> {
        let (go, keep) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|c| voted(&c.id));
        self.held = keep;
        go
    }

    /// Lowers the gate; the held commands are to be voted now (into the
    /// next instance).
    pub fn lower(&mut self) -> Vec<Command> {
        self.gate = None;
        std::mem::take(&mut self.held)
    }

    /// Whether the gate should come down: the acceptor left `(bal,
    /// instance)` or it has been up for the longest hold.
    pub fn stale(&self, bal: Ballot, open: Option<Instance>, now: u64) -> bool {
        self.gate.is_some_and(|(b, i, since)| {
            b != bal || open != Some(i) || now >= since + 4 * MAX_HOLD_TICKS
        }) || (self.gate.is_none() && !self.held.is_empty())
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Op;

    fn put(seq: u64) -> Command {
        Command::new(
            1,
            seq,
            Op::Put {
                key: format!("k{seq}"),
                value: "v".into(),
            },
        )
    }

    #[test]
    fn holds_until_voted_elsewhere_or_lowered() {
        let bal = Ballot::ZERO;
        let mut c = Closing::default();
        c.raise(bal, 4, 10);
        assert_eq!(c.gate(bal), Some(4));
        c.hold(put(1)).unwrap();
        c.hold(put(2)).unwrap();
        assert_eq!(c.release(|id| *id == put(2).id), vec![put(2)]);
        assert!(!c.stale(bal, Some(4), 11));
        assert!(c.stale(bal, Some(5), 11), "the instance closed");
        assert!(
            !c.stale(bal, Some(4), 10 + MAX_HOLD_TICKS),
            "until it closes"
        );
        assert!(
            c.stale(bal, Some(4), 10 + 4 * MAX_HOLD_TICKS),
            "held too long"
        );
        assert_eq!(c.lower(), vec![put(1)]);
        assert_eq!(c.gate(bal), None);
        assert!(!c.stale(bal, Some(4), 11));
    }
}
