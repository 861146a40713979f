//! Section 6.1: with no conflicts and no faults every client command is
//! learned through fast votes alone. A checkpoint interferes with every
//! command (Section 6.3), so the runs here keep instances longer than the
//! run; `checkpoints_interfere` shows what checkpoints cost.

use gpaxos_harness::sim::{judge, run_seed, Faults, SimConfig};

#[test]
fn no_conflict_no_faults_is_all_fast() {
    let mut cfg = SimConfig::new(5, 400, 0.0, Faults::None).unwrap();
    cfg.protocol.checkpoint_every = 10_000;
    for seed in 0..5 {
        let out = run_seed(&cfg, seed);
        assert!(judge(&out).is_empty(), "seed {seed}: {:?}", judge(&out));
        assert_eq!(out.stats.learned_slow, 0, "seed {seed}: {:?}", out.stats);
        assert_eq!(
            out.stats.learned_fast,
            5 * 400,
            "every learner learned every command"
        );
        assert_eq!(out.stats.collisions, 0);
    }
}

#[test]
fn checkpoints_interfere() {
    let mut cfg = SimConfig::new(5, 400, 0.0, Faults::None).unwrap();
    cfg.protocol.checkpoint_every = 50;
    let out = run_seed(&cfg, 0);
    assert!(judge(&out).is_empty(), "{:?}", judge(&out));
    assert!(
        out.stats.checkpoints_learned >= 5 * 5,
        "instances closed: {:?}",
        out.stats
    );
    // Without conflicts, only commands racing a checkpoint leave the fast
    // path, so they are few.
    let slow = out.stats.learned_slow as f64 / (5 * 400) as f64;
    assert!(slow < 0.15, "{:?}", out.stats);
}

#[test]
fn conflicts_cause_collisions_and_recoveries() {
    let cfg = SimConfig::new(5, 300, 0.5, Faults::None).unwrap();
    let out = run_seed(&cfg, 1);
    assert!(judge(&out).is_empty(), "{:?}", judge(&out));
    assert!(
        out.stats.collisions > 0 && out.stats.recoveries > 0,
        "{:?}",
        out.stats
    );
    assert!(out.stats.learned_slow > 0);
}
