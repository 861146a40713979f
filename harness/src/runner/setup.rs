//! The setup phase: the run directory, the cluster, an admin client, and
//! where each learner stands before any client of the run writes.

use super::learners::{incompatible_counts, settle};
use super::{client_id, Shared, TestConfig};
use crate::cluster::{Backend, Cluster};
use crate::observe::Observer;
use crate::store::RunDir;
use crate::workload::{WorkloadKind, ACCOUNTS, OPENING_BALANCE};
use anyhow::Result;
use gpaxos_checker::history::{Init, Record};
use gpaxos_node::client::Client;
use gpaxos_node::net::{certs, Credentials};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run in progress: what the later phases act on.
pub(super) struct Live {
    pub cluster: Cluster,
    pub shared: Arc<Shared>,
    pub creds: Credentials,
    pub addrs: Vec<SocketAddr>,
    /// Observes the learners and asks who leads.
    pub admin: Client,
    pub observer: Observer,
    /// The learners' self-reported refusals before the run.
    pub incompatible_before: Vec<u64>,
}

pub(super) async fn start(cfg: &TestConfig) -> Result<Live> {
    let run = RunDir::create(&cfg.store, &cfg.name)?;
    run.write_json("test.json", cfg)?;
    let mut cluster = Cluster::start(cfg, &run.path)?;
    tracing::info!("setup: {} nodes started ({:?})", cfg.nodes, cfg.backend);
    let creds = certs::load_client(&cluster.tls_dir())?;
    let addrs = cluster.addrs();
    let shared = Arc::new(Shared {
        run,
        start: Instant::now(),
        stop: AtomicBool::new(false),
        next_process: AtomicU64::new(0),
        nonce: cfg.seed.wrapping_mul(0x9e37_79b9) & 0xff_ffff_ffff,
        keys: Mutex::new(BTreeSet::new()),
        counts: Default::default(),
        fault: Mutex::new(None),
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
    Ok(Live {
        cluster,
        shared,
        creds,
        addrs,
        admin,
        observer,
        incompatible_before,
    })
}
