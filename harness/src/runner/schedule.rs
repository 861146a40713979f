//! The nemesis phase: until the time limit (or Ctrl-C), a fault every
//! interval and its heal one interval later, kinds in a shuffled cycle;
//! the learners observed every second, and nodes that died on their own
//! recorded and started again.

use super::learners::observe;
use super::setup::Live;
use super::{Shared, TestConfig};
use crate::nemesis::{self, Active, Healed, Kind};
use crate::progress::Progress;
use crate::record;
use gpaxos_checker::run::CRASH;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The fault schedule's state.
pub(super) struct Schedule {
    rng: SmallRng,
    order: Vec<Kind>,
    next_kind: usize,
    /// The fault in force, healed by the teardown if the time limit comes
    /// first.
    pub active: Option<(Kind, Active)>,
}

/// Runs the phase; returns the schedule with the fault still in force.
pub(super) async fn drive(
    cfg: &TestConfig,
    live: &mut Live,
    interrupted: &AtomicBool,
    progress: &Progress,
) -> Schedule {
    let mut schedule = Schedule {
        rng: SmallRng::seed_from_u64(cfg.seed),
        order: cfg.nemesis.clone(),
        next_kind: 0,
        active: None,
    };
    let shared = live.shared.clone();
    let deadline = shared.start + Duration::from_secs_f64(cfg.time_limit);
    let interval = Duration::from_secs_f64(cfg.nemesis_interval);
    let mut next_fault = Instant::now() + interval;
    let mut last_observe = Instant::now();
    while Instant::now() < deadline && !interrupted.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.update(shared.start.elapsed().as_secs(), || shared.describe());
        if last_observe.elapsed() >= Duration::from_secs(1) {
            observe(&shared, &mut live.admin, &mut live.observer, false).await;
            last_observe = Instant::now();
            restart_crashed(&shared, live);
        }
        if cfg.nemesis.is_empty() || Instant::now() < next_fault {
            continue;
        }
        next_fault = Instant::now() + interval;
        match schedule.active.take() {
            Some((kind, a)) => schedule.active = heal(&shared, live, kind, a),
            None => schedule.inject_next(cfg, &shared, live).await,
        }
    }
    schedule
}

/// A node that dies on its own is a bug: the history says so (the
/// checker's crash check reads it) and the node is started again.
fn restart_crashed(shared: &Shared, live: &mut Live) {
    for (i, why) in live.cluster.exited() {
        tracing::warn!("node n{} exited on its own: {why}", i + 1);
        shared
            .run
            .record(record::nemesis(shared.now(), CRASH, "start", Some(why)));
        let _ = live.cluster.restart(i);
    }
}

/// Heals the fault in force, or takes its next step; what is still in
/// force after.
fn heal(shared: &Shared, live: &mut Live, kind: Kind, a: Active) -> Option<(Kind, Active)> {
    let (note, failed) = match nemesis::heal(a, &mut live.cluster) {
        Ok(Healed::Done(note)) => (note, None),
        Ok(Healed::Step(what, still)) => {
            tracing::info!("nemesis step: {}: {what}", kind.name());
            shared.run.record(record::nemesis(
                shared.now(),
                kind.name(),
                "step",
                Some(what.clone()),
            ));
            *shared.fault.lock().expect("fault lock") = Some(format!("{}: {what}", kind.name()));
            return Some((kind, still));
        }
        Err(e) => (None, Some(e.to_string())),
    };
    tracing::info!(
        "nemesis stop: {} {}",
        kind.name(),
        note.as_deref().unwrap_or("")
    );
    if let Some(e) = &failed {
        tracing::warn!("nemesis heal failed: {}: {e}", kind.name());
    }
    shared.run.record(record::nemesis(
        shared.now(),
        kind.name(),
        "stop",
        failed.or(note),
    ));
    *shared.fault.lock().expect("fault lock") = None;
    None
}

impl Schedule {
    /// Injects the next kind of the cycle. Kinds come round in a shuffled
    /// cycle, so a run long enough for one cycle injects every kind at
    /// least once.
    async fn inject_next(&mut self, cfg: &TestConfig, shared: &Shared, live: &mut Live) {
        if self.next_kind.is_multiple_of(self.order.len()) {
            self.order.shuffle(&mut self.rng);
        }
        let kind = self.order[self.next_kind % self.order.len()];
        self.next_kind += 1;
        let leader = match live.admin.status(self.rng.gen_range(0..cfg.nodes)).await {
            Ok(s) => leader_of(&s),
            Err(_) => None,
        };
        match nemesis::inject(kind, &mut live.cluster, leader, &mut self.rng) {
            Ok((a, what)) => {
                tracing::info!("nemesis start: {}: {what}", kind.name());
                *shared.fault.lock().expect("fault lock") =
                    Some(format!("{}: {what}", kind.name()));
                shared.run.record(record::nemesis(
                    shared.now(),
                    kind.name(),
                    "start",
                    Some(what),
                ));
                self.active = Some((kind, a));
            }
            Err(e) => {
                // A nemesis that fails is reported, never skipped silently.
                let msg = format!("{} could not be injected: {e:#}", kind.name());
                tracing::warn!("nemesis failed: {msg}");
                shared.run.record(record::nemesis(
                    shared.now(),
                    kind.name(),
                    "failed",
                    Some(msg),
                ));
            }
        }
    }
}

fn leader_of(status: &gpaxos_node::client::Status) -> Option<usize> {
    status
        .leader
        .trim_start_matches('n')
        .parse::<usize>()
        .ok()
        .map(|n| n - 1)
}
