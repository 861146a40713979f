//! Bad input gets an error or a verdict, never a panic: mangled lines for
//! every parser, and parseable but incoherent runs for every check.

use gpaxos_checker::check::{check_history, CheckOptions};
use gpaxos_checker::history::format::{parse, Format};
use gpaxos_checker::history::{
    ClientEvent, CmdId, Command, EventKind, History, LearnerObservation, NemesisEvent, Op,
    OpResult, Record,
};

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

const ALPHABET: &[u8] = b"{}[]\":,\\ 0-9anil#:\n";

const SAMPLES: [&str; 3] = [
    r#"{"type":"init","accounts":{"a":1}}
{"type":"invoke","process":3,"time":120034,"id":"7.2","f":"cas","key":"k1","from":null,"to":"5"}
{"type":"ok","process":7,"time":2,"id":"7.9","f":"balances","accounts":["a0"],"result":{"a0":93}}
{"type":"learned","node":"n2","time":7,"from":0,"len":1,"cmds":[{"id":"n1.1","f":"checkpoint"}],"final":true}
{"type":"nemesis","time":9,"f":"heal","phase":"final"}"#,
    "[{:process 0, :type :invoke, :f :cas, :key \"4\", :value [1 2]}\n{:process 0, :type :ok, :f :cas, :value #{1 \\a}}]",
    "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\nINFO  jepsen.util - 3\t:ok\t:cas\t[1 4]\nINFO  jepsen.util - :nemesis\t:info\t:start\tx",
];

#[test]
fn mangled_text_never_panics() {
    let mut rng = Lcg(11);
    let options = CheckOptions::default();
    for sample in SAMPLES {
        for _ in 0..3000 {
            let mut bytes = sample.as_bytes().to_vec();
            for _ in 0..1 + rng.next(4) {
                let i = rng.next(bytes.len() as u64) as usize;
                match rng.next(3) {
                    0 => bytes[i] = ALPHABET[rng.next(ALPHABET.len() as u64) as usize],
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.truncate(i),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            for format in [Format::Auto, Format::Jsonl, Format::Edn, Format::JepsenLog] {
                if let Ok((_, gpaxos_checker::history::Loaded::Jsonl(h))) =
                    parse("m", &text, format)
                {
                    check_history("m", &h, &options);
                }
            }
        }
    }
}

#[test]
fn incoherent_runs_get_verdicts() {
    let mut rng = Lcg(5);
    let options = CheckOptions::default();
    let ops = |rng: &mut Lcg| -> Command {
        let key = format!("k{}", rng.next(3));
        let op = match rng.next(7) {
            0 => Op::Get { key },
            1 => Op::Put {
                key,
                value: rng.next(3).to_string(),
            },
            2 => Op::Append {
                key,
                value: rng.next(3).to_string(),
            },
            3 => Op::Cas {
                key,
                from: (rng.next(2) == 0).then(|| rng.next(3).to_string()),
                to: rng.next(3).to_string(),
            },
            4 => Op::Transfer {
                from: format!("a{}", rng.next(3)),
                to: format!("a{}", rng.next(3)),
                amount: rng.next(7) as i64 - 2,
            },
            5 => Op::Balances {
                accounts: (0..rng.next(3)).map(|i| format!("a{i}")).collect(),
            },
            _ => Op::Checkpoint,
        };
        Command {
            id: CmdId(format!("{}.{}", rng.next(4), rng.next(4))),
            op,
        }
    };
    for _ in 0..2000 {
        let mut h = History::new();
        for _ in 0..rng.next(30) {
            let time = rng.next(100);
            let record = match rng.next(8) {
                0..=3 => {
                    let kind = [
                        EventKind::Invoke,
                        EventKind::Ok,
                        EventKind::Fail,
                        EventKind::Info,
                    ][rng.next(4) as usize];
                    let command = ops(&mut rng);
                    // Results only where the format has them: others are
                    // ignored on reading, and the round trip below would
                    // differ.
                    let result = match (&command.op, kind) {
                        (Op::Get { .. }, EventKind::Ok) if rng.next(3) > 0 => Some(
                            OpResult::Value((rng.next(2) == 0).then(|| rng.next(3).to_string())),
                        ),
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
                4 | 5 => {
                    let cmds: Vec<Command> = (0..rng.next(4)).map(|_| ops(&mut rng)).collect();
                    let from = rng.next(4) as usize;
                    Record::Learned(LearnerObservation {
                        node: format!("n{}", rng.next(3)),
                        time,
                        from,
                        len: from + cmds.len(),
                        cmds,
                        is_final: rng.next(2) == 0,
                    })
                }
                6 => Record::Nemesis(NemesisEvent {
                    time,
                    f: "heal".into(),
                    phase: Some(["start", "stop", "final"][rng.next(3) as usize].into()),
                    value: None,
                }),
                _ => Record::Init(Default::default()),
            };
            h.push(record);
        }
        let r = check_history("incoherent", &h, &options);
        let text = h.to_jsonl_string();
        let again = History::from_jsonl_str(&text).expect("what the checker writes, it reads");
        assert_eq!(again.records, h.records);
        let _ = r.findings();
    }
}
