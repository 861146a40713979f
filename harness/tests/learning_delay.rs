//! Section 6.1: a command is learned two message delays after it is proposed
//! in a fast ballot and three in a classic one. Measured on simulated time
//! with a fixed link delay, no jitter and instant fsyncs; then with a
//! latency matrix (`--latency`), where each learner waits for the quorum its
//! links reach first.

use gpaxos_harness::latency::Latency;
use gpaxos_harness::sim::{learning_delays, learning_delays_across};
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

/// Three regions (n1, n2 in us-east; n3, n4 in eu-west; n5 in
/// ap-northeast) from the built-in table.
fn three_regions() -> Latency {
    Latency::parse("regions:us-east=n1,n2;eu-west=n3,n4;ap-northeast=n5", 5).unwrap()
}

/// The `k`-th smallest of `v` (1-based).
fn kth(mut v: Vec<u64>, k: usize) -> u64 {
    v.sort_unstable();
    v[k - 1]
}

#[test]
fn fast_learning_follows_the_latency_matrix() {
    // Proposed at n3: learner l learns once a fast quorum (4 of 5) of
    // acceptors' 2bs reached it, each after d[n3][a] + d[a][l].
    let l = three_regions();
    let d = |i: usize, j: usize| l.one_way_us[i][j];
    let delays = learning_delays_across(Config::new(5).unwrap(), &l, 2);
    let want: Vec<Option<u64>> = (0..5)
        .map(|learner| Some(kth((0..5).map(|a| d(2, a) + d(a, learner)).collect(), 4)))
        .collect();
    assert_eq!(delays, want, "per-learner delays in a fast ballot");
    // Every quorum of four spans an ocean: far above the 2 ms of 1 ms
    // links; and n5, alone in Tokyo, learns last.
    assert!(delays.iter().all(|x| x.unwrap() > 40 * D), "{delays:?}");
    assert_eq!(delays.iter().max(), delays.last(), "{delays:?}");
}

#[test]
fn classic_learning_follows_the_latency_matrix() {
    // Proposed at n3 and sent to the leader, n1, whose 2a reaches the
    // acceptors; a learner learns at a classic quorum (3 of 5) of 2bs.
    let l = three_regions();
    let d = |i: usize, j: usize| l.one_way_us[i][j];
    let mut cfg = Config::new(5).unwrap();
    cfg.fast = false;
    let delays = learning_delays_across(cfg, &l, 2);
    let want: Vec<Option<u64>> = (0..5)
        .map(|learner| {
            let quorum = kth((0..5).map(|a| d(0, a) + d(a, learner)).collect(), 3);
            Some(d(2, 0) + quorum)
        })
        .collect();
    assert_eq!(delays, want, "per-learner delays in a classic ballot");
}

#[test]
fn learning_delay_grows_with_the_matrix() {
    // The same shape of matrix, every entry tripled: every learner learns
    // three times later.
    let one = Latency::parse("matrix:0,1,2;1,0,3;2,3,0", 3).unwrap();
    let three = Latency::parse("matrix:0,3,6;3,0,9;6,9,0", 3).unwrap();
    let cfg = Config::new(3).unwrap();
    let a = learning_delays_across(cfg.clone(), &one, 1);
    let b = learning_delays_across(cfg, &three, 1);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(Some(3 * x.expect("learned")), *y, "{a:?} against {b:?}");
    }
}
