//! What the cluster tests share: a recorder of the history, Jepsen-style
//! client processes, a learner observer and the final reads.

use gpaxos_checker::history::History;
use gpaxos_harness::observe::{Observation, Observer};
use gpaxos_harness::record;
use gpaxos_node::client::Client;
use gpaxos_node::net::certs;
use gpaxos_node::protocol::node_name;
use gpaxos_node::{Command, Op};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Recorder {
    pub start: Instant,
    pub history: Mutex<History>,
}

impl Recorder {
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    pub fn push(&self, r: gpaxos_checker::history::Record) {
        self.history.lock().unwrap().push(r);
    }
}

pub const WORKERS: u64 = 6;

/// A Jepsen-style client process: one operation at a time; an operation
/// that fails or times out is `info` and the process is replaced.
pub async fn worker(
    w: u64,
    addrs: Vec<SocketAddr>,
    tls: std::path::PathBuf,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let creds = certs::load_client(&tls).unwrap();
    let mut generation = 0;
    let mut seq = 0;
    let new_client = |generation: u64| {
        let mut c = Client::new(&creds, addrs.clone(), w + WORKERS * generation + 1).unwrap();
        c.prefer((w as usize + generation as usize) % addrs.len());
        c.retry.attempt = Duration::from_millis(800);
        c.retry.total = Duration::from_secs(4);
        c
    };
    let mut client = new_client(generation);
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let process = w + WORKERS * generation;
        let key = if seq % 3 == 0 {
            "shared".to_owned()
        } else {
            format!("k{w}")
        };
        let op = if seq % 4 == 0 {
            Op::Get { key }
        } else {
            Op::Put {
                key,
                value: format!("{process}-{seq}"),
            }
        };
        let cmd = Command::new(client.client_id(), seq, op);
        rec.push(record::invoke(process, rec.now(), &cmd));
        match client.submit(cmd.clone()).await {
            Ok(reply) => rec.push(record::completion(process, rec.now(), &cmd, &reply)),
            Err(_) => {
                rec.push(record::info(process, rec.now(), &cmd));
                generation += 1;
                seq = 0;
                client = new_client(generation);
            }
        }
    }
}

/// Observes every learner every 300 ms until `running` is cleared, then
/// until all learned the same number of commands (at most 20 s), then once
/// more as the final observation. Returns the learners' final lengths.
pub async fn observe_until_stopped(
    rec: Arc<Recorder>,
    mut admin: Client,
    running: Arc<AtomicBool>,
    nodes: usize,
) -> Vec<u64> {
    admin.retry.attempt = Duration::from_millis(500);
    let mut observer = Observer::new(nodes);
    let take = |o: Observation, is_final: bool| {
        rec.push(record::learned(
            node_name(o.node as u32),
            rec.now(),
            o.from as usize,
            &o.cmds,
            is_final,
        ))
    };
    while running.load(Ordering::Relaxed) {
        observer
            .observe(&mut admin, false, |o| take(o, false))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lens = observer
            .observe(&mut admin, false, |o| take(o, false))
            .await;
        if lens.windows(2).all(|w| w[0] == w[1]) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    observer.observe(&mut admin, true, |o| take(o, true)).await
}

/// Final reads of every key, recorded like any other operation: the
/// execution check then holds them to every acknowledged write.
pub async fn final_reads(
    rec: &Recorder,
    creds: &gpaxos_node::net::Credentials,
    addrs: Vec<SocketAddr>,
) {
    let mut reader = Client::new(creds, addrs, 888_888).unwrap();
    let keys: Vec<String> = (0..WORKERS)
        .map(|w| format!("k{w}"))
        .chain(["shared".to_owned()])
        .collect();
    for (seq, key) in keys.into_iter().enumerate() {
        let cmd = Command::new(888_888, seq as u64 + 1, Op::Get { key });
        rec.push(record::invoke(10_000, rec.now(), &cmd));
        let reply = reader.submit(cmd.clone()).await.expect("final read");
        rec.push(record::completion(10_000, rec.now(), &cmd, &reply));
    }
}
