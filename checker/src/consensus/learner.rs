//! Replays one learner's observations into its learned sequence over time,
//! and cuts the timeline into runs: maximal stretches in which every
//! observation extends the previous one (Stability, Section 4.3).
//!
//! Observations are deltas: the sequence after one is the previous sequence
//! cut to `from`, followed by `cmds`. Appending to a sequence always extends
//! its history, so only an observation that cuts (`from` below the known
//! length, as after a restart) can break Stability, and only the part after
//! the cut needs comparing.

use super::cstruct::{Divergence, KeyedHistory};
use super::table::{CmdIx, CommandTable};
use crate::fxhash::FxHashMap;
use crate::history::LearnerObservation;

/// When and where a command first appeared in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub time: u64,
    pub line: usize,
}

/// A stretch of a learner's timeline in which its history only grew.
#[derive(Clone, Debug)]
pub struct Run {
    /// Time of the run's first observation.
    pub start: u64,
    /// Time of the next run's first observation; `None` for the last run.
    pub end: Option<u64>,
    /// The learned sequence (duplicates dropped) at the run's last
    /// observation: the run's largest history.
    pub seq: Vec<CmdIx>,
    pub last: Seen,
    /// The first observation of this run holding each command.
    pub learned_at: FxHashMap<CmdIx, Seen>,
}

/// Something the replay found wrong with the learner's observations.
#[derive(Clone, Debug)]
pub enum Finding {
    /// The same command twice in the learned sequence (Nontriviality: a
    /// history without duplicates, Section 4.4).
    Duplicate {
        cmd: CmdIx,
        first_position: usize,
        position: usize,
        at: Seen,
    },
    /// The new observation's history does not extend the previous one.
    /// `before` and `after` are the whole sequences, duplicates dropped.
    Unstable {
        previous: Seen,
        at: Seen,
        before: Vec<CmdIx>,
        after: Vec<CmdIx>,
        divergences: Vec<Divergence>,
    },
    /// An observation that starts past the end of the known sequence: the
    /// learner's sequence cannot be rebuilt from here on.
    Gap { at: Seen, from: usize, known: usize },
}

/// A learner's whole timeline.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub node: String,
    pub runs: Vec<Run>,
    pub observations: usize,
    /// The learner's last observation, when it has `final: true`.
    pub final_seen: Option<Seen>,
    pub findings: Vec<Finding>,
    /// Set after a gap: later observations were not replayed.
    pub abandoned: bool,
}

impl Timeline {
    /// The learner's sequence at its last observation.
    pub fn last_seq(&self) -> &[CmdIx] {
        self.runs.last().map_or(&[], |r| r.seq.as_slice())
    }
}

/// Rebuilds one learner's sequence observation by observation.
pub struct Replay {
    timeline: Timeline,
    /// The sequence as observed, repeats included (positions count them).
    raw: Vec<CmdIx>,
    /// `effective_before[i]`: how many of `raw[..i]` are first occurrences.
    effective_before: Vec<usize>,
    /// The sequence with repeats dropped: the learned history's order.
    effective: Vec<CmdIx>,
    /// Raw position of each command present in `effective`.
    first_position: FxHashMap<CmdIx, usize>,
}

impl Replay {
    pub fn new(node: &str) -> Self {
        Replay {
            timeline: Timeline {
                node: node.to_owned(),
                runs: Vec::new(),
                observations: 0,
                final_seen: None,
                findings: Vec::new(),
                abandoned: false,
            },
            raw: Vec::new(),
            effective_before: vec![0],
            effective: Vec::new(),
            first_position: FxHashMap::default(),
        }
    }

    pub fn apply(&mut self, table: &mut CommandTable, obs: &LearnerObservation, line: usize) {
        if self.timeline.abandoned {
            return;
        }
        let at = Seen {
            time: obs.time,
            line,
        };
        self.timeline.observations += 1;
        self.timeline.final_seen = obs.is_final.then_some(at);
        if obs.from > self.raw.len() {
            self.timeline.findings.push(Finding::Gap {
                at,
                from: obs.from,
                known: self.raw.len(),
            });
            self.timeline.abandoned = true;
            return;
        }
        let cut = obs.from < self.raw.len();
        let before = cut.then(|| self.effective.clone());
        self.truncate(obs.from);
        let kept = self.effective.len();
        for cmd in &obs.cmds {
            let ix = table.intern(cmd);
            self.push(ix, at);
        }
        let stable = match &before {
            None => true,
            Some(before) => self.extends(table, before, kept, at),
        };
        if stable && !self.timeline.runs.is_empty() {
            let run = self.timeline.runs.last_mut().expect("checked non-empty");
            for &cmd in &self.effective[kept..] {
                run.learned_at.entry(cmd).or_insert(at);
            }
            run.seq.truncate(kept);
            run.seq.extend_from_slice(&self.effective[kept..]);
            run.last = at;
        } else {
            if let Some(run) = self.timeline.runs.last_mut() {
                run.end = Some(obs.time);
            }
            self.timeline.runs.push(Run {
                start: obs.time,
                end: None,
                seq: self.effective.clone(),
                last: at,
                learned_at: self.effective.iter().map(|&c| (c, at)).collect(),
            });
        }
    }

    pub fn finish(self) -> Timeline {
        self.timeline
    }

    fn truncate(&mut self, from: usize) {
        for &cmd in &self.raw[from..] {
            if self.first_position.get(&cmd).is_some_and(|&p| p >= from) {
                self.first_position.remove(&cmd);
            }
        }
        self.raw.truncate(from);
        self.effective_before.truncate(from + 1);
        self.effective.truncate(self.effective_before[from]);
    }

    fn push(&mut self, cmd: CmdIx, at: Seen) {
        let position = self.raw.len();
        self.raw.push(cmd);
        match self.first_position.get(&cmd) {
            Some(&first_position) => self.timeline.findings.push(Finding::Duplicate {
                cmd,
                first_position,
                position,
                at,
            }),
            None => {
                self.first_position.insert(cmd, position);
                self.effective.push(cmd);
            }
        }
        self.effective_before.push(self.effective.len());
    }

    /// Whether the new sequence's history extends `before`'s; both share
    /// `before[..kept]`, so only what follows it is compared. Records the
    /// finding when it does not.
    fn extends(&mut self, table: &CommandTable, before: &[CmdIx], kept: usize, at: Seen) -> bool {
        let after = &self.effective;
        let common = kept
            + before[kept..]
                .iter()
                .zip(&after[kept..])
                .take_while(|(a, b)| a == b)
                .count();
        if common == before.len() {
            return true;
        }
        let old = KeyedHistory::from_sequence(table, &before[common..]);
        let new = KeyedHistory::from_sequence(table, &after[common..]);
        if old.prefix_of(&new).is_ok() {
            return true;
        }
        // Recompute on the whole sequences so that positions in the report
        // are the learner's, not the suffix's.
        let old = KeyedHistory::from_sequence(table, before);
        let new = KeyedHistory::from_sequence(table, after);
        let divergences = old.prefix_of(&new).err().unwrap_or_default();
        let previous = self.timeline.runs.last().map_or(at, |r| r.last);
        self.timeline.findings.push(Finding::Unstable {
            previous,
            at,
            before: before.to_vec(),
            after: after.clone(),
            divergences,
        });
        false
    }
}
