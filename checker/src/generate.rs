//! Synthetic key-value histories, for benchmarks and tests.
//!
//! Processes invoke operations on a simulated store that applies each one
//! atomically at a random point between its invocation and its completion,
//! so the history is linearizable by construction. A fraction of the
//! operations end `info`: those took effect or not (a coin decides), and
//! their process is replaced by a new one, as in Jepsen.
//!
//! With `bad` set, that many reads are planted stale: each returns the
//! value its key held before its last overwrite, where the value was put
//! by an operation that completed before the overwrite was invoked, and
//! the overwrite completed before the read was invoked. Values put are
//! unique and appended ones hold a comma, which put values never do, so
//! nothing can write the old value again: every planted read makes the
//! history not linearizable.
//!
//! With `hang` set, that many processes hang, as in Porcupine's 50-client
//! kv logs: at a random point one write of theirs never takes effect
//! while the run lasts, and completes `ok` at the very end (it takes effect
//! last). Such an operation is concurrent with everything after its call,
//! which is what makes those histories hard to refute.
//!
//! The history is written as JSON Lines or as Jepsen EDN, one map a line.

use crate::fxhash::FxHashMap;
use crate::history::{ClientEvent, CmdId, Command, EventKind, Op, OpResult, Record};
use std::io::Write;

/// The format a history is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutFormat {
    #[default]
    Jsonl,
    /// Jepsen EDN, one event map a line, with `:key` and `:time`.
    Edn,
}

/// The operations a workload draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    /// Half gets, 30% puts, 10% appends, 10% cas.
    #[default]
    Mixed,
    /// As Porcupine's kv logs: half gets, 45% appends of `"x P S y"`, 5%
    /// puts, so values grow long and are rarely reset.
    Appends,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct KvWorkload {
    pub ops: usize,
    pub keys: usize,
    pub processes: usize,
    /// Fraction of operations that end `info`.
    pub indeterminate: f64,
    pub seed: u64,
    /// Processes that hang on a write until the end.
    pub hang: usize,
    pub style: Style,
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
    key: usize,
    invoked_at: u64,
    applied: Option<(EventKind, Option<OpResult>)>,
    indeterminate: bool,
    /// Hung until the end of the run.
    hung: bool,
}

/// An operation that wrote a key, as far as planting a stale read needs.
#[derive(Clone)]
struct Writer {
    id: String,
    /// The value it wrote, if it put it whole (a put or a cas).
    put: Option<String>,
    certain: bool,
    invoked_at: u64,
    done_at: Option<u64>,
}

/// A key's last two writers.
#[derive(Default)]
struct Writes {
    current: Option<Writer>,
    previous: Option<Writer>,
}

impl Writes {
    fn wrote(&mut self, writer: Writer) {
        self.previous = self.current.replace(writer);
    }

    fn completed(&mut self, id: &str, time: u64) {
        for w in [&mut self.current, &mut self.previous]
            .into_iter()
            .flatten()
        {
            if w.id == id {
                w.done_at = Some(time);
            }
        }
    }

    /// A value that no read invoked at `time` can see, and that nothing
    /// can write again: the previous writer's, if it is certain and put
    /// whole, done before the current one began, which is certain and done.
    fn stale(&self, time: u64) -> Option<String> {
        let (old, new) = (self.previous.as_ref()?, self.current.as_ref()?);
        let old_done = old.done_at?;
        let new_done = new.done_at?;
        (old.certain && new.certain && old_done < new.invoked_at && new_done < time)
            .then(|| old.put.clone())
            .flatten()
    }
}

/// Writes a kv history of `workload` in `format` with `bad` planted stale
/// reads; returns the number of records written.
pub fn write_kv_as(
    workload: &KvWorkload,
    format: OutFormat,
    bad: usize,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let mut g = Generator::new(workload, format, bad);
    while g.invoked < workload.ops || g.busy > g.hung {
        g.step(out)?;
    }
    g.release(out)?;
    Ok(g.records)
}

/// Writes a linearizable kv history as JSON Lines; returns the number of
/// records written.
pub fn write_kv(workload: &KvWorkload, out: &mut impl Write) -> std::io::Result<usize> {
    write_kv_as(workload, OutFormat::Jsonl, 0, out)
}

struct Generator<'w> {
    workload: &'w KvWorkload,
    format: OutFormat,
    rng: Rng,
    store: FxHashMap<usize, String>,
    writes: FxHashMap<usize, Writes>,
    process_of: Vec<u64>,
    next_process: u64,
    seq: Vec<u64>,
    slots: Vec<Option<Pending>>,
    invoked: usize,
    busy: usize,
    records: usize,
    time: u64,
    bad: usize,
    planted: usize,
    /// Per process, the operation count at which it hangs, if it does.
    hang_at: Vec<Option<usize>>,
    hung: usize,
}

impl<'w> Generator<'w> {
    fn new(workload: &'w KvWorkload, format: OutFormat, bad: usize) -> Self {
        Generator {
            workload,
            format,
            rng: Rng(workload.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            store: FxHashMap::default(),
            writes: FxHashMap::default(),
            process_of: (0..workload.processes as u64).collect(),
            next_process: workload.processes as u64,
            seq: vec![0; workload.processes],
            slots: (0..workload.processes).map(|_| None).collect(),
            invoked: 0,
            busy: 0,
            records: 0,
            time: 0,
            bad,
            planted: 0,
            hang_at: Vec::new(),
            hung: 0,
        }
        .with_hangs()
    }

    /// Picks the processes that hang, and when.
    fn with_hangs(mut self) -> Self {
        let n = self.workload.processes;
        self.hang_at = vec![None; n];
        for _ in 0..self.workload.hang.min(n.saturating_sub(1)) {
            let mut s = self.rng.below(n);
            while self.hang_at[s].is_some() {
                s = (s + 1) % n;
            }
            let ops = self.workload.ops.max(1);
            self.hang_at[s] = Some(ops / 4 + self.rng.below(ops - ops / 4));
        }
        self
    }

    /// Completes the hung operations at the end: they take effect last.
    fn release(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        for s in 0..self.slots.len() {
            let Some(mut p) = self.slots[s].take() else {
                continue;
            };
            self.time += 1;
            p.applied = Some(self.apply(&p));
            self.complete(s, p, out)?;
        }
        Ok(())
    }

    /// One process moves: invokes, takes effect, or completes.
    fn step(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let s = self.rng.below(self.workload.processes);
        self.time += 1 + self.rng.below(3) as u64;
        match self.slots[s].take() {
            None if self.invoked < self.workload.ops => self.invoke(s, out)?,
            None => {}
            Some(p) if p.hung => self.slots[s] = Some(p),
            Some(mut p) if p.applied.is_none() && !(p.indeterminate && self.rng.chance(0.5)) => {
                p.applied = Some(self.apply(&p));
                self.slots[s] = Some(p);
            }
            Some(p) => self.complete(s, p, out)?,
        }
        Ok(())
    }

    fn invoke(&mut self, s: usize, out: &mut impl Write) -> std::io::Result<()> {
        self.invoked += 1;
        self.seq[s] += 1;
        let process = self.process_of[s];
        let key = self.rng.below(self.workload.keys);
        let name = format!("k{key}");
        let value = format!("{process}.{}", self.seq[s]);
        let op = match self.workload.style {
            Style::Mixed => self.mixed(name, value, key, s),
            Style::Appends => {
                let value = format!("x {process} {} y", self.seq[s]);
                match self.rng.below(20) {
                    0..=9 => Op::Get { key: name },
                    10 => Op::Put { key: name, value },
                    _ => Op::Append { key: name, value },
                }
            }
        };
        let command = Command {
            id: CmdId(format!("{process}.{}", self.seq[s])),
            op,
        };
        self.emit(out, EventKind::Invoke, process, &command, None)?;
        self.busy += 1;
        self.pend(s, command, key);
        Ok(())
    }

    fn mixed(&mut self, name: String, value: String, key: usize, s: usize) -> Op {
        match self.rng.below(10) {
            0..=4 => Op::Get { key: name },
            5..=7 => Op::Put { key: name, value },
            8 => Op::Append {
                key: name,
                value: format!(",{}", self.seq[s] % 10),
            },
            _ => Op::Cas {
                from: if self.rng.chance(0.5) {
                    self.store.get(&key).cloned()
                } else {
                    Some(value.clone())
                },
                key: name,
                to: value,
            },
        }
    }

    /// The invoked operation, pending until it takes effect.
    fn pend(&mut self, s: usize, command: Command, key: usize) {
        let indeterminate = self.rng.chance(self.workload.indeterminate);
        let writes = !matches!(command.op, Op::Get { .. });
        let hung = writes && !indeterminate && self.hang_at[s].is_some_and(|at| self.invoked >= at);
        if hung {
            self.hang_at[s] = None;
            self.hung += 1;
        }
        self.slots[s] = Some(Pending {
            command,
            key,
            invoked_at: self.time,
            applied: None,
            indeterminate,
            hung,
        });
    }

    /// The linearization point: what the operation did and saw.
    fn apply(&mut self, p: &Pending) -> (EventKind, Option<OpResult>) {
        let key = p.key;
        let writer = |put: Option<&String>| Writer {
            id: p.command.id.0.clone(),
            put: put.cloned(),
            certain: !p.indeterminate,
            invoked_at: p.invoked_at,
            done_at: None,
        };
        match &p.command.op {
            Op::Get { .. } => (EventKind::Ok, Some(OpResult::Value(self.read(p)))),
            Op::Put { value, .. } => {
                self.store.insert(key, value.clone());
                self.writes
                    .entry(key)
                    .or_default()
                    .wrote(writer(Some(value)));
                (EventKind::Ok, None)
            }
            Op::Append { value, .. } => {
                self.store.entry(key).or_default().push_str(value);
                self.writes.entry(key).or_default().wrote(writer(None));
                (EventKind::Ok, None)
            }
            Op::Cas { from, to, .. } if self.store.get(&key) == from.as_ref() => {
                self.store.insert(key, to.clone());
                self.writes.entry(key).or_default().wrote(writer(Some(to)));
                (EventKind::Ok, None)
            }
            Op::Cas { .. } => (EventKind::Fail, None),
            _ => (EventKind::Ok, None),
        }
    }

    /// What a read returns: the current value, or a planted stale one
    /// when one is due (spread evenly over the history) and possible.
    fn read(&mut self, p: &Pending) -> Option<String> {
        let due = (self.planted + 1) * self.workload.ops / (self.bad + 1);
        if self.planted < self.bad && self.invoked >= due && !p.indeterminate {
            let stale = self.writes.get(&p.key).and_then(|w| w.stale(p.invoked_at));
            if stale.is_some() {
                self.planted += 1;
                return stale;
            }
        }
        self.store.get(&p.key).cloned()
    }

    fn complete(&mut self, s: usize, p: Pending, out: &mut impl Write) -> std::io::Result<()> {
        self.busy -= 1;
        let process = self.process_of[s];
        if p.indeterminate {
            self.emit(out, EventKind::Info, process, &p.command, None)?;
            self.process_of[s] = self.next_process;
            self.next_process += 1;
            self.seq[s] = 0;
            return Ok(());
        }
        if let Some(w) = self.writes.get_mut(&p.key) {
            w.completed(&p.command.id.0, self.time);
        }
        let (kind, result) = p.applied.unwrap_or((EventKind::Ok, None));
        self.emit(out, kind, process, &p.command, result)
    }

    fn emit(
        &mut self,
        out: &mut impl Write,
        kind: EventKind,
        process: u64,
        command: &Command,
        result: Option<OpResult>,
    ) -> std::io::Result<()> {
        self.records += 1;
        let event = ClientEvent {
            kind,
            process,
            time: self.time,
            command: command.clone(),
            result,
        };
        match self.format {
            OutFormat::Jsonl => {
                serde_json::to_writer(&mut *out, &Record::Client(event))?;
                out.write_all(b"\n")
            }
            OutFormat::Edn => write_edn(out, &event),
        }
    }
}

/// An EDN string literal.
fn edn_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::history::jepsen_write::string(&mut out, s);
    out
}

/// One client event as a Jepsen EDN map.
fn write_edn(out: &mut impl Write, e: &ClientEvent) -> std::io::Result<()> {
    let opt = |v: Option<&String>| v.map_or("nil".to_owned(), |v| edn_str(v));
    let (f, key, value) = match &e.command.op {
        Op::Get { key } => {
            let read = match &e.result {
                Some(OpResult::Value(v)) => opt(v.as_ref()),
                _ => "nil".to_owned(),
            };
            ("get", key, read)
        }
        Op::Put { key, value } => ("put", key, edn_str(value)),
        Op::Append { key, value } => ("append", key, edn_str(value)),
        Op::Cas { key, from, to } => (
            "cas",
            key,
            format!("[{} {}]", opt(from.as_ref()), edn_str(to)),
        ),
        other => unreachable!("the generator makes no {}", other.name()),
    };
    writeln!(
        out,
        "{{:process {}, :type :{}, :f :{f}, :key {}, :value {value}, :time {}}}",
        e.process,
        e.kind.name(),
        edn_str(key),
        e.time
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check_file, check_history, CheckOptions};
    use crate::history::History;
    use crate::Verdict;

    fn workload() -> KvWorkload {
        KvWorkload {
            ops: 5000,
            keys: 20,
            processes: 10,
            indeterminate: 0.02,
            seed: 3,
            hang: 0,
            style: Style::Mixed,
        }
    }

    #[test]
    fn generated_histories_are_linearizable() {
        let mut out = Vec::new();
        let records = write_kv(&workload(), &mut out).unwrap();
        assert!(records >= 2 * 5000 - 200);
        let h = History::from_jsonl_str(std::str::from_utf8(&out).unwrap()).unwrap();
        let r = check_history("gen", &h, &CheckOptions::default());
        assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.findings());
        assert!(h.client_events().any(|e| e.kind == EventKind::Info));
        assert!(h.client_events().any(|e| e.kind == EventKind::Fail));
    }

    /// Every format, with and without planted stale reads: one verdict, and
    /// as many failing keys as reads were planted (at most one a key).
    #[test]
    fn planted_stale_reads_are_found_in_both_formats() {
        let dir = std::env::temp_dir().join(format!("gpaxos-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (format, name) in [(OutFormat::Jsonl, "h.jsonl"), (OutFormat::Edn, "h.edn")] {
            for bad in [0, 3] {
                let path = dir.join(name);
                let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
                write_kv_as(&workload(), format, bad, &mut out).unwrap();
                drop(out);
                let r = check_file(&path, &CheckOptions::default());
                let l = r.linearizability.as_ref().unwrap();
                // Read whole (for a report) as well as streamed: one result.
                let whole = CheckOptions {
                    timeline: true,
                    ..CheckOptions::default()
                };
                let w = check_file(&path, &whole);
                let wl = w.linearizability.as_ref().unwrap();
                assert_eq!(
                    (w.verdict, wl.operations, wl.objects),
                    (r.verdict, l.operations, l.objects)
                );
                assert_eq!(wl.failures, l.failures, "{name}");
                let want = if bad == 0 {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                };
                assert_eq!(r.verdict, want, "{name} bad {bad}: {:#?}", r.findings());
                assert!(l.failures.len() <= bad && (bad == 0) == l.failures.is_empty());
                std::fs::remove_file(&path).unwrap();
            }
        }
        std::fs::remove_dir(&dir).unwrap();
    }

    /// Porcupine's hard case: 50 processes on 10 keys, values that only
    /// grow, and 40 processes hung on a write until the end, concurrent with
    /// everything after them. Without early detection of a read that can
    /// never be placed this takes seconds and gigabytes; with it, valid and
    /// invalid are both decided at once.
    #[test]
    fn hung_fifty_process_histories_are_decided_fast_valid_or_not() {
        for bad in [0, 1, 5] {
            let workload = KvWorkload {
                ops: 2500,
                keys: 10,
                processes: 50,
                indeterminate: 0.0,
                seed: 1,
                hang: 40,
                style: Style::Appends,
            };
            let mut out = Vec::new();
            write_kv_as(&workload, OutFormat::Jsonl, bad, &mut out).unwrap();
            let h = History::from_jsonl_str(std::str::from_utf8(&out).unwrap()).unwrap();
            let mut options = CheckOptions::default();
            options.linear.time_limit = Some(std::time::Duration::from_secs(2));
            options.linear.memory_limit = Some(256 << 20);
            let r = check_history("c50", &h, &options);
            let want = if bad == 0 {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
            assert_eq!(r.verdict, want, "bad {bad}: {:#?}", r.findings());
        }
    }
}
