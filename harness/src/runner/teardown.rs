//! The final phase: heal everything (always, Ctrl-C included), let the
//! cluster recover, stop the clients, make the final reads, and take every
//! learner's final observation and self-report.

use super::learners::{observe, record_self_reports, settle};
use super::schedule::Schedule;
use super::setup::Live;
use super::{client_id, TestConfig};
use crate::nemesis::{self, Healed};
use crate::record;
use crate::workload::Workload;
use anyhow::Result;
use gpaxos_node::client::Client;
use gpaxos_node::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub(super) async fn finish(
    cfg: &TestConfig,
    live: &mut Live,
    schedule: Schedule,
    workload: &Workload,
    tasks: Vec<JoinHandle<()>>,
) -> Result<()> {
    let shared = live.shared.clone();
    if let Some((kind, a)) = schedule.active {
        // A fault that heals in steps is healed whole by heal_all below.
        let note = match nemesis::heal(a, &mut live.cluster) {
            Ok(Healed::Done(note)) => note,
            _ => None,
        };
        tracing::info!("nemesis stop: {} (at the time limit)", kind.name());
        shared
            .run
            .record(record::nemesis(shared.now(), kind.name(), "stop", note));
    }
    nemesis::heal_all(&mut live.cluster)?;
    tracing::info!("final heal: every fault healed");
    shared
        .run
        .record(record::nemesis(shared.now(), "heal", "final", None));
    tokio::time::sleep(Duration::from_secs(3)).await;
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
    }
    final_reads(live, workload).await?;
    // Wait until every learner shows the same length, then take the final
    // observations.
    settle(&mut live.admin, cfg.nodes, Duration::from_secs(30)).await;
    observe(&shared, &mut live.admin, &mut live.observer, true).await;
    record_self_reports(&shared, &mut live.admin, &live.incompatible_before).await;
    Ok(())
}

/// Reads back every key the run touched (the bank's balances, the set).
async fn final_reads(live: &Live, workload: &Workload) -> Result<()> {
    let shared = &live.shared;
    let mut reader = Client::new(
        &live.creds,
        live.addrs.clone(),
        client_id(shared.nonce, 999_998),
    )?;
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
    tracing::info!("final reads: {} keys", keys.len());
    for (i, op) in workload.final_reads(&keys).into_iter().enumerate() {
        if Instant::now() > reads_until {
            break;
        }
        let cmd = Command::new(reader.client_id(), i as u64 + 1, op);
        shared.record_client(record::invoke(process, shared.now(), &cmd));
        match reader.submit(cmd.clone()).await {
            Ok(reply) => {
                shared.record_client(record::completion(process, shared.now(), &cmd, &reply))
            }
            Err(_) => shared.record_client(record::info(process, shared.now(), &cmd)),
        }
    }
    Ok(())
}
