//! The nodes file of the ssh backend, as Jepsen's `--nodes-file`: one node
//! a line, `name host[:port]` (`n1 10.0.0.11:7000`), `#` starting a
//! comment, blank lines ignored. The names are the nodes' identities, the
//! names in their certificates, so they must be `n1` to `nN` without gaps
//! (in any order). Each node needs a host of its own: partitions and packet
//! faults are made per host address.

use anyhow::{bail, Context, Result};
use gpaxos_node::protocol::node_name;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

/// The port a node listens on when its line names none.
pub const DEFAULT_PORT: u16 = 7000;

/// One node of the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeEntry {
    pub name: String,
    /// As written: what ssh connects to.
    pub host: String,
    pub port: u16,
}

/// Reads and checks `path`; the nodes in node order (`n1` first).
pub fn load(path: &Path) -> Result<Vec<NodeEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the nodes file {}", path.display()))?;
    parse(&text).with_context(|| format!("nodes file {}", path.display()))
}

/// Parses the text of a nodes file (see the module's documentation).
pub fn parse(text: &str) -> Result<Vec<NodeEntry>> {
    let mut nodes = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let entry = parse_line(line).with_context(|| format!("line {}: {raw:?}", k + 1))?;
        if nodes.iter().any(|n: &NodeEntry| n.name == entry.name) {
            bail!("line {}: node {} is listed twice", k + 1, entry.name);
        }
        if nodes.iter().any(|n: &NodeEntry| n.host == entry.host) {
            bail!(
                "line {}: host {} already holds a node; each node needs a host of its own \
                 (faults are made per host address)",
                k + 1,
                entry.host
            );
        }
        nodes.push(entry);
    }
    if nodes.is_empty() {
        bail!("no nodes: expected lines like `n1 10.0.0.11:7000`");
    }
    nodes.sort_by_key(|n| n.name[1..].parse::<u32>().unwrap_or(u32::MAX));
    for (i, n) in nodes.iter().enumerate() {
        let want = node_name(i as u32);
        if n.name != want {
            bail!(
                "the nodes must be named n1 to n{} without gaps; {want} is missing",
                nodes.len()
            );
        }
    }
    Ok(nodes)
}

fn parse_line(line: &str) -> Result<NodeEntry> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [name, addr] = words[..] else {
        bail!("expected `name host[:port]`, two words");
    };
    let valid_name = name
        .strip_prefix('n')
        .and_then(|d| d.parse::<u32>().ok())
        .is_some_and(|d| d >= 1 && name == format!("n{d}"));
    if !valid_name {
        bail!("node name {name:?} is not n1, n2, ... (the names in the nodes' certificates)");
    }
    let (host, port) = match addr.rsplit_once(':') {
        // A bare IPv6 address has colons of its own: [::1]:7000 or ::1.
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .with_context(|| format!("port {p:?} is not a number from 1 to 65535"))?;
            (h.trim_matches(['[', ']']).to_owned(), port)
        }
        _ => (addr.trim_matches(['[', ']']).to_owned(), DEFAULT_PORT),
    };
    if host.is_empty() {
        bail!("no host");
    }
    Ok(NodeEntry {
        name: name.to_owned(),
        host,
        port,
    })
}

impl NodeEntry {
    /// The node's address as the harness's machine resolves it: where
    /// clients dial, and the address the hosts' faults match.
    pub fn resolve(&self) -> Result<SocketAddr> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}'s host {}", self.name, self.host))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{}'s host {} has no IPv4 address", self.name, self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_ports_and_order() {
        let text = "# five hosts\n\nn2 10.0.0.12:7001  # second\nn1 db1.example\n";
        let nodes = parse(text).unwrap();
        assert_eq!(
            nodes,
            vec![
                NodeEntry {
                    name: "n1".into(),
                    host: "db1.example".into(),
                    port: DEFAULT_PORT
                },
                NodeEntry {
                    name: "n2".into(),
                    host: "10.0.0.12".into(),
                    port: 7001
                },
            ]
        );
        let v6 = parse("n1 [::1]:7002\n").unwrap();
        assert_eq!((v6[0].host.as_str(), v6[0].port), ("::1", 7002));
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        for (text, says) in [
            ("", "no nodes"),
            ("n1\n", "line 1"),
            ("n1 a b\n", "two words"),
            ("x1 h\n", "not n1, n2"),
            ("n01 h\n", "not n1, n2"),
            ("n1 h:0\n", "port"),
            ("n1 h:x\n", "port"),
            ("n1 a\nn1 b\n", "listed twice"),
            ("n1 a\nn2 a\n", "host of its own"),
            ("n1 a\nn3 b\n", "n2 is missing"),
        ] {
            let e = format!("{:#}", parse(text).unwrap_err());
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
