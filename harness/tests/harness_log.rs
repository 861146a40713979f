//! `harness.log` in every run directory: two short real runs in one
//! process (`--test-count 2`, a kill nemesis) each leave their own log with
//! the run's phases, the nemesis's faults and heals, the checker's lines and
//! the verdict; `analyze` adds its lines to the run's log. Needs
//! `gpaxos-node` next to the harness binary (`cargo build --release -p
//! gpaxos-harness -p gpaxos-node`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gpaxos-harness"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

/// The run directories under `store/<test>/`, oldest first.
fn runs(store: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("kv-kill"))
        .expect("the test's directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Asserts that `lines` appear in `log` in this order.
fn in_order(log: &str, lines: &[&str]) {
    let mut from = 0;
    for want in lines {
        match log[from..].find(want) {
            Some(i) => from += i + want.len(),
            None => panic!("{want:?} missing after byte {from} of harness.log:\n{log}"),
        }
    }
}

#[test]
fn each_run_logs_its_phases_faults_and_verdict() {
    let store = std::env::temp_dir().join(format!("gpaxos-harness-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let out = harness(&[
        "test",
        "--time-limit",
        "3",
        "--nemesis",
        "kill",
        "--nemesis-interval",
        "1",
        "--test-count",
        "2",
        "--seed",
        "7",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert!(out.status.code().is_some_and(|c| c <= 2), "{out:?}");
    let dirs = runs(&store);
    assert_eq!(dirs.len(), 2, "two run directories: {dirs:?}");
    for dir in &dirs {
        let log = std::fs::read_to_string(dir.join("harness.log")).expect("harness.log");
        let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        let verdict = ["valid", "invalid", "unknown"]
            .into_iter()
            .find(|v| summary.contains(&format!("\"verdict\": \"{v}\"")))
            .expect("a verdict in summary.json");
        in_order(
            &log,
            &[
                "setup: run directory created",
                "setup: 5 nodes started",
                "clients started: 10 processes",
                "nemesis start: kill:",
                "nemesis stop: kill",
                "final heal",
                "final reads:",
                "checking:",
                "check consensus",
                &format!("verdict: {verdict}"),
            ],
        );
        // One run per log: the second run's lines are in its own file.
        assert_eq!(
            log.matches("setup: run directory created").count(),
            1,
            "{log}"
        );
        assert!(log.contains(&dir.display().to_string()), "{log}");
    }
    let first = &dirs[0];
    let before = std::fs::read_to_string(first.join("harness.log")).unwrap();
    let out = harness(&["analyze", first.to_str().unwrap()]);
    assert!(out.status.code().is_some_and(|c| c <= 2), "{out:?}");
    let after = std::fs::read_to_string(first.join("harness.log")).unwrap();
    assert!(after.starts_with(&before), "analyze appends");
    in_order(
        &after[before.len()..],
        &["analyze: checking the stored run again", "verdict: "],
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn a_run_that_fails_logs_why() {
    // No node binary: the run directory exists, the cluster cannot start.
    let store = std::env::temp_dir().join(format!("gpaxos-harness-log-err-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let out = Command::new(env!("CARGO_BIN_EXE_gpaxos-harness"))
        .args([
            "test",
            "--time-limit",
            "1",
            "--store",
            store.to_str().unwrap(),
        ])
        .env("GPAXOS_NODE", store.join("no-such-node"))
        .output()
        .expect("the harness binary runs");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let log = std::fs::read_to_string(store.join("latest/harness.log")).expect("harness.log");
    in_order(
        &log,
        &["setup: run directory created", "ERROR", "the run failed: "],
    );
    let _ = std::fs::remove_dir_all(&store);
}
