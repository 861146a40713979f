//! Reading the learners: observations into the history, waiting for them
//! to agree, and their own invariant checks.

use super::Shared;
use crate::observe::Observer;
use crate::record;
use gpaxos_checker::run::SELF_REPORT;
use gpaxos_node::client::Client;
use gpaxos_node::protocol::node_name;
use std::time::{Duration, Instant};

/// Takes one observation of every learner into the run's history.
pub(super) async fn observe(
    shared: &Shared,
    admin: &mut Client,
    observer: &mut Observer,
    is_final: bool,
) -> Vec<u64> {
    observer
        .observe(admin, is_final, |o| {
            shared.run.record(record::learned(
                node_name(o.node as u32),
                shared.now(),
                o.from as usize,
                &o.cmds,
                is_final,
            ))
        })
        .await
}

/// Waits (at most `limit`) until every learner shows the same length.
pub(super) async fn settle(admin: &mut Client, nodes: usize, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let mut lens = Vec::new();
        for i in 0..nodes {
            lens.push(
                admin
                    .learned(i, u64::MAX, 0)
                    .await
                    .map_or(u64::MAX, |(t, _)| t),
            );
        }
        if lens.windows(2).all(|w| w[0] == w[1]) || Instant::now() > until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Each node's count of chosen values its learner refused, where it
/// answers: a cluster the run did not start may have counted some before.
pub(super) async fn incompatible_counts(admin: &mut Client, nodes: usize) -> Vec<u64> {
    let mut counts = Vec::new();
    for i in 0..nodes {
        counts.push(
            admin
                .status(i)
                .await
                .map_or(0, |s| s.stats.incompatible_learned),
        );
    }
    counts
}

/// Each node's own invariant check, into the history (the checker's
/// self-report check reads it): a learner that was shown a chosen value
/// incompatible with what it had learned (Proposition 1 says chosen values
/// are compatible) refused it and counted it.
pub(super) async fn record_self_reports(shared: &Shared, admin: &mut Client, before: &[u64]) {
    for (i, before) in before.iter().enumerate() {
        let Ok(s) = admin.status(i).await else {
            continue;
        };
        let during = s.stats.incompatible_learned.saturating_sub(*before);
        if during > 0 {
            let report = format!(
                "Consistency: {}'s learner was shown {during} chosen value(s) incompatible with what it had learned",
                s.node
            );
            shared.run.record(record::nemesis(
                shared.now(),
                SELF_REPORT,
                "report",
                Some(report),
            ));
        }
    }
}
