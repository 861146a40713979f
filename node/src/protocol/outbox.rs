//! What a role's action produces: durable writes, messages and learned
//! commands, in the order produced. The replica gates messages and learned
//! commands behind the writes emitted before them.

use super::ballot::NodeId;
use super::message::{Instance, Message, Record};
use crate::command::{CmdId, Command};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    To(NodeId),
    /// Every node, this one included.
    All,
}

#[derive(Debug)]
pub enum Effect {
    Write(Record),
    Send(Dest, Message),
    /// A command newly learned in `instance`; `fast` when it was chosen by
    /// fast votes rather than suggested by a leader.
    Learn {
        instance: Instance,
        cmd: Command,
        fast: bool,
    },
    /// A command chosen again after it was handed out (or given up): no
    /// proposer needs to retry it.
    Done(CmdId),
    /// A snapshot from a peer was installed: once the writes before this
    /// are durable, the learned sequence resumes as it says.
    Install(Installed),
}

/// What an installed snapshot from a peer changes once it is durable: the
/// learned sequence resumes at `position` with `recent` before it (the
/// open instance `instance` starting at `open_start`), and the driver
/// takes the state machine `app`.
#[derive(Debug)]
pub struct Installed {
    pub instance: Instance,
    pub position: u64,
    pub open_start: u64,
    pub recent: Vec<Command>,
    pub app: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Outbox {
    pub effects: Vec<Effect>,
}

impl Outbox {
    pub fn write(&mut self, r: Record) {
        self.effects.push(Effect::Write(r));
    }

    pub fn send(&mut self, to: NodeId, m: Message) {
        self.effects.push(Effect::Send(Dest::To(to), m));
    }

    pub fn broadcast(&mut self, m: Message) {
        self.effects.push(Effect::Send(Dest::All, m));
    }

    pub fn learn(&mut self, instance: Instance, cmd: Command, fast: bool) {
        self.effects.push(Effect::Learn {
            instance,
            cmd,
            fast,
        });
    }

    pub fn done(&mut self, id: CmdId) {
        self.effects.push(Effect::Done(id));
    }
}
