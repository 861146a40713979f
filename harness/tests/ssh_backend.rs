//! The ssh backend against five "hosts": the network namespaces of
//! `scripts/ssh-hosts.sh`, each with its own address and sshd. A run with
//! partitions, kills and pauses is valid and leaves a full run directory,
//! node logs and data fetched back from the hosts included; the same run
//! with a planted-bug node exits 1 and explains the violation; a bad nodes
//! file or a host that does not let us in is a bad argument (254).
//!
//! The runs need root (namespaces, iptables) and the release binaries
//! `gpaxos-node` and `gpaxos-node-planted` next to the harness
//! (`cargo test --workspace --release` builds both), and run only when
//! GPAXOS_SSH_TESTS=1 asks for them; otherwise they are skipped, loudly.
//! Under CI=true the variable must be set: `.ci/run` sets 0 for its first
//! `cargo test --workspace` and runs this file in its ssh block with 1
//! (or fails there if the namespaces cannot be made), so CI cannot skip
//! them unseen. The bad-argument test always runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Instant;

/// The hosts are shared: one run at a time.
static HOSTS: Mutex<()> = Mutex::new(());

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gpaxos-harness"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Says so on the real stderr: libtest swallows the output of a test
/// that passes, and a skip must not pass for a success unseen.
fn skip(why: &str) {
    use std::io::Write;
    let bar = "#".repeat(72);
    let _ = writeln!(
        std::io::stderr(),
        "{bar}\n## ssh_backend SKIPPED: nothing was tested.\n## {why}\n{bar}"
    );
}

/// Brings the five hosts up (idempotent) if the tests are to run: the
/// nodes file and the key.
fn hosts() -> Option<(PathBuf, PathBuf)> {
    match std::env::var("GPAXOS_SSH_TESTS").as_deref() {
        Ok("1") => {}
        Ok(v) => {
            skip(&format!(
                "GPAXOS_SSH_TESTS={v} (.ci/run sets 0 here and runs them in its ssh block with 1)"
            ));
            return None;
        }
        Err(_) => {
            // CI must decide, not forget: .ci/run sets the variable.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "under CI=true GPAXOS_SSH_TESTS must be set (1 runs the ssh backend's tests)"
            );
            skip("set GPAXOS_SSH_TESTS=1 to run them (needs root: scripts/ssh-hosts.sh up)");
            return None;
        }
    }
    let out = Command::new("bash")
        .arg(root().join("scripts/ssh-hosts.sh"))
        .arg("up")
        .output()
        .expect("running scripts/ssh-hosts.sh");
    assert!(
        out.status.success(),
        "GPAXOS_SSH_TESTS=1, but scripts/ssh-hosts.sh up failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root().join("target/ssh-hosts");
    Some((dir.join("nodes"), dir.join("id_ed25519")))
}

/// A release node binary next to the harness.
fn node_binary(name: &str) -> PathBuf {
    let p = harness().parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build it with cargo test --workspace --release",
        p.display()
    );
    p
}

fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("gpaxos-ssh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// `gpaxos-harness test --backend ssh` on the hosts with `args`.
fn ssh_test(node: &Path, hosts: &(PathBuf, PathBuf), store: &Path, args: &[&str]) -> Output {
    Command::new(harness())
        .env("GPAXOS_NODE", node)
        .args(["test", "--backend", "ssh", "--nodes-file"])
        .arg(&hosts.0)
        .arg("--ssh-key")
        .arg(&hosts.1)
        .args(["--remote-dir", "/tmp/gpaxos-ssh-test", "--store"])
        .arg(store)
        .args(args)
        .output()
        .expect("running gpaxos-harness")
}

/// The run directories under `store/<test>`.
fn runs(store: &Path, test: &str) -> Vec<PathBuf> {
    std::fs::read_dir(store.join(test))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn nonempty(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
}

#[test]
fn partitions_kills_and_pauses_on_five_hosts_are_valid() {
    let Some(hosts) = hosts() else { return };
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let store = scratch("valid");
    let started = Instant::now();
    let out = ssh_test(
        &node_binary("gpaxos-node"),
        &hosts,
        &store,
        &[
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n(in {:.0} s)", started.elapsed().as_secs_f64());
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("verdict      valid"), "{stdout}");
    let runs = runs(&store, "ssh-kv-partition+kill+pause");
    assert_eq!(runs.len(), 1, "one run directory");
    let run = &runs[0];
    for f in [
        "history.jsonl",
        "results.json",
        "report.html",
        "summary.json",
        "test.json",
    ] {
        assert!(nonempty(&run.join(f)), "{f} in {}", run.display());
    }
    // Every kind of fault was made, and recorded.
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    for kind in ["partition", "kill", "pause"] {
        assert!(
            history.contains(&format!("\"{kind}\"")),
            "no {kind} in the history"
        );
    }
    // The nodes' logs and data came back from the hosts.
    for i in 1..=5 {
        let nodes = run.join("nodes");
        assert!(nonempty(&nodes.join(format!("n{i}.log"))), "n{i}.log");
        assert!(nodes.join(format!("n{i}.data")).is_dir(), "n{i}.data");
    }
    let test = std::fs::read_to_string(run.join("test.json")).unwrap();
    assert!(
        test.contains("\"backend\": \"ssh\"") && test.contains("10.78.0.11"),
        "{test}"
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn a_planted_bug_on_the_hosts_fails_the_run_and_is_explained() {
    let Some(hosts) = hosts() else { return };
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let store = scratch("planted");
    // The planted_cluster test's recipe (contention and lost messages make
    // the bug's unsafe proposals collide), two shorter runs: seeds 7, 8
    // and 9 each failed alone here, and a wedged cluster makes every run
    // wait out the final phase (50 s each).
    let out = ssh_test(
        &node_binary("gpaxos-node-planted"),
        &hosts,
        &store,
        &[
            "--nemesis",
            "partition,loss",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "10",
            "--rate",
            "0",
            "--concurrency",
            "12",
            "--conflict",
            "0.9",
            "--test-count",
            "2",
            "--seed",
            "7",
            "--planted-bug",
            "proved-safe-one-vote",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let explained = runs(&store, "ssh-kv-partition+loss").iter().any(|run| {
        let summary = std::fs::read_to_string(run.join("summary.json")).unwrap_or_default();
        summary.contains("\"invalid\"")
            && ["Consistency", "Stability", "execution"]
                .iter()
                .any(|p| summary.contains(p))
            && nonempty(&run.join("report.html"))
    });
    assert!(
        explained,
        "no run's summary.json explains the violation:\n{stdout}"
    );
    let _ = std::fs::remove_dir_all(&store);
}

/// Bad input is named and exits 254; needs no hosts.
#[test]
fn a_bad_nodes_file_or_an_unreachable_host_is_a_bad_argument() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nodes");
    let cases: [(&str, &[&str], &str); 4] = [
        ("n1 10.78.0.11:7000\nthis is wrong\n", &[], "line 2"),
        ("n1 h1\nn3 h3\n", &[], "n2 is missing"),
        (
            "",
            &["--nodes-file", "/nonexistent/nodes"],
            "reading the nodes file",
        ),
        // Nothing listens on port 1: refused at once.
        (
            "n1 127.0.0.1\n",
            &["--ssh-port", "1"],
            "cannot log in over ssh",
        ),
    ];
    for (text, extra, says) in cases {
        std::fs::write(&file, text).unwrap();
        let mut cmd = Command::new(harness());
        cmd.args(["test", "--backend", "ssh", "--store"]).arg(&dir);
        if !extra.contains(&"--nodes-file") {
            cmd.arg("--nodes-file").arg(&file);
        }
        let out = cmd.args(extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{text:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{text:?} should say {says:?}: {stderr}"
        );
    }
    let out = Command::new(harness())
        .args(["test", "--backend", "ssh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "no nodes file");
    let _ = std::fs::remove_dir_all(&dir);
}
