//! A five-node cluster of local processes whose fifth member is replaced
//! by a hostile peer: it holds n5's valid certificate and key, so every
//! node accepts its connection, and it sends each single-message attack of
//! issue 12 (and random well-formed messages) to the other four, over and
//! over, while clients run a workload against them. The checker must judge
//! the run valid (the four stay consistent and live), each honest node must
//! have refused messages, and none may grow its memory without bound.

mod common;

use common::{observe_until_stopped, worker, Recorder, WORKERS};
use gpaxos_checker::consensus::Property;
use gpaxos_checker::history::History;
use gpaxos_checker::{consensus, execution, Verdict};
use gpaxos_harness::cluster::local::LocalCluster;
use gpaxos_harness::record;
use gpaxos_node::client::Client;
use gpaxos_node::net::{certs, NetConfig, PeerNet};
use gpaxos_node::protocol::{Ballot, InstanceVote, Message, NodeId, Suggestion};
use gpaxos_node::{Command, Op};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOSTILE: NodeId = 4;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Client ids of the commands n5 proposes itself, in ballots it leads.
/// Paxos does not stand against a member that leads dishonestly: a 2a of
/// n5's own ballot above the others' makes them vote its command (a
/// leader may skip phase 1 at its own risk), which is then proposed, by
/// n5, though no client invoked it. Those commands are told apart; a
/// forged vote's command (`attacks`) never is.
const OWN: std::ops::Range<u64> = 1 << 62..1 << 63;

fn cmd(rng: &mut SmallRng) -> Command {
    Command::new(
        rng.gen_range(0..OWN.start),
        rng.gen(),
        Op::Put {
            key: format!("h{}", rng.gen::<u8>()),
            value: "x".into(),
        },
    )
}

/// A command n5 proposes in a 2a of a ballot it leads (`OWN`).
fn own_cmd(rng: &mut SmallRng) -> Command {
    let mut c = cmd(rng);
    c.id.client = rng.gen_range(OWN);
    c
}

fn ballot(rng: &mut SmallRng, near: Ballot) -> Ballot {
    Ballot {
        round: if rng.gen_bool(0.5) {
            near.round + rng.gen_range(0..3)
        } else {
            rng.gen()
        },
        leader: rng.gen_range(0..6),
        fast: rng.gen(),
    }
}

fn instance(rng: &mut SmallRng) -> u64 {
    if rng.gen_bool(0.5) {
        rng.gen_range(0..64)
    } else {
        rng.gen()
    }
}

/// The attacks of issue 12, then one random well-formed message.
fn attacks(rng: &mut SmallRng, seen: Ballot) -> Vec<Message> {
    let mine = Ballot {
        round: seen.round + 1,
        leader: HOSTILE,
        fast: false,
    };
    let forged = cmd(rng);
    let mut out = vec![
        Message::Phase2Start {
            bal: mine,
            values: vec![],
            rest_from: 1 << 60,
        },
        Message::Phase1b {
            bal: seen,
            acc: HOSTILE,
            from: 0,
            votes: vec![InstanceVote {
                instance: 1 << 60,
                vbal: seen,
                vote: vec![forged.clone()],
            }],
            rests: vec![(0, Ballot::ZERO)],
        },
        Message::Phase1a {
            bal: Ballot {
                round: u64::MAX,
                ..mine
            },
        },
        Message::Heartbeat {
            bal: Ballot::ZERO,
            closed_below: 1 << 40,
            open_len: 0,
        },
        Message::Phase2b {
            bal: seen,
            acc: HOSTILE,
            instance: rng.gen_range(1 << 20..1 << 40),
            base: 0,
            cmds: vec![forged.clone()],
            fast: seen.fast,
        },
    ];
    // Votes and a ballot start in the others' names.
    for acc in 0..HOSTILE {
        out.push(Message::Phase2b {
            bal: seen,
            acc,
            instance: rng.gen_range(0..64),
            base: rng.gen_range(0..8),
            cmds: vec![forged.clone()],
            fast: seen.fast,
        });
    }
    out.push(Message::Phase2Start {
        bal: Ballot { leader: 0, ..mine },
        values: vec![Suggestion {
            instance: rng.gen_range(0..64),
            value: vec![forged],
        }],
        rest_from: 64,
    });
    out.push(random_message(rng, seen));
    out
}

fn random_message(rng: &mut SmallRng, seen: Ballot) -> Message {
    let bal = ballot(rng, seen);
    match rng.gen_range(0..8) {
        0 => Message::Phase1a { bal },
        1 => Message::Phase1b {
            bal,
            acc: rng.gen_range(0..6),
            from: instance(rng),
            votes: vec![],
            rests: vec![(instance(rng), ballot(rng, seen))],
        },
        2 => Message::Phase2a {
            bal,
            instance: instance(rng),
            base: rng.gen_range(0..4),
            cmds: vec![own_cmd(rng)],
        },
        3 => Message::Phase2b {
            bal,
            acc: rng.gen_range(0..6),
            instance: instance(rng),
            base: rng.gen_range(0..4),
            cmds: vec![cmd(rng)],
            fast: rng.gen(),
        },
        4 => Message::Preempted {
            bal,
            mbal: ballot(rng, seen),
        },
        5 => Message::Sync {
            instance: instance(rng),
            have: vec![(rng.gen_range(0..6), bal, rng.gen())],
        },
        6 => Message::HeartbeatAck {
            acc: rng.gen_range(0..6),
            mbal: bal,
            closed_below: instance(rng),
        },
        _ => Message::Chosen {
            instance: instance(rng),
            value: vec![cmd(rng)],
        },
    }
}

/// Sends attacks to the four honest nodes until `stop`; returns how many.
async fn hostile_peer(net: PeerNet, stop: Arc<AtomicBool>, seen: Arc<Mutex<Ballot>>) -> u64 {
    let mut rng = SmallRng::seed_from_u64(12);
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let near = *seen.lock().unwrap();
        for msg in attacks(&mut rng, near) {
            for to in 0..HOSTILE {
                if net.send(to, msg.clone()).is_ok() {
                    sent += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    net.shutdown().await;
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_member_does_not_stop_the_other_four() {
    let dir = std::env::temp_dir().join(format!("gpaxos-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = "checkpoint_every = 16\nsnapshot_every = 4\n";
    let mut cluster = LocalCluster::start(&dir, 5, Some(config)).unwrap();
    cluster.kill(HOSTILE as usize).unwrap();
    let addrs = cluster.addrs().to_vec();
    let honest = addrs[..HOSTILE as usize].to_vec();
    let tls = cluster.tls_dir();
    let creds = certs::load_client(&tls).unwrap();

    // The hostile peer takes n5's place: its address, certificate and key.
    let mut net_cfg = NetConfig::new(
        HOSTILE,
        addrs.iter().map(|a| a.to_string()).collect(),
        certs::load_node(&tls, HOSTILE).unwrap(),
    );
    net_cfg.listen = Some(addrs[HOSTILE as usize]);
    let (net, mut inbound) = PeerNet::start(net_cfg).await.unwrap();
    // It aims near the ballots the others use, which it hears from them.
    let seen = Arc::new(Mutex::new(Ballot::ZERO));
    let heard = seen.clone();
    tokio::spawn(async move {
        while let Some((_, msg)) = inbound.messages.recv().await {
            if let Message::Phase1a { bal } | Message::Heartbeat { bal, .. } = msg {
                let mut s = heard.lock().unwrap();
                *s = (*s).max(bal);
            }
        }
    });

    let rec = Arc::new(Recorder {
        start: Instant::now(),
        history: Mutex::new(History::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before: Vec<u64> = (0..HOSTILE as usize)
        .map(|i| rss_kib(cluster.pid(i).unwrap()))
        .collect();
    let attacking = tokio::spawn(hostile_peer(net, stop.clone(), seen));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                w,
                honest.clone(),
                tls.clone(),
                rec.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let observing = Arc::new(AtomicBool::new(true));
    let observer = tokio::spawn(observe_until_stopped(
        rec.clone(),
        Client::new(&creds, honest.clone(), 777_777).unwrap(),
        observing.clone(),
        HOSTILE as usize,
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let sent = attacking.await.unwrap();
    rec.push(record::nemesis(rec.now(), "heal", "final", None));
    common::final_reads(&rec, &creds, honest.clone()).await;
    observing.store(false, Ordering::Relaxed);
    let lens = observer.await.unwrap();

    let history = rec.history.lock().unwrap().clone();
    let mut file = std::fs::File::create(dir.join("history.jsonl")).unwrap();
    history.write_jsonl(&mut file).unwrap();
    let oks = history
        .client_events()
        .filter(|e| e.kind == gpaxos_checker::history::EventKind::Ok)
        .count();
    eprintln!("{sent} hostile messages sent; {oks} operations acknowledged; learned {lens:?}");
    let mut admin = Client::new(&creds, honest.clone(), 999_999).unwrap();
    for (i, before) in rss_before.iter().enumerate() {
        let s = admin.status(i).await.expect("status");
        let rss = rss_kib(cluster.pid(i).unwrap());
        eprintln!(
            "{}: refused {} messages; RSS {} KiB before the attack, {rss} KiB after",
            s.node, s.stats.refused, before
        );
        assert!(s.stats.refused > 0, "{} refused nothing", s.node);
        assert!(
            rss < before + 256 * 1024,
            "{} grew from {before} KiB to {rss} KiB",
            s.node,
        );
    }
    assert!(oks > 100, "the four honest nodes served too little: {oks}");
    let c = consensus::check(&history);
    let e = execution::check(&history);
    let own = |id: &gpaxos_checker::history::CmdId| {
        id.0.split('.')
            .next()
            .and_then(|client| client.parse::<u64>().ok())
            .is_some_and(|client| OWN.contains(&client))
    };
    let real: Vec<_> = c
        .violations
        .iter()
        .filter(|v| !(v.property == Property::Nontriviality && v.commands.iter().all(own)))
        .collect();
    assert!(real.is_empty(), "consensus: {real:?}");
    assert_eq!(e.verdict, Verdict::Valid, "execution: {:?}", e.mismatches);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
