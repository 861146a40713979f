//! Five node processes on loopback with fresh certificates; concurrent
//! clients on distinct and shared keys; the leader and one other node are
//! killed with SIGKILL and restarted, then two others. Every acknowledged
//! write must be readable at the end and all learners' learned histories
//! must be compatible, as judged by gpaxos-checker. Snapshots are taken
//! often, so the restarted nodes resume from compacted logs.

mod common;

use common::{observe_until_stopped, worker, Recorder, WORKERS};
use gpaxos_checker::history::History;
use gpaxos_checker::{consensus, execution, Verdict};
use gpaxos_harness::cluster::local::LocalCluster;
use gpaxos_harness::record;
use gpaxos_node::client::Client;
use gpaxos_node::net::certs;
use gpaxos_node::protocol::node_name;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn leader(client: &mut Client, n: usize) -> Option<usize> {
    for i in 0..n {
        if let Ok(s) = client.status(i).await {
            return Some(s.leader.trim_start_matches('n').parse::<usize>().ok()? - 1);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_restarts_lose_no_acknowledged_write() {
    let dir = std::env::temp_dir().join(format!("gpaxos-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Short instances and frequent snapshots, so the restarted nodes come
    // back from compacted logs.
    let config = "checkpoint_every = 16\nsnapshot_every = 2\n";
    let mut cluster = LocalCluster::start(&dir, 5, Some(config)).unwrap();
    let addrs = cluster.addrs().to_vec();
    let tls = cluster.tls_dir();
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        history: Mutex::new(History::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                w,
                addrs.clone(),
                tls.clone(),
                rec.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let creds = certs::load_client(&tls).unwrap();
    let mut admin = Client::new(&creds, addrs.clone(), 999_999).unwrap();
    admin.retry.attempt = Duration::from_millis(500);
    // Learners are read while the run goes on, as the harness's runner
    // does: a restarted node keeps only a bounded tail of its sequence.
    let observing = Arc::new(AtomicBool::new(true));
    let observer_task = tokio::spawn(observe_until_stopped(
        rec.clone(),
        Client::new(&creds, addrs.clone(), 777_777).unwrap(),
        observing.clone(),
        5,
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The leader and one other, then two others: each pair killed with
    // SIGKILL, down for 2 s, restarted, then 2 s to recover.
    let l = leader(&mut admin, 5).await.expect("a leader");
    for pair in [[l, (l + 2) % 5], [(l + 1) % 5, (l + 3) % 5]] {
        for victim in pair {
            cluster.kill(victim).unwrap();
            rec.push(record::nemesis(
                rec.now(),
                "kill",
                "start",
                Some(node_name(victim as u32)),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for victim in pair {
            cluster.restart(victim).unwrap();
            rec.push(record::nemesis(
                rec.now(),
                "kill",
                "stop",
                Some(node_name(victim as u32)),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    rec.push(record::nemesis(rec.now(), "heal", "final", None));

    common::final_reads(&rec, &creds, addrs.clone()).await;
    observing.store(false, Ordering::Relaxed);
    let logs = observer_task.await.unwrap();
    let history = rec.history.lock().unwrap().clone();
    let mut file = std::fs::File::create(dir.join("history.jsonl")).unwrap();
    history.write_jsonl(&mut file).unwrap();

    let c = consensus::check(&history);
    let e = execution::check(&history);
    let oks = history
        .client_events()
        .filter(|e| e.kind == gpaxos_checker::history::EventKind::Ok)
        .count();
    eprintln!("{oks} operations acknowledged; learned lengths {:?}", logs);
    assert!(oks > 100, "the cluster served too little: {oks}");
    for i in 0..5 {
        let s = admin.status(i).await.expect("status");
        eprintln!(
            "{}: {} snapshots since its start, log {} bytes",
            s.node, s.stats.snapshots, s.log_bytes
        );
        assert!(s.stats.snapshots > 0, "{} took no snapshot", s.node);
    }
    let resumed = (0..5)
        .filter(|&i| {
            std::fs::read_to_string(dir.join("nodes").join(format!("{}.log", node_name(i))))
                .unwrap_or_default()
                .contains("resumed from a snapshot")
        })
        .count();
    assert!(
        resumed >= 3,
        "only {resumed} restarted nodes resumed from a snapshot"
    );
    assert_eq!(c.verdict, Verdict::Valid, "consensus: {:?}", c.violations);
    assert_eq!(e.verdict, Verdict::Valid, "execution: {:?}", e.mismatches);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
