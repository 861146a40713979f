//! A planted bug in a real node (built with the `planted-bugs` feature,
//! which only tests enable) makes `gpaxos-harness test` exit 1 with a report
//! that explains the violation.

use std::process::Command;

fn harness() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_gpaxos-harness"))
}

/// `gpaxos-node-planted`, built by `cargo test --workspace` next to the
/// harness.
fn planted_node() -> Option<std::path::PathBuf> {
    let p = harness().parent()?.join("gpaxos-node-planted");
    p.is_file().then_some(p)
}

#[test]
fn proved_safe_taking_one_vote_fails_the_run() {
    let Some(node) = planted_node() else {
        assert!(
            std::env::var("CI").is_err(),
            "gpaxos-node-planted is missing: run cargo test --workspace"
        );
        eprintln!("SKIPPED: gpaxos-node-planted is not built; run cargo test --workspace");
        return;
    };
    let store = std::env::temp_dir().join(format!("gpaxos-planted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let out = Command::new(harness())
        .env("GPAXOS_NODE", &node)
        .args([
            "test",
            "--nemesis",
            "partition,loss",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "12",
        ])
        .args(["--rate", "0", "--concurrency", "12", "--test-count", "3"])
        .args([
            "--conflict",
            "0.9",
            "--seed",
            "7",
            "--planted-bug",
            "proved-safe-one-vote",
            "--store",
        ])
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("Consistency")
            || stdout.contains("Stability")
            || stdout.contains("execution"),
        "the summary names the violated property:\n{stdout}"
    );
    // Some run is invalid, and its summary and report say why.
    let runs = std::fs::read_dir(store.join("kv-partition+loss")).unwrap();
    let explained = runs.flatten().any(|run| {
        let summary = std::fs::read_to_string(run.path().join("summary.json")).unwrap_or_default();
        let report = std::fs::read_to_string(run.path().join("report.html")).unwrap_or_default();
        summary.contains("\"invalid\"")
            && (summary.contains("Consistency")
                || summary.contains("Stability")
                || summary.contains("execution"))
            && !report.is_empty()
    });
    assert!(
        explained,
        "no run's summary.json explains the violation:\n{stdout}"
    );
    let _ = std::fs::remove_dir_all(&store);
}
