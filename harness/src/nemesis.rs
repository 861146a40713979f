//! Fault kinds and their heals, applied to a cluster of either backend
//! (Jepsen's nemesis). Every fault and every heal is recorded in the
//! history.

use crate::cluster::Cluster;
pub use crate::faults::Kind;
use crate::faults::{LinkFaults, Partition};
use anyhow::{bail, Result};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::time::Duration;

/// A fault in force, with what its heal must undo.
#[derive(Debug)]
pub enum Active {
    Partition,
    Killed(Vec<usize>),
    Paused(Vec<usize>),
    Links,
    /// `victim` is down; `peers` are still to be restarted, one per step.
    Lagging {
        victim: usize,
        peers: Vec<usize>,
    },
}

/// What a heal did.
#[derive(Debug)]
pub enum Healed {
    /// The fault is gone; a note on what the heal undid, if the backend
    /// counts it.
    Done(Option<String>),
    /// One step of a fault that heals in steps (the lagging node's peers'
    /// rolling restart): what the step did and what is still in force.
    Step(String, Active),
}

/// Picks the victims of a kill: one, a minority, a majority or all.
fn kill_set(n: usize, rng: &mut SmallRng) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..n).collect();
    ids.shuffle(rng);
    let k = match rng.gen_range(0..4) {
        0 => 1,
        1 => (n - 1) / 2,
        2 => n / 2 + 1,
        _ => n,
    };
    ids.truncate(k.max(1));
    ids
}

/// Applies a fault of `kind`; returns what to heal and a description.
/// `leader` is the node believed to lead, for the isolate-leader partition.
pub fn inject(
    kind: Kind,
    cluster: &mut Cluster,
    leader: Option<usize>,
    rng: &mut SmallRng,
) -> Result<(Active, String)> {
    let n = cluster.n();
    if !cluster.has_network_faults() {
        if matches!(
            kind,
            Kind::Partition | Kind::Loss | Kind::Delay | Kind::Duplicate | Kind::Reorder
        ) {
            bail!("{} needs the harness's relays", kind.name());
        }
        return inject_process(kind, cluster, rng);
    }
    let links = |cluster: &mut Cluster, f: LinkFaults, what: String| {
        cluster.set_link_faults(f)?;
        Ok((Active::Links, what))
    };
    match kind {
        Kind::Partition => {
            let shape = Partition::draw(n, leader, rng);
            cluster.partition(&shape.grudge(n))?;
            Ok((Active::Partition, shape.describe()))
        }
        Kind::Loss => {
            let p = rng.gen_range(0.05..0.3);
            links(
                cluster,
                LinkFaults {
                    loss: p,
                    ..Default::default()
                },
                format!("{:.0}% loss on every link", p * 100.0),
            )
        }
        Kind::Delay => {
            let d = Duration::from_millis(rng.gen_range(5..50));
            let j = d / 2;
            links(
                cluster,
                LinkFaults {
                    delay: d,
                    jitter: j,
                    ..Default::default()
                },
                format!("{d:?} ± {j:?} on every link"),
            )
        }
        Kind::Duplicate => {
            let p = rng.gen_range(0.05..0.3);
            links(
                cluster,
                LinkFaults {
                    duplicate: p,
                    ..Default::default()
                },
                format!("{:.0}% duplication", p * 100.0),
            )
        }
        Kind::Reorder => {
            let p = rng.gen_range(0.05..0.3);
            links(
                cluster,
                LinkFaults {
                    reorder: p,
                    delay: Duration::from_millis(2),
                    ..Default::default()
                },
                format!("{:.0}% reordering", p * 100.0),
            )
        }
        Kind::Kill | Kind::Pause | Kind::TornWal | Kind::Lag => inject_process(kind, cluster, rng),
    }
}

fn inject_process(
    kind: Kind,
    cluster: &mut Cluster,
    rng: &mut SmallRng,
) -> Result<(Active, String)> {
    let n = cluster.n();
    let names = |v: &[usize]| {
        v.iter()
            .map(|i| format!("n{}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    match kind {
        Kind::Kill => {
            let victims = kill_set(n, rng);
            for &v in &victims {
                cluster.kill(v)?;
            }
            let what = format!("{} {}", cluster.kill_word(), names(&victims));
            Ok((Active::Killed(victims), what))
        }
        Kind::Pause => {
            let victims = kill_set(n, rng);
            for &v in &victims {
                cluster.pause(v)?;
            }
            let what = format!("{} {}", cluster.pause_word(), names(&victims));
            Ok((Active::Paused(victims), what))
        }
        Kind::TornWal => {
            // A crash in the middle of a write: the node dies and its log
            // ends in half a frame, which recovery must cut off.
            let v = rng.gen_range(0..n);
            cluster.kill(v)?;
            let junk: Vec<u8> = (0..rng.gen_range(1..40)).map(|_| rng.gen()).collect();
            // A frame header promising more bytes than follow.
            let mut tail = (4096u32).to_le_bytes().to_vec();
            tail.extend_from_slice(&junk);
            cluster.append_to_wal(v, &tail)?;
            Ok((
                Active::Killed(vec![v]),
                format!(
                    "{} n{} and tear the tail of its log ({} bytes)",
                    cluster.kill_word(),
                    v + 1,
                    junk.len() + 4
                ),
            ))
        }
        Kind::Lag => {
            let victim = rng.gen_range(0..n);
            cluster.kill(victim)?;
            let mut peers: Vec<usize> = (0..n).filter(|&i| i != victim).collect();
            peers.shuffle(rng);
            let what = format!(
                "{} n{} and keep it down while the others restart one by one ({})",
                cluster.kill_word(),
                victim + 1,
                names(&peers)
            );
            Ok((Active::Lagging { victim, peers }, what))
        }
        _ => bail!("{} needs the harness's relays", kind.name()),
    }
}

/// Undoes a fault, or takes the next step of one that heals in steps.
pub fn heal(active: Active, cluster: &mut Cluster) -> Result<Healed> {
    match active {
        Active::Partition | Active::Links => return cluster.heal_network().map(Healed::Done),
        Active::Lagging { victim, mut peers } => {
            if let Some(p) = peers.pop() {
                cluster.kill(p)?;
                cluster.restart(p)?;
                let what = format!("restarted n{} (n{} still down)", p + 1, victim + 1);
                return Ok(Healed::Step(what, Active::Lagging { victim, peers }));
            }
            cluster.restart(victim)?;
        }
        Active::Killed(v) => {
            for i in v {
                cluster.restart(i)?;
            }
        }
        Active::Paused(v) => {
            for i in v {
                cluster.resume(i)?;
            }
        }
    }
    Ok(Healed::Done(None))
}

/// Heals everything, whatever is in force: the final heal.
pub fn heal_all(cluster: &mut Cluster) -> Result<()> {
    cluster.heal_network()?;
    for i in 0..cluster.n() {
        cluster.resume(i)?;
        cluster.restart(i)?;
    }
    Ok(())
}
