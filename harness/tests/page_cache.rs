//! The page-cache case on the simulator's disk: a process crash between a
//! write and its fsync leaves the write readable, a later power loss takes
//! it away. A restarted acceptor that replays its promise from the page
//! cache and repeats its 1b without a new write must have fsynced the log
//! on open, or the power loss erases a promise already sent. The planted
//! bug `SkipFsyncOnOpen` skips that fsync and is caught here.

use gpaxos_harness::sim::disk::Disk;
use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{Ballot, Config, Message, NodeId, PlantedBug, Replica};

/// Drains `r` until it is quiet, every write synced at once; returns the
/// messages.
fn settle(r: &mut Replica<History>, disk: &mut Disk) -> Vec<(NodeId, Message)> {
    let mut messages = Vec::new();
    loop {
        let out = r.drain();
        if out.writes.is_empty() && out.messages.is_empty() {
            return messages;
        }
        disk.append(out.writes);
        disk.synced(disk.appended());
        r.durable(disk.appended());
        messages.extend(out.messages);
    }
}

/// The ballots of the 1b messages in `messages`.
fn promises(messages: &[(NodeId, Message)]) -> Vec<Ballot> {
    messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Phase1b { bal, .. } => Some(*bal),
            _ => None,
        })
        .collect()
}

fn restart(disk: &mut Disk, config: &Config) -> Replica<History> {
    let records = disk.open(config);
    Replica::recover(0, config.clone(), records.iter()).expect("the log replays")
}

/// Node 1 starts a ballot; node 0 gets the 1a, writes its promise and is
/// killed before the fsync completes; it restarts, gets the 1a again (a
/// retry) and answers; then the power fails. Returns the ballots node 0
/// promised in a 1b and its promise after the power loss.
fn promise_across_a_power_loss(bug: Option<PlantedBug>) -> (Vec<Ballot>, Ballot) {
    let mut config = Config::new(3).unwrap();
    config.planted = bug;
    let (mut leader_disk, mut disk) = (Disk::default(), Disk::default());
    let mut leader = Replica::<History>::new(1, config.clone());
    leader.start_election();
    let one_a = settle(&mut leader, &mut leader_disk)
        .into_iter()
        .find(|(to, m)| *to == 0 && matches!(m, Message::Phase1a { .. }))
        .expect("the leader sends a 1a to node 0")
        .1;
    let mut acceptor = Replica::<History>::new(0, config.clone());
    acceptor.step(1, one_a.clone());
    let out = acceptor.drain();
    assert!(!out.writes.is_empty(), "the promise is written");
    assert!(promises(&out.messages).is_empty(), "no 1b before the fsync");
    disk.append(out.writes);
    disk.process_crash();

    let mut acceptor = restart(&mut disk, &config);
    settle(&mut acceptor, &mut Disk::default());
    acceptor.step(1, one_a);
    let out = acceptor.drain();
    let sent = promises(&out.messages);
    disk.append(out.writes);
    disk.power_loss();
    (sent, restart(&mut disk, &config).mbal())
}

#[test]
fn a_promise_replayed_from_the_page_cache_survives_a_power_loss() {
    let (sent, after) = promise_across_a_power_loss(None);
    assert!(!sent.is_empty(), "the retried 1a is answered");
    for bal in sent {
        assert!(after >= bal, "promised {bal:?} in a 1b, back at {after:?}");
    }
}

#[test]
fn skipping_the_fsync_on_open_is_caught() {
    let (sent, after) = promise_across_a_power_loss(Some(PlantedBug::SkipFsyncOnOpen));
    let broken: Vec<Ballot> = sent.into_iter().filter(|&b| after < b).collect();
    assert!(
        !broken.is_empty(),
        "the planted bug went unnoticed: every promise sent survived"
    );
    eprintln!(
        "SkipFsyncOnOpen caught: promised {broken:?} in a 1b, back at {after:?} after a power loss"
    );
}
