//! Cluster backends. `local`: node processes on loopback, with `relay`, the
//! UDP relays between them, one per directed link, that carry packet
//! faults; `docker`: the containers of `docker-compose.yml`, faulted from
//! the host with `iptables` in their network namespaces (`netfault`,
//! `nfqueue`); `ssh`: real hosts named in a nodes file, driven over SSH
//! and faulted with the same `iptables` rules; `external`: a cluster the
//! harness did not start, which it runs clients against but does not fault.
//!
//! [`Cluster`] is what the runner and the nemesis see: the same kills,
//! pauses, partitions (by [`Grudge`]) and packet faults on either backend.

pub mod docker;
pub mod external;
pub mod local;
pub mod netfault;
pub mod nfqueue;
pub mod relay;
pub mod shell;
pub mod ssh;

use crate::faults::{Grudge, LinkFaults};
use crate::runner::TestConfig;
use anyhow::{bail, Result};
use docker::DockerCluster;
use external::{no_faults, ExternalCluster};
use local::LocalCluster;
use serde::Serialize;
use ssh::SshCluster;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where a test's cluster runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Node processes on loopback behind the harness's UDP relays.
    #[default]
    Local,
    /// The five containers of docker-compose.yml.
    Docker,
    /// Real hosts named in a nodes file, driven over SSH.
    Ssh,
    /// A cluster the harness did not start (--cluster, --tls): clients and
    /// checks, no faults.
    External,
}

/// A running cluster of any backend.
pub enum Cluster {
    Local(LocalCluster),
    Docker(DockerCluster),
    Ssh(SshCluster),
    External(ExternalCluster),
}

impl Cluster {
    /// Starts (or, for `external`, reaches) the cluster of the run `cfg`
    /// in `dir`. Docker containers run with the compose file's settings,
    /// so they take no node configuration.
    pub fn start(cfg: &TestConfig, dir: &Path) -> Result<Cluster> {
        let n = cfg.nodes;
        let config = cfg.node_config.as_deref();
        if cfg.latency.is_some() && cfg.backend != Backend::Local {
            bail!("--latency needs the local backend's relays");
        }
        match cfg.backend {
            Backend::Ssh => {
                let Some(setup) = &cfg.ssh else {
                    bail!("the ssh backend needs a nodes file (--nodes-file)");
                };
                if n != setup.nodes.len() {
                    bail!(
                        "the nodes file names {} nodes; got --nodes {n}",
                        setup.nodes.len()
                    );
                }
                Ok(Cluster::Ssh(SshCluster::start(
                    dir, setup, config, cfg.seed,
                )?))
            }
            Backend::External => {
                let Some(setup) = &cfg.external else {
                    bail!("the external backend needs --cluster and --tls");
                };
                Ok(Cluster::External(ExternalCluster::connect(setup)))
            }
            Backend::Local => {
                let c = LocalCluster::start_with(dir, n, config, Some(cfg.seed))?;
                if let (Some(mesh), Some(l)) = (c.relays(), &cfg.latency) {
                    mesh.set_latency(l);
                }
                Ok(Cluster::Local(c))
            }
            Backend::Docker => {
                if config.is_some() {
                    bail!(
                        "the docker backend runs the nodes with docker-compose.yml's settings; \
                         a node configuration (--planted-bug) needs --backend local"
                    );
                }
                if n != docker::NODES {
                    bail!(
                        "the docker backend is the {} nodes of docker-compose.yml; got --nodes {n}",
                        docker::NODES
                    );
                }
                let bank = cfg.workload == crate::workload::WorkloadKind::Bank;
                Ok(Cluster::Docker(DockerCluster::up(dir, bank, cfg.seed)?))
            }
        }
    }

    pub fn n(&self) -> usize {
        match self {
            Cluster::Local(c) => c.n(),
            Cluster::Docker(c) => c.n(),
            Cluster::Ssh(c) => c.n(),
            Cluster::External(c) => c.n(),
        }
    }

    /// The addresses clients use, in node order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        match self {
            Cluster::Local(c) => c.addrs().to_vec(),
            Cluster::Docker(c) => c.addrs().to_vec(),
            Cluster::Ssh(c) => c.addrs().to_vec(),
            Cluster::External(c) => c.addrs().to_vec(),
        }
    }

    /// The certificates, the client's included.
    pub fn tls_dir(&self) -> PathBuf {
        match self {
            Cluster::Local(c) => c.tls_dir(),
            Cluster::Docker(c) => c.tls_dir(),
            Cluster::Ssh(c) => c.tls_dir(),
            Cluster::External(c) => c.tls_dir(),
        }
    }

    /// How a kill is done, for the run's descriptions of its faults.
    pub fn kill_word(&self) -> &'static str {
        match self {
            Cluster::Local(_) => "SIGKILL",
            Cluster::Docker(_) => "docker kill -s KILL",
            Cluster::Ssh(_) => "SIGKILL over ssh",
            Cluster::External(_) => "no kill (external)",
        }
    }

    /// How a pause is done, for the descriptions.
    pub fn pause_word(&self) -> &'static str {
        match self {
            Cluster::Local(_) => "SIGSTOP",
            Cluster::Docker(_) => "docker pause",
            Cluster::Ssh(_) => "SIGSTOP over ssh",
            Cluster::External(_) => "no pause (external)",
        }
    }

    /// Whether partitions and packet faults can be injected: a local
    /// cluster started without relays cannot.
    pub fn has_network_faults(&self) -> bool {
        match self {
            Cluster::Local(c) => c.relays().is_some(),
            Cluster::Docker(_) | Cluster::Ssh(_) => true,
            Cluster::External(_) => false,
        }
    }

    /// Crashes node `i`: it keeps only what it synced.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        match self {
            Cluster::Local(c) => c.kill(i),
            Cluster::Docker(c) => c.kill(i),
            Cluster::Ssh(c) => c.kill(i),
            Cluster::External(_) => no_faults(),
        }
    }

    /// Starts node `i` again on its data if it is down; a no-op otherwise.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        match self {
            Cluster::Local(c) => c.restart(i),
            Cluster::Docker(c) => c.restart(i),
            Cluster::Ssh(c) => c.restart(i),
            Cluster::External(_) => Ok(()),
        }
    }

    pub fn pause(&mut self, i: usize) -> Result<()> {
        match self {
            Cluster::Local(c) => {
                c.pause(i);
                Ok(())
            }
            Cluster::Docker(c) => c.pause(i),
            Cluster::Ssh(c) => c.pause(i),
            Cluster::External(_) => no_faults(),
        }
    }

    /// Resumes node `i` if it is paused; a no-op otherwise.
    pub fn resume(&mut self, i: usize) -> Result<()> {
        match self {
            Cluster::Local(c) => {
                c.resume(i);
                Ok(())
            }
            Cluster::Docker(c) => c.resume(i),
            Cluster::Ssh(c) => c.resume(i),
            Cluster::External(_) => Ok(()),
        }
    }

    /// Nodes that stopped without being killed, with the end of their logs.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        match self {
            Cluster::Local(c) => c.exited(),
            Cluster::Docker(c) => c.exited(),
            Cluster::Ssh(c) => c.exited(),
            Cluster::External(_) => Vec::new(),
        }
    }

    /// Node `i`'s data directory as the harness reaches it (not on the
    /// ssh backend's hosts).
    pub fn data_dir(&self, i: usize) -> Result<PathBuf> {
        match self {
            Cluster::Local(c) => Ok(c.data_dir(i)),
            Cluster::Docker(c) => c.data_dir(i),
            Cluster::Ssh(_) => bail!("an ssh node's data is on its host"),
            Cluster::External(_) => bail!("an external node's data is out of the harness's reach"),
        }
    }

    /// Appends `bytes` to node `i`'s write-ahead log (the torn-log
    /// nemesis, on a node that is down).
    pub fn append_to_wal(&self, i: usize, bytes: &[u8]) -> Result<()> {
        if let Cluster::Ssh(c) = self {
            return c.append_to_wal(i, bytes);
        }
        use std::io::Write;
        let log = self.data_dir(i)?.join("wal.log");
        let mut f = std::fs::OpenOptions::new().append(true).open(&log)?;
        f.write_all(bytes)?;
        Ok(())
    }

    /// Cuts exactly the links of `grudge` (with `(j, i)` in it, node `i`
    /// hears nothing from node `j`) and reconnects every other link.
    pub fn partition(&mut self, grudge: &Grudge) -> Result<()> {
        match self {
            Cluster::Local(c) => match c.relays() {
                Some(mesh) => {
                    mesh.partition(grudge);
                    Ok(())
                }
                None => bail!("partitions need the harness's relays"),
            },
            Cluster::Docker(c) => c.partition(grudge),
            Cluster::Ssh(c) => c.partition(grudge),
            Cluster::External(_) => no_faults(),
        }
    }

    /// The same packet faults on all node-to-node traffic.
    pub fn set_link_faults(&mut self, faults: LinkFaults) -> Result<()> {
        match self {
            Cluster::Local(c) => match c.relays() {
                Some(mesh) => {
                    mesh.set_all(faults);
                    Ok(())
                }
                None => bail!("packet faults need the harness's relays"),
            },
            Cluster::Docker(c) => c.set_link_faults(faults),
            Cluster::Ssh(c) => c.set_link_faults(faults),
            Cluster::External(_) => no_faults(),
        }
    }

    /// Reconnects every link and clears every packet fault. Idempotent.
    /// The docker backend says how many packets its rules took.
    pub fn heal_network(&mut self) -> Result<Option<String>> {
        match self {
            Cluster::Local(c) => {
                if let Some(mesh) = c.relays() {
                    mesh.heal();
                }
                Ok(None)
            }
            Cluster::Docker(c) => c.heal_network(),
            Cluster::Ssh(c) => c.heal_network(),
            Cluster::External(_) => Ok(None),
        }
    }
}
