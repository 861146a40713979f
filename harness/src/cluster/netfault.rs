//! Partitions and packet faults as `iptables` rules on one node's host:
//! a container's network namespace entered from the Docker host
//! (`nsenter -t PID -n`, [`Ns`]), or a real host over SSH. Both backends
//! share the [`plan`] of rules and the shell [`script`] that makes a host
//! hold exactly them, so what a fault means is written once.
//! Every rule lives in a chain of ours, jumped to from the built-in chain
//! it hooks; a host without faults holds no chain and no jump, so a heal
//! is complete and every step is idempotent.
//!
//! * partition: `filter/GPAXOS` from `INPUT` drops every packet from the
//!   peers this node must not hear (a plain DROP: QUIC is UDP, and a
//!   NEW-only match would let established flows through).
//! * loss: `filter/GPAXOS-OUT` from `OUTPUT`, `-m statistic` DROP of
//!   packets to the peers.
//! * duplication: `mangle/GPAXOS-DUP` from `OUTPUT`, `-m statistic` then
//!   `TEE` a copy straight to the peer.
//! * delay, jitter, reordering: `filter/GPAXOS-OUT` sends packets to the
//!   peers to an `NFQUEUE` whose verdicts the harness holds back (see
//!   [`super::nfqueue`]). `tc netem` would do it in the kernel, but kernels
//!   built without `sch_netem` (this project's CI machine) have no
//!   delaying qdisc at all; the ssh backend uses netem where the host has
//!   it, and then plans no queue.
//!
//! Only packets addressed to the other nodes are faulted: the harness's
//! clients reach every node, as the local backend's clients bypass its
//! relays.

use super::nfqueue;
use super::shell::{self, quote};
use crate::faults::{Grudge, LinkFaults};
use anyhow::Result;
use std::fmt::Write as _;
use std::net::IpAddr;

const PARTITION: &str = "GPAXOS";
const OUT: &str = "GPAXOS-OUT";
const DUP: &str = "GPAXOS-DUP";
/// Every chain of ours: table, chain, the built-in chain that jumps to it.
const CHAINS: [(&str, &str, &str); 3] = [
    ("filter", PARTITION, "INPUT"),
    ("filter", OUT, "OUTPUT"),
    ("mangle", DUP, "OUTPUT"),
];

/// The rules one node's host must hold: per chain of [`CHAINS`], its rules
/// (an empty chain is removed with its jump).
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub rules: [Vec<Vec<String>>; 3],
    /// Packets to the peers go to an NFQUEUE, which needs a queue served
    /// on the host while the fault lasts.
    pub queued: bool,
}

/// Whether `faults` hold packets back (delay, jitter, reordering).
pub fn holds(faults: &LinkFaults) -> bool {
    !faults.delay.is_zero() || !faults.jitter.is_zero() || faults.reorder > 0.0
}

fn pct(p: f64) -> String {
    format!("{:.6}", p.clamp(0.0, 1.0))
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| (*w).to_owned()).collect()
}

fn random(ip: &str, p: f64, target: &[&str]) -> Vec<String> {
    let p = pct(p);
    let mut w = words(&["-d", ip, "-m", "statistic", "--mode", "random"]);
    w.extend(words(&["--probability", &p, "-j"]));
    w.extend(words(target));
    w
}

/// The rules for node `me`: the links of `grudge` into `me` cut, and
/// `faults` on its packets to the other nodes. `ips` are every node's
/// addresses. With `queue`, delays and reordering are planned as an
/// NFQUEUE; without, the caller makes them some other way (tc netem).
pub fn plan(me: usize, ips: &[IpAddr], grudge: &Grudge, faults: LinkFaults, queue: bool) -> Plan {
    let mut p = Plan::default();
    for (j, ip) in ips.iter().enumerate() {
        if grudge.contains(&(j, me)) {
            p.rules[0].push(words(&["-s", &ip.to_string(), "-j", "DROP"]));
        }
    }
    p.queued = queue && holds(&faults);
    for (j, ip) in ips.iter().enumerate() {
        if j == me {
            continue;
        }
        let ip = ip.to_string();
        if faults.loss > 0.0 {
            p.rules[1].push(random(&ip, faults.loss, &["DROP"]));
        }
        if p.queued {
            let q = nfqueue::QUEUE_NUM.to_string();
            p.rules[1].push(words(&[
                "-d",
                &ip,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &q,
                "--queue-bypass",
            ]));
        }
        if faults.duplicate > 0.0 {
            p.rules[2].push(random(&ip, faults.duplicate, &["TEE", "--gateway", &ip]));
        }
    }
    p
}

/// A POSIX shell script that makes the host hold exactly `plan`'s rules
/// (`set -e`: the first failing `iptables` fails it, with its message).
pub fn script(plan: &Plan) -> String {
    let mut s = String::from("set -e\nipt() { iptables -w \"$@\"; }\n");
    for ((table, chain, hook), rules) in CHAINS.iter().zip(&plan.rules) {
        let t = format!("ipt -t {table}");
        if rules.is_empty() {
            // A jump added twice by some other hand goes too.
            let _ = writeln!(
                s,
                "if {t} -n -L {chain} >/dev/null 2>&1; then\n  \
                 n=0; while [ $n -lt 16 ] && {t} -D {hook} -j {chain} 2>/dev/null; do n=$((n+1)); done\n  \
                 {t} -F {chain}; {t} -X {chain}\nfi"
            );
            continue;
        }
        let _ = writeln!(s, "{t} -n -L {chain} >/dev/null 2>&1 || {t} -N {chain}");
        let _ = writeln!(
            s,
            "{t} -C {hook} -j {chain} 2>/dev/null || {t} -I {hook} 1 -j {chain}"
        );
        let _ = writeln!(s, "{t} -F {chain}");
        for r in rules {
            let r: Vec<String> = r.iter().map(|w| quote(w)).collect();
            let _ = writeln!(s, "{t} -A {chain} {}", r.join(" "));
        }
    }
    s
}

/// A script that lists our chains with their packet counts, for
/// [`parse_counters`]; chains that do not exist are left out.
pub fn counters_script() -> String {
    let mut s = String::new();
    for (table, chain, _) in CHAINS {
        let _ = writeln!(
            s,
            "echo '#chain {chain}'; iptables -w -t {table} -L {chain} -v -x -n 2>/dev/null || true"
        );
    }
    s
}

/// How many packets our rules matched, by what they did: `cut`
/// (partition), `lost`, `held` (delayed or reordered), `duplicated`.
pub fn parse_counters(text: &str) -> [(&'static str, u64); 4] {
    let mut c = [("cut", 0), ("lost", 0), ("held", 0), ("duplicated", 0)];
    let mut chain = "";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("#chain ") {
            chain = name.trim();
            continue;
        }
        // `pkts bytes target ...` per rule; the headers do not parse.
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(Ok(pkts)), Some(target)) = (w.first().map(|p| p.parse::<u64>()), w.get(2)) else {
            continue;
        };
        let k = match (chain, *target) {
            (PARTITION, _) => 0,
            (_, "DROP") => 1,
            (_, "NFQUEUE") => 2,
            _ => 3,
        };
        c[k].1 += pkts;
    }
    c
}

/// One container's network namespace, by the pid of a process in it.
pub struct Ns {
    pub pid: u32,
}

impl Ns {
    /// Runs `script` with the host's `sh` inside the namespace.
    pub fn sh(&self, script: &str) -> Result<String> {
        let pid = self.pid.to_string();
        shell::run_input("nsenter", &["-t", &pid, "-n", "sh", "-s"], script, 30)
    }
}

/// How many packets our rules matched so far in `ns`.
pub fn counters(ns: &Ns) -> [(&'static str, u64); 4] {
    parse_counters(&ns.sh(&counters_script()).unwrap_or_default())
}

/// Makes node `me`'s namespace hold exactly the faults in force (see
/// [`plan`]). A delay or reordering needs the queue this returns, which
/// must live while the fault does.
pub fn apply(
    ns: &Ns,
    me: usize,
    ips: &[IpAddr],
    grudge: &Grudge,
    faults: LinkFaults,
    seed: u64,
) -> Result<Option<nfqueue::Queue>> {
    let plan = plan(me, ips, grudge, faults, true);
    // The queue is bound before packets are sent to it, and outlives the
    // rule that feeds it (the caller drops it after the heal).
    let queue = if plan.queued {
        Some(nfqueue::Queue::start(ns.pid, faults, seed)?)
    } else {
        None
    };
    ns.sh(&script(&plan))?;
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ips() -> Vec<IpAddr> {
        (1..=3)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect()
    }

    #[test]
    fn a_plan_cuts_only_the_grudge_into_this_node_and_faults_only_peers() {
        let grudge: Grudge = [(1, 0), (0, 2)].into_iter().collect();
        let faults = LinkFaults {
            loss: 0.1,
            delay: Duration::from_millis(20),
            ..LinkFaults::default()
        };
        let p = plan(0, &ips(), &grudge, faults, true);
        assert_eq!(p.rules[0], vec![words(&["-s", "10.0.0.2", "-j", "DROP"])]);
        assert!(p.queued);
        // Loss and a queue rule per peer, none to itself.
        assert_eq!(p.rules[1].len(), 4);
        assert!(p.rules[1].iter().all(|r| r[1] != "10.0.0.1"));
        assert!(p.rules[2].is_empty());
        // Without a queue the delay is left to the caller.
        let p = plan(0, &ips(), &grudge, faults, false);
        assert!(!p.queued && p.rules[1].len() == 2);
    }

    #[test]
    fn an_empty_plan_removes_every_chain_and_the_script_runs_in_sh() {
        let s = script(&Plan::default());
        for (_, chain, hook) in CHAINS {
            assert!(s.contains(&format!("-D {hook} -j {chain}")), "{s}");
            assert!(s.contains(&format!("-X {chain}")), "{s}");
        }
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &s])
            .status()
            .unwrap();
        assert!(out.success(), "the script parses");
    }

    #[test]
    fn counters_are_read_per_chain() {
        let text = "#chain GPAXOS\nChain GPAXOS (1 references)\n    pkts      bytes target prot opt in out source destination\n      12     1000 DROP  all  --  *  *  10.0.0.2 0.0.0.0/0\n\
                    #chain GPAXOS-OUT\nChain GPAXOS-OUT (1 references)\n    pkts bytes target\n       3  100 DROP all\n       5  100 NFQUEUE all\n\
                    #chain GPAXOS-DUP\n";
        let c = parse_counters(text);
        assert_eq!(c.map(|(_, n)| n), [12, 3, 5, 0]);
    }
}
