//! The generator and its clients: each process invokes the workload's
//! next operation, records its invocation and completion, and is replaced
//! by a fresh process after an indeterminate (`info`) completion, as in
//! Jepsen.

use super::setup::Live;
use super::{client_id, Shared, TestConfig};
use crate::cluster::Backend;
use crate::record;
use crate::workload::Workload;
use gpaxos_node::app::Reply;
use gpaxos_node::client::Client;
use gpaxos_node::net::Credentials;
use gpaxos_node::{Command, Op};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The run's workload. On a cluster the run did not start, kv keys carry
/// the run's nonce, so earlier runs' values are never read as this run's.
pub(super) fn workload(cfg: &TestConfig, shared: &Shared) -> Workload {
    Workload {
        kind: cfg.workload,
        conflict: cfg.conflict,
        keys: 3,
        namespace: match cfg.backend {
            Backend::External => format!("r{:x}-", shared.nonce),
            _ => String::new(),
        },
    }
}

/// Starts `cfg.concurrency` client processes, paced to `cfg.rate` overall.
pub(super) fn start(cfg: &TestConfig, live: &Live, workload: &Workload) -> Vec<JoinHandle<()>> {
    tracing::info!("clients started: {} processes", cfg.concurrency);
    let pace = (cfg.rate > 0.0).then(|| Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate));
    (0..cfg.concurrency)
        .map(|p| {
            tokio::spawn(process_loop(
                live.shared.clone(),
                workload.clone(),
                live.addrs.clone(),
                live.creds.clone(),
                pace,
                cfg.seed ^ (p as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
            ))
        })
        .collect()
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
        shared.record_client(record::invoke(process, shared.now(), &cmd));
        match client.submit(cmd.clone()).await {
            Ok(reply) => {
                if let Reply::Value(v) = &reply {
                    last = v.clone();
                }
                shared.record_client(record::completion(process, shared.now(), &cmd, &reply));
            }
            Err(_) => {
                // Indeterminate: Jepsen's `info`. This process never
                // invokes again; a fresh one takes its place.
                shared.record_client(record::info(process, shared.now(), &cmd));
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
