//! The `docker` backend: the five containers of `docker-compose.yml`
//! (`gpaxos-n1`..`gpaxos-n5`, image `gpaxos-node:latest`, bridge
//! `10.77.0.0/24`). Kill is `docker kill -s KILL`, restart `docker start`
//! (same data volume), pause `docker pause`/`unpause`.
//!
//! Partitions and packet faults are made from the host inside each
//! container's network namespace (`nsenter -t <pid> -n iptables ...`, see
//! [`super::netfault`]), so the image needs no tools and the containers no
//! privileges, and only packets between nodes are faulted.
//!
//! A container's network namespace does not outlive its process (checked:
//! after `docker kill` and `docker start` no rule of ours is left), so the
//! faults in force are applied to a restarted node again, with its new pid.
//!
//! Clients reach the nodes at their bridge addresses (`10.77.0.1x:7000`),
//! straight from the host, rather than through the published loopback
//! ports, whose userland proxy would sit in every client packet's path and
//! lose its flows when a container restarts.

use super::netfault::{self, Ns};
use super::nfqueue::Queue;
use super::shell::{run, run_in};
use crate::faults::{Grudge, LinkFaults};
use anyhow::{anyhow, bail, Context, Result};
use gpaxos_node::protocol::node_name;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The nodes of docker-compose.yml.
pub const NODES: usize = 5;
pub const IMAGE: &str = "gpaxos-node:latest";
/// The port every node listens on inside its container.
const PORT: u16 = 7000;
const HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

/// The container of node `i` (0-based).
pub fn container(i: usize) -> String {
    format!("gpaxos-{}", node_name(i as u32))
}

/// The directory holding `docker-compose.yml` and `docker/`:
/// `$GPAXOS_ROOT`, else the current directory or one of its parents, else
/// an ancestor of the running executable (`target/release/..`).
pub fn project_root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GPAXOS_ROOT") {
        return Ok(PathBuf::from(p));
    }
    let cwd = std::env::current_dir()?;
    let exe = std::env::current_exe()?;
    for start in [&cwd, &exe] {
        for dir in start.ancestors() {
            if dir.join("docker-compose.yml").is_file() && dir.join("docker").is_dir() {
                return Ok(dir.to_owned());
            }
        }
    }
    bail!(
        "docker-compose.yml not found in {} or its parents: run from the project's directory or set GPAXOS_ROOT",
        cwd.display()
    )
}

/// Why the docker backend cannot run on this machine.
#[derive(Debug)]
pub enum Unavailable {
    /// No Docker engine answers.
    Engine(String),
    /// The engine answers, but the image or the certificates are missing,
    /// or the host lacks what faults need.
    Setup(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Engine(why) => write!(f, "the Docker engine does not answer: {why}"),
            Unavailable::Setup(why) => f.write_str(why),
        }
    }
}

/// Checks what the backend needs: an engine that answers, the image and
/// the certificates that `docker/build.sh` makes, and root with `nsenter`
/// and `iptables` on the host.
pub fn preflight(root: &Path) -> std::result::Result<(), Unavailable> {
    match run("docker", &["info", "--format", "{{.ServerVersion}}"], 20) {
        Ok(_) => {}
        Err(e) => return Err(Unavailable::Engine(format!("docker info: {e:#}"))),
    }
    if run("docker", &["image", "inspect", IMAGE], 20).is_err() {
        return Err(Unavailable::Setup(format!(
            "the image {IMAGE} is missing: build it with `bash docker/build.sh`"
        )));
    }
    let tls = root.join("docker/tls");
    if !tls.join("ca.pem").is_file() {
        return Err(Unavailable::Setup(format!(
            "{} holds no certificates: make them with `bash docker/build.sh`",
            tls.display()
        )));
    }
    let missing: Vec<&str> = ["nsenter", "iptables"]
        .into_iter()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if !missing.is_empty() {
        return Err(Unavailable::Setup(format!(
            "{} missing on the host: apt-get install -y iptables util-linux",
            missing.join(", ")
        )));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Unavailable::Setup(
            "faults are made with nsenter in the containers' network namespaces, which needs root"
                .into(),
        ));
    }
    Ok(())
}

/// `$COMPOSE`, else `docker compose` (v2) if present, else `docker-compose`.
fn compose_command() -> Result<Vec<String>> {
    if let Ok(c) = std::env::var("COMPOSE") {
        let words: Vec<String> = c.split_whitespace().map(str::to_owned).collect();
        if !words.is_empty() {
            return Ok(words);
        }
    }
    if run("docker", &["compose", "version"], 20).is_ok() {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    if run("docker-compose", &["version"], 20).is_ok() {
        return Ok(vec!["docker-compose".into()]);
    }
    bail!("neither `docker compose` nor `docker-compose` is installed")
}

/// A container's state, from `docker inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    running: bool,
    paused: bool,
    pid: u32,
    exit_code: i64,
}

const STATE_FORMAT: &str =
    "{{.State.Running}} {{.State.Paused}} {{.State.Pid}} {{.State.ExitCode}}";

fn parse_state(line: &str) -> Result<State> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let [running, paused, pid, code] = w[..] else {
        bail!("unexpected docker inspect output {line:?}");
    };
    Ok(State {
        running: running == "true",
        paused: paused == "true",
        pid: pid.parse()?,
        exit_code: code.parse()?,
    })
}

pub struct DockerCluster {
    root: PathBuf,
    compose: Vec<String>,
    /// `-f FILE` arguments: docker-compose.yml, and the bank's override.
    files: Vec<String>,
    run_dir: PathBuf,
    addrs: Vec<SocketAddr>,
    /// Killed by us, or reported down by [`DockerCluster::exited`]: not to
    /// be reported again until restarted.
    down: Vec<bool>,
    /// The faults in force, applied again to a node that restarts.
    grudge: Grudge,
    faults: LinkFaults,
    /// The queues holding packets back, per node, while a delay lasts.
    queues: Vec<Option<Queue>>,
    seed: u64,
}

impl DockerCluster {
    /// Brings up a fresh compose cluster (`down -v`, then `up -d`) and waits
    /// for its five nodes to be healthy. Never reuses a running cluster: its
    /// learners would hold commands this run's history never proposed. With
    /// `bank`, docker/compose.bank.yml gives the nodes the bank's opening
    /// balances; `seed` seeds the random choices of packet faults.
    /// Container logs and data go to `run_dir/nodes` when the cluster is
    /// dropped, which also brings it down.
    pub fn up(run_dir: &Path, bank: bool, seed: u64) -> Result<DockerCluster> {
        let root = project_root()?;
        preflight(&root).map_err(|u| anyhow!("docker backend: {u}"))?;
        let mut files = vec!["-f".to_owned(), "docker-compose.yml".to_owned()];
        if bank {
            check_bank_config(&root)?;
            files.extend(["-f".to_owned(), "docker/compose.bank.yml".to_owned()]);
        }
        let mut c = DockerCluster {
            root,
            compose: compose_command()?,
            files,
            run_dir: run_dir.to_owned(),
            addrs: Vec::new(),
            down: vec![false; NODES],
            grudge: Grudge::new(),
            faults: LinkFaults::default(),
            queues: (0..NODES).map(|_| None).collect(),
            seed,
        };
        c.compose(&["down", "-v"], 120)
            .context("bringing a previous cluster down")?;
        // A container left by another project name would hold our names.
        for i in 0..NODES {
            if run("docker", &["inspect", &container(i)], 20).is_ok() {
                run("docker", &["rm", "-f", "-v", &container(i)], 60)?;
            }
        }
        let started = c.compose(&["up", "-d"], 180).and_then(|_| c.wait_healthy());
        if let Err(e) = started {
            let why = c.diagnose();
            return Err(e.context(why));
        }
        for i in 0..NODES {
            let ip = run(
                "docker",
                &[
                    "inspect",
                    "-f",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    &container(i),
                ],
                20,
            )?;
            let ip: IpAddr = ip
                .trim()
                .parse()
                .with_context(|| format!("{}'s address {ip:?}", container(i)))?;
            c.addrs.push(SocketAddr::new(ip, PORT));
        }
        // Nothing of ours can be in fresh namespaces; this proves iptables
        // works in them before the first fault needs it.
        c.heal_network()?;
        Ok(c)
    }

    fn compose(&self, args: &[&str], secs: u64) -> Result<String> {
        let mut all: Vec<&str> = self.compose[1..].iter().map(String::as_str).collect();
        all.extend(self.files.iter().map(String::as_str));
        all.extend_from_slice(args);
        run_in(&self.root, &self.compose[0], &all, secs)
    }

    fn wait_healthy(&self) -> Result<()> {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            let mut args = vec![
                "inspect",
                "-f",
                "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            ];
            let names: Vec<String> = (0..NODES).map(container).collect();
            args.extend(names.iter().map(String::as_str));
            let out = run("docker", &args, 20)?;
            let pending: Vec<String> = out
                .lines()
                .zip(&names)
                .filter(|(s, _)| *s != "healthy")
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "not healthy after {} s: {}",
                    HEALTH_TIMEOUT.as_secs(),
                    pending.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The containers' states and last log lines, for a failed bring-up.
    fn diagnose(&self) -> String {
        let mut s = String::from("the compose cluster did not come up:");
        for i in 0..NODES {
            let state = run(
                "docker",
                &[
                    "inspect",
                    "-f",
                    "{{.State.Status}} exit={{.State.ExitCode}}",
                    &container(i),
                ],
                20,
            )
            .unwrap_or_else(|e| e.to_string());
            let _ = write!(
                s,
                "\n  {}: {} | {}",
                container(i),
                state.trim(),
                self.log_tail(i, 3)
            );
        }
        s
    }

    fn log_tail(&self, i: usize, lines: usize) -> String {
        let out = Command::new("docker")
            .args(["logs", "--tail", &lines.to_string(), &container(i)])
            .output();
        match out {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text.lines().collect::<Vec<_>>().join(" | ")
            }
            Err(e) => format!("docker logs: {e}"),
        }
    }

    pub fn n(&self) -> usize {
        NODES
    }

    /// The nodes' bridge addresses, in node order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("docker/tls")
    }

    fn state(&self, i: usize) -> Result<State> {
        parse_state(
            run(
                "docker",
                &["inspect", "-f", STATE_FORMAT, &container(i)],
                20,
            )?
            .trim(),
        )
    }

    /// The pid of node `i`'s process on the host, if it runs. It changes
    /// with every start, so it is read each time.
    fn pid(&self, i: usize) -> Result<Option<u32>> {
        let s = self.state(i)?;
        Ok((s.running && s.pid > 0).then_some(s.pid))
    }

    pub fn kill(&mut self, i: usize) -> Result<()> {
        let s = self.state(i)?;
        if s.running {
            if s.paused {
                run("docker", &["unpause", &container(i)], 60)?;
            }
            run("docker", &["kill", "-s", "KILL", &container(i)], 60)?;
        }
        self.down[i] = true;
        Ok(())
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        if !self.state(i)?.running {
            run("docker", &["start", &container(i)], 120)?;
        }
        self.down[i] = false;
        self.apply(i)
    }

    pub fn pause(&mut self, i: usize) -> Result<()> {
        let s = self.state(i)?;
        if s.running && !s.paused {
            run("docker", &["pause", &container(i)], 60)?;
        }
        Ok(())
    }

    pub fn resume(&mut self, i: usize) -> Result<()> {
        if self.state(i)?.paused {
            run("docker", &["unpause", &container(i)], 60)?;
        }
        Ok(())
    }

    /// Nodes whose container stopped without our kill.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let names: Vec<String> = (0..NODES).map(container).collect();
        let mut args = vec!["inspect", "-f", STATE_FORMAT];
        args.extend(names.iter().map(String::as_str));
        let Ok(out) = run("docker", &args, 20) else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        for (i, line) in out.lines().enumerate().take(NODES) {
            let Ok(s) = parse_state(line) else { continue };
            if !s.running && !self.down[i] {
                self.down[i] = true;
                gone.push((
                    i,
                    format!(
                        "{} exited (exit code {}): {}",
                        node_name(i as u32),
                        s.exit_code,
                        self.log_tail(i, 5)
                    ),
                ));
            }
        }
        gone
    }

    /// Where node `i`'s data volume is on the host (the engine's volume
    /// directory, which root reaches).
    pub fn data_dir(&self, i: usize) -> Result<PathBuf> {
        let volume = run(
            "docker",
            &[
                "inspect",
                "-f",
                "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}",
                &container(i),
            ],
            20,
        )?;
        let volume = volume.trim();
        if volume.is_empty() {
            bail!("{} has no volume at /data", container(i));
        }
        let at = run(
            "docker",
            &["volume", "inspect", "-f", "{{.Mountpoint}}", volume],
            20,
        )?;
        let at = PathBuf::from(at.trim());
        if !at.is_dir() {
            bail!(
                "volume {volume} is at {}, which this host does not see (is the engine on another machine?)",
                at.display()
            );
        }
        Ok(at)
    }

    pub fn partition(&mut self, grudge: &Grudge) -> Result<()> {
        for &(from, to) in grudge {
            if from >= NODES || to >= NODES || from == to {
                bail!("grudge link {from} -> {to} outside a cluster of {NODES} nodes");
            }
        }
        self.grudge = grudge.clone();
        self.apply_all()
    }

    pub fn set_link_faults(&mut self, faults: LinkFaults) -> Result<()> {
        self.faults = faults;
        self.apply_all()
    }

    /// Removes every rule of ours from every running node; says how many
    /// packets the rules took, if any (a fault that touched no packet was
    /// no fault).
    pub fn heal_network(&mut self) -> Result<Option<String>> {
        let mut total = [("cut", 0u64), ("lost", 0), ("held", 0), ("duplicated", 0)];
        for i in 0..NODES {
            if let Ok(Some(pid)) = self.pid(i) {
                for (k, (_, n)) in netfault::counters(&Ns { pid }).into_iter().enumerate() {
                    total[k].1 += n;
                }
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

    /// Applies the faults in force to every running node; a node that is
    /// down gets them when it restarts.
    fn apply_all(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for i in 0..NODES {
            if let Err(e) = self.apply(i) {
                errors.push(format!("{}: {e:#}", node_name(i as u32)));
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(())
    }

    /// Makes node `i`'s namespace hold exactly the faults in force.
    fn apply(&mut self, i: usize) -> Result<()> {
        let Some(pid) = self.pid(i)? else {
            self.queues[i] = None;
            return Ok(());
        };
        let f = self.faults;
        if netfault::holds(&f) {
            // One queue per namespace: the old one must let go first.
            self.queues[i] = None;
        }
        let ips: Vec<IpAddr> = self.addrs.iter().map(SocketAddr::ip).collect();
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let queue = netfault::apply(&Ns { pid }, i, &ips, &self.grudge, f, self.seed)?;
        // Dropped after the rules that fed it are gone.
        self.queues[i] = queue;
        Ok(())
    }

    /// Copies the containers' logs and data volumes into `run_dir/nodes`.
    fn save(&self) {
        let nodes = self.run_dir.join("nodes");
        let _ = std::fs::create_dir_all(&nodes);
        for i in 0..NODES {
            let name = node_name(i as u32);
            if let Ok(log) = std::fs::File::create(nodes.join(format!("{name}.log"))) {
                let err = log.try_clone();
                let mut cmd = Command::new("docker");
                cmd.args(["logs", &container(i)]).stdout(log);
                if let Ok(err) = err {
                    cmd.stderr(err);
                }
                let _ = cmd.status();
            }
            if let Ok(data) = self.data_dir(i) {
                let _ = Command::new("cp")
                    .arg("-a")
                    .arg(&data)
                    .arg(nodes.join(format!("{name}.data")))
                    .status();
            }
        }
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        // A frozen container would not stop on compose's SIGTERM.
        for i in 0..NODES {
            let _ = self.resume(i);
        }
        self.save();
        if let Err(e) = self.compose(&["down", "-v"], 120) {
            eprintln!("warning: the compose cluster may still be up: {e:#}");
        }
    }
}

/// docker/bank.toml must open the accounts the bank workload declares to
/// the checker, or every run would be judged against the wrong balances.
fn check_bank_config(root: &Path) -> Result<()> {
    use crate::workload::{ACCOUNTS, OPENING_BALANCE};
    let path = root.join("docker/bank.toml");
    let file = gpaxos_node::config_file::ConfigFile::load(&path)?;
    let want: std::collections::BTreeMap<String, i64> = ACCOUNTS
        .iter()
        .map(|a| ((*a).to_owned(), OPENING_BALANCE))
        .collect();
    if file.accounts != want {
        bail!(
            "{} opens {:?}, but the bank workload expects {want:?}",
            path.display(),
            file.accounts
        );
    }
    Ok(())
}
