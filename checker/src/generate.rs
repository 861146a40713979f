//! Synthetic linearizable key-value histories, for benchmarks and tests.
//!
//! Processes invoke operations on a simulated store that applies each one
//! atomically at a random point between its invocation and its completion,
//! so the history is linearizable by construction. A fraction of the
//! operations end `info`: those took effect or not (a coin decides), and
//! their process is replaced by a new one, as in Jepsen.

use crate::fxhash::FxHashMap;
use crate::history::{ClientEvent, CmdId, Command, EventKind, Op, OpResult, Record};
use std::io::Write;

/// What to generate.
#[derive(Clone, Debug)]
pub struct KvWorkload {
    pub ops: usize,
    pub keys: usize,
    pub processes: usize,
    /// Fraction of operations that end `info`.
    pub indeterminate: f64,
    pub seed: u64,
}

/// A small, seedable generator (xorshift64*), so a seed always gives the
/// same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

struct Pending {
    command: Command,
    invoked: bool,
    applied: Option<(EventKind, Option<OpResult>)>,
    indeterminate: bool,
}

/// Writes a linearizable kv history as JSON Lines; returns the number of
/// records written.
pub fn write_kv(workload: &KvWorkload, out: &mut impl Write) -> std::io::Result<usize> {
    let mut rng = Rng(workload.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut store: FxHashMap<usize, String> = FxHashMap::default();
    let mut process_of: Vec<u64> = (0..workload.processes as u64).collect();
    let mut next_process = workload.processes as u64;
    let mut seq: Vec<u64> = vec![0; workload.processes];
    let mut slots: Vec<Option<Pending>> = (0..workload.processes).map(|_| None).collect();
    let (mut invoked, mut records, mut time) = (0usize, 0usize, 0u64);
    let mut busy = 0usize;
    let mut emit = |out: &mut dyn Write,
                    kind,
                    process,
                    time,
                    command: &Command,
                    result|
     -> std::io::Result<()> {
        let record = Record::Client(ClientEvent {
            kind,
            process,
            time,
            command: command.clone(),
            result,
        });
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
        records += 1;
        Ok(())
    };
    while invoked < workload.ops || busy > 0 {
        let s = rng.below(workload.processes);
        time += 1 + rng.below(3) as u64;
        let process = process_of[s];
        match slots[s].take() {
            None if invoked < workload.ops => {
                invoked += 1;
                seq[s] += 1;
                let key = rng.below(workload.keys);
                let name = format!("k{key}");
                let value = format!("{process}.{}", seq[s]);
                let op = match rng.below(10) {
                    0..=4 => Op::Get { key: name },
                    5..=7 => Op::Put { key: name, value },
                    8 => Op::Append {
                        key: name,
                        value: format!(",{}", seq[s] % 10),
                    },
                    _ => Op::Cas {
                        from: if rng.chance(0.5) {
                            store.get(&key).cloned()
                        } else {
                            Some(value.clone())
                        },
                        key: name,
                        to: value,
                    },
                };
                let command = Command {
                    id: CmdId(format!("{process}.{}", seq[s])),
                    op,
                };
                emit(out, EventKind::Invoke, process, time, &command, None)?;
                busy += 1;
                slots[s] = Some(Pending {
                    command,
                    invoked: true,
                    applied: None,
                    indeterminate: rng.chance(workload.indeterminate),
                });
            }
            None => {}
            Some(mut p) if p.applied.is_none() && !(p.indeterminate && rng.chance(0.5)) => {
                // The linearization point.
                debug_assert!(p.invoked);
                let key: usize = match &p.command.op {
                    Op::Get { key }
                    | Op::Put { key, .. }
                    | Op::Append { key, .. }
                    | Op::Cas { key, .. } => key[1..].parse().unwrap_or(0),
                    _ => 0,
                };
                p.applied = Some(match &p.command.op {
                    Op::Get { .. } => (
                        EventKind::Ok,
                        Some(OpResult::Value(store.get(&key).cloned())),
                    ),
                    Op::Put { value, .. } => {
                        store.insert(key, value.clone());
                        (EventKind::Ok, None)
                    }
                    Op::Append { value, .. } => {
                        store.entry(key).or_default().push_str(value);
                        (EventKind::Ok, None)
                    }
                    Op::Cas { from, to, .. } => {
                        if store.get(&key) == from.as_ref() {
                            store.insert(key, to.clone());
                            (EventKind::Ok, None)
                        } else {
                            (EventKind::Fail, None)
                        }
                    }
                    _ => (EventKind::Ok, None),
                });
                slots[s] = Some(p);
            }
            Some(p) => {
                busy -= 1;
                if p.indeterminate {
                    emit(out, EventKind::Info, process, time, &p.command, None)?;
                    process_of[s] = next_process;
                    next_process += 1;
                    seq[s] = 0;
                } else {
                    let (kind, result) = p.applied.unwrap_or((EventKind::Ok, None));
                    emit(out, kind, process, time, &p.command, result)?;
                }
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check_history, CheckOptions};
    use crate::history::History;
    use crate::Verdict;

    #[test]
    fn generated_histories_are_linearizable() {
        let workload = KvWorkload {
            ops: 5000,
            keys: 20,
            processes: 10,
            indeterminate: 0.02,
            seed: 3,
        };
        let mut out = Vec::new();
        let records = write_kv(&workload, &mut out).unwrap();
        assert!(records >= 2 * 5000 - 200);
        let h = History::from_jsonl_str(std::str::from_utf8(&out).unwrap()).unwrap();
        let r = check_history("gen", &h, &CheckOptions::default());
        assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.findings());
        assert!(h.client_events().any(|e| e.kind == EventKind::Info));
        assert!(h.client_events().any(|e| e.kind == EventKind::Fail));
    }
}
