//! Learning delays on simulated time: one command proposed on a quiet
//! cluster, and when each learner learned it. With no jitter and instant
//! fsyncs these are whole numbers of link delays: 2 in a fast ballot, 3 in
//! a classic one (Section 6.1); with a latency matrix, sums of its entries.

use super::{Faults, Sim, SimConfig, MS};
use crate::latency::Latency;
use gpaxos_node::protocol::{Config, NodeId};
use gpaxos_node::Command;
use std::collections::BTreeMap;

/// Per node, how long after a proposal at `at_node` its learner learned
/// the command, every link delaying `link_us` one way.
pub fn learning_delays(protocol: Config, link_us: u64, at_node: NodeId) -> Vec<Option<u64>> {
    probe(protocol, at_node, |cfg| cfg.link_us = link_us)
}

/// [`learning_delays`] with each link's delay from `latency`.
pub fn learning_delays_across(
    protocol: Config,
    latency: &Latency,
    at_node: NodeId,
) -> Vec<Option<u64>> {
    probe(protocol, at_node, |cfg| cfg.set_latency(latency))
}

/// Lets a quiet cluster settle (a second, or a hundred of its longest
/// delays), proposes one command at `at_node`, and returns when each
/// learner learned it.
fn probe(
    protocol: Config,
    at_node: NodeId,
    links: impl FnOnce(&mut SimConfig),
) -> Vec<Option<u64>> {
    let nodes = protocol.n();
    let mut cfg = SimConfig::new(nodes, 0, 0.0, Faults::None).expect("valid cluster size");
    cfg.protocol = protocol;
    cfg.clients = 0;
    cfg.jitter_us = 0;
    cfg.fsync_us = 0;
    links(&mut cfg);
    let longest = match &cfg.latency_us {
        Some(m) => m.iter().flatten().copied().max().unwrap_or(0),
        None => cfg.link_us,
    };
    let mut sim = Sim::new(cfg, 0);
    sim.learn_times = Some(BTreeMap::new());
    sim.run_until((1_000 * MS).max(100 * longest));
    let cmd = Command::new(
        1,
        1,
        gpaxos_node::Op::Put {
            key: "k".into(),
            value: "v".into(),
        },
    );
    let proposed = sim.now;
    if let Some(r) = sim.nodes[at_node as usize].replica.as_mut() {
        r.propose(cmd.clone());
    }
    sim.pump(at_node);
    sim.run_until(proposed + 100 * longest);
    let times = sim.learn_times.take().unwrap_or_default();
    (0..nodes as NodeId)
        .map(|n| times.get(&(n, cmd.id)).map(|t| t - proposed))
        .collect()
}
