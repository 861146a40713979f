//! Partitions and packet faults inside one container's network namespace,
//! made from the host with the host's `iptables` (`nsenter -t PID -n`).
//! Every rule lives in a chain of ours, jumped to from the built-in chain
//! it hooks; a namespace without faults holds no chain and no jump, so a
//! heal is complete and every step is idempotent.
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
//!   delaying qdisc at all.
//!
//! Only packets addressed to the other nodes are faulted: the host (the
//! harness's clients, at the bridge's gateway) reaches every node, as the
//! local backend's clients bypass its relays.

use super::nfqueue;
use super::relay::{Grudge, LinkFaults};
use anyhow::Result;
use std::net::IpAddr;

const PARTITION: &str = "GPAXOS";
const OUT: &str = "GPAXOS-OUT";
const DUP: &str = "GPAXOS-DUP";

/// One container's network namespace, by the pid of a process in it.
pub struct Ns {
    pub pid: u32,
}

impl Ns {
    fn iptables(&self, table: &str, args: &[&str]) -> Result<String> {
        let pid = self.pid.to_string();
        let mut all = vec!["-t", pid.as_str(), "-n", "iptables", "-w", "-t", table];
        all.extend_from_slice(args);
        super::docker::run("nsenter", &all, 20)
    }

    /// Makes `table`'s chain `chain`, jumped to from `hook`, hold exactly
    /// `rules`; with none, removes the jump and the chain.
    fn set_chain(&self, table: &str, chain: &str, hook: &str, rules: &[Vec<String>]) -> Result<()> {
        let exists = self.iptables(table, &["-n", "-L", chain]).is_ok();
        if rules.is_empty() {
            if exists {
                // A jump added twice by some other hand goes too.
                for _ in 0..16 {
                    if self.iptables(table, &["-D", hook, "-j", chain]).is_err() {
                        break;
                    }
                }
                self.iptables(table, &["-F", chain])?;
                self.iptables(table, &["-X", chain])?;
            }
            return Ok(());
        }
        if !exists {
            self.iptables(table, &["-N", chain])?;
        }
        if self.iptables(table, &["-C", hook, "-j", chain]).is_err() {
            self.iptables(table, &["-I", hook, "1", "-j", chain])?;
        }
        self.iptables(table, &["-F", chain])?;
        for r in rules {
            let mut args = vec!["-A", chain];
            args.extend(r.iter().map(String::as_str));
            self.iptables(table, &args)?;
        }
        Ok(())
    }
}

/// How many packets our rules matched so far in `ns`, by what they did:
/// `cut` (partition), `lost`, `held` (delayed or reordered), `duplicated`.
pub fn counters(ns: &Ns) -> [(&'static str, u64); 4] {
    let mut c = [("cut", 0), ("lost", 0), ("held", 0), ("duplicated", 0)];
    for (table, chain) in [("filter", PARTITION), ("filter", OUT), ("mangle", DUP)] {
        let Ok(text) = ns.iptables(table, &["-L", chain, "-v", "-x", "-n"]) else {
            continue;
        };
        // Two header lines, then `pkts bytes target ...` per rule.
        for line in text.lines().skip(2) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (Some(pkts), Some(target)) = (w.first(), w.get(2)) else {
                continue;
            };
            let k = match (chain, *target) {
                (PARTITION, _) => 0,
                (_, "DROP") => 1,
                (_, "NFQUEUE") => 2,
                _ => 3,
            };
            c[k].1 += pkts.parse::<u64>().unwrap_or(0);
        }
    }
    c
}

fn pct(p: f64) -> String {
    format!("{:.6}", p.clamp(0.0, 1.0))
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| (*w).to_owned()).collect()
}

/// Makes node `me`'s namespace hold exactly the faults in force: the
/// links of `grudge` into `me` cut, and `faults` on its packets to the
/// other nodes. `ips` are every node's addresses. A delay or reordering
/// needs the queue this returns, which must live while the fault does.
pub fn apply(
    ns: &Ns,
    me: usize,
    ips: &[IpAddr],
    grudge: &Grudge,
    faults: LinkFaults,
    seed: u64,
) -> Result<Option<nfqueue::Queue>> {
    let peers: Vec<String> = ips
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != me)
        .map(|(_, ip)| ip.to_string())
        .collect();
    let cut: Vec<Vec<String>> = ips
        .iter()
        .enumerate()
        .filter(|&(j, _)| grudge.contains(&(j, me)))
        .map(|(_, ip)| words(&["-s", &ip.to_string(), "-j", "DROP"]))
        .collect();
    ns.set_chain("filter", PARTITION, "INPUT", &cut)?;

    let holds = !faults.delay.is_zero() || !faults.jitter.is_zero() || faults.reorder > 0.0;
    let mut out = Vec::new();
    let mut dup = Vec::new();
    for ip in &peers {
        if faults.loss > 0.0 {
            let p = pct(faults.loss);
            out.push(words(&[
                "-d",
                ip,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]));
        }
        if holds {
            let q = nfqueue::QUEUE_NUM.to_string();
            out.push(words(&[
                "-d",
                ip,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &q,
                "--queue-bypass",
            ]));
        }
        if faults.duplicate > 0.0 {
            let p = pct(faults.duplicate);
            dup.push(words(&[
                "-d",
                ip,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "TEE",
                "--gateway",
                ip,
            ]));
        }
    }
    // The queue is bound before packets are sent to it, and outlives the
    // rule that feeds it (the caller drops it after the heal).
    let queue = if holds {
        Some(nfqueue::Queue::start(ns.pid, faults, seed)?)
    } else {
        None
    };
    ns.set_chain("filter", OUT, "OUTPUT", &out)?;
    ns.set_chain("mangle", DUP, "OUTPUT", &dup)?;
    Ok(queue)
}
