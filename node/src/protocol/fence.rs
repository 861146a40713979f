//! Holding proposals back while a checkpoint closes an instance.
//!
//! A checkpoint interferes with every command (Section 6.3), so a command
//! that reaches some acceptors before the checkpoint and others after it
//! leaves them with incompatible votes: a collision, and a recovery ballot
//! (Section 6.1) for every command that raced it. Under load hundreds of
//! commands are in flight at any moment, and most of them raced some
//! checkpoint (43% of commands on the fast path at 500 clients, issue 13).
//!
//! So once the open instance holds `checkpoint_every` commands, every
//! proposer holds its new proposals until the instance closes, and the
//! leader announces the closing (`Closing`; the acceptors' side is in
//! `closing`). It closes the instance (`Close`) once every live acceptor
//! answered and the instance is quiet (every command any acceptor voted
//! for is learned), after the commands it learned there, which every
//! acceptor appends before the checkpoint.
//!
//! This is scheduling only: safety never depends on it. A proposal sent
//! regardless (a proposer that had not yet seen the instance fill up)
//! collides as before and is recovered as before, and a fence is lifted
//! after `MAX_HOLD_TICKS` whatever happens, so a leader that dies with the
//! fence up holds no one back for long.

use super::message::Instance;

/// Ticks after which a fence is lifted even if the instance did not close.
pub const MAX_HOLD_TICKS: u64 = 10;

#[derive(Debug, Default)]
pub struct Fence {
    /// The instance the fence holds proposals back for, and since when.
    raised: Option<(Instance, u64)>,
    /// The instance whose closing the leader announced (`Closing`), when,
    /// and the acceptors that answered (a bit each).
    announced: Option<(Instance, u64)>,
    acked: u64,
    /// The tick the last answer came in.
    acked_at: u64,
}

impl Fence {
    /// Whether proposals are held back now: in a fast ballot, from when the
    /// open instance `instance` holds `every` commands (`len`) until it
    /// closes, for at most `MAX_HOLD_TICKS`.
    pub fn holds(
        &mut self,
        fast: bool,
        instance: Instance,
        len: usize,
        every: usize,
        now: u64,
    ) -> bool {
        if !fast || len < every {
            if self.raised.is_some_and(|(i, _)| i != instance) || !fast {
                self.raised = None;
            }
            return false;
        }
        let since = match self.raised {
            Some((i, since)) if i == instance => since,
            _ => {
                self.raised = Some((instance, now));
                now
            }
        };
        now < since + MAX_HOLD_TICKS
    }

    /// Whether the leader announced the closing of `instance` already.
    pub fn announced(&self, instance: Instance) -> bool {
        self.announced.is_some_and(|(i, _)| i == instance)
    }

    pub fn announce(&mut self, instance: Instance, now: u64) {
        self.announced = Some((instance, now));
        self.acked = 0;
    }

    /// Acceptor `acc` answered the announcement for `instance` at `now`.
    pub fn on_ack(&mut self, instance: Instance, acc: u32, now: u64) {
        if self.announced(instance) && acc < 64 {
            self.acked |= 1 << acc;
            self.acked_at = now;
        }
    }

    /// Whether the leader may close `instance` now: every live acceptor
    /// (`alive`, a bit each) answered its announcement, a tick has passed
    /// since the last answer (a link that reorders may deliver a vote after
    /// the answer sent behind it), and the instance is `quiet` (every vote
    /// seen is learned); or the announcement is as old as the longest
    /// hold.
    pub fn checkpoint_ready(&self, instance: Instance, now: u64, quiet: bool, alive: u64) -> bool {
        match self.announced {
            Some((i, since)) if i == instance => {
                (quiet && self.acked & alive == alive && now > self.acked_at.max(since))
                    || now >= since + MAX_HOLD_TICKS
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_from_a_full_instance_until_it_closes_or_the_hold_runs_out() {
        let mut f = Fence::default();
        assert!(!f.holds(true, 3, 10, 11, 100));
        assert!(f.holds(true, 3, 11, 11, 100));
        assert!(!f.checkpoint_ready(3, 100, true, 0b11), "not announced");
        f.announce(3, 100);
        f.on_ack(3, 0, 100);
        assert!(
            !f.checkpoint_ready(3, 101, true, 0b11),
            "not before every live acceptor answered"
        );
        f.on_ack(3, 1, 100);
        assert!(
            !f.checkpoint_ready(3, 100, true, 0b11),
            "not in the tick the last answer came"
        );
        assert!(
            !f.checkpoint_ready(3, 101, false, 0b11),
            "not while commands are in flight"
        );
        assert!(f.checkpoint_ready(3, 101, true, 0b11));
        assert!(f.holds(true, 3, 12, 11, 109));
        assert!(
            !f.holds(true, 3, 12, 11, 110),
            "lifted after the longest hold"
        );
        f.announce(3, 101);
        assert!(
            f.checkpoint_ready(3, 111, false, 0b11),
            "or announced that long ago"
        );
        // The instance closed: the next one starts empty.
        assert!(!f.holds(true, 4, 0, 11, 111));
        assert!(!f.checkpoint_ready(4, 111, true, 0));
        // A classic ballot holds nothing: its leader orders the checkpoint.
        assert!(!f.holds(false, 4, 20, 11, 112));
    }
}
