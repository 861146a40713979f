//! The client request path, shared by the server and the simulator so
//! that the simulator exercises the code the cluster runs: whether a
//! submitted command is proposed, answered from the reply cache (a retry of
//! a command already executed here), waited for (executed by the learner
//! but not yet applied here), or refused.

use crate::app::{Reply, StateMachine};
use crate::command::Command;
use crate::cstruct::CStruct;
use crate::protocol::{IdStatus, Replica};

/// Client ids at or above this are the leaders' (checkpoint ids).
pub const RESERVED_CLIENTS: u64 = u64::MAX - 1024;

/// What to do with a client's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// New: propose it and wait for it to be applied.
    Propose,
    /// Handed out by the learner already; wait for it to be applied.
    Wait,
    /// A retry of a command applied here: its reply, without running it
    /// again.
    Answer(Reply),
    /// Not accepted; the command does not take effect.
    Refuse(String),
}

/// Decides what a node does with `cmd`, submitted by a client.
pub fn admit<C: CStruct>(replica: &Replica<C>, app: &StateMachine, cmd: &Command) -> Admission {
    if cmd.is_checkpoint() || cmd.id.client >= RESERVED_CLIENTS {
        return Admission::Refuse(
            "client ids at or above 2^64 - 1024 are reserved for leaders' checkpoints".into(),
        );
    }
    match replica.session_status(cmd.id) {
        IdStatus::New => Admission::Propose,
        IdStatus::Done => match app.cached_reply(cmd.id) {
            Some(reply) => Admission::Answer(reply),
            None => Admission::Wait,
        },
    }
}
