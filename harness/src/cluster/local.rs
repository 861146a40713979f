//! The `local` backend: `gpaxos-node` processes on loopback, each with its
//! own data directory and log, certificates made per run. Kill is SIGKILL,
//! pause is SIGSTOP/SIGCONT, restart reuses the data directory.

use super::relay::RelayMesh;
use anyhow::{bail, Context, Result};
use gpaxos_node::protocol::node_name;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where the `gpaxos-node` binary is: `$GPAXOS_NODE`, or next to the running
/// executable (or its parent, for test executables in `target/*/deps`).
pub fn node_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GPAXOS_NODE") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("gpaxos-node");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "gpaxos-node not found next to {}; build it (cargo build --release -p gpaxos-node) or set GPAXOS_NODE",
        exe.display()
    )
}

/// Free UDP ports on 127.0.0.1 (bound then released; good enough on a
/// machine that is not racing us for ports).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    sockets.iter().map(|s| Ok(s.local_addr()?.port())).collect()
}

/// Makes a cluster CA and certificates for `n` nodes and a client in
/// `tls` with `gpaxos-node certs`: `tls/<node>` holds all node `<node>` is
/// given, the CA's key stays in `tls/ca`.
pub fn make_certs(bin: &Path, tls: &Path, n: usize) -> Result<()> {
    let names: Vec<String> = (0..n as u32).map(node_name).collect();
    let status = Command::new(bin)
        .args(["certs", "--out"])
        .arg(tls)
        .args(["--nodes", &names.join(",")])
        .stdout(Stdio::null())
        .status()
        .context("running gpaxos-node certs")?;
    if !status.success() {
        bail!("gpaxos-node certs failed");
    }
    Ok(())
}

pub struct LocalCluster {
    bin: PathBuf,
    dir: PathBuf,
    addrs: Vec<SocketAddr>,
    config: Option<PathBuf>,
    procs: Vec<Option<Child>>,
    paused: Vec<bool>,
    /// Node-to-node traffic goes through these, if any.
    relays: Option<RelayMesh>,
}

impl LocalCluster {
    /// Makes certificates in `dir/tls` and starts `n` nodes. `config` is the
    /// text of a node TOML configuration, if any.
    pub fn start(dir: &Path, n: usize, config: Option<&str>) -> Result<LocalCluster> {
        LocalCluster::start_with(dir, n, config, None)
    }

    /// Like [`LocalCluster::start`]; with `relay_seed`, node-to-node traffic
    /// goes through a [`RelayMesh`] (one UDP relay per directed link) whose
    /// random faults follow that seed. Must run inside a tokio runtime.
    pub fn start_with(
        dir: &Path,
        n: usize,
        config: Option<&str>,
        relay_seed: Option<u64>,
    ) -> Result<LocalCluster> {
        let bin = node_binary()?;
        std::fs::create_dir_all(dir.join("nodes"))?;
        make_certs(&bin, &dir.join("tls"), n)?;
        let config = match config {
            Some(text) => {
                let p = dir.join("node.toml");
                std::fs::write(&p, text)?;
                Some(p)
            }
            None => None,
        };
        let addrs: Vec<SocketAddr> = free_ports(n)?
            .into_iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let relays = match relay_seed {
            Some(seed) => Some(RelayMesh::start(&addrs, seed)?),
            None => None,
        };
        let mut c = LocalCluster {
            relays,
            bin,
            dir: dir.to_owned(),
            addrs,
            config,
            procs: (0..n).map(|_| None).collect(),
            paused: vec![false; n],
        };
        for i in 0..n {
            c.spawn(i)?;
        }
        Ok(c)
    }

    pub fn n(&self) -> usize {
        self.addrs.len()
    }

    /// The addresses clients use, in node order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// The `--cluster` map node `i` is given: relay fronts when relaying.
    fn cluster_arg(&self, i: usize) -> String {
        match &self.relays {
            Some(mesh) => mesh.cluster_arg_for(i),
            None => self
                .addrs
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}={a}", node_name(i as u32)))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    pub fn relays(&self) -> Option<&RelayMesh> {
        self.relays.as_ref()
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let name = node_name(i as u32);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nodes").join(format!("{name}.log")))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["run", "--id", &name, "--cluster", &self.cluster_arg(i)])
            .arg("--listen")
            .arg(self.addrs[i].to_string())
            .arg("--data")
            .arg(self.dir.join("nodes").join(format!("{name}.data")))
            .arg("--tls")
            .arg(self.dir.join("tls").join(&name))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        self.procs[i] = Some(cmd.spawn().with_context(|| format!("starting {name}"))?);
        self.paused[i] = false;
        Ok(())
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs[i].as_ref().map(|c| c.id())
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.procs[i].is_some()
    }

    /// SIGKILL: the node stops at once, keeping only what it synced.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.procs[i].take() {
            if self.paused[i] {
                signal(&child, libc::SIGCONT);
            }
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts a killed node again on its data directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.procs[i].is_none() {
            self.spawn(i)?;
        }
        Ok(())
    }

    pub fn pause(&mut self, i: usize) {
        if let Some(c) = &self.procs[i] {
            signal(c, libc::SIGSTOP);
            self.paused[i] = true;
        }
    }

    pub fn resume(&mut self, i: usize) {
        if let Some(c) = &self.procs[i] {
            signal(c, libc::SIGCONT);
            self.paused[i] = false;
        }
    }

    /// Nodes that exited without being killed, with the end of their logs.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for i in 0..self.procs.len() {
            let status = match self.procs[i].as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => status,
                _ => continue,
            };
            self.procs[i] = None;
            let log = std::fs::read_to_string(
                self.dir
                    .join("nodes")
                    .join(format!("{}.log", node_name(i as u32))),
            )
            .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            out.push((
                i,
                format!(
                    "{} exited ({status}): {}",
                    node_name(i as u32),
                    tail.join(" | ")
                ),
            ));
        }
        out
    }

    /// The data directory of node `i`.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir
            .join("nodes")
            .join(format!("{}.data", node_name(i as u32)))
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid this process spawned and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            let _ = self.kill(i);
        }
    }
}
