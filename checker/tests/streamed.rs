//! A JSON Lines file checked as it is read (the fast path of `check_file`)
//! gets exactly the results of the same file read whole: for random runs
//! of every operation, ids invoked twice, completions before their
//! invocations, strings the fast path declines, and mangled lines.

use gpaxos_checker::check::{check_file, CheckOptions};
use gpaxos_checker::history::{
    ClientEvent, CmdId, Command, EventKind, History, NemesisEvent, Op, OpResult, Record,
};
use gpaxos_checker::linear::ModelKind;
use std::path::{Path, PathBuf};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn value(rng: &mut Lcg) -> String {
    ["1", "2", "", "a\"b", "é"][rng.next(5) as usize].to_owned()
}

fn command(rng: &mut Lcg) -> Command {
    let key = format!("k{}", rng.next(3));
    let op = match rng.next(8) {
        0 | 1 => Op::Get { key },
        2 => Op::Put {
            key,
            value: value(rng),
        },
        3 => Op::Append {
            key,
            value: value(rng),
        },
        4 => Op::Cas {
            key,
            from: (rng.next(2) == 0).then(|| value(rng)),
            to: value(rng),
        },
        5 => Op::Transfer {
            from: format!("a{}", rng.next(3)),
            to: format!("a{}", rng.next(3)),
            amount: rng.next(7) as i64 - 2,
        },
        6 => Op::Balances {
            accounts: (0..rng.next(3)).map(|i| format!("a{i}")).collect(),
        },
        _ => Op::Checkpoint,
    };
    Command {
        id: CmdId(format!("{}.{}", rng.next(4), rng.next(4))),
        op,
    }
}

fn run(rng: &mut Lcg) -> History {
    let mut h = History::new();
    for _ in 0..rng.next(40) {
        let time = rng.next(100);
        let record = match rng.next(10) {
            0..=7 => {
                let kind = [
                    EventKind::Invoke,
                    EventKind::Ok,
                    EventKind::Fail,
                    EventKind::Info,
                ][rng.next(4) as usize];
                let command = command(rng);
                let result = match (&command.op, kind) {
                    (Op::Get { .. }, _) if rng.next(3) > 0 => {
                        Some(OpResult::Value((rng.next(3) > 0).then(|| value(rng))))
                    }
                    (Op::Balances { .. }, EventKind::Ok) if rng.next(3) > 0 => {
                        Some(OpResult::Balances(
                            [("a0".to_string(), rng.next(5) as i64)]
                                .into_iter()
                                .collect(),
                        ))
                    }
                    _ => None,
                };
                Record::Client(ClientEvent {
                    kind,
                    process: rng.next(4),
                    time,
                    command,
                    result,
                })
            }
            8 => Record::Nemesis(NemesisEvent {
                time,
                f: "heal".into(),
                phase: Some("final".into()),
                value: None,
            }),
            _ => Record::Init(Default::default()),
        };
        h.push(record);
    }
    h
}

/// A run as clients write them: each process completes its last
/// invocation, and ids are not reused, except for a rare slip of either
/// kind (which the fast path must notice).
fn orderly_run(rng: &mut Lcg) -> History {
    let mut h = History::new();
    let mut pending: Vec<Option<Command>> = vec![None; 4];
    let mut seq = 0;
    for _ in 0..rng.next(60) {
        let p = rng.next(4) as usize;
        let time = h.records.len() as u64;
        let slip = rng.next(200) == 0;
        let (kind, mut command) = match pending[p].take() {
            Some(c) => (
                [EventKind::Ok, EventKind::Fail, EventKind::Info][rng.next(3) as usize],
                c,
            ),
            None => {
                seq += 1;
                let mut c = command(rng);
                c.id = CmdId(format!("{p}.{seq}"));
                pending[p] = Some(c.clone());
                (EventKind::Invoke, c)
            }
        };
        if slip {
            command.id = CmdId(format!("{}.{}", rng.next(4), rng.next(seq + 1)));
        }
        let result = match (&command.op, kind) {
            (Op::Get { .. }, EventKind::Ok) => {
                Some(OpResult::Value((rng.next(3) > 0).then(|| value(rng))))
            }
            _ => None,
        };
        h.push(Record::Client(ClientEvent {
            kind,
            process: p as u64,
            time,
            command,
            result,
        }));
    }
    h
}

/// A file of this test run's own; each test removes its file when done.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gpaxos-checker-{}-{name}", std::process::id()))
}

/// The result as `results.json` has it, without the times.
fn comparable(path: &Path, options: &CheckOptions) -> serde_json::Value {
    let mut v = serde_json::to_value(check_file(path, options)).unwrap();
    v["elapsed_us"] = 0.into();
    if let Some(l) = v.get_mut("linearizability").and_then(|l| l.as_object_mut()) {
        l.insert("elapsed_us".into(), 0.into());
    }
    v
}

fn same_either_way(path: &Path, model: Option<ModelKind>) {
    let streamed = CheckOptions {
        model,
        ..CheckOptions::default()
    };
    // Drawing a report needs the whole history, so it is read whole.
    let whole = CheckOptions {
        timeline: true,
        ..streamed.clone()
    };
    assert_eq!(
        comparable(path, &streamed),
        comparable(path, &whole),
        "{}",
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

#[test]
fn random_runs_check_the_same_streamed() {
    let mut rng = Lcg(7);
    let models = [
        None,
        Some(ModelKind::Kv),
        Some(ModelKind::Register),
        Some(ModelKind::CasRegister),
        Some(ModelKind::Bank),
    ];
    let path = temp("run.jsonl");
    for i in 0..3000 {
        std::fs::write(&path, run(&mut rng).to_jsonl_string()).unwrap();
        same_either_way(&path, models[i % models.len()]);
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn orderly_runs_check_the_same_streamed() {
    let mut rng = Lcg(3);
    let path = temp("orderly.jsonl");
    for i in 0..3000 {
        std::fs::write(&path, orderly_run(&mut rng).to_jsonl_string()).unwrap();
        same_either_way(&path, [None, Some(ModelKind::Register)][i % 2]);
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn mangled_runs_check_the_same_streamed() {
    let mut rng = Lcg(13);
    let path = temp("mangled.jsonl");
    const ALPHABET: &[u8] = b"{}[]\":,\\ 0-9anul\n\r\xc3\xa9";
    for _ in 0..3000 {
        let mut bytes = run(&mut rng).to_jsonl_string().into_bytes();
        for _ in 0..rng.next(4) {
            if bytes.is_empty() {
                break;
            }
            let i = rng.next(bytes.len() as u64) as usize;
            match rng.next(3) {
                0 => bytes[i] = ALPHABET[rng.next(ALPHABET.len() as u64) as usize],
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, ALPHABET[rng.next(ALPHABET.len() as u64) as usize]),
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        same_either_way(&path, None);
    }
    std::fs::remove_file(&path).unwrap();
}
