//! Liveness (Section 4.3), judged from the final heal on: every command
//! that took effect or that some learner learned is in every live
//! learner's final history.

use super::learner::Timeline;
use super::table::{CmdIx, CommandTable};
use super::{describe, time_label, Checker, ClientOp, Property, Violation, MAX_LISTED};
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::history::{CmdId, EventKind, Op};

/// A command every live learner must have learned by the end.
struct Required {
    /// When it was invoked (or, for a checkpoint, first learned).
    at: u64,
    /// `None`: no learner learned it at all.
    cmd: Option<CmdIx>,
    id: CmdId,
    /// The command and why it is required, for people.
    what: String,
}

impl Checker {
    /// Liveness after the final heal: every command invoked before it that
    /// some learner learned, or whose client saw it take effect (`ok`, or a
    /// `fail` of a `cas` or `transfer`, which is a refusal), is in every
    /// learner's final observation (`Liveness(C, l)`, Section 4.3, for the
    /// commands the run gave time to finish). Returns whether it judged.
    pub(super) fn liveness(
        &mut self,
        table: &CommandTable,
        timelines: &[Timeline],
        ops: &FxHashMap<&CmdId, ClientOp<'_>>,
        heal: Option<u64>,
    ) -> bool {
        let Some(heal) = heal else {
            self.notes
                .push("no final heal record: Liveness was not judged".into());
            return false;
        };
        // Who learned what first, over every run of every learner.
        let mut learned: FxHashMap<CmdIx, (u64, &str)> = FxHashMap::default();
        for t in timelines {
            for run in &t.runs {
                for (&cmd, seen) in &run.learned_at {
                    let entry = learned.entry(cmd).or_insert((seen.time, &t.node));
                    if seen.time < entry.0 {
                        *entry = (seen.time, &t.node);
                    }
                }
            }
        }
        // (sort key, command, why it must be learned)
        let mut required: Vec<Required> = Vec::new();
        for op in ops.values().filter(|op| op.invoked < heal) {
            let cmd = table.lookup(&op.command.id);
            // A failed cas or transfer took effect as a refusal; any other
            // failure did not take effect and need not be learned.
            let took_effect = |kind| match kind {
                EventKind::Ok => true,
                EventKind::Fail => matches!(op.command.op, Op::Cas { .. } | Op::Transfer { .. }),
                _ => false,
            };
            let why = match (op.completed, cmd.and_then(|c| learned.get(&c))) {
                (Some((kind, at)), _) if took_effect(kind) => format!(
                    "invoked at {}, completed {} at {}",
                    time_label(op.invoked),
                    kind.name(),
                    time_label(at)
                ),
                (_, Some((at, node))) => format!(
                    "invoked at {}, learned by {node} at {}",
                    time_label(op.invoked),
                    time_label(*at)
                ),
                _ => continue,
            };
            required.push(Required {
                at: op.invoked,
                cmd,
                what: format!("{} ({why})", op.command),
                id: op.command.id.clone(),
            });
        }
        for (&cmd, &(at, node)) in &learned {
            if table.command(cmd).is_checkpoint() && at <= heal {
                required.push(Required {
                    at,
                    cmd: Some(cmd),
                    what: format!(
                        "{} (learned by {node} at {})",
                        describe(table, cmd),
                        time_label(at)
                    ),
                    id: table.id(cmd).clone(),
                });
            }
        }
        required.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));

        let mut judged_any = false;
        for t in timelines {
            let Some(final_seen) = t.final_seen else {
                self.notes.push(format!(
                    "learner {} has no final observation (not live at the end): Liveness not judged for it",
                    t.node
                ));
                continue;
            };
            if t.abandoned {
                continue;
            }
            judged_any = true;
            let holds: FxHashSet<CmdIx> = t.last_seq().iter().copied().collect();
            let missing: Vec<&Required> = required
                .iter()
                .filter(|r| r.cmd.is_none_or(|c| !holds.contains(&c)))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let listed: Vec<&str> = missing.iter().take(3).map(|r| r.what.as_str()).collect();
            let message = format!(
                "after the final heal at {}, learner {}'s final history (at {}, line {}) lacks {} command(s) it \
                 must have learned, first: {}",
                time_label(heal),
                t.node,
                time_label(final_seen.time),
                final_seen.line,
                missing.len(),
                listed.join("; ")
            );
            let commands = missing
                .iter()
                .take(MAX_LISTED)
                .map(|r| r.id.clone())
                .collect();
            self.push(Violation {
                property: Property::Liveness,
                message,
                learners: vec![t.node.clone()],
                commands,
                times: vec![heal, final_seen.time],
                lines: vec![final_seen.line],
                side_by_side: None,
            });
        }
        if !judged_any && !required.is_empty() {
            self.unknown_reasons.push(
                "a final heal was recorded but no learner has a final observation: Liveness could not be judged"
                    .into(),
            );
        }
        judged_any
    }
}
