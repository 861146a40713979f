//! The docker backend's faults are real: with one node isolated, its peers
//! cannot reach it (a health probe run from a peer's network namespace
//! fails, both ways) while the harness's client on the host still can; a
//! restart keeps the node isolated; a heal leaves no rule behind. Packet
//! loss and delay hit the peers' traffic and not the host's.
//!
//! One test function: every Docker test shares the one compose cluster.
//! It runs when the image `gpaxos-node:latest` exists (`bash
//! docker/build.sh`) or when GPAXOS_DOCKER_TESTS=1 asks for it (then a
//! missing image fails). No Docker engine: skipped, loudly, except under
//! CI=true, where it fails.

use gpaxos_harness::cluster::docker::{self, DockerCluster, Unavailable};
use gpaxos_harness::cluster::relay::{grudge, LinkFaults};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == value)
}

/// Says so on the real stderr: libtest would swallow an `eprintln!` of a
/// test that passes, and a skip must not pass for a success unseen.
fn skip(why: &str) {
    use std::io::Write;
    let bar = "#".repeat(72);
    let _ = writeln!(
        std::io::stderr(),
        "{bar}\n## docker_partition SKIPPED: nothing was tested.\n## {why}\n{bar}"
    );
}

/// The project's root if the test is to run.
fn gate() -> Option<PathBuf> {
    let root = docker::project_root().expect("the project's root");
    let ci = env_is("CI", "true");
    let asked = env_is("GPAXOS_DOCKER_TESTS", "1");
    match docker::preflight(&root) {
        Ok(()) => Some(root),
        Err(u @ Unavailable::Engine(_)) if ci => panic!("Docker is required under CI=true: {u}"),
        Err(u @ Unavailable::Setup(_)) if asked => {
            panic!("GPAXOS_DOCKER_TESTS=1, but the docker backend cannot run: {u}")
        }
        Err(u @ Unavailable::Setup(_)) => {
            skip(&format!("{u} (GPAXOS_DOCKER_TESTS=1 makes this fail)"));
            None
        }
        Err(u) => {
            skip(&u.to_string());
            None
        }
    }
}

fn pid(i: usize) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", &docker::container(i)])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `args` on the host, inside node `ns`'s network namespace if any;
/// its output, or `None` if it failed or took more than 30 s.
fn sh(ns: Option<usize>, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new("timeout");
    cmd.arg("30");
    if let Some(i) = ns {
        cmd.args(["nsenter", "-t", &pid(i), "-n"]);
    }
    let out = cmd.args(args).output().expect("running a probe");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Probe {
    bin: PathBuf,
    tls: PathBuf,
    addrs: Vec<String>,
}

impl Probe {
    /// `gpaxos-node health` of node `to`, from node `from`'s namespace or
    /// (`None`) from the host.
    fn health(&self, from: Option<usize>, to: usize) -> bool {
        let name = format!("n{}", to + 1);
        let bin = self.bin.display().to_string();
        let tls = self.tls.display().to_string();
        sh(
            from,
            &[
                &bin,
                "health",
                "--addr",
                &self.addrs[to],
                "--name",
                &name,
                "--tls",
                &tls,
            ],
        )
        .is_some()
    }

    /// Like `health`, retried for up to 60 s until it succeeds.
    fn eventually(&self, from: Option<usize>, to: usize) -> bool {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if self.health(from, to) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    }

    /// A client operation from the host, first through node `via`.
    fn client(&self, via: usize, op: &[&str]) -> Option<String> {
        let cluster: Vec<String> = self
            .addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("n{}={a}", i + 1))
            .collect();
        let (bin, tls) = (
            self.bin.display().to_string(),
            self.tls.display().to_string(),
        );
        let node = format!("n{}", via + 1);
        let cluster = cluster.join(",");
        let mut args = vec![
            bin.as_str(),
            "client",
            "--cluster",
            &cluster,
            "--tls",
            &tls,
            "--node",
            &node,
        ];
        args.extend_from_slice(op);
        sh(None, &args).map(|s| s.trim().to_owned())
    }
}

/// Node `i`'s rules: the DROP lines of our chain and the jumps to it, or
/// `None` when the chain does not exist.
fn rules(i: usize) -> (Option<usize>, usize) {
    let chain = sh(Some(i), &["iptables", "-w", "-S", "GPAXOS"])
        .map(|s| s.lines().filter(|l| l.ends_with("-j DROP")).count());
    let jumps = sh(Some(i), &["iptables", "-w", "-S", "INPUT"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("-j GPAXOS"))
        .count();
    (chain, jumps)
}

/// The host's gpaxos-node: the static build docker/build.sh makes, else
/// the workspace's.
fn node_bin(root: &Path) -> PathBuf {
    let stat = root.join("target/x86_64-unknown-linux-gnu/release/gpaxos-node");
    if stat.is_file() {
        return stat;
    }
    gpaxos_harness::cluster::local::node_binary().expect("a gpaxos-node binary")
}

#[test]
fn an_isolated_container_is_cut_from_its_peers_but_not_from_the_client() {
    let Some(root) = gate() else { return };
    let dir = std::env::temp_dir().join(format!("gpaxos-docker-partition-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    let mut c = DockerCluster::up(&dir, false, 7).expect("the compose cluster comes up");
    let p = Probe {
        bin: node_bin(&root),
        tls: c.tls_dir(),
        addrs: c.addrs().iter().map(|a| a.to_string()).collect(),
    };
    let (victim, peer, other) = (2, 0, 1);
    let nodes: Vec<usize> = (0..docker::NODES).collect();

    // The probes work before any fault, or their failures below prove
    // nothing.
    assert!(
        p.eventually(Some(peer), victim),
        "n1 reaches n3 before the partition"
    );
    assert!(
        p.health(None, victim),
        "the host reaches n3 before the partition"
    );

    let g = grudge::isolate(&nodes, victim);
    c.partition(&g).unwrap();
    c.partition(&g).unwrap();
    assert_eq!(rules(victim), (Some(4), 1), "n3 drops its 4 peers, once");
    assert_eq!(rules(peer), (Some(1), 1), "n1 drops n3 only");

    assert!(
        !p.health(Some(peer), victim),
        "n1 must not reach the isolated n3"
    );
    assert!(
        !p.health(Some(victim), peer),
        "the isolated n3 must not reach n1"
    );
    assert!(p.health(Some(peer), 3), "n1 still reaches n4");
    assert!(
        p.health(None, victim),
        "the host's client reaches the isolated n3"
    );
    assert!(
        p.client(victim, &["status"]).is_some(),
        "a client status through the isolated n3 is answered"
    );
    assert_eq!(
        p.client(other, &["put", "k", "v"]).as_deref(),
        Some("ok"),
        "the majority side serves a put"
    );

    // A restarted node comes back in a new namespace; the partition in
    // force must be applied to it again, once.
    let before = pid(victim);
    c.kill(victim).unwrap();
    c.restart(victim).unwrap();
    assert_ne!(
        pid(victim),
        before,
        "a restart gives the node a new process"
    );
    assert_eq!(
        rules(victim),
        (Some(4), 1),
        "the restarted n3 is isolated again"
    );
    assert!(
        p.eventually(None, victim),
        "the host reaches the restarted n3"
    );
    assert!(!p.health(Some(peer), victim), "n1 still must not reach n3");

    c.heal_network().unwrap();
    c.heal_network().unwrap();
    for i in 0..docker::NODES {
        assert_eq!(
            rules(i),
            (None, 0),
            "no chain and no jump left on n{}",
            i + 1
        );
    }
    assert!(
        p.eventually(Some(peer), victim),
        "n1 reaches n3 after the heal"
    );
    assert_eq!(
        p.client(victim, &["get", "k"]).as_deref(),
        Some("v"),
        "n3 serves the majority's write after the heal"
    );

    // Packet faults: all of the peers' packets lost, none of the host's.
    c.set_link_faults(LinkFaults {
        loss: 1.0,
        ..Default::default()
    })
    .unwrap();
    assert!(!p.health(Some(peer), victim), "100% loss between peers");
    assert!(p.health(None, victim), "the host's packets are not faulted");
    // 300 ms each way: a probe from a peer needs at least a handshake and
    // a request, two round trips, and still succeeds.
    c.set_link_faults(LinkFaults::delay(Duration::from_millis(300)))
        .unwrap();
    let t = Instant::now();
    assert!(p.health(Some(peer), victim), "delayed packets arrive");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1100),
        "a delayed probe took {took:?}"
    );
    c.heal_network().unwrap();
    for i in 0..docker::NODES {
        assert_eq!(
            rules(i),
            (None, 0),
            "no chain and no jump left on n{}",
            i + 1
        );
        for (table, chain) in [("filter", "GPAXOS-OUT"), ("mangle", "GPAXOS-DUP")] {
            assert!(
                sh(Some(i), &["iptables", "-w", "-t", table, "-S", chain]).is_none(),
                "n{}: {table}/{chain} left after the heal",
                i + 1
            );
        }
    }
    let t = Instant::now();
    assert!(
        p.eventually(Some(peer), victim),
        "n1 reaches n3 after the faults heal"
    );
    eprintln!("a probe after the heal took {:?}", t.elapsed());

    drop(c);
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", "name=gpaxos-n"])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "the cluster is down at the end");
    let _ = std::fs::remove_dir_all(&dir);
}
