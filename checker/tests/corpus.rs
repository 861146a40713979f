//! Every verdict in the shared corpus (`../shared/corpus/*/*/EXPECTED`).
//!
//! No verdict of the corpus needs Porcupine's reading of a failed cas
//! (`FailReading::CasRefused`): every one holds under Jepsen's reading,
//! the default, and under Porcupine's too. Both are checked.

use gpaxos_checker::history::format::{load, Format, Loaded};
use gpaxos_checker::linear::{self, from_jepsen_with, FailReading, Options};
use gpaxos_checker::Verdict;
use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the shared corpus is missing at {}", dir.display());
    }
    eprintln!("skipping: no shared corpus at {}", dir.display());
    None
}

#[test]
fn every_expected_verdict() {
    let Some(root) = corpus() else { return };
    let mut checked = 0;
    let started = std::time::Instant::now();
    for expected in glob(&root) {
        let dir = expected.parent().unwrap().to_path_buf();
        for line in std::fs::read_to_string(&expected).unwrap().lines() {
            let Some((file, verdict)) = line.split_once(' ') else {
                continue;
            };
            let want = match verdict.trim() {
                "linearizable" => Verdict::Valid,
                "not-linearizable" => Verdict::Invalid,
                other => panic!("unknown verdict {other}"),
            };
            let path = dir.join(file);
            let (_, loaded) = load(&path, Format::Auto).unwrap();
            let Loaded::Jepsen(events) = loaded else {
                panic!("{file}: not a Jepsen history")
            };
            for reading in [FailReading::NotApplied, FailReading::CasRefused] {
                let h = from_jepsen_with(file, &events, None, reading).unwrap();
                let t = std::time::Instant::now();
                let r = linear::check(&h, &Options::default());
                eprintln!("{file} ({reading:?}): {} in {:?}", r.verdict, t.elapsed());
                assert_eq!(r.verdict, want, "{file}: {:#?}", r.failures.first());
            }
            checked += 1;
        }
    }
    eprintln!("{checked} histories in {:?}", started.elapsed());
    assert!(checked >= 50);
}

fn glob(root: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for suite in std::fs::read_dir(root).unwrap().flatten() {
        if let Ok(entries) = std::fs::read_dir(suite.path()) {
            for e in entries.flatten() {
                if e.path().is_dir() && e.path().join("EXPECTED").is_file() {
                    out.push(e.path().join("EXPECTED"));
                }
            }
        }
    }
    out.sort();
    out
}

/// The same verdicts through the command line, one file at a time, with
/// its exit code (0 valid, 1 invalid) and verdict line.
#[test]
fn every_expected_verdict_through_the_cli() {
    let Some(root) = corpus() else { return };
    let bin = env!("CARGO_BIN_EXE_gpaxos-checker");
    let mut checked = 0;
    for expected in glob(&root) {
        let dir = expected.parent().unwrap().to_path_buf();
        for line in std::fs::read_to_string(&expected).unwrap().lines() {
            let Some((file, verdict)) = line.split_once(' ') else {
                continue;
            };
            let (code, word) = match verdict.trim() {
                "linearizable" => (0, "valid"),
                _ => (1, "invalid"),
            };
            let out = std::process::Command::new(bin)
                .args(["check", "--quiet"])
                .arg(dir.join(file))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(code), "{file}: {stdout}");
            assert!(
                stdout.trim_end().ends_with(&format!("=> {word}")),
                "{file}: {stdout}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 50);
}
