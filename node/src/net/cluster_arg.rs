//! The `--cluster n1=HOST:PORT,n2=HOST:PORT,...` argument, as the node, its
//! client command and the harness's external backend all read it: node
//! names `n1` to `nN` without gaps, each with an address that has a port.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, ToSocketAddrs};

/// Parses `n1=HOST:PORT,...` into addresses in node order.
pub fn parse_cluster(s: &str) -> Result<Vec<String>> {
    let mut nodes: Vec<(usize, String)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, addr) = part
            .split_once('=')
            .with_context(|| format!("{part:?} is not NAME=HOST:PORT"))?;
        let i = parse_node(name)?;
        if !addr.contains(':') {
            bail!("{part:?}: the address needs a port");
        }
        if nodes.iter().any(|(j, _)| *j == i) {
            bail!("node {name} is listed twice");
        }
        nodes.push((i, addr.to_owned()));
    }
    nodes.sort();
    for (expected, (i, _)) in nodes.iter().enumerate() {
        if *i != expected {
            bail!(
                "the cluster must name n1 to n{} without gaps; n{} is missing",
                nodes.len(),
                expected + 1
            );
        }
    }
    if nodes.is_empty() {
        bail!("--cluster names no node");
    }
    Ok(nodes.into_iter().map(|(_, a)| a).collect())
}

/// `n3` -> 2.
pub fn parse_node(name: &str) -> Result<usize> {
    name.strip_prefix('n')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .map(|n| n - 1)
        .with_context(|| format!("{name:?} is not a node name (n1, n2, ...)"))
}

/// The first address `addr` (`host:port`) resolves to.
pub fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_in_node_order() {
        let got = parse_cluster("n2=b:2, n1=a:1,n3=c:3").unwrap();
        assert_eq!(got, ["a:1", "b:2", "c:3"]);
    }

    #[test]
    fn gaps_duplicates_and_portless_addresses_are_refused() {
        for (arg, says) in [
            ("n1=a:1,n3=c:3", "n2 is missing"),
            ("n1=a:1,n1=b:2", "listed twice"),
            ("n1=a", "needs a port"),
            ("x1=a:1", "not a node name"),
            ("n1", "not NAME=HOST:PORT"),
            ("", "names no node"),
        ] {
            let e = format!("{:#}", parse_cluster(arg).unwrap_err());
            assert!(e.contains(says), "{arg:?}: {e}");
        }
    }
}
