//! gpaxos-harness: starts clusters, drives workloads, injects faults, records
//! histories and hands them to the checker.

pub mod bench;
pub mod cluster;
pub mod faults;
pub use gpaxos_checker::exit;
pub mod judge;
pub mod latency;
pub mod logging;
pub mod nemesis;
pub mod observe;
pub mod progress;
pub mod record;
pub mod runner;
pub mod serve;
pub mod sim;
pub mod soak;
pub mod ssh;
pub mod store;
pub mod suite;
pub mod workload;
