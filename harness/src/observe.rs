//! Reading every learner's learned sequence as it grows: the harness's
//! learner observations.
//!
//! A node holds only the latest part of its sequence (a restart resumes
//! from a snapshot that keeps a bounded tail), so an observer must read
//! often enough to stay within that tail; one that reads only at the end
//! of a long run finds the start compacted away and can judge nothing.

use gpaxos_node::client::Client;
use gpaxos_node::protocol::node_name;
use gpaxos_node::Command;

/// How far the observer has read one learner's sequence.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    /// The next position to read.
    next: u64,
    /// The node's count of rewrites by snapshots from peers, when last read.
    rewrites: u64,
}

/// What one read of a learner found: its sequence from `from` on,
/// counted from where the learner stood when the observer began (see
/// [`Observer::start_at_end`]).
pub struct Observation {
    pub node: usize,
    pub from: u64,
    pub cmds: Vec<Command>,
}

/// Follows every learner of a cluster from position 0 on (or from where
/// it stood, after [`Observer::start_at_end`]).
pub struct Observer {
    cursors: Vec<Cursor>,
    /// Each learner's length when the run began: positions below it
    /// predate the run and are not recorded.
    base: Vec<u64>,
}

impl Observer {
    pub fn new(nodes: usize) -> Observer {
        Observer {
            cursors: vec![Cursor::default(); nodes],
            base: vec![0; nodes],
        }
    }

    /// Moves every cursor to where its learner stands now: a run against a
    /// cluster that learned commands before it reads only what is learned
    /// during the run, and records positions from there, so the checker
    /// judges the run's part of each sequence as it would a whole one.
    /// Every learner must answer, or its earlier commands would be read as
    /// this run's.
    pub async fn start_at_end(&mut self, admin: &mut Client) -> anyhow::Result<()> {
        for (node, cursor) in self.cursors.iter_mut().enumerate() {
            let page = admin.learned_page(node, u64::MAX, 0).await.map_err(|e| {
                anyhow::anyhow!(
                    "learner {} did not answer where its sequence stands: {e}",
                    node_name(node as u32)
                )
            })?;
            *cursor = Cursor {
                next: page.total,
                rewrites: page.rewrites,
            };
            self.base[node] = page.total;
        }
        Ok(())
    }

    /// Reads every learner from its cursor and hands `record` what is new.
    /// A learner whose sequence got shorter (it lost what it had shown: a
    /// Stability problem, or a fresh data directory) is handed in full; one
    /// whose sequence a snapshot from a peer rewrote is read again from the
    /// first position the snapshot changed (or the first it still holds).
    /// With `is_final`, every learner that answers is handed over, new
    /// commands or not. Returns each learner's total length (`u64::MAX`
    /// where it did not answer).
    pub async fn observe(
        &mut self,
        admin: &mut Client,
        is_final: bool,
        mut record: impl FnMut(Observation),
    ) -> Vec<u64> {
        let mut lens = Vec::new();
        for (node, cursor) in self.cursors.iter_mut().enumerate() {
            let Some((from, cmds, total, rewrites)) = read_learner(admin, node, *cursor).await
            else {
                lens.push(u64::MAX);
                continue;
            };
            let next = from + cmds.len() as u64;
            if !cmds.is_empty() || is_final || from < cursor.next {
                // A learner rewritten or shortened below its base shows
                // what it holds from the base on, as a cut to position 0.
                let base = self.base[node];
                let skip = base.saturating_sub(from).min(cmds.len() as u64) as usize;
                let mut cmds = cmds;
                cmds.drain(..skip);
                record(Observation {
                    node,
                    from: from.saturating_sub(base),
                    cmds,
                });
            }
            *cursor = Cursor { next, rewrites };
            lens.push(total);
        }
        lens
    }
}

/// Reads learner `i` from its cursor to its end: the position the read
/// starts at, the commands, the total length and the rewrite count.
async fn read_learner(
    admin: &mut Client,
    i: usize,
    cursor: Cursor,
) -> Option<(u64, Vec<Command>, u64, u64)> {
    let mut from = cursor.next;
    let mut cmds = Vec::new();
    let mut restarted = false;
    loop {
        let page = admin
            .learned_page(i, from + cmds.len() as u64, 20_000)
            .await
            .ok()?;
        let rewound =
            page.total < from || (page.rewrites != cursor.rewrites && page.rewritten_at < from);
        if rewound && !restarted {
            restarted = true;
            from = if page.total < from {
                0
            } else {
                page.rewritten_at
            };
            cmds.clear();
            continue;
        }
        if cmds.is_empty() {
            // Positions below `page.from` were compacted away.
            from = page.from;
        }
        let got = page.cmds.len();
        cmds.extend(page.cmds);
        if got == 0 || from + cmds.len() as u64 >= page.total {
            return Some((from, cmds, page.total, page.rewrites));
        }
    }
}
