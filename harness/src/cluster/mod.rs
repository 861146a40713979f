//! Cluster backends. `local`: node processes on loopback; `relay`: the UDP
//! relays between them, one per directed link, that carry packet faults.

pub mod local;
pub mod relay;
