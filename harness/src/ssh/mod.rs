//! What the ssh backend (`cluster::ssh`) needs to reach real hosts: the
//! nodes file naming them, the OpenSSH client that drives them, and tc
//! netem for the hosts whose kernel has it.

pub mod netem;
pub mod nodes_file;
pub mod remote;

use anyhow::{anyhow, bail, Result};
use nodes_file::NodeEntry;
use remote::{Remote, SshOptions};
use serde::Serialize;
use std::path::PathBuf;

/// Everything an ssh run is given about its hosts, recorded in test.json.
#[derive(Clone, Debug, Serialize)]
pub struct SshSetup {
    pub nodes_file: PathBuf,
    /// The nodes file as read, in node order.
    pub nodes: Vec<NodeEntry>,
    pub options: SshOptions,
}

/// Logs in to every host of `setup` once, all at once; the nodes whose
/// host did not let us in, with why (ssh's own message).
pub fn unreachable(setup: &SshSetup, remotes: &[Remote]) -> Vec<(usize, String)> {
    let answers: Vec<Result<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = remotes
            .iter()
            .map(|r| s.spawn(move || r.sh("true\n", 30)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("panicked"))))
            .collect()
    });
    answers
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let e = a.err()?;
            let n = &setup.nodes[i];
            let login = remotes[i].login();
            Some((
                i,
                format!("{} ({login} port {}): {e:#}", n.name, setup.options.port),
            ))
        })
        .collect()
}

/// Fails, naming every host that does not let us in, unless all do.
pub fn check_reachable(setup: &SshSetup) -> Result<()> {
    let control = remote::control_dir()?;
    let remotes: Vec<Remote> = setup
        .nodes
        .iter()
        .map(|n| Remote::new(&n.host, &setup.options, &control))
        .collect();
    let failed = unreachable(setup, &remotes);
    for r in &remotes {
        r.close();
    }
    let _ = std::fs::remove_dir_all(&control);
    if !failed.is_empty() {
        let why: Vec<String> = failed.into_iter().map(|(_, w)| w).collect();
        bail!("cannot log in over ssh to\n  {}", why.join("\n  "));
    }
    Ok(())
}
