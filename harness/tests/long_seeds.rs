//! Long seeds (issue 10): thousands of commands with a snapshot every two
//! instances, and a node kept away while the others compact past it and
//! restart one by one. Every run must end with every learner at the same
//! position, judged valid by the checker, and the returning nodes must have
//! caught up by installing snapshots from peers (so the runs still reach
//! the mechanism they exist for).

use gpaxos_harness::sim::{judge, run_seed, Faults, SimConfig};

#[test]
fn lagging_nodes_catch_up_by_state_transfer_in_long_seeds() {
    let mut cfg = SimConfig::new(5, 500, 0.1, Faults::Default).unwrap();
    cfg.long_every = 1;
    let mut installed = 0;
    for seed in 0..24 {
        let out = run_seed(&cfg, seed);
        let problems = judge(&out);
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
        assert!(out.ok >= 2_000, "seed {seed}: only {} ok", out.ok);
        installed += out.stats.snapshots_installed;
    }
    assert!(
        installed >= 12,
        "only {installed} snapshots installed in 24 long seeds"
    );
}
