//! `sim --fail-fast` stops a sweep at its first failing seed and prints the
//! seed's replay command. The planted bug needs the node's `planted-bugs`
//! feature, which the harness's test build has. (That a failing seed stops
//! as soon as its safety violation is certain is tested in `sim::run`.)

use std::process::Command;

#[test]
fn a_sweep_with_a_planted_bug_stops_at_its_first_failing_seed() {
    let store = std::env::temp_dir().join(format!("gpaxos-failfast-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let out = Command::new(env!("CARGO_BIN_EXE_gpaxos-harness"))
        .args(["sim", "--seeds", "500", "--threads", "1", "--fail-fast"])
        .args(["--planted-bug", "session-off-by-one", "--conflict", "0.5"])
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        stdout.contains("at the first failing seed (--fail-fast)"),
        "{said}"
    );
    assert!(
        stdout.contains("violations:   1\n"),
        "one failing seed, then stop: {said}"
    );
    let seeds: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("seeds:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a seeds line");
    assert!(seeds < 500, "the sweep ran every seed: {said}");
    // The replay command reruns the failing seed with the same bug.
    let replay = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay:"))
        .expect("a replay line")
        .trim();
    assert!(
        replay.contains("--planted-bug session-off-by-one"),
        "{replay}"
    );
}
