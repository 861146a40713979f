//! gpaxos-harness: starts clusters, drives workloads, injects faults, records
//! histories and hands them to the checker.

pub mod bench;
pub mod cluster;
pub mod record;
pub mod sim;
pub mod workload;
