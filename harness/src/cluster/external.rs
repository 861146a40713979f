//! The `external` backend: a cluster the harness did not start (on
//! Kubernetes, on hosts someone else runs, or started by hand), named by
//! the node's own `--cluster n1=HOST:PORT,...` argument and reached with a
//! client certificate from `--tls DIR`.
//!
//! The harness runs clients against it, observes every learner and checks
//! the run as on any backend, but it injects no faults: it cannot kill,
//! pause or cut what it does not own. The cluster may hold earlier
//! commands, so a run reads each learner from where it stood when the run
//! began and writes only keys of its own (see `runner`).

use anyhow::{bail, Context, Result};
use gpaxos_node::net::certs;
use gpaxos_node::net::cluster_arg::{parse_cluster, resolve};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What an external run is given, recorded in test.json.
#[derive(Clone, Debug, Serialize)]
pub struct ExternalSetup {
    /// `n1=HOST:PORT,...`, as given.
    pub cluster: String,
    /// Holds `ca.pem`, `client.pem` and `client.key`.
    pub tls: PathBuf,
    /// The nodes' client addresses, in node order, resolved once when the
    /// flags are checked.
    pub addrs: Vec<SocketAddr>,
}

impl ExternalSetup {
    /// Checks the flags before anything runs: the map parses and every
    /// address resolves, and the client's credentials load.
    pub fn parse(cluster: &str, tls: &Path) -> Result<ExternalSetup> {
        let addrs = parse_cluster(cluster)
            .context("--cluster")?
            .iter()
            .map(|a| resolve(a))
            .collect::<Result<Vec<_>>>()?;
        certs::load_client(tls).with_context(|| {
            format!(
                "--tls {}: the client's certificate (ca.pem, client.pem, client.key)",
                tls.display()
            )
        })?;
        Ok(ExternalSetup {
            cluster: cluster.to_owned(),
            tls: tls.to_owned(),
            addrs,
        })
    }
}

pub struct ExternalCluster {
    addrs: Vec<SocketAddr>,
    tls: PathBuf,
}

impl ExternalCluster {
    pub fn connect(setup: &ExternalSetup) -> ExternalCluster {
        ExternalCluster {
            addrs: setup.addrs.clone(),
            tls: setup.tls.clone(),
        }
    }

    pub fn n(&self) -> usize {
        self.addrs.len()
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.tls.clone()
    }
}

/// The error of every fault asked of an external cluster.
pub fn no_faults<T>() -> Result<T> {
    bail!("the external backend injects no faults into a cluster it did not start (use --nemesis none)")
}
