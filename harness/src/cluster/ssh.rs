//! The `ssh` backend: nodes on real hosts named in a nodes file (see
//! [`crate::ssh::nodes_file`]), driven with the OpenSSH client.
//!
//! Each node gets a directory of its own on its host (`REMOTE_DIR/<node>`,
//! emptied at the start of a run: a learner holding an earlier run's
//! commands would fail this run's checks) holding the node binary, the
//! node's own key material (its key, its certificate and the CA's
//! certificate, made here per run; the CA's key never leaves this
//! machine), the configuration, the data directory, the log, and the pid.
//! A node runs under `nohup` below a small `sh` that records its exit
//! status, so a node that dies on its own is told from one we killed.
//! Kill is SIGKILL, pause SIGSTOP/SIGCONT, restart reuses the data.
//!
//! Partitions, loss and duplication are the `iptables` rules of
//! [`super::netfault`], made on each host with one script; delay, jitter
//! and reordering are `tc netem` where the host's kernel has it, else an
//! NFQUEUE served on the host by this harness's own binary, installed
//! there for the purpose (`gpaxos-harness nfqueue`). The rules live in the
//! host's network, not the node's process, so they outlast a restart.
//!
//! Clients run here and dial the nodes' addresses; node logs and data are
//! fetched back into the run directory when the cluster is dropped, which
//! also stops the nodes and removes every fault, on failure as well.

use super::local::{make_certs, node_binary};
use super::netfault;
use super::shell::quote;
use crate::faults::{Grudge, LinkFaults};
use crate::ssh::netem;
use crate::ssh::remote::{control_dir, Remote};
use crate::ssh::SshSetup;
use anyhow::{bail, Context, Result};
use gpaxos_node::protocol::node_name;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Seconds a script on a host may take.
const SCRIPT_SECS: u64 = 30;
/// Seconds to copy a binary or fetch a node's data.
const COPY_SECS: u64 = 120;

/// Where this harness's binary is, to serve NFQUEUEs on hosts without
/// netem: `$GPAXOS_HARNESS`, the running executable if it is the harness,
/// or the harness next to it (or its parent, for test executables).
pub fn harness_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GPAXOS_HARNESS") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    if exe.file_name().is_some_and(|n| n == "gpaxos-harness") {
        return Ok(exe);
    }
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("gpaxos-harness");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "gpaxos-harness not found next to {} (it serves delays on hosts without netem); set GPAXOS_HARNESS",
        exe.display()
    )
}

pub struct SshCluster {
    setup: SshSetup,
    remotes: Vec<Remote>,
    /// The nodes' addresses as resolved here: clients dial them, nodes
    /// name each other by them, and faults match them.
    addrs: Vec<SocketAddr>,
    run_dir: PathBuf,
    control: PathBuf,
    /// The host answered once: only those are cleaned up and fetched from.
    reached: Vec<bool>,
    /// Whether the host's kernel has netem.
    netem: Vec<bool>,
    /// Killed by us, or reported down by [`SshCluster::exited`].
    down: Vec<bool>,
    /// The nodes run with a configuration file.
    configured: bool,
    grudge: Grudge,
    faults: LinkFaults,
    seed: u64,
}

impl SshCluster {
    /// Installs and starts a node on every host of `setup`; `config` is
    /// the text of the nodes' TOML configuration, if any.
    pub fn start(
        run_dir: &Path,
        setup: &SshSetup,
        config: Option<&str>,
        seed: u64,
    ) -> Result<SshCluster> {
        let n = setup.nodes.len();
        let addrs = setup
            .nodes
            .iter()
            .map(|e| e.resolve())
            .collect::<Result<Vec<_>>>()?;
        let control = control_dir()?;
        let remotes = setup
            .nodes
            .iter()
            .map(|e| Remote::new(&e.host, &setup.options, &control))
            .collect();
        let mut c = SshCluster {
            setup: setup.clone(),
            remotes,
            addrs,
            run_dir: run_dir.to_owned(),
            control,
            reached: vec![false; n],
            netem: vec![false; n],
            down: vec![false; n],
            configured: config.is_some(),
            grudge: Grudge::new(),
            faults: LinkFaults::default(),
            seed,
        };
        c.reach_all()?;
        let local = c.stage(config)?;
        let installed = c.each(|i| c.install(i, &local));
        c.netem = gather(installed)?;
        let netem: Vec<&str> = (0..n)
            .filter(|&i| c.netem[i])
            .map(|i| c.setup.nodes[i].name.as_str())
            .collect();
        eprintln!(
            "ssh: {n} hosts ready; delays by tc netem on [{}], by NFQUEUE on the others",
            netem.join(",")
        );
        gather(c.each(|i| c.start_node(i)))?;
        Ok(c)
    }

    /// Runs `f` for every node at once: hosts answer in parallel.
    fn each<T: Send>(&self, f: impl Fn(usize) -> Result<T> + Sync) -> Vec<Result<T>> {
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..self.n()).map(|i| s.spawn(move || f(i))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| bail!("panicked")))
                .collect()
        })
    }

    /// Logs in to every host once, so that an unreachable host is named
    /// before anything is installed anywhere.
    fn reach_all(&mut self) -> Result<()> {
        let failed = crate::ssh::unreachable(&self.setup, &self.remotes);
        for i in 0..self.n() {
            self.reached[i] = !failed.iter().any(|(j, _)| *j == i);
        }
        if !failed.is_empty() {
            let why: Vec<String> = failed.into_iter().map(|(_, w)| w).collect();
            bail!("cannot log in over ssh to\n  {}", why.join("\n  "));
        }
        Ok(())
    }

    /// Makes what is installed on the hosts, here in the run directory:
    /// certificates and the configuration.
    fn stage(&self, config: Option<&str>) -> Result<Staged> {
        let node = node_binary()?;
        let tls = self.run_dir.join("tls");
        make_certs(&node, &tls, self.n())?;
        let config = match config {
            Some(text) => {
                let p = self.run_dir.join("node.toml");
                std::fs::write(&p, text)?;
                Some(p)
            }
            None => None,
        };
        Ok(Staged {
            node,
            harness: harness_binary()?,
            tls,
            config,
        })
    }

    fn dir(&self, i: usize) -> String {
        format!(
            "{}/{}",
            self.setup.options.remote_dir.trim_end_matches('/'),
            node_name(i as u32)
        )
    }

    /// Clears node `i`'s host of anything an earlier run left (a node, a
    /// queue, our rules and qdiscs, the data), copies the node's files
    /// there, and says whether the host has netem.
    fn install(&self, i: usize, staged: &Staged) -> Result<bool> {
        let r = &self.remotes[i];
        let dir = self.dir(i);
        let mut s = format!("set -e\nmkdir -p {0}\ncd {0}\n", quote(&dir));
        s.push_str(&stop_script("pid", "KILL"));
        s.push_str(&stop_script("nfq.pid", "TERM"));
        s.push_str("rm -rf data tls node.toml node.log exit nfq.log\nmkdir data\n");
        s.push_str(&netfault::script(&netfault::Plan::default()));
        let mut binaries = vec![(&staged.node, "gpaxos-node")];
        binaries.push((&staged.harness, "gpaxos-harness"));
        for (local, name) in &binaries {
            // The binaries stay between runs, known by size and time:
            // copying 60 MB to every host each run took most of a start.
            let id = fingerprint(local)?;
            let _ = writeln!(
                s,
                "[ \"$(cat {name}.id 2>/dev/null)\" = {id} ] || {{ rm -f {name}.id; echo copy {name}; }}"
            );
        }
        s.push_str(netem::probe_script());
        let said = r.sh(&s, SCRIPT_SECS)?;
        let netem = said.trim().ends_with("yes");
        if netem {
            r.sh(
                &netem::script(&self.peers(i), &LinkFaults::default()),
                SCRIPT_SECS,
            )?;
        }
        for (local, name) in binaries {
            // Hosts with netem need no queue server.
            if said.contains(&format!("copy {name}\n")) && (name == "gpaxos-node" || !netem) {
                r.put(local, &format!("{dir}/{name}"), COPY_SECS)?;
                r.sh(
                    &format!("echo {} >{}/{name}.id\n", fingerprint(local)?, quote(&dir)),
                    SCRIPT_SECS,
                )?;
            }
        }
        if let Some(c) = &staged.config {
            r.put(c, &format!("{dir}/node.toml"), COPY_SECS)?;
        }
        let own = staged.tls.join(node_name(i as u32));
        r.put(&own, &format!("{dir}/tls"), COPY_SECS)?;
        Ok(netem)
    }

    fn peers(&self, i: usize) -> Vec<IpAddr> {
        (0..self.n())
            .filter(|&j| j != i)
            .map(|j| self.addrs[j].ip())
            .collect()
    }

    /// Starts node `i` unless it runs; waits for its pid file.
    fn start_node(&self, i: usize) -> Result<()> {
        let name = node_name(i as u32);
        let cluster: Vec<String> = self
            .addrs
            .iter()
            .enumerate()
            .map(|(j, a)| format!("{}={a}", node_name(j as u32)))
            .collect();
        let listen = match self.addrs[i] {
            SocketAddr::V4(a) => format!("0.0.0.0:{}", a.port()),
            SocketAddr::V6(a) => format!("[::]:{}", a.port()),
        };
        let mut cmd = format!(
            "./gpaxos-node run --id {name} --cluster {} --listen {listen} --data data --tls tls",
            cluster.join(",")
        );
        if self.configured {
            cmd.push_str(" --config node.toml");
        }
        // The wrapper keeps the node's exit status; the node's pid is what
        // kill, pause and resume signal.
        let wrapper =
            format!("{cmd} >>node.log 2>&1 </dev/null & echo $! >pid; wait $!; echo $? >exit");
        let s = format!(
            "cd {dir}\n\
             if [ -f pid ] && kill -0 \"$(cat pid)\" 2>/dev/null; then exit 0; fi\n\
             rm -f pid exit\n\
             nohup sh -c {w} >/dev/null 2>&1 </dev/null &\n\
             n=0; while [ ! -s pid ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done\n\
             [ -s pid ] || {{ echo 'the node did not start' >&2; exit 1; }}\n",
            dir = quote(&self.dir(i)),
            w = quote(&wrapper)
        );
        self.remotes[i]
            .sh(&s, SCRIPT_SECS)
            .with_context(|| format!("starting {name}"))?;
        Ok(())
    }

    pub fn n(&self) -> usize {
        self.addrs.len()
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.run_dir.join("tls")
    }

    /// Runs `script` in node `i`'s directory.
    fn in_dir(&self, i: usize, script: &str) -> Result<String> {
        let s = format!("cd {} || exit 1\n{script}", quote(&self.dir(i)));
        self.remotes[i]
            .sh(&s, SCRIPT_SECS)
            .with_context(|| node_name(i as u32))
    }

    pub fn kill(&mut self, i: usize) -> Result<()> {
        self.in_dir(i, &stop_script("pid", "KILL"))?;
        self.down[i] = true;
        Ok(())
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.start_node(i)?;
        self.down[i] = false;
        Ok(())
    }

    pub fn pause(&mut self, i: usize) -> Result<()> {
        self.in_dir(
            i,
            "[ -f pid ] && kill -STOP \"$(cat pid)\" 2>/dev/null; true\n",
        )
        .map(|_| ())
    }

    pub fn resume(&mut self, i: usize) -> Result<()> {
        self.in_dir(
            i,
            "[ -f pid ] && kill -CONT \"$(cat pid)\" 2>/dev/null; true\n",
        )
        .map(|_| ())
    }

    /// Nodes that stopped without our kill, with their exit status and the
    /// end of their logs.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let probe = "if [ -f pid ] && ! kill -0 \"$(cat pid)\" 2>/dev/null; then \
                     echo \"exit status $(cat exit 2>/dev/null || echo unknown)\"; tail -n 5 node.log; fi\n";
        let answers = self.each(|i| {
            if self.down[i] {
                return Ok(String::new());
            }
            self.in_dir(i, probe)
        });
        let mut gone = Vec::new();
        for (i, a) in answers.into_iter().enumerate() {
            let Ok(text) = a else { continue };
            if text.trim().is_empty() {
                continue;
            }
            self.down[i] = true;
            let lines: Vec<&str> = text.lines().collect();
            gone.push((
                i,
                format!("{} exited ({})", node_name(i as u32), lines.join(" | ")),
            ));
        }
        gone
    }

    /// Appends `bytes` to node `i`'s write-ahead log, on its host.
    pub fn append_to_wal(&self, i: usize, bytes: &[u8]) -> Result<()> {
        let octal: String = bytes.iter().map(|b| format!("\\{b:03o}")).collect();
        self.in_dir(i, &format!("printf '{octal}' >>data/wal.log\n"))
            .map(|_| ())
    }

    pub fn partition(&mut self, grudge: &Grudge) -> Result<()> {
        for &(from, to) in grudge {
            if from >= self.n() || to >= self.n() || from == to {
                bail!(
                    "grudge link {from} -> {to} outside a cluster of {} nodes",
                    self.n()
                );
            }
        }
        self.grudge = grudge.clone();
        self.apply_all()
    }

    pub fn set_link_faults(&mut self, faults: LinkFaults) -> Result<()> {
        self.faults = faults;
        self.apply_all()
    }

    /// Removes every fault from every host; says how many packets the
    /// rules took, if any.
    pub fn heal_network(&mut self) -> Result<Option<String>> {
        let script = netfault::counters_script();
        let mut total = [("cut", 0u64), ("lost", 0), ("held", 0), ("duplicated", 0)];
        for text in self
            .each(|i| self.remotes[i].sh(&script, SCRIPT_SECS))
            .into_iter()
            .flatten()
        {
            for (k, (_, n)) in netfault::parse_counters(&text).into_iter().enumerate() {
                total[k].1 += n;
            }
        }
        self.grudge.clear();
        self.faults = LinkFaults::default();
        self.apply_all()?;
        let said: Vec<String> = total
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} packets {what}"))
            .collect();
        Ok((!said.is_empty()).then(|| said.join(", ")))
    }

    fn apply_all(&mut self) -> Result<()> {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let errors: Vec<String> = self
            .each(|i| self.apply(i))
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.err().map(|e| format!("{}: {e:#}", node_name(i as u32))))
            .collect();
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(())
    }

    /// Makes node `i`'s host hold exactly the faults in force, in one
    /// script.
    fn apply(&self, i: usize) -> Result<()> {
        let ips: Vec<IpAddr> = self.addrs.iter().map(SocketAddr::ip).collect();
        let f = self.faults;
        let plan = netfault::plan(i, &ips, &self.grudge, f, !self.netem[i]);
        let mut s = String::new();
        // A queue is bound before packets are sent to it and outlives the
        // rule that feeds it; one queue per host, so the old one goes first.
        if plan.queued {
            s.push_str(&stop_script("nfq.pid", "TERM"));
            s.push_str(&queue_script(f, self.seed.wrapping_add(i as u64)));
        }
        s.push_str(&netfault::script(&plan));
        if !plan.queued {
            s.push_str(&stop_script("nfq.pid", "TERM"));
        }
        if self.netem[i] {
            s.push_str(&netem::script(&self.peers(i), &f));
        }
        self.in_dir(i, &s).map(|_| ())
    }

    /// Stops every node, removes every fault, and fetches the nodes' logs
    /// and data into `run_dir/nodes`.
    fn finish(&mut self) {
        let nodes = self.run_dir.join("nodes");
        let _ = std::fs::create_dir_all(&nodes);
        self.grudge.clear();
        self.faults = LinkFaults::default();
        let _ = self.each(|i| {
            if !self.reached[i] {
                return Ok(());
            }
            let mut s = stop_script("pid", "KILL");
            s.push_str(&netfault::script(&netfault::Plan::default()));
            s.push_str(&stop_script("nfq.pid", "TERM"));
            if self.netem[i] {
                s.push_str(&netem::script(&self.peers(i), &LinkFaults::default()));
            }
            if let Err(e) = self.in_dir(i, &s) {
                eprintln!(
                    "warning: {} may still run or hold faults: {e:#}",
                    self.setup.nodes[i].name
                );
            }
            let name = node_name(i as u32);
            let r = &self.remotes[i];
            r.get(
                &format!("{}/node.log", self.dir(i)),
                &nodes.join(format!("{name}.log")),
                COPY_SECS,
            )?;
            r.get(
                &format!("{}/data", self.dir(i)),
                &nodes.join(format!("{name}.data")),
                COPY_SECS,
            )
        });
        for r in &self.remotes {
            r.close();
        }
        let _ = std::fs::remove_dir_all(&self.control);
    }
}

impl Drop for SshCluster {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What [`SshCluster::install`] copies, made here.
struct Staged {
    node: PathBuf,
    harness: PathBuf,
    tls: PathBuf,
    config: Option<PathBuf>,
}

/// A local file's size and modification time, which name the copy
/// installed on a host.
fn fingerprint(p: &Path) -> Result<String> {
    let m = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
    let t = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(format!("{}-{}", m.len(), t.as_nanos()))
}

/// The first error of `results`, or their values.
fn gather<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    results.into_iter().collect()
}

/// Stops the process named in `pidfile` (in the current directory) with
/// `signal`, waits for it to go and removes the file. A stopped process is
/// continued first, or a TERM would wait for ever.
fn stop_script(pidfile: &str, signal: &str) -> String {
    format!(
        "if [ -f {pidfile} ]; then p=$(cat {pidfile}); kill -CONT \"$p\" 2>/dev/null || true; \
         kill -{signal} \"$p\" 2>/dev/null || true; n=0; \
         while kill -0 \"$p\" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; \
         rm -f {pidfile}; fi\n"
    )
}

/// Starts this harness's queue server on the host and waits until it has
/// bound the queue (it prints `bound`), or fails with its log.
fn queue_script(f: LinkFaults, seed: u64) -> String {
    format!(
        "nohup ./gpaxos-harness nfqueue --delay-us {} --jitter-us {} --reorder {} --seed {seed} \
         >nfq.log 2>&1 </dev/null &\necho $! >nfq.pid\n\
         n=0; until grep -q bound nfq.log 2>/dev/null; do \
         if ! kill -0 \"$(cat nfq.pid)\" 2>/dev/null || [ $n -ge 100 ]; then \
         echo \"the NFQUEUE server did not start: $(cat nfq.log)\" >&2; exit 1; fi; \
         sleep 0.05; n=$((n+1)); done\n",
        f.delay.as_micros(),
        f.jitter.as_micros(),
        f.reorder
    )
}
