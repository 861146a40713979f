//! `gpaxos-harness soak`: a local cluster under a steady load for minutes,
//! sampling what a node holds (resident memory, log size, snapshot size,
//! client sessions) to show that it levels off instead of growing with the
//! number of commands ever run. Client processes are replaced every so
//! often, as Jepsen's are, so idle sessions must expire too.

use crate::cluster::local::LocalCluster;
use anyhow::Result;
use gpaxos_node::client::Client;
use gpaxos_node::net::certs;
use gpaxos_node::{Command, Op};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub nodes: usize,
    pub duration: Duration,
    /// Operations per second over all clients.
    pub rate: f64,
    pub clients: usize,
    /// Distinct keys written: the state machine's size is bounded by them.
    pub keys: usize,
    pub value_size: usize,
    /// A client process is replaced (a new client id) after this many
    /// operations.
    pub ops_per_process: u64,
    pub sample_every: Duration,
    /// The nodes' configuration.
    pub node_config: String,
}

/// One node at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub seconds: f64,
    pub node: String,
    pub rss_bytes: u64,
    pub log_bytes: u64,
    pub snapshot_bytes: u64,
    pub sessions: u64,
    pub learned: u64,
    pub acknowledged: u64,
}

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One client task: puts at its share of the rate, replaced as a process
/// every `ops_per_process` operations.
async fn client_loop(
    i: usize,
    cfg: SoakConfig,
    creds: gpaxos_node::net::Credentials,
    addrs: Vec<std::net::SocketAddr>,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) {
    let pace = Duration::from_secs_f64(cfg.clients as f64 / cfg.rate);
    let value = "v".repeat(cfg.value_size);
    let mut generation = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = 1 + i as u64 + cfg.clients as u64 * generation;
        let Ok(mut client) = Client::new(&creds, addrs.clone(), id) else {
            return;
        };
        client.prefer(i % addrs.len());
        client.retry.total = Duration::from_secs(5);
        for seq in 1..=cfg.ops_per_process {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let began = Instant::now();
            let key = format!("k{}", (id * 7919 + seq) % cfg.keys as u64);
            let op = Op::Put {
                key,
                value: value.clone(),
            };
            match client.submit(Command::new(id, seq, op)).await {
                Ok(_) => {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => break,
            }
            if let Some(rest) = pace.checked_sub(began.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        generation += 1;
    }
}

/// Runs the soak; writes `soak.json` and `soak.svg` into `dir`.
pub async fn run(dir: &Path, cfg: &SoakConfig) -> Result<Vec<Sample>> {
    let cluster = LocalCluster::start(&dir.join("cluster"), cfg.nodes, Some(&cfg.node_config))?;
    let creds = certs::load_client(&cluster.tls_dir())?;
    let addrs = cluster.addrs().to_vec();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|i| {
            tokio::spawn(client_loop(
                i,
                cfg.clone(),
                creds.clone(),
                addrs.clone(),
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    let mut admin = Client::new(&creds, addrs.clone(), u64::MAX - 2048)?;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next = started;
    while started.elapsed() < cfg.duration {
        next += cfg.sample_every;
        tokio::time::sleep_until(next.into()).await;
        let seconds = started.elapsed().as_secs_f64();
        for i in 0..cfg.nodes {
            let Ok(s) = admin.status(i).await else {
                continue;
            };
            samples.push(Sample {
                seconds,
                node: s.node.clone(),
                rss_bytes: cluster.pid(i).map_or(0, rss_bytes),
                log_bytes: s.log_bytes,
                snapshot_bytes: s.snapshot_bytes,
                sessions: s.sessions,
                learned: s.learned,
                acknowledged: acked.load(Ordering::Relaxed),
            });
        }
        let last = &samples[samples.len().saturating_sub(cfg.nodes)..];
        if let Some(s) = last.first() {
            eprintln!(
                "{:>6.0} s  {} acknowledged  n1: rss {:.1} MiB, log {:.1} MiB, snapshot {:.1} KiB, {} sessions",
                seconds,
                s.acknowledged,
                s.rss_bytes as f64 / (1 << 20) as f64,
                s.log_bytes as f64 / (1 << 20) as f64,
                s.snapshot_bytes as f64 / 1024.0,
                s.sessions
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    drop(cluster);
    std::fs::write(
        dir.join("soak.json"),
        serde_json::to_string_pretty(&samples)?,
    )?;
    std::fs::write(dir.join("soak.svg"), svg(&samples))?;
    Ok(samples)
}

/// Three panels over time (resident memory, log, snapshot), one line per
/// node; any browser shows it.
pub fn svg(samples: &[Sample]) -> String {
    type Metric = (&'static str, fn(&Sample) -> f64);
    let metrics: [Metric; 3] = [
        ("resident memory, MiB", |s| s.rss_bytes as f64 / 1048576.0),
        ("log file, MiB", |s| s.log_bytes as f64 / 1048576.0),
        ("last snapshot, KiB", |s| s.snapshot_bytes as f64 / 1024.0),
    ];
    let (pw, ph, left) = (600.0, 180.0, 60.0);
    let t_max = samples.iter().map(|s| s.seconds).fold(1.0, f64::max);
    let mut nodes: Vec<&str> = samples.iter().map(|s| s.node.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let colors = ["#1f6fb4", "#b4521f", "#2f9e44", "#9c36b5", "#e8590c"];
    let mut out = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' font-size='11'>\n",
        pw + left + 20.0,
        3.0 * (ph + 40.0)
    );
    for (k, (title, f)) in metrics.iter().enumerate() {
        let top = 40.0 * (k as f64 + 1.0) + ph * k as f64;
        let v_max = samples.iter().map(f).fold(1e-9, f64::max) * 1.1;
        let x = |t: f64| left + pw * t / t_max;
        let y = |v: f64| top + ph - ph * v / v_max;
        out += &format!(
            "<text x='{left}' y='{:.0}' font-size='13'>{title} (max {:.1}) over {:.0} s</text>\n\
             <rect x='{left}' y='{top:.0}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>\n",
            top - 6.0,
            v_max / 1.1,
            t_max
        );
        for (n, node) in nodes.iter().enumerate() {
            let points: Vec<String> = samples
                .iter()
                .filter(|s| s.node == *node)
                .map(|s| format!("{:.1},{:.1}", x(s.seconds), y(f(s))))
                .collect();
            out += &format!(
                "<polyline fill='none' stroke='{}' points='{}'/>\n",
                colors[n % colors.len()],
                points.join(" ")
            );
        }
    }
    out + "</svg>\n"
}
