//! A checker is trusted only after it has caught a bug planted on purpose.
//! Each test turns on one known protocol mistake (compiled only with the
//! node's `planted-bugs` feature, which only tests enable) and requires the
//! simulator and the checker to reject a run within 1,000 seeds.

use gpaxos_harness::sim::{judge, run_seed, Faults, SimConfig};
use gpaxos_node::protocol::PlantedBug;

/// The first seed whose run the checker rejects, with what it found.
fn first_caught(bug: PlantedBug, conflict: f64) -> Option<(u64, Vec<String>)> {
    let mut cfg = SimConfig::new(5, 300, conflict, Faults::Default).unwrap();
    cfg.protocol.planted = Some(bug);
    if bug == PlantedBug::Phase1bJoinsLower {
        // The bug bites only when an old ballot's 1a arrives after a newer
        // one: make such stragglers and late replays common (up to 20% of
        // messages each, where the default weather has up to 2%).
        cfg.straggle_max = 0.2;
    }
    if bug == PlantedBug::InstallKeepsOldApp {
        // Only a node that falls behind every peer's compacted log installs
        // a snapshot: every seed a long one, with the lagging-node nemesis.
        cfg.long_every = 1;
    }
    // A planted bug may wedge the cluster; do not wait two minutes for it.
    cfg.max_us = 20_000_000;
    (0..1000).find_map(|seed| {
        let out = run_seed(&cfg, seed);
        // Only safety counts: a planted bug may also stall the cluster, but
        // a stalled run proves nothing about the checker.
        let problems: Vec<String> = judge(&out)
            .into_iter()
            .filter(|p| {
                ["Nontriviality", "Stability", "Consistency", "execution"]
                    .iter()
                    .any(|k| p.starts_with(k))
            })
            .collect();
        (!problems.is_empty()).then_some((seed, problems))
    })
}

fn assert_caught(bug: PlantedBug, conflict: f64) {
    match first_caught(bug, conflict) {
        Some((seed, problems)) => eprintln!("{bug:?} caught at seed {seed}: {}", problems[0]),
        None => panic!("{bug:?} was not caught within 1,000 seeds"),
    }
}

#[test]
fn acceptor_replying_before_its_write_is_durable_is_caught() {
    assert_caught(PlantedBug::ReplyBeforeDurable, 0.5);
}

#[test]
fn phase1b_joining_a_lower_ballot_is_caught() {
    assert_caught(PlantedBug::Phase1bJoinsLower, 0.3);
}

#[test]
fn fast_learner_accepting_a_classic_quorum_is_caught() {
    assert_caught(PlantedBug::FastLearnerClassicQuorum, 0.3);
}

#[test]
fn proved_safe_taking_one_vote_is_caught() {
    assert_caught(PlantedBug::ProvedSafeOneVote, 0.3);
}

#[test]
fn acceptor_fast_voting_in_a_classic_ballot_is_caught() {
    assert_caught(PlantedBug::FastVoteInClassic, 0.3);
}

#[test]
fn a_session_watermark_off_by_one_is_caught() {
    assert_caught(PlantedBug::SessionOffByOne, 0.3);
}

#[test]
fn a_snapshot_installed_without_its_state_machine_is_caught() {
    assert_caught(PlantedBug::InstallKeepsOldApp, 0.3);
}

#[test]
fn trusting_the_page_cache_on_open_is_caught() {
    assert_caught(PlantedBug::SkipFsyncOnOpen, 0.3);
}
