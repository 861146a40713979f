//! The deterministic simulator backend (docs/DESIGN.md section 5, `sim`).
//!
//! Every node's protocol core runs in one thread against a simulated
//! network ([`network`]), simulated disks that lose unsynced writes on a
//! crash ([`disk`]) and a simulated clock. One seeded generator drives every
//! choice, so a seed replays the same run exactly. Clients, nemesis events
//! and learner observations are recorded in the checker's history format and
//! the run is judged by `gpaxos-checker`.

pub mod disk;
pub mod network;
mod run;
mod sweep;

pub use run::{
    learning_delays, learning_delays_across, run_seed, Faults, Injected, SimConfig, SimOutcome,
};
pub use sweep::{judge, sweep, Failure, SweepReport};
