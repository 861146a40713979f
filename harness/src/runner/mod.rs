//! `gpaxos-harness test`: one Jepsen-style run against a cluster of any
//! backend (local processes, the compose containers, hosts over SSH, or a
//! cluster the harness did not start), in Jepsen's phases:
//!
//! 1. [`setup`]: the run directory, the cluster, an admin client, and where
//!    each learner stands;
//! 2. [`clients`]: the generator and its client processes, which record
//!    every invocation and completion;
//! 3. [`schedule`]: the nemesis, a fault every interval and its heal, with
//!    the learners observed every second, until the time limit;
//! 4. [`teardown`]: heal everything, let the cluster recover, stop the
//!    clients, make the final reads, take every learner's final
//!    observation, stop the cluster;
//! 5. analysis: the checker judges `history.jsonl`, and `judge` writes
//!    everything of that one result.

mod clients;
mod learners;
mod schedule;
mod setup;
mod teardown;

use crate::cluster::external::ExternalSetup;
use crate::cluster::Backend;
use crate::judge::{self, Summary};
use crate::nemesis::Kind;
use crate::progress::Progress;
use crate::ssh::SshSetup;
use crate::store::RunDir;
use crate::workload::{WorkloadKind, ACCOUNTS, OPENING_BALANCE};
use anyhow::Result;
use gpaxos_checker::check::check_history;
use gpaxos_checker::history::{EventKind, Record};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// What the phases and the client processes share.
struct Shared {
    run: RunDir,
    start: Instant,
    stop: AtomicBool,
    next_process: AtomicU64,
    nonce: u64,
    keys: Mutex<BTreeSet<String>>,
    /// Completions so far, for the progress line: ok, fail, info.
    counts: [AtomicU64; 3],
    /// The fault in force, for the progress line.
    fault: Mutex<Option<String>>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records a client event, counting completions for the progress line.
    fn record_client(&self, record: Record) {
        if let Record::Client(e) = &record {
            let outcome = match e.kind {
                EventKind::Ok => Some(0),
                EventKind::Fail => Some(1),
                EventKind::Info => Some(2),
                EventKind::Invoke => None,
            };
            if let Some(i) = outcome {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.run.record(record);
    }

    /// `ok 12 fail 1 info 0, fault: ...` for the progress line.
    fn describe(&self) -> String {
        let [ok, fail, info] = self.counts.each_ref().map(|c| c.load(Ordering::Relaxed));
        let fault = self.fault.lock().expect("fault lock");
        format!(
            "ok {ok} fail {fail} info {info} | {}",
            fault.as_deref().unwrap_or("no fault")
        )
    }
}

/// Client ids are unique per process and per run.
fn client_id(nonce: u64, process: u64) -> u64 {
    (nonce << 20) | process
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

/// The configuration the nodes run with: the bank's accounts are opened at
/// the balance the history's `init` record declares to the checker (the
/// docker backend opens them with docker/compose.bank.yml instead).
fn prepare(mut cfg: TestConfig) -> Result<TestConfig> {
    check_external(&cfg)?;
    if cfg.backend == Backend::Docker && cfg.node_config.is_some() {
        anyhow::bail!(
            "the docker backend runs the nodes with docker-compose.yml's settings; \
             a node configuration (--planted-bug) needs --backend local"
        );
    }
    if cfg.workload == WorkloadKind::Bank && cfg.backend != Backend::Docker {
        let accounts: Vec<String> = ACCOUNTS
            .iter()
            .map(|a| format!("{a} = {OPENING_BALANCE}"))
            .collect();
        let text = cfg.node_config.take().unwrap_or_default();
        cfg.node_config = Some(format!("{text}\n[accounts]\n{}\n", accounts.join("\n")));
    }
    Ok(cfg)
}

pub async fn run(cfg: TestConfig, interrupted: Arc<AtomicBool>) -> Result<Summary> {
    let cfg = prepare(cfg)?;
    let mut live = setup::start(&cfg).await?;
    let workload = clients::workload(&cfg, &live.shared);
    let tasks = clients::start(&cfg, &live, &workload);
    let progress = Progress::new("test", cfg.time_limit.ceil() as u64, "s");
    let schedule = schedule::drive(&cfg, &mut live, &interrupted, &progress).await;
    progress.finish();
    eprintln!("test: time limit reached: healing everything, final reads, checking");
    teardown::finish(&cfg, &mut live, schedule, &workload, tasks).await?;
    let shared = live.shared.clone();
    drop(live);

    // One result, from the history alone: `analyze` judges it the same way.
    let history = shared.run.history();
    tracing::info!("checking: {} records", history.records.len());
    let result = check_history(
        &shared.run.path.join("history.jsonl").display().to_string(),
        &history,
        &judge::check_options(cfg.workload),
    );
    judge::write_verdict(&shared.run.path, &result, &history)
}
