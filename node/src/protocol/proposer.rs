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
    /// Checkpoints go out even while client commands are held.
    unsent_checkpoints: Vec<Command>,
    max_batch: usize,
    /// Client commands wait in `unsent` while a checkpoint closes the open
    /// instance (`fence`).
    held: bool,
}

impl Proposer {
    pub fn new(max_batch: usize) -> Self {
        Proposer {
            pending: BTreeMap::new(),
            unsent: Vec::new(),
            unsent_checkpoints: Vec::new(),
            max_batch: max_batch.max(1),
            held: false,
        }
    }

    /// `SendProposal(C)`; the message leaves with the next flush, batched
    /// with the other commands proposed in the same step.
    pub fn propose(&mut self, cmd: Command, now: u64) {
        if self.pending.contains_key(&cmd.id) {
            return;
        }
        self.queue(cmd.clone());
        self.pending.insert(cmd.id, Pending { cmd, sent_at: now });
    }

    /// Keeps `cmd` for retries without sending it now: the leader sent it
    /// itself (a checkpoint in a `Close`), and a retry is a plain proposal.
    pub fn track(&mut self, cmd: Command, now: u64) {
        self.pending
            .entry(cmd.id)
            .or_insert(Pending { cmd, sent_at: now });
    }

    /// Holds client commands back from the next flush on, or lets them go.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    fn queue(&mut self, cmd: Command) {
        if cmd.is_checkpoint() {
            self.unsent_checkpoints.push(cmd);
        } else {
            self.unsent.push(cmd);
        }
    }

    pub fn flush(&mut self, out: &mut Outbox) {
        if !self.unsent_checkpoints.is_empty() {
            let cmds = std::mem::take(&mut self.unsent_checkpoints);
            out.broadcast(Message::Propose { cmds });
        }
        while !self.held && !self.unsent.is_empty() {
            let n = self.unsent.len().min(self.max_batch);
            let cmds: Vec<Command> = self.unsent.drain(..n).collect();
            out.broadcast(Message::Propose { cmds });
        }
    }

    /// The command is learned: stop retrying it.
    pub fn learned(&mut self, id: &CmdId) {
        self.pending.remove(id);
    }

    /// Resends every proposal not learned within `retry_ticks`; while
    /// client commands are held, only checkpoints (a held command may not
    /// have been sent at all: it waits in `unsent` already).
    pub fn tick(&mut self, now: u64, retry_ticks: u64, out: &mut Outbox) {
        let held = self.held;
        let mut due = Vec::new();
        for p in self.pending.values_mut() {
            if now >= p.sent_at + retry_ticks && (!held || p.cmd.is_checkpoint()) {
                p.sent_at = now;
                due.push(p.cmd.clone());
            }
        }
        for cmd in due {
            self.queue(cmd);
        }
        self.flush(out);
    }

    /// Drops the commands `done` says need no more retries (a snapshot
    /// installed from a peer covers them).
    pub fn retain(&mut self, mut keep: impl FnMut(&CmdId) -> bool) {
        self.pending.retain(|id, _| keep(id));
        self.unsent.retain(|c| keep(&c.id));
        self.unsent_checkpoints.retain(|c| keep(&c.id));
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
