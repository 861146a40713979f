//! The sans-I/O Generalized Paxos core (Section 5.5, appendix C.6).
//!
//! Roles are plain structs: [`acceptor::Acceptor`], [`leader::Leader`],
//! [`learner::Learner`], [`proposer::Proposer`]. A [`Replica`] holds one of
//! each (every node plays every role) and is driven like raft-rs's RawNode:
//!
//! 1. feed it inputs: [`Replica::step`] (a message), [`Replica::tick`] (a
//!    timer tick), [`Replica::propose`] (a client command) and
//!    [`Replica::durable`] (storage caught up);
//! 2. call [`Replica::drain`] and, in this order, append its `writes` to
//!    stable storage, send its `messages`, hand its `learned` commands to the
//!    state machine;
//! 3. report with [`Replica::durable`] once the writes are synced.
//!
//! `drain` only hands out a message or a learned command once every write
//! emitted before it has been reported durable, so an acceptor's 1b or 2b
//! never leaves before the state it reports is on disk (docs/PAPER.md trap 9),
//! whatever the driver does.
//!
//! When [`Replica::snapshot_due`] says so, the driver applies what it has
//! drained, then replaces its log with [`Replica::snapshot`]'s records,
//! queued behind the writes already drained (see [`snapshot`]).

pub mod acceptor;
pub mod ballot;
mod closing;
mod fence;
pub mod leader;
pub mod learned_log;
pub mod learner;
pub mod message;
pub mod outbox;
mod payloads;
mod planted;
pub mod proposer;
mod replica;
pub mod session;
pub mod snapshot;
pub mod transfer;
pub mod validate;
pub mod vote;

pub use ballot::{node_name, Ballot, NodeId, QuorumError, Quorums};
pub use message::{Instance, InstanceVote, Message, Record, Suggestion};
pub use replica::{Config, Learned, Output, Replica, Stats};
pub use session::{IdStatus, Sessions};

#[cfg(feature = "planted-bugs")]
pub use replica::PlantedBug;
