//! The commands this node has seen, so that 2b messages can name their
//! commands by id rather than carry them.
//!
//! Every command reaches every node before any acceptor votes for it: a
//! proposer broadcasts its proposals to every acceptor (Phase2bFast), and
//! a leader its suggestions (Phase2aClassic, Phase2Start). A 2b that
//! carried the commands again would send each one to every learner once
//! per acceptor, 25 copies in a cluster of five, and that copying and
//! encrypting was most of a loaded node's time (README, "Where the time
//! goes"). So broadcast 2bs carry ids ([`Message::Phase2bIds`]) and a
//! learner takes the commands from here; one it lacks (its proposal was
//! lost, or evicted) it asks the acceptor for, whose answer carries them
//! (`Resend`, answered by a full `Phase2b`). Safety never depends on this
//! cache: a learner that cannot name a command's payload learns nothing
//! from that vote until the acceptor sends it whole.
//!
//! A 2b can overtake the proposal it votes for (the acceptor at the
//! proposer's own node votes at once, and a link may reorder), so a 2b
//! naming a command not seen yet waits here ([`NamedVote`]) until the
//! command arrives, and only one still waiting at the next tick is asked
//! for.
//!
//! Two generations bound the memory: when an instance closes, or the
//! current generation fills up, the older one is dropped. A command still
//! in flight survives one such turn, and is promoted when looked up.
//!
//! [`Message::Phase2bIds`]: super::message::Message::Phase2bIds

use super::ballot::{Ballot, NodeId};
use super::message::Instance;
use crate::command::{CmdId, Command, Digest, IdMap};

/// Commands held per generation; two generations at most. A turn of the
/// generations also comes with every closed instance, so this only binds
/// when instances are very long or commands arrive that are never voted.
pub const GENERATION: usize = 32_768;

/// How many 2bs may wait for their commands at once; beyond that a 2b
/// whose commands are unknown is asked for at once.
pub const WAITING: usize = 256;

/// A 2b (`Phase2bIds`) whose commands this node has not all seen yet.
#[derive(Clone, Debug)]
pub struct NamedVote {
    pub bal: Ballot,
    pub acc: NodeId,
    pub instance: Instance,
    pub base: u32,
    pub refs: Vec<(CmdId, Digest)>,
    pub fast: bool,
    /// The tick it arrived in.
    pub since: u64,
}

#[derive(Debug, Default)]
pub struct Payloads {
    current: IdMap<(Digest, Command)>,
    previous: IdMap<(Digest, Command)>,
    waiting: Vec<NamedVote>,
}

impl Payloads {
    pub fn remember(&mut self, cmd: &Command) {
        if self.current.len() >= GENERATION {
            self.turn();
        }
        // The first operation seen under an id stays; a 2b naming another
        // one by its digest is answered by a resend, never by this one.
        self.current
            .entry(cmd.id)
            .or_insert_with(|| (cmd.digest(), cmd.clone()));
    }

    pub fn remember_all<'a>(&mut self, cmds: impl IntoIterator<Item = &'a Command>) {
        for c in cmds {
            self.remember(c);
        }
    }

    /// The commands named by `refs`, in order, or `None` if any is
    /// unknown or known with another digest.
    pub fn resolve(&mut self, refs: &[(CmdId, Digest)]) -> Option<Vec<Command>> {
        let mut cmds = Vec::with_capacity(refs.len());
        for (id, digest) in refs {
            if !self.current.contains_key(id) {
                let entry = self.previous.remove(id)?;
                self.current.insert(*id, entry);
            }
            let (known, cmd) = &self.current[id];
            if known != digest {
                return None;
            }
            cmds.push(cmd.clone());
        }
        Some(cmds)
    }

    /// Keeps a 2b whose commands are not all known until they arrive, or
    /// hands it back if too many wait already.
    pub fn wait(&mut self, vote: NamedVote) -> Result<(), NamedVote> {
        if self.waiting.len() >= WAITING {
            return Err(vote);
        }
        self.waiting.push(vote);
        Ok(())
    }

    /// The waiting 2bs whose commands are all known now, with them.
    pub fn ready(&mut self) -> Vec<(NamedVote, Vec<Command>)> {
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            match self.resolve(&self.waiting[i].refs.clone()) {
                Some(cmds) => ready.push((self.waiting.swap_remove(i), cmds)),
                None => i += 1,
            }
        }
        ready
    }

    /// The 2bs that have waited since before tick `now`: their commands
    /// were lost (or never sent), and must be asked for.
    pub fn overdue(&mut self, now: u64) -> Vec<NamedVote> {
        let (overdue, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|v| v.since < now);
        self.waiting = kept;
        overdue
    }

    /// Whether a 2b for `instance` waits for its commands.
    pub fn waiting_for(&self, instance: Instance) -> bool {
        self.waiting.iter().any(|v| v.instance == instance)
    }

    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Drops the older generation: an instance closed, so what was seen
    /// before the one before it is no longer voted on.
    pub fn turn(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Commands and waiting 2bs held.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len() + self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Op;

    fn put(seq: u64, value: &str) -> Command {
        Command::new(
            1,
            seq,
            Op::Put {
                key: format!("k{seq}"),
                value: value.into(),
            },
        )
    }

    fn named(cmd: &Command) -> (CmdId, Digest) {
        (cmd.id, cmd.digest())
    }

    #[test]
    fn resolves_known_commands_in_order_and_refuses_an_unknown_one() {
        let mut p = Payloads::default();
        p.remember_all(&[put(1, "v"), put(2, "v")]);
        let got = p
            .resolve(&[named(&put(2, "v")), named(&put(1, "v"))])
            .expect("both known");
        assert_eq!(got, vec![put(2, "v"), put(1, "v")]);
        assert!(p
            .resolve(&[named(&put(1, "v")), named(&put(3, "v"))])
            .is_none());
    }

    /// A client may send two operations under one id to two nodes; a
    /// learner must then take neither for the other.
    #[test]
    fn another_operation_under_a_known_id_is_not_resolved() {
        let mut p = Payloads::default();
        p.remember(&put(1, "mine"));
        assert!(p.resolve(&[named(&put(1, "theirs"))]).is_none());
        p.remember(&put(1, "theirs"));
        assert_eq!(
            p.resolve(&[named(&put(1, "mine"))]),
            Some(vec![put(1, "mine")])
        );
    }

    #[test]
    fn a_command_survives_one_turn_and_is_promoted_when_used() {
        let mut p = Payloads::default();
        p.remember(&put(1, "v"));
        p.remember(&put(2, "v"));
        p.turn();
        assert!(p.resolve(&[named(&put(1, "v"))]).is_some(), "one turn old");
        p.turn();
        assert!(
            p.resolve(&[named(&put(1, "v"))]).is_some(),
            "promoted by its use"
        );
        assert!(p.resolve(&[named(&put(2, "v"))]).is_none(), "two turns old");
    }

    fn vote(cmd: &Command, since: u64) -> NamedVote {
        NamedVote {
            bal: Ballot::ZERO,
            acc: 0,
            instance: 0,
            base: 0,
            refs: vec![named(cmd)],
            fast: true,
            since,
        }
    }

    #[test]
    fn a_vote_overtaking_its_command_waits_for_it_until_the_next_tick() {
        let mut p = Payloads::default();
        p.wait(vote(&put(1, "v"), 7)).unwrap();
        p.wait(vote(&put(2, "v"), 7)).unwrap();
        assert!(p.ready().is_empty());
        p.remember(&put(1, "v"));
        let ready = p.ready();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].1, vec![put(1, "v")]);
        assert!(p.overdue(7).is_empty(), "not in the tick it arrived");
        assert_eq!(p.overdue(8).len(), 1, "put 2 never came");
        assert!(!p.is_waiting());
        for seq in 0..WAITING as u64 {
            p.wait(vote(&put(seq, "x"), 9)).unwrap();
        }
        assert!(p.wait(vote(&put(0, "y"), 9)).is_err(), "bounded");
    }

    #[test]
    fn memory_is_bounded_by_two_generations() {
        let mut p = Payloads::default();
        for seq in 0..(5 * GENERATION as u64) {
            p.remember(&put(seq, "v"));
        }
        assert!(p.len() <= 2 * GENERATION, "{} held", p.len());
    }
}
