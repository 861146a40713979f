//! The lagging-node nemesis of long seeds: one node is kept away (crashed,
//! or cut off from every peer) while the others learn hundreds of
//! instances, compact their logs past it and restart one after another, so
//! none holds the instances it missed in memory any more; then it comes
//! back and must catch up by state transfer.

use super::{Event, Heal, Sim, MS};
use crate::faults::Kind;
use crate::record;
use gpaxos_node::protocol::{node_name, NodeId};
use rand::Rng;

/// One step of the lagging-node nemesis.
#[derive(Debug)]
pub(super) enum LagStep {
    Away,
    /// Waits until the peers closed enough instances past the lagging
    /// node, then restarts them one by one.
    AwaitProgress,
    RestartPeer(NodeId),
    Return,
}

/// How the lagging node is kept away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Away {
    Crashed,
    CutOff,
}

/// Time between one peer's restart and the next's.
const ROLLING_US: u64 = 400 * MS;

/// How many instances the peers close past the lagging node before they
/// restart: more than a snapshot keeps (16), so after their restarts none
/// holds what it missed.
const LAG_INSTANCES: u64 = 40;

impl Sim {
    /// Schedules the nemesis for a long seed.
    pub(super) fn schedule_lag(&mut self) {
        let at = self.rng.gen_range(100 * MS..300 * MS);
        self.schedule(at, Event::Lag(LagStep::Away));
    }

    pub(super) fn lag(&mut self, step: LagStep) {
        match step {
            LagStep::Away => self.lag_away(),
            LagStep::AwaitProgress => self.await_progress(),
            LagStep::RestartPeer(id) => self.restart_peer(id),
            LagStep::Return => self.lag_return(),
        }
    }

    fn lag_away(&mut self) {
        if self.healed {
            return;
        }
        let n = self.cfg.nodes;
        let up: Vec<NodeId> = (0..n as NodeId)
            .filter(|&i| self.nodes[i as usize].replica.is_some())
            .collect();
        if up.len() < n {
            // Another fault has a node down: try again shortly.
            self.schedule(50 * MS, Event::Lag(LagStep::Away));
            return;
        }
        let victim = up[self.rng.gen_range(0..up.len())];
        let how = if self.rng.gen_bool(0.5) {
            Away::Crashed
        } else {
            Away::CutOff
        };
        match how {
            Away::Crashed => self.crash(victim),
            Away::CutOff => self.net.away = Some(victim),
        }
        self.lagging = Some((victim, how));
        self.lag_from = self.nodes[victim as usize]
            .replica
            .as_ref()
            .map_or(0, |r| r.closed_below());
        self.history.push(record::nemesis(
            self.now * 1000,
            Kind::Lag.name(),
            "start",
            Some(format!("{} {how:?}", node_name(victim))),
        ));
        self.schedule(100 * MS, Event::Lag(LagStep::AwaitProgress));
    }

    fn await_progress(&mut self) {
        let Some((victim, _)) = self.lagging else {
            return;
        };
        let progress = (0..self.cfg.nodes as NodeId)
            .filter(|&i| i != victim)
            .filter_map(|i| self.nodes[i as usize].replica.as_ref())
            .map(|r| r.closed_below())
            .max()
            .unwrap_or(0);
        if progress < self.lag_from + LAG_INSTANCES && self.issued < self.cfg.commands {
            self.schedule(100 * MS, Event::Lag(LagStep::AwaitProgress));
            return;
        }
        let peers: Vec<NodeId> = (0..self.cfg.nodes as NodeId)
            .filter(|&i| i != victim)
            .collect();
        for (k, &peer) in peers.iter().enumerate() {
            let at = ROLLING_US * k as u64;
            self.schedule(at, Event::Lag(LagStep::RestartPeer(peer)));
        }
        let back = ROLLING_US * peers.len() as u64;
        self.schedule(back, Event::Lag(LagStep::Return));
    }

    /// Restarts one of the peers that stayed (a rolling restart), unless
    /// another is down already: a quorum stays up.
    fn restart_peer(&mut self, id: NodeId) {
        let victim = self.lagging.map(|(v, _)| v);
        let others_down = (0..self.cfg.nodes as NodeId)
            .filter(|&i| Some(i) != victim)
            .any(|i| self.nodes[i as usize].replica.is_none());
        if self.healed || others_down || self.nodes[id as usize].replica.is_none() {
            return;
        }
        self.crash(id);
        let d = self.rng.gen_range(50 * MS..150 * MS);
        self.schedule(
            d,
            Event::Heal {
                what: Heal::Restart(id),
            },
        );
    }

    pub(super) fn lag_return(&mut self) {
        let Some((victim, how)) = self.lagging.take() else {
            return;
        };
        match how {
            Away::Crashed => self.restart(victim),
            Away::CutOff => self.net.away = None,
        }
        self.history.push(record::nemesis(
            self.now * 1000,
            Kind::Lag.name(),
            "stop",
            Some(node_name(victim)),
        ));
    }
}
