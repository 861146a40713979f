//! `gpaxos-harness bench`: throughput and latency of a local cluster, fast
//! ballots over command histories against classic ballots over sequences
//! (the Multi-Paxos baseline), with fsync on.

pub mod etcd;
mod plot;

use crate::cluster::local::LocalCluster;
use crate::latency::Latency;
use anyhow::Result;
use gpaxos_checker::latency::Latencies;
use gpaxos_node::client::Client;
use gpaxos_node::net::certs;
use gpaxos_node::Op;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Fast ballots, command histories: Generalized Paxos.
    Fast,
    /// Classic ballots only, sequences: Multi-Paxos.
    Classic,
}

impl Mode {
    fn node_config(self) -> &'static str {
        match self {
            Mode::Fast => "fast = true\ncstruct = \"history\"\n",
            Mode::Classic => "fast = false\ncstruct = \"sequence\"\n",
        }
    }
}

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub nodes: usize,
    pub clients: Vec<usize>,
    pub modes: Vec<Mode>,
    pub duration: Duration,
    pub warmup: Duration,
    pub value_size: usize,
    /// Probabilities that a put goes to the key every client shares; one
    /// run each.
    pub conflicts: Vec<f64>,
    /// One-way delays of the node-to-node links (`--latency`), added by
    /// the relays; clients reach their nodes directly.
    pub latency: Option<Latency>,
    /// Also measure five etcd members (`etcd::run`).
    pub etcd: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub mode: Mode,
    pub clients: usize,
    pub conflict: f64,
    /// `--latency` as given, if any.
    pub latency: Option<String>,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Summed over the nodes' `status` at the end of the run.
    pub fast_path: f64,
    pub collisions: u64,
    pub recoveries: u64,
    pub mode_switches: u64,
    pub checkpoints: u64,
    /// 2bs naming a command a node lacked, asked for whole.
    pub payloads_missed: u64,
}

/// Everything one `bench` invocation measured: `bench.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub runs: Vec<BenchResult>,
    pub etcd: Option<etcd::EtcdResult>,
}

/// What every client of one run shares.
struct Shared {
    stop: AtomicBool,
    measure: AtomicBool,
    /// Microseconds.
    hist: Mutex<Latencies>,
    errors: Mutex<u64>,
    value: String,
    conflict: f64,
}

async fn client_loop(i: usize, client: &mut Client, s: &Shared) {
    let (stop, measure, hist, errors, value, conflict) = (
        &s.stop,
        &s.measure,
        &s.hist,
        &s.errors,
        s.value.as_str(),
        s.conflict,
    );
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // A deterministic spread of shared-key puts at the asked rate.
        let shared = conflict > 0.0
            && ((n as f64 * conflict).floor() != ((n - 1) as f64 * conflict).floor());
        let key = if shared {
            "shared".to_owned()
        } else {
            format!("bench-{i}")
        };
        let started = Instant::now();
        let r = client
            .execute(Op::Put {
                key,
                value: value.to_owned(),
            })
            .await;
        let us = started.elapsed().as_micros() as u64;
        if !measure.load(Ordering::Relaxed) {
            continue;
        }
        match r {
            Ok(_) => {
                hist.lock().expect("histogram lock").record(us);
            }
            Err(_) => *errors.lock().expect("errors lock") += 1,
        }
    }
}

/// A fresh cluster for one run; with `--latency`, node-to-node traffic
/// goes through relays that hold each datagram for its link's delay, and
/// the nodes' tick grows with the delays ([`Latency::tick_ms`]).
fn start_cluster(dir: &Path, cfg: &BenchConfig, mode: Mode) -> Result<LocalCluster> {
    let relays = cfg.latency.as_ref().map(|_| 1);
    let mut config = mode.node_config().to_owned();
    if let Some(l) = &cfg.latency {
        config.push_str(&format!("tick_ms = {}\n", l.tick_ms()));
    }
    let cluster = LocalCluster::start_with(dir, cfg.nodes, Some(&config), relays)?;
    if let (Some(mesh), Some(l)) = (cluster.relays(), &cfg.latency) {
        mesh.set_latency(l);
    }
    Ok(cluster)
}

/// One mode at one concurrency, on a fresh cluster.
pub async fn run_one(
    dir: &Path,
    cfg: &BenchConfig,
    mode: Mode,
    clients: usize,
    conflict: f64,
) -> Result<BenchResult> {
    let cluster = start_cluster(dir, cfg, mode)?;
    let creds = certs::load_client(&cluster.tls_dir())?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        measure: AtomicBool::new(false),
        hist: Mutex::new(Latencies::new()),
        errors: Mutex::new(0),
        value: "x".repeat(cfg.value_size),
        conflict,
    });
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut client = Client::new(&creds, cluster.addrs().to_vec(), 1_000_000 + i as u64)?;
        client.prefer(i % cfg.nodes);
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            client_loop(i, &mut client, &shared).await
        }));
    }
    tokio::time::sleep(cfg.warmup).await;
    shared.measure.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(cfg.duration).await;
    shared.measure.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    let mut stats = gpaxos_node::protocol::Stats::default();
    let mut admin = Client::new(&creds, cluster.addrs().to_vec(), 999_999)?;
    for i in 0..cfg.nodes {
        if let Ok(s) = admin.status(i).await {
            stats.add(&s.stats);
        }
    }
    drop(cluster);
    let learned = (stats.learned_fast + stats.learned_slow).max(1);
    let h = shared.hist.lock().expect("histogram lock");
    let errors = *shared.errors.lock().expect("errors lock");
    // The percentiles the summary and the report compute, from one place.
    let p = h.percentiles();
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(BenchResult {
        mode,
        clients,
        conflict,
        latency: cfg.latency.as_ref().map(|l| l.spec.clone()),
        ops: h.len(),
        errors,
        seconds,
        ops_per_sec: h.len() as f64 / seconds,
        p50_ms: ms(p.p50),
        p95_ms: ms(p.p95),
        p99_ms: ms(p.p99),
        max_ms: ms(p.max),
        fast_path: stats.learned_fast as f64 / learned as f64,
        collisions: stats.collisions,
        recoveries: stats.recoveries,
        mode_switches: stats.mode_switches,
        checkpoints: stats.checkpoints_learned / cfg.nodes as u64,
        payloads_missed: stats.payloads_missed,
    })
}

pub async fn run(dir: &Path, cfg: &BenchConfig) -> Result<BenchReport> {
    let mut runs = Vec::new();
    let total = cfg.conflicts.len() * cfg.modes.len() * cfg.clients.len();
    for &conflict in &cfg.conflicts {
        for &mode in &cfg.modes {
            for &clients in &cfg.clients {
                eprintln!(
                    "bench: run {} of {total}: {mode:?}, {clients} clients, conflict {conflict} \
                     ({:.0} s warm-up, {:.0} s measured)",
                    runs.len() + 1,
                    cfg.warmup.as_secs_f64(),
                    cfg.duration.as_secs_f64()
                );
                let sub = dir.join(format!("{mode:?}-{clients}-{conflict}").to_lowercase());
                let r = run_one(&sub, cfg, mode, clients, conflict).await?;
                println!("{}", line(&r));
                runs.push(r);
            }
        }
    }
    let etcd = if cfg.etcd {
        let dir = dir.join("etcd");
        let r = tokio::task::spawn_blocking(move || etcd::run(&dir)).await??;
        println!(
            "etcd {:<3} 500 clients  {:>8.0} writes/s  slowest {:.0} ms  (etcdctl check perf --load=l: {})",
            r.version,
            r.writes_per_sec,
            r.slowest_ms,
            if r.passed { "PASS" } else { "FAIL" }
        );
        Some(r)
    } else {
        None
    };
    let report = BenchReport { runs, etcd };
    for line in compare(&report) {
        println!("{line}");
    }
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(dir.join("bench.svg"), plot::svg(&report))?;
    Ok(report)
}

fn line(r: &BenchResult) -> String {
    format!(
        "{:<8} {:>4} clients  conflict {:>4.2}  {:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {}  fast path {:.1}%  collisions {}  recoveries {}  mode switches {}  checkpoints {}",
        format!("{:?}", r.mode).to_lowercase(),
        r.clients,
        r.conflict,
        r.ops_per_sec,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.errors,
        r.fast_path * 100.0,
        r.collisions,
        r.recoveries,
        r.mode_switches,
        r.checkpoints
    )
}

/// The comparisons issue 13 asks for, from this invocation's runs: fast
/// against classic at each concurrency, and both against etcd at its 500
/// clients.
pub fn compare(report: &BenchReport) -> Vec<String> {
    let mut out = Vec::new();
    let find = |mode, clients, conflict| {
        report
            .runs
            .iter()
            .find(|r| r.mode == mode && r.clients == clients && r.conflict == conflict)
    };
    for r in report.runs.iter().filter(|r| r.mode == Mode::Fast) {
        if let Some(c) = find(Mode::Classic, r.clients, r.conflict) {
            out.push(format!(
                "fast/classic {:>4} clients conflict {:.2}: throughput x{:.2}, p50 {:.1} / {:.1} ms (x{:.2})",
                r.clients,
                r.conflict,
                r.ops_per_sec / c.ops_per_sec,
                r.p50_ms,
                c.p50_ms,
                r.p50_ms / c.p50_ms
            ));
        }
    }
    if let Some(e) = &report.etcd {
        for r in report.runs.iter().filter(|r| r.clients == 500) {
            out.push(format!(
                "{}/etcd 500 clients conflict {:.2}: throughput x{:.2}, slowest {:.0} ms against {:.0} ms",
                format!("{:?}", r.mode).to_lowercase(),
                r.conflict,
                r.ops_per_sec / e.writes_per_sec,
                r.max_ms,
                e.slowest_ms
            ));
        }
    }
    out
}
