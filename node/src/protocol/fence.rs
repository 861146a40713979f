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
//! leader proposes the checkpoint only once the instance is quiet: every
//! command any acceptor voted for is learned, at least a tick after the
//! fence went up, so that proposals sent before it have landed. The
//! checkpoint then meets no command in flight, and every acceptor appends
//! it to the same commands.
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

    /// Whether the leader may propose the checkpoint of `instance` now:
    /// the fence has been up for a tick and the instance is `quiet`, or it
    /// has been up for the longest hold.
    pub fn checkpoint_ready(&self, instance: Instance, now: u64, quiet: bool) -> bool {
        match self.raised {
            Some((i, since)) if i == instance => {
                (quiet && now > since) || now >= since + MAX_HOLD_TICKS
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
        assert!(
            !f.checkpoint_ready(3, 100, true),
            "not in the tick it went up"
        );
        assert!(
            !f.checkpoint_ready(3, 101, false),
            "not while commands are in flight"
        );
        assert!(f.checkpoint_ready(3, 101, true));
        assert!(f.holds(true, 3, 12, 11, 109));
        assert!(
            !f.holds(true, 3, 12, 11, 110),
            "lifted after the longest hold"
        );
        assert!(f.checkpoint_ready(3, 110, false));
        // The instance closed: the next one starts empty.
        assert!(!f.holds(true, 4, 0, 11, 111));
        assert!(!f.checkpoint_ready(3, 111, true));
        // A classic ballot holds nothing: its leader orders the checkpoint.
        assert!(!f.holds(false, 4, 20, 11, 112));
    }
}
