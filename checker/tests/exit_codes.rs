//! The checker's exit codes are Jepsen's, as the harness's are: 0 valid,
//! 1 invalid, 2 unknown, 254 bad arguments, 255 the checker itself failed.
//! Run against the built binary, since clap's own exit code (2, which here
//! means unknown) and `main`'s mapping are what a script sees.

use std::path::PathBuf;
use std::process::{Command, Output};

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpaxos-checker"))
        .args(args)
        .output()
        .expect("the checker binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed by a signal")
}

/// A fresh directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gpaxos-checker-exit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const PUT_THEN_GET: &str = r#"{"type":"invoke","process":1,"time":10,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"ok","process":1,"time":20,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"invoke","process":2,"time":30,"id":"2.1","f":"get","key":"x"}
"#;

fn history(dir: &std::path::Path, name: &str, read: &str) -> String {
    let path = dir.join(name);
    let get = format!(
        r#"{{"type":"ok","process":2,"time":40,"id":"2.1","f":"get","key":"x","result":{read}}}"#
    );
    std::fs::write(&path, format!("{PUT_THEN_GET}{get}\n")).unwrap();
    path.display().to_string()
}

#[test]
fn verdicts_exit_0_1_and_2() {
    let dir = scratch("verdicts");
    let valid = history(&dir, "valid.jsonl", "\"1\"");
    let stale = history(&dir, "stale.jsonl", "null");
    let broken = dir.join("broken.jsonl");
    std::fs::write(&broken, "{\"type\":\"invoke\", oops\n").unwrap();
    let broken = broken.display().to_string();
    assert_eq!(code(&checker(&["check", &valid])), 0);
    assert_eq!(code(&checker(&["check", &stale])), 1);
    // A file that cannot be read is judged unknown, and says why.
    let out = checker(&["check", &broken]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("broken.jsonl:1"));
    // The worst verdict of several files.
    assert_eq!(code(&checker(&["check", &valid, &broken])), 2);
    assert_eq!(code(&checker(&["check", &valid, &broken, &stale])), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_exit_254() {
    let dir = scratch("args");
    let valid = history(&dir, "valid.jsonl", "\"1\"");
    let out = dir.join("out.jsonl").display().to_string();
    for args in [
        &["check", &valid, "--no-such-flag"][..],
        &["check"],
        &["no-such-command"],
        &["check", &valid, "--model", "teapot"],
        &["check", &valid, "--memory-limit", "4 parsecs"],
        &["check", &valid, "--bench", "0"],
        &["check", &valid, "--time-limit", "-1"],
        &["generate", "--out", &out, "--processes", "0"],
        &["generate", "--out", &out, "--indeterminate", "1.5"],
    ] {
        let run = checker(args);
        assert_eq!(code(&run), 254, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "{args:?} says what is wrong");
    }
    // Help and version are not errors.
    assert_eq!(code(&checker(&["--help"])), 0);
    assert_eq!(code(&checker(&["--version"])), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checker_that_cannot_write_its_results_exits_255() {
    let dir = scratch("failed");
    let valid = history(&dir, "valid.jsonl", "\"1\"");
    // A results directory under a file cannot be made.
    let out = dir.join("valid.jsonl").join("results");
    let run = checker(&["check", &valid, "--out", out.to_str().unwrap()]);
    assert_eq!(code(&run), 255, "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("gpaxos-checker: error"));
    let run = checker(&["generate", "--ops", "10", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&run), 255, "{run:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
