//! Consistency (Section 4.3): the learned histories of any two learners
//! are always compatible.

use super::cstruct::{Divergence, KeyedHistory};
use super::learner::{Run, Seen, Timeline};
use super::table::{CmdIx, CommandTable};
use super::{describe, key_label, side_by_side, time_label, Checker, Property, Violation};

impl Checker {
    /// Consistency: every two learners' histories are compatible at all
    /// times. Within a run a learner's history only grows, and a prefix of
    /// a compatible history is compatible, so it suffices to compare the
    /// largest histories of every two runs that overlap in time; the time
    /// reported is when both sides had learned the offending pair.
    ///
    /// After a Stability violation a run's largest history may not be what
    /// the learner held while the other run overlapped it; a divergence
    /// whose commands were learned only after the overlap ended is not
    /// reported (the run is invalid for Stability already).
    pub(super) fn consistency(&mut self, table: &CommandTable, timelines: &[Timeline]) {
        let models: Vec<Vec<KeyedHistory>> = timelines
            .iter()
            .map(|t| {
                t.runs
                    .iter()
                    .map(|r| KeyedHistory::from_sequence(table, &r.seq))
                    .collect()
            })
            .collect();
        for a in 0..timelines.len() {
            for b in a + 1..timelines.len() {
                for (ra, run_a) in timelines[a].runs.iter().enumerate() {
                    for (rb, run_b) in timelines[b].runs.iter().enumerate() {
                        if !overlap(run_a, run_b) {
                            continue;
                        }
                        let Err(divergences) = models[a][ra].compatible(&models[b][rb]) else {
                            continue;
                        };
                        let until = match (run_a.end, run_b.end) {
                            (Some(x), Some(y)) => x.min(y),
                            (Some(x), None) | (None, Some(x)) => x,
                            (None, None) => u64::MAX,
                        };
                        let first = divergences
                            .iter()
                            .filter_map(|d| {
                                let seen_a = run_a.learned_at.get(&d.left?)?;
                                let seen_b = run_b.learned_at.get(&d.right?)?;
                                let t = seen_a.time.max(seen_b.time);
                                (t < until || until == u64::MAX).then_some((t, d, *seen_a, *seen_b))
                            })
                            .min_by_key(|(t, d, _, _)| (*t, d.index));
                        if let Some((_, d, seen_a, seen_b)) = first {
                            let sides = [
                                (&timelines[a].node, &models[a][ra], seen_a),
                                (&timelines[b].node, &models[b][rb], seen_b),
                            ];
                            self.incompatible(table, sides, d, divergences.len());
                        }
                    }
                }
            }
        }
    }

    fn incompatible(
        &mut self,
        table: &CommandTable,
        [(left_node, left, seen_l), (right_node, right, seen_r)]: [(&String, &KeyedHistory, Seen);
            2],
        d: &Divergence,
        keys: usize,
    ) {
        let (x, y) = (
            d.left.expect("compatibility parts on two commands"),
            d.right.expect("compatibility parts on two commands"),
        );
        let on = key_label(table, d);
        let mut message = if left.contains(y) && right.contains(x) {
            format!(
                "learners {left_node} and {right_node} order the interfering commands {} and {} differently: \
                 on {on}, {left_node} has {} before {} (learned by {}, line {}), {right_node} has {} before {} \
                 (learned by {}, line {})",
                describe(table, x),
                describe(table, y),
                table.id(x),
                table.id(y),
                time_label(seen_l.time),
                seen_l.line,
                table.id(y),
                table.id(x),
                time_label(seen_r.time),
                seen_r.line,
            )
        } else {
            let lacks = |node: &str, h: &KeyedHistory, c: CmdIx| {
                if h.contains(c) {
                    String::new()
                } else {
                    format!("; {node} has not learned {}", table.id(c))
                }
            };
            format!(
                "learners {left_node} and {right_node} learned incompatible histories: at index {} of {on}, \
                 {left_node} has {} (learned by {}, line {}) where {right_node} has {} (learned by {}, line {}){}{}",
                d.index,
                describe(table, x),
                time_label(seen_l.time),
                seen_l.line,
                describe(table, y),
                time_label(seen_r.time),
                seen_r.line,
                lacks(right_node, right, x),
                lacks(left_node, left, y),
            )
        };
        if keys > 1 {
            message.push_str(&format!(" ({} other keys part too)", keys - 1));
        }
        self.push(Violation {
            property: Property::Consistency,
            message,
            learners: vec![left_node.clone(), right_node.clone()],
            commands: vec![table.id(x).clone(), table.id(y).clone()],
            times: vec![seen_l.time, seen_r.time],
            lines: vec![seen_l.line, seen_r.line],
            side_by_side: Some(side_by_side(
                table,
                d,
                (left, left_node.clone()),
                (right, right_node.clone()),
            )),
        });
    }
}

fn overlap(a: &Run, b: &Run) -> bool {
    let ends_after = |end: Option<u64>, start: u64| end.is_none_or(|e| e > start);
    ends_after(a.end, b.start) && ends_after(b.end, a.start)
}
