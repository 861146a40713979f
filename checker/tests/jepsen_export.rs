//! A run's history exported as Jepsen EDN (`history.edn`) and read back
//! through the checker's EDN reader gets the verdict of the history it
//! came from: for generated kv histories with and without planted stale
//! reads, and for one whose only violation is a refused `cas` (which keeps
//! its meaning under the `cas-refused` reading the export documents).

use gpaxos_checker::check::{check_file, check_history, CheckOptions};
use gpaxos_checker::generate::{write_kv_as, KvWorkload, OutFormat, Style};
use gpaxos_checker::history::edn::{Edn, Reader};
use gpaxos_checker::history::{jepsen_write, History};
use gpaxos_checker::linear::FailReading;
use gpaxos_checker::report;
use gpaxos_checker::Verdict;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpaxos-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The verdict and operation count of `history` as written, and of its
/// export read back.
fn both_ways(name: &str, history: &History) -> ((Verdict, usize), (Verdict, usize)) {
    let original = check_history(name, history, &CheckOptions::default());
    let path = scratch(&format!("{name}.edn"));
    let mut out = Vec::new();
    jepsen_write::write_edn(history, &mut out).unwrap();
    std::fs::write(&path, &out).unwrap();
    let options = CheckOptions {
        jepsen_fail: FailReading::CasRefused,
        ..CheckOptions::default()
    };
    let back = check_file(&path, &options);
    assert_eq!(back.format, "edn", "read as EDN: {:?}", back.error);
    std::fs::remove_file(path).ok();
    let count = |r: &gpaxos_checker::check::FileResult| {
        r.linearizability.as_ref().map_or(0, |l| l.operations)
    };
    (
        (original.verdict, count(&original)),
        (back.verdict, count(&back)),
    )
}

fn generated(seed: u64, bad: usize) -> History {
    let workload = KvWorkload {
        ops: 2_000,
        keys: 4,
        processes: 6,
        indeterminate: 0.05,
        seed,
        hang: 0,
        style: Style::Mixed,
    };
    let mut out = Vec::new();
    write_kv_as(&workload, OutFormat::Jsonl, bad, &mut out).unwrap();
    History::from_jsonl_str(std::str::from_utf8(&out).unwrap()).unwrap()
}

#[test]
fn generated_histories_keep_their_verdict() {
    for seed in 1..=4 {
        for bad in [0, 3] {
            let (original, back) = both_ways(&format!("kv-{seed}-{bad}"), &generated(seed, bad));
            let expected = if bad == 0 {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
            assert_eq!(original.0, expected, "seed {seed}, {bad} planted");
            assert_eq!(back, original, "seed {seed}, {bad} planted");
        }
    }
}

#[test]
fn a_refused_cas_keeps_its_meaning() {
    // x is "1" when the cas from "1" is refused: only the refusal says the
    // register was not "1".
    let history = History::from_jsonl_str(
        r#"{"type":"invoke","process":1,"time":10,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"ok","process":1,"time":20,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"invoke","process":2,"time":30,"id":"2.1","f":"cas","key":"x","from":"1","to":"2"}
{"type":"fail","process":2,"time":40,"id":"2.1","f":"cas","key":"x","from":"1","to":"2"}
{"type":"nemesis","time":45,"f":"partition","phase":"start","value":"n1 | n2 \"quoted\""}"#,
    )
    .unwrap();
    let (original, back) = both_ways("refused-cas", &history);
    assert_eq!(original.0, Verdict::Invalid);
    assert_eq!(back, original);
}

#[test]
fn results_edn_says_valid_as_jepsen_does() {
    let dir = scratch("results");
    for (bad, valid) in [(0, Edn::Bool(true)), (2, Edn::Bool(false))] {
        let history = generated(7, bad);
        let result = check_history("h", &history, &CheckOptions::default());
        report::edn::write_results(&dir, &result).unwrap();
        let text = std::fs::read_to_string(dir.join("results.edn")).unwrap();
        let map = Reader::new(&text).value().unwrap();
        assert_eq!(map.get("valid?"), Some(&valid), "{text}");
        let linear = map.get("linearizability").expect("a per-check entry");
        assert_eq!(linear.get("valid?"), Some(&valid), "{text}");
    }
    std::fs::remove_dir_all(dir).ok();
}
