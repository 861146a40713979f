//! `gpaxos-checker`: an independent oracle for gpaxos runs.
//!
//! It reads a recorded run (`history`), decides whether the learners'
//! c-structs meet the consensus requirements of Section 4.3 of Lamport's
//! "Generalized Consensus and Paxos" (`consensus`), and whether the results
//! clients saw agree with one learner's learned sequence replayed through the
//! checker's own model of the state machine (`execution`), and whether the
//! client history is linearizable (`linear`, which also reads Jepsen's EDN
//! histories and text logs). `check` runs every check that applies to a
//! file; `report` writes `results.json` and `report.html`.
//!
//! The checker deliberately shares no code with `gpaxos-node`: its model of
//! command histories is its own, so a bug in the node's c-struct code cannot
//! hide itself.

pub mod check;
pub mod consensus;
pub mod execution;
pub mod exit;
pub mod fxhash;
pub mod generate;
pub mod history;
pub mod intern;
pub mod latency;
pub mod linear;
pub mod logging;
pub mod report;
pub mod run;
pub mod verdict;

pub use history::History;
pub use verdict::Verdict;
