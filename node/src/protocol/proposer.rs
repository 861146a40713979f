//! The proposer: `SendProposal(C)` of appendix C.6, with retries.
//!
//! A proposal goes to every node: in a fast ballot the acceptors vote for it
//! directly (Phase2bFast), in a classic one the leader suggests it
//! (Phase2aClassic); the proposer need not know which ballot is running.
//! Commands keep their id across retries, so a retry is a no-op wherever the
//! command already is.

use super::message::Message;
use super::outbox::Outbox;
use crate::command::{CmdId, Command};
use std::collections::BTreeMap;

#[derive(Debug)]
struct Pending {
    cmd: Command,
    sent_at: u64,
}

#[derive(Debug, Default)]
pub struct Proposer {
    pending: BTreeMap<CmdId, Pending>,
    unsent: Vec<Command>,
    max_batch: usize,
}

impl Proposer {
    pub fn new(max_batch: usize) -> Self {
        Proposer {
            pending: BTreeMap::new(),
            unsent: Vec::new(),
            max_batch: max_batch.max(1),
        }
    }

    /// `SendProposal(C)`; the message leaves with the next flush, batched
    /// with the other commands proposed in the same step.
    pub fn propose(&mut self, cmd: Command, now: u64) {
        if self.pending.contains_key(&cmd.id) {
            return;
        }
        self.unsent.push(cmd.clone());
        self.pending.insert(cmd.id, Pending { cmd, sent_at: now });
    }

    pub fn flush(&mut self, out: &mut Outbox) {
        while !self.unsent.is_empty() {
            let n = self.unsent.len().min(self.max_batch);
            let cmds: Vec<Command> = self.unsent.drain(..n).collect();
            out.broadcast(Message::Propose { cmds });
        }
    }

    /// The command is learned: stop retrying it.
    pub fn learned(&mut self, id: &CmdId) {
        self.pending.remove(id);
    }

    /// Resends every proposal not learned within `retry_ticks`.
    pub fn tick(&mut self, now: u64, retry_ticks: u64, out: &mut Outbox) {
        for p in self.pending.values_mut() {
            if now >= p.sent_at + retry_ticks {
                p.sent_at = now;
                self.unsent.push(p.cmd.clone());
            }
        }
        self.flush(out);
    }

    /// Drops the commands `done` says need no more retries (a snapshot
    /// installed from a peer covers them).
    pub fn retain(&mut self, mut keep: impl FnMut(&CmdId) -> bool) {
        self.pending.retain(|id, _| keep(id));
        self.unsent.retain(|c| keep(&c.id));
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
