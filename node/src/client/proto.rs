//! The client protocol: requests a client sends a node and the node's
//! answers, one per request, on a bidirectional QUIC stream.

use crate::app::Reply;
use crate::command::Command;
use crate::protocol::{Ballot, Stats};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Propose a command; answered once this node has learned and applied
    /// it. Retrying with the same command id is safe: a command is applied
    /// once.
    Submit { cmd: Command },
    /// The node's role, ballot and counters.
    Status,
    /// The learner's learned sequence from position `from`, at most `max`
    /// commands.
    Learned { from: u64, max: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    Applied {
        reply: Reply,
    },
    Status(Box<Status>),
    /// Learned commands from position `from` on: the position asked for,
    /// or the first one still held if that was compacted away.
    /// `rewrites` counts the times a snapshot from a peer rewrote the
    /// sequence, the last one from position `rewritten_at` on.
    Learned {
        from: u64,
        total: u64,
        cmds: Vec<Command>,
        rewrites: u64,
        rewritten_at: u64,
    },
    /// The request was refused; the message says why.
    Error {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    /// `leader` when this node leads a ballot in phase 2, else `follower`.
    pub role: String,
    /// The ballot this node's acceptor is in.
    pub mbal: Ballot,
    pub fast: bool,
    /// The node this node believes leads.
    pub leader: String,
    pub closed_below: u64,
    pub learned: u64,
    pub pending: u64,
    pub stats: Stats,
    pub fsyncs: u64,
    /// The size of the node's log file: it shrinks at each snapshot.
    pub log_bytes: u64,
    /// Snapshots put in place of the log since the node started, and
    /// whether one is being written beside the log now.
    pub log_compactions: u64,
    pub snapshot_writing: bool,
    /// The size of the last snapshot this node took or installed (what it
    /// hands to a node that fell behind).
    pub snapshot_bytes: u64,
    /// Client sessions this node's learner keeps.
    pub sessions: u64,
}
