//! The operator's scenario of issue 10: five nodes with short instances and
//! a snapshot every two; n5 is killed; 1,200 puts are acknowledged by the
//! other four; n1 to n4 are restarted one after another (a rolling
//! restart), so none of them holds in memory the instances n5 missed; then
//! n5 is started again. It must reach the others' learned position within
//! 10 s (it can only do so by state transfer) and serve what the puts wrote.

use gpaxos_harness::cluster::local::LocalCluster;
use gpaxos_node::app::Reply;
use gpaxos_node::client::{Client, Status};
use gpaxos_node::net::certs;
use gpaxos_node::{Command, Op};
use std::time::{Duration, Instant};

const PUTS: u64 = 1_200;
const WRITERS: u64 = 8;
const LAGGING: usize = 4;

async fn status(client: &mut Client, i: usize) -> Option<Status> {
    client.status(i).await.ok()
}

/// Waits until node `i` answers `status`.
async fn wait_up(client: &mut Client, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(client, i).await.is_none() {
        assert!(Instant::now() < deadline, "n{} did not come up", i + 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One writer: puts to its own keys through n1..n4 until `PUTS` in all
/// were acknowledged. Returns the last value acknowledged per key.
async fn writer(
    w: u64,
    creds: gpaxos_node::net::Credentials,
    addrs: Vec<std::net::SocketAddr>,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Vec<(String, String)> {
    use std::sync::atomic::Ordering;
    let mut generation = 0;
    let mut last: Vec<(String, String)> = Vec::new();
    // Keys a put of unknown outcome touched: it may still land later.
    let mut tainted = std::collections::BTreeSet::new();
    'outer: loop {
        let id = 1 + w + WRITERS * generation;
        let mut client = Client::new(&creds, addrs.clone(), id).unwrap();
        client.prefer(w as usize % LAGGING);
        client.retry.attempt = Duration::from_millis(800);
        client.retry.total = Duration::from_secs(5);
        for seq in 1.. {
            if acked.load(Ordering::Relaxed) >= PUTS {
                break 'outer;
            }
            let key = format!("w{w}-{}", seq % 10);
            let value = format!("{id}-{seq}");
            let op = Op::Put {
                key: key.clone(),
                value: value.clone(),
            };
            match client.submit(Command::new(id, seq, op)).await {
                Ok(_) => {
                    acked.fetch_add(1, Ordering::Relaxed);
                    last.retain(|(k, _)| *k != key);
                    if !tainted.contains(&key) {
                        last.push((key, value));
                    }
                }
                Err(_) => {
                    // Unknown outcome: a fresh client, as a Jepsen process.
                    last.retain(|(k, _)| *k != key);
                    tainted.insert(key);
                    generation += 1;
                    continue 'outer;
                }
            }
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_compacted_restarted_peers_catches_up_by_snapshot() {
    let dir = std::env::temp_dir().join(format!("gpaxos-catch-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = "checkpoint_every = 8\nsnapshot_every = 2\n";
    let mut cluster = LocalCluster::start(&dir, 5, Some(config)).unwrap();
    let addrs = cluster.addrs().to_vec();
    let creds = certs::load_client(&cluster.tls_dir()).unwrap();
    let mut admin = Client::new(&creds, addrs.clone(), 999_999).unwrap();
    admin.retry.attempt = Duration::from_millis(500);
    for i in 0..5 {
        wait_up(&mut admin, i).await;
    }

    cluster.kill(LAGGING).unwrap();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(w, creds.clone(), addrs.clone(), acked.clone())))
        .collect();
    let mut last = Vec::new();
    for w in writers {
        last.extend(w.await.unwrap());
    }
    assert!(acked.load(std::sync::atomic::Ordering::Relaxed) >= PUTS);

    // The rolling restart: each peer down, up, and serving before the next.
    for i in 0..LAGGING {
        cluster.kill(i).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.restart(i).unwrap();
        wait_up(&mut admin, i).await;
    }
    let ahead = status(&mut admin, 0).await.expect("n1 answers");

    cluster.restart(LAGGING).unwrap();
    let started = Instant::now();
    let mut caught_up = None;
    while started.elapsed() < Duration::from_secs(10) {
        let mut learned = Vec::new();
        for i in 0..5 {
            learned.push(status(&mut admin, i).await.map(|s| s.learned));
        }
        if learned.iter().all(|l| l.is_some() && *l == learned[0]) {
            caught_up = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lagging = status(&mut admin, LAGGING).await.expect("n5 answers");
    eprintln!(
        "n1 at learned={} closed_below={}; n5 at learned={} closed_below={} after {:?}; n5 installed {} snapshots",
        ahead.learned,
        ahead.closed_below,
        lagging.learned,
        lagging.closed_below,
        caught_up,
        lagging.stats.snapshots_installed
    );
    assert!(
        caught_up.is_some(),
        "n5 did not reach the others' learned position within 10 s of its start"
    );
    assert!(
        lagging.stats.snapshots_installed >= 1,
        "n5 caught up without a snapshot: the scenario did not compact past it"
    );

    // n5's state machine is the cluster's: it reads what the puts wrote.
    let mut reader = Client::new(&creds, addrs.clone(), 777_777).unwrap();
    for (seq, (key, value)) in last.iter().enumerate() {
        let cmd = Command::new(777_777, seq as u64 + 1, Op::Get { key: key.clone() });
        let req = gpaxos_node::client::ClientRequest::Submit { cmd };
        let answer = reader.request_at(LAGGING, &req).await.expect("n5 answers");
        assert_eq!(
            answer,
            gpaxos_node::client::ClientResponse::Applied {
                reply: Reply::Value(Some(value.clone()))
            },
            "n5 reads {key}"
        );
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
