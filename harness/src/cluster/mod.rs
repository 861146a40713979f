//! Cluster backends. `local`: node processes on loopback.

pub mod local;
