//! The harness's exit codes are Jepsen's: 0 valid, 1 invalid, 2 unknown,
//! 254 bad arguments, 255 the harness itself failed. Run against the built
//! binary, since clap's own exit code and `main`'s mapping are what a
//! script sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpaxos-harness"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed by a signal")
}

/// A fresh directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpaxos-exit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two acknowledged writes, then a read of the first: a stale read, not
/// linearizable.
const STALE_READ: &str = r#"{"type":"invoke","process":1,"time":10,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"ok","process":1,"time":20,"id":"1.1","f":"put","key":"x","value":"1"}
{"type":"invoke","process":2,"time":30,"id":"2.1","f":"put","key":"x","value":"2"}
{"type":"ok","process":2,"time":40,"id":"2.1","f":"put","key":"x","value":"2"}
{"type":"invoke","process":3,"time":50,"id":"3.1","f":"get","key":"x"}
{"type":"ok","process":3,"time":60,"id":"3.1","f":"get","key":"x","result":"1"}
"#;

fn run_dir(name: &str, history: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("history.jsonl"), history).unwrap();
    dir
}

fn analyze(dir: &Path) -> Output {
    harness(&["analyze", dir.to_str().unwrap()])
}

#[test]
fn bad_arguments_exit_254() {
    // clap's usage errors: an unknown flag, a value of the wrong type, an
    // unknown command.
    for args in [
        &["test", "--no-such-flag"][..],
        &["test", "--rate", "fast"],
        &["no-such-command"],
    ] {
        let out = harness(args);
        assert_eq!(code(&out), 254, "{args:?}: {out:?}");
    }
    // Values clap accepts but the harness refuses, before any node starts.
    for args in [
        &["test", "--nodes", "0"][..],
        &["test", "--conflict", "1.5"],
        &["test", "--nemesis", "earthquake"],
        &["sim", "--conflict", "-1"],
        &["suite", "no-such-suite"],
        &["analyze", "/no/such/run"],
    ] {
        let out = harness(args);
        assert_eq!(code(&out), 254, "{args:?}: {out:?}");
    }
    // Help is not an error.
    assert_eq!(code(&harness(&["--help"])), 0);
}

#[test]
fn a_bad_latency_exits_254_and_says_why() {
    for (args, why) in [
        (
            &["sim", "--latency", "regions:mars=n1,n2,n3,n4,n5"][..],
            "unknown region \"mars\"",
        ),
        (
            &["sim", "--latency", "regions:us-east=n1,n2"],
            "n3 is in no region",
        ),
        (
            &["bench", "--latency", "matrix:0,1;1,0"],
            "2 rows for 5 nodes",
        ),
        (
            &["bench", "--latency", "uniform:5", "--link-delay-ms", "5"],
            "cannot be used with",
        ),
        (&["test", "--latency", "fast"], "expected uniform:MS"),
        (
            &["test", "--backend", "docker", "--latency", "uniform:5"],
            "needs --backend local",
        ),
    ] {
        let out = harness(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 254, "{args:?}: {out:?}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn analyze_exits_with_the_verdict() {
    let invalid = run_dir("invalid", STALE_READ);
    let out = analyze(&invalid);
    assert_eq!(code(&out), 1, "{out:?}");
    // Without the stale read, the same writes are valid.
    let valid = run_dir(
        "valid",
        &STALE_READ.replace(r#""result":"1""#, r#""result":"2""#),
    );
    let out = analyze(&valid);
    assert_eq!(code(&out), 0, "{out:?}");
    // A history that cannot be read cannot be judged.
    let unreadable = run_dir("unreadable", "{\"type\":\"invoke\",\n");
    let out = analyze(&unreadable);
    assert_eq!(code(&out), 2, "{out:?}");
    for d in [invalid, valid, unreadable] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn a_harness_failure_exits_255() {
    // A store the harness cannot write: it fails before any node starts,
    // and that is not a verdict.
    let out = harness(&["test", "--store", "/dev/null/store", "--time-limit", "1"]);
    assert_eq!(code(&out), 255, "{out:?}");
}
