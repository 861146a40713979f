//! gpaxos-node: Lamport's Generalized Paxos ("Generalized Consensus and
//! Paxos", MSR-TR-2005-33) over command histories.
//!
//! * [`cstruct`]: the c-struct sets of Section 4.
//! * [`protocol`]: the sans-I/O core of Section 5.5 and appendix C.6.
//! * [`app`]: the replicated kv / bank state machine.
//! * [`storage`]: the write-ahead log that keeps the protocol's promises.
//! * [`net`]: QUIC transport with mutual TLS, certificates, framing.

pub mod app;
pub mod client;
pub mod codec;
pub mod command;
pub mod config_file;
pub mod cstruct;
pub mod net;
pub mod protocol;
pub mod server;
pub mod service;
pub mod storage;

pub use command::{CmdId, Command, Key, Op};
