//! `gpaxos-harness test`: one Jepsen-style run against a cluster of either
//! backend (local processes, the compose containers, or hosts over SSH).
//!
//! Clients run a workload; the nemesis injects a fault every interval and
//! heals it; learners are observed every second. At the time limit the
//! final phase heals everything, waits for the cluster to recover, makes
//! the final reads and takes every learner's final observation. Then the
//! checker judges `history.jsonl`, and `judge` writes everything of that
//! one result.

use crate::cluster::external::ExternalSetup;
use crate::cluster::{Backend, Cluster};
use crate::judge::{self, Summary};
use crate::nemesis::{self, Kind};
use crate::observe::Observer;
use crate::record;
use crate::ssh::SshSetup;
use crate::store::RunDir;
use crate::workload::{Workload, WorkloadKind, ACCOUNTS, OPENING_BALANCE};
use anyhow::Result;
use gpaxos_checker::check::check_history;
use gpaxos_checker::history::{Init, Record};
use gpaxos_checker::run::{CRASH, SELF_REPORT};
use gpaxos_node::app::Reply;
use gpaxos_node::client::Client;
use gpaxos_node::net::{certs, Credentials};
use gpaxos_node::protocol::node_name;
use gpaxos_node::{Command, Op};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize)]
pub struct TestConfig {
    pub name: String,
    pub backend: Backend,
    pub nodes: usize,
    pub workload: WorkloadKind,
    pub nemesis: Vec<Kind>,
    pub nemesis_interval: f64,
    pub time_limit: f64,
    /// Operations per second over all clients; 0 is as fast as they go.
    pub rate: f64,
    pub concurrency: usize,
    pub conflict: f64,
    pub seed: u64,
    pub store: PathBuf,
    /// Text of the nodes' TOML configuration, if any.
    pub node_config: Option<String>,
    /// One-way delays of the node-to-node links (`--latency`; local only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<crate::latency::Latency>,
    /// The ssh backend's hosts and how to reach them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSetup>,
    /// The external backend's cluster and client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSetup>,
}

struct Shared {
    run: RunDir,
    start: Instant,
    stop: AtomicBool,
    next_process: AtomicU64,
    nonce: u64,
    keys: Mutex<BTreeSet<String>>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// Client ids are unique per process and per run.
fn client_id(nonce: u64, process: u64) -> u64 {
    (nonce << 20) | process
}

async fn process_loop(
    shared: Arc<Shared>,
    workload: Workload,
    addrs: Vec<SocketAddr>,
    creds: Credentials,
    pace: Option<Duration>,
    seed: u64,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut process = shared.next_process.fetch_add(1, Ordering::Relaxed);
    let new_client = |process: u64| {
        let mut c = Client::new(&creds, addrs.clone(), client_id(shared.nonce, process)).ok()?;
        c.prefer(process as usize % addrs.len());
        c.retry.attempt = Duration::from_millis(1000);
        c.retry.total = Duration::from_secs(5);
        Some(c)
    };
    let Some(mut client) = new_client(process) else {
        return;
    };
    let mut seq = 0;
    let mut last: Option<String> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        seq += 1;
        let op = workload.next(process, seq, last.as_deref(), &mut rng);
        if let Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } = &op {
            shared.keys.lock().expect("keys lock").insert(key.clone());
        }
        let cmd = Command::new(client.client_id(), seq, op);
        shared
            .run
            .record(record::invoke(process, shared.now(), &cmd));
        match client.submit(cmd.clone()).await {
            Ok(reply) => {
                if let Reply::Value(v) = &reply {
                    last = v.clone();
                }
                shared
                    .run
                    .record(record::completion(process, shared.now(), &cmd, &reply));
            }
            Err(_) => {
                // Indeterminate: Jepsen's `info`. This process never
                // invokes again; a fresh one takes its place.
                shared.run.record(record::info(process, shared.now(), &cmd));
                process = shared.next_process.fetch_add(1, Ordering::Relaxed);
                seq = 0;
                let Some(c) = new_client(process) else { return };
                client = c;
            }
        }
        if let Some(p) = pace {
            if let Some(rest) = p.checked_sub(began.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }
}

/// Takes one observation of every learner into the run's history.
async fn observe(
    shared: &Shared,
    admin: &mut Client,
    observer: &mut Observer,
    is_final: bool,
) -> Vec<u64> {
    observer
        .observe(admin, is_final, |o| {
            shared.run.record(record::learned(
                node_name(o.node as u32),
                shared.now(),
                o.from as usize,
                &o.cmds,
                is_final,
            ))
        })
        .await
}

fn leader_of(status: &gpaxos_node::client::Status) -> Option<usize> {
    status
        .leader
        .trim_start_matches('n')
        .parse::<usize>()
        .ok()
        .map(|n| n - 1)
}

/// What a run against a cluster it did not start cannot do: fault it,
/// configure its nodes, or open the bank's accounts; and a `set` run needs
/// one key no earlier run wrote. Only kv keys can be made the run's own.
pub fn check_external(cfg: &TestConfig) -> Result<()> {
    if cfg.backend != Backend::External {
        return Ok(());
    }
    if !cfg.nemesis.is_empty() {
        anyhow::bail!(
            "the external backend injects no faults into a cluster it did not start: use --nemesis none"
        );
    }
    if cfg.node_config.is_some() {
        anyhow::bail!("the external backend runs no nodes: --node-config and --planted-bug need a backend that starts them");
    }
    if cfg.workload != WorkloadKind::Kv {
        anyhow::bail!(
            "the external backend runs the kv workload only: bank needs accounts opened at the balances \
             the history declares, set a key no earlier run wrote"
        );
    }
    Ok(())
}

pub async fn run(cfg: TestConfig, interrupted: Arc<AtomicBool>) -> Result<Summary> {
    check_external(&cfg)?;
    let mut cfg = cfg;
    if cfg.backend == Backend::Docker && cfg.node_config.is_some() {
        anyhow::bail!(
            "the docker backend runs the nodes with docker-compose.yml's settings; \
             a node configuration (--planted-bug) needs --backend local"
        );
    }
    // The docker backend opens the bank's accounts with
    // docker/compose.bank.yml instead.
    if cfg.workload == WorkloadKind::Bank && cfg.backend != Backend::Docker {
        // The nodes open the accounts at the balance the history's `init`
        // record declares to the checker.
        let accounts: Vec<String> = ACCOUNTS
            .iter()
            .map(|a| format!("{a} = {OPENING_BALANCE}"))
            .collect();
        let text = cfg.node_config.take().unwrap_or_default();
        cfg.node_config = Some(format!("{text}\n[accounts]\n{}\n", accounts.join("\n")));
    }
    let run = RunDir::create(&cfg.store, &cfg.name)?;
    run.write_json("test.json", &cfg)?;
    let mut cluster = Cluster::start(&cfg, &run.path)?;
    let creds = certs::load_client(&cluster.tls_dir())?;
    let addrs = cluster.addrs();
    let shared = Arc::new(Shared {
        run,
        start: Instant::now(),
        stop: AtomicBool::new(false),
        next_process: AtomicU64::new(0),
        nonce: cfg.seed.wrapping_mul(0x9e37_79b9) & 0xff_ffff_ffff,
        keys: Mutex::new(BTreeSet::new()),
    });
    if cfg.workload == WorkloadKind::Bank {
        let accounts = ACCOUNTS
            .iter()
            .map(|a| ((*a).to_owned(), OPENING_BALANCE))
            .collect();
        shared.run.record(Record::Init(Init { accounts }));
    }
    let mut admin = Client::new(&creds, addrs.clone(), client_id(shared.nonce, 999_999))?;
    admin.retry.attempt = Duration::from_millis(500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dead = cluster.exited();
    if !dead.is_empty() {
        let why: Vec<String> = dead.into_iter().map(|(_, w)| w).collect();
        anyhow::bail!("nodes failed to start:\n  {}", why.join("\n  "));
    }
    // Let the nodes find each other and settle a leader.
    for _ in 0..50 {
        if admin.status(0).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut observer = Observer::new(cfg.nodes);
    if cfg.backend == Backend::External {
        // The run starts where the learners agree: a learner still
        // catching up on earlier commands would show them as this run's.
        settle(&mut admin, cfg.nodes, Duration::from_secs(10)).await;
        observer.start_at_end(&mut admin).await?;
    }
    let incompatible_before = incompatible_counts(&mut admin, cfg.nodes).await;
    let workload = Workload {
        kind: cfg.workload,
        conflict: cfg.conflict,
        keys: 3,
        namespace: match cfg.backend {
            Backend::External => format!("r{:x}-", shared.nonce),
            _ => String::new(),
        },
    };
    let pace = (cfg.rate > 0.0).then(|| Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate));
    let mut tasks = Vec::new();
    for p in 0..cfg.concurrency {
        tasks.push(tokio::spawn(process_loop(
            shared.clone(),
            workload.clone(),
            addrs.clone(),
            creds.clone(),
            pace,
            cfg.seed ^ (p as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
        )));
    }

    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let deadline = shared.start + Duration::from_secs_f64(cfg.time_limit);
    let interval = Duration::from_secs_f64(cfg.nemesis_interval);
    let mut next_fault = Instant::now() + interval;
    // The fault in force.
    let mut active: Option<(Kind, nemesis::Active)> = None;
    let mut last_observe = Instant::now();
    let mut order = cfg.nemesis.clone();
    let mut next_kind = 0usize;
    while Instant::now() < deadline && !interrupted.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if last_observe.elapsed() >= Duration::from_secs(1) {
            observe(&shared, &mut admin, &mut observer, false).await;
            last_observe = Instant::now();
            for (i, why) in cluster.exited() {
                // A node that dies on its own is a bug; the history says so
                // (the checker's crash check reads it) and the node is
                // started again.
                shared
                    .run
                    .record(record::nemesis(shared.now(), CRASH, "start", Some(why)));
                let _ = cluster.restart(i);
            }
        }
        if cfg.nemesis.is_empty() || Instant::now() < next_fault {
            continue;
        }
        next_fault = Instant::now() + interval;
        if let Some((kind, a)) = active.take() {
            let (note, failed) = match nemesis::heal(a, &mut cluster) {
                Ok(nemesis::Healed::Done(note)) => (note, None),
                Ok(nemesis::Healed::Step(what, still)) => {
                    shared.run.record(record::nemesis(
                        shared.now(),
                        kind.name(),
                        "step",
                        Some(what),
                    ));
                    active = Some((kind, still));
                    continue;
                }
                Err(e) => (None, Some(e.to_string())),
            };
            shared.run.record(record::nemesis(
                shared.now(),
                kind.name(),
                "stop",
                failed.or(note),
            ));
            continue;
        }
        // Kinds come round in a shuffled cycle, so a run long enough for
        // one cycle injects every kind at least once.
        if next_kind.is_multiple_of(cfg.nemesis.len()) {
            use rand::seq::SliceRandom;
            order.shuffle(&mut rng);
        }
        let kind = order[next_kind % order.len()];
        next_kind += 1;
        let leader = match admin.status(rng.gen_range(0..cfg.nodes)).await {
            Ok(s) => leader_of(&s),
            Err(_) => None,
        };
        match nemesis::inject(kind, &mut cluster, leader, &mut rng) {
            Ok((a, what)) => {
                shared.run.record(record::nemesis(
                    shared.now(),
                    kind.name(),
                    "start",
                    Some(what),
                ));
                active = Some((kind, a));
            }
            Err(e) => {
                // A nemesis that fails is reported, never skipped silently.
                let msg = format!("{} could not be injected: {e:#}", kind.name());
                shared.run.record(record::nemesis(
                    shared.now(),
                    kind.name(),
                    "failed",
                    Some(msg),
                ));
            }
        }
    }

    // Final phase: heal everything (always, Ctrl-C included), let the
    // cluster recover, stop the clients, read everything back.
    if let Some((kind, a)) = active.take() {
        // A fault that heals in steps is healed whole by heal_all below.
        let note = match nemesis::heal(a, &mut cluster) {
            Ok(nemesis::Healed::Done(note)) => note,
            _ => None,
        };
        shared
            .run
            .record(record::nemesis(shared.now(), kind.name(), "stop", note));
    }
    nemesis::heal_all(&mut cluster)?;
    shared
        .run
        .record(record::nemesis(shared.now(), "heal", "final", None));
    tokio::time::sleep(Duration::from_secs(3)).await;
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
    }
    let mut reader = Client::new(&creds, addrs.clone(), client_id(shared.nonce, 999_998))?;
    reader.retry.total = Duration::from_secs(10);
    // A cluster that cannot answer one final read will not answer the
    // rest: the phase as a whole gets 30 s.
    let reads_until = Instant::now() + Duration::from_secs(30);
    let keys: Vec<String> = shared
        .keys
        .lock()
        .expect("keys lock")
        .iter()
        .cloned()
        .collect();
    let process = shared.next_process.fetch_add(1, Ordering::Relaxed);
    for (i, op) in workload.final_reads(&keys).into_iter().enumerate() {
        if Instant::now() > reads_until {
            break;
        }
        let cmd = Command::new(reader.client_id(), i as u64 + 1, op);
        shared
            .run
            .record(record::invoke(process, shared.now(), &cmd));
        match reader.submit(cmd.clone()).await {
            Ok(reply) => shared
                .run
                .record(record::completion(process, shared.now(), &cmd, &reply)),
            Err(_) => shared.run.record(record::info(process, shared.now(), &cmd)),
        }
    }
    // Wait until every learner shows the same length, then take the final
    // observations.
    settle(&mut admin, cfg.nodes, Duration::from_secs(30)).await;
    observe(&shared, &mut admin, &mut observer, true).await;
    record_self_reports(&shared, &mut admin, &incompatible_before).await;
    drop(cluster);

    // One result, from the history alone: `analyze` judges it the same way.
    let history = shared.run.history();
    let result = check_history(
        &shared.run.path.join("history.jsonl").display().to_string(),
        &history,
        &judge::check_options(cfg.workload),
    );
    judge::write_verdict(&shared.run.path, &result, &history)
}

/// Waits (at most `limit`) until every learner shows the same length.
async fn settle(admin: &mut Client, nodes: usize, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let mut lens = Vec::new();
        for i in 0..nodes {
            lens.push(
                admin
                    .learned(i, u64::MAX, 0)
                    .await
                    .map_or(u64::MAX, |(t, _)| t),
            );
        }
        if lens.windows(2).all(|w| w[0] == w[1]) || Instant::now() > until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Each node's count of chosen values its learner refused, where it
/// answers: a cluster the run did not start may have counted some before.
async fn incompatible_counts(admin: &mut Client, nodes: usize) -> Vec<u64> {
    let mut counts = Vec::new();
    for i in 0..nodes {
        counts.push(
            admin
                .status(i)
                .await
                .map_or(0, |s| s.stats.incompatible_learned),
        );
    }
    counts
}

/// Each node's own invariant check, into the history (the checker's
/// self-report check reads it): a learner that was shown a chosen value
/// incompatible with what it had learned (Proposition 1 says chosen values
/// are compatible) refused it and counted it.
async fn record_self_reports(shared: &Shared, admin: &mut Client, before: &[u64]) {
    for (i, before) in before.iter().enumerate() {
        let Ok(s) = admin.status(i).await else {
            continue;
        };
        let during = s.stats.incompatible_learned.saturating_sub(*before);
        if during > 0 {
            let report = format!(
                "Consistency: {}'s learner was shown {during} chosen value(s) incompatible with what it had learned",
                s.node
            );
            shared.run.record(record::nemesis(
                shared.now(),
                SELF_REPORT,
                "report",
                Some(report),
            ));
        }
    }
}
