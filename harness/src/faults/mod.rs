//! The one vocabulary of faults every backend uses. The nemesis's fault
//! kinds ([`Kind`]), the partition shapes it draws ([`Partition`]), the
//! directed links they cut ([`Grudge`], built by [`grudge`]) and the packet
//! faults of a link ([`LinkFaults`]) are defined here once: the local
//! backend's relays, the docker and ssh backends' iptables and netem rules,
//! and the simulator's network all take them from this module.

pub mod grudge;
mod kind;
mod partition;

pub use grudge::Grudge;
pub use kind::Kind;
pub use partition::Partition;

use serde::Serialize;
use std::time::Duration;

/// Packet faults of one directed link, applied to each datagram in either
/// direction. The default is a clean link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LinkFaults {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Added to every datagram's transit time.
    pub delay: Duration,
    /// Each datagram's delay is `delay` plus a uniform random amount in
    /// `[-jitter, +jitter]` (never below zero). Jitter alone keeps the
    /// order of datagrams: one never leaves before one received earlier.
    pub jitter: Duration,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back an extra random time in
    /// `[0, max(delay + jitter, 5 ms)]`, out of order, so that datagrams
    /// received after it overtake it.
    pub reorder: f64,
}

impl LinkFaults {
    /// A link that only delays, by `d` each way.
    pub fn delay(d: Duration) -> LinkFaults {
        LinkFaults {
            delay: d,
            ..LinkFaults::default()
        }
    }

    /// No fault at all.
    pub fn is_clean(&self) -> bool {
        *self == LinkFaults::default()
    }

    /// Whether a datagram must be held back rather than sent at once.
    pub fn holds(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero() || self.reorder > 0.0
    }
}
