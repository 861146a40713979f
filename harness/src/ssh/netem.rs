//! Delay, jitter and reordering with `tc netem` on hosts whose kernel has
//! it (`sch_netem`), for the ssh backend; loss and duplication stay
//! `iptables` rules (see `cluster::netfault`), whose counters say how many
//! packets a fault took. Hosts without netem (this project's CI kernel)
//! get an NFQUEUE served on the host instead.
//!
//! Only packets to the other nodes are delayed: the egress device toward
//! the peers gets a `prio` root with a fourth band no priority maps to,
//! netem under that band, and one `u32` filter per peer sending its
//! packets there. Everything else (the harness's clients, ssh) keeps the
//! other three bands, as the default `pfifo_fast` priomap would.

use crate::faults::LinkFaults;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// The shortest hold of a reordered packet, as the relays use.
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(5);
/// The default `pfifo_fast` priomap, over the first three bands.
const PRIOMAP: &str = "1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1";

/// A script that prints `yes` if the host's kernel has netem and prio
/// (kernels without `sch_netem` often lack `sch_prio` too): it puts both
/// on `lo` and removes them at once. A host whose `lo` already has a root
/// qdisc of its own says `no` and is left alone.
pub fn probe_script() -> &'static str {
    "if tc qdisc add dev lo root handle 1: prio 2>/dev/null; then \
     if tc qdisc add dev lo parent 1:1 netem delay 0ms 2>/dev/null; then n=yes; else n=no; fi; \
     tc qdisc del dev lo root; echo $n; else echo no; fi\n"
}

/// The egress device toward `peer`, into `$dev`.
fn device(peer: IpAddr) -> String {
    format!("dev=$(ip -o route get {peer} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')\n")
}

/// The netem arguments for `f`, or `None` if `f` holds nothing back.
fn netem_args(f: &LinkFaults) -> Option<String> {
    if f.delay.is_zero() && f.jitter.is_zero() && f.reorder <= 0.0 {
        return None;
    }
    let mut delay = f.delay;
    if f.reorder > 0.0 {
        // netem reorders by sending some packets at once while the rest
        // wait, so a reordering needs a delay to overtake.
        delay = delay.max((f.delay + f.jitter).max(MIN_REORDER_WINDOW));
    }
    let mut a = format!("delay {}us", delay.as_micros());
    if !f.jitter.is_zero() {
        let _ = write!(a, " {}us", f.jitter.as_micros());
    }
    if f.reorder > 0.0 {
        let _ = write!(a, " reorder {:.4}%", f.reorder.clamp(0.0, 1.0) * 100.0);
    }
    Some(a)
}

/// A script that makes the host delay its packets to `peers` as `f`
/// says, or removes our qdiscs when `f` holds nothing back. Idempotent.
pub fn script(peers: &[IpAddr], f: &LinkFaults) -> String {
    let Some(&first) = peers.first() else {
        return String::new();
    };
    let mut s = String::from("set -e\n");
    s.push_str(&device(first));
    // Ours is the prio root with handle 1:; anything else is not touched.
    s.push_str(
        "if tc qdisc show dev \"$dev\" | grep -q '^qdisc prio 1: root'; then \
         tc qdisc del dev \"$dev\" root; fi\n",
    );
    let Some(args) = netem_args(f) else {
        return s;
    };
    let _ = writeln!(
        s,
        "tc qdisc add dev \"$dev\" root handle 1: prio bands 4 priomap {PRIOMAP}"
    );
    let _ = writeln!(
        s,
        "tc qdisc add dev \"$dev\" parent 1:4 handle 40: netem {args}"
    );
    for p in peers {
        let _ = writeln!(
            s,
            "tc filter add dev \"$dev\" parent 1:0 protocol ip prio 1 u32 match ip dst {p}/32 flowid 1:4"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_only_when_packets_are_held_and_reordering_gets_a_window() {
        assert_eq!(netem_args(&LinkFaults::default()), None);
        let f = LinkFaults {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            ..LinkFaults::default()
        };
        assert_eq!(netem_args(&f).unwrap(), "delay 30000us 10000us");
        let f = LinkFaults {
            reorder: 0.25,
            ..LinkFaults::default()
        };
        assert_eq!(netem_args(&f).unwrap(), "delay 5000us reorder 25.0000%");
    }

    #[test]
    fn the_script_filters_each_peer_and_parses_in_sh() {
        let peers: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        let f = LinkFaults {
            delay: Duration::from_millis(20),
            ..LinkFaults::default()
        };
        let s = script(&peers, &f);
        assert!(s.contains("match ip dst 10.0.0.3/32 flowid 1:4"), "{s}");
        assert!(!script(&peers, &LinkFaults::default()).contains("netem"));
        let ok = std::process::Command::new("sh")
            .args(["-n", "-c", &s])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}
