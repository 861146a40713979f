//! `gpaxos-checker check --out DIR` leaves `DIR/checker.log` beside its
//! results: what it checked, each check's verdict, the findings of a
//! violation, and the verdict. Without `--out` it writes no file.

use std::path::PathBuf;
use std::process::Command;

/// Two acknowledged writes, then a read of the first: not linearizable.
const STALE_READ: &str = r#"{"type":"invoke","process":1,"time":10,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"ok","process":1,"time":20,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"invoke","process":2,"time":30,"id":"2.1","f":"put","key":"x","value":"2"}
{"type":"ok","process":2,"time":40,"id":"2.1","f":"put","key":"x","value":"2"}
{"type":"invoke","process":3,"time":50,"id":"3.1","f":"get","key":"x"}
{"type":"ok","process":3,"time":60,"id":"3.1","f":"get","key":"x","result":"1"}
"#;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gpaxos-checker-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gpaxos-checker"))
        .arg("check")
        .args(args)
        .output()
        .expect("the checker binary runs")
}

#[test]
fn check_with_out_writes_its_log_beside_the_results() {
    let dir = scratch("out");
    let history = dir.join("history.jsonl");
    std::fs::write(&history, STALE_READ).unwrap();
    let out_dir = dir.join("results");
    let out = check(&[
        history.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out_dir.join("results.json").is_file());
    let log = std::fs::read_to_string(out_dir.join("checker.log")).expect("checker.log");
    let file = history.display().to_string();
    for want in [
        "gpaxos-checker check: 1 file(s)".to_owned(),
        format!("checking {file}"),
        format!("{file}: check linearizability invalid"),
        format!("{file}: verdict invalid"),
        "0 valid, 1 invalid, 0 unknown => invalid".to_owned(),
    ] {
        assert!(log.contains(&want), "{want:?} not in checker.log:\n{log}");
    }
    assert!(log.contains(" WARN "), "the finding is a warning:\n{log}");
    // No --out: nothing written beside the history.
    let out = check(&[history.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("checker.log").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
