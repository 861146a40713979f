//! Section 6.1: a command is learned two message delays after it is proposed
//! in a fast ballot and three in a classic one. Measured on simulated time
//! with a fixed link delay, no jitter and instant fsyncs.

use gpaxos_harness::sim::learning_delays;
use gpaxos_node::protocol::Config;

const D: u64 = 1_000;

#[test]
fn fast_ballot_learns_in_two_message_delays() {
    let cfg = Config::new(5).unwrap();
    // Proposed at n3, which does not lead; every learner learns at 2d.
    let delays = learning_delays(cfg, D, 2);
    assert_eq!(
        delays,
        vec![Some(2 * D); 5],
        "per-learner delays in a fast ballot"
    );
}

#[test]
fn classic_ballot_learns_in_three_message_delays() {
    let mut cfg = Config::new(5).unwrap();
    cfg.fast = false;
    let delays = learning_delays(cfg, D, 2);
    assert_eq!(
        delays,
        vec![Some(3 * D); 5],
        "per-learner delays in a classic ballot"
    );
}
