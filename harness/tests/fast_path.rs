//! Section 6.1: with no conflicts and no faults every client command is
//! learned through fast votes alone. A checkpoint interferes with every
//! command (Section 6.3); proposers hold their commands back while one
//! closes an instance (`protocol::fence`), so checkpoints cost little of
//! the fast path (`checkpoints_interfere`), even under load.

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
    // Without conflicts, only commands racing a checkpoint could leave the
    // fast path, and proposers hold theirs back while one is proposed.
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

/// Issue 13: under load (many clients, so hundreds of commands in flight
/// when the leader closes an instance) a checkpoint must not collide with
/// the commands racing it, or most commands leave the fast path (43% on
/// the fast path at 500 clients before proposers held back for a
/// checkpoint).
#[test]
fn checkpoints_under_load_keep_the_fast_path() {
    let mut cfg = SimConfig::new(5, 6_000, 0.0, Faults::None).unwrap();
    cfg.clients = 200;
    cfg.protocol.checkpoint_every = 256;
    for seed in 0..3 {
        let out = run_seed(&cfg, seed);
        assert!(judge(&out).is_empty(), "seed {seed}: {:?}", judge(&out));
        let s = &out.stats;
        assert!(s.checkpoints_learned >= 5 * 10, "seed {seed}: {s:?}");
        let fast = s.learned_fast as f64 / (s.learned_fast + s.learned_slow) as f64;
        eprintln!(
            "seed {seed}: fast-path share {:.1}%, {} collisions, {} recoveries, {} checkpoints learned",
            100.0 * fast,
            s.collisions,
            s.recoveries,
            s.checkpoints_learned
        );
        assert!(
            fast >= 0.95,
            "seed {seed}: fast-path share {fast:.3}: {s:?}"
        );
    }
}

/// Issue 13: a 2b that carried its commands sent each one to every learner
/// once per acceptor (24 copies of each command sent in five nodes, most
/// of a loaded node's work). 2bs name their commands
/// (`protocol::payloads`): a command crosses the network whole in its
/// proposal, to each of the four other nodes, and in a classic ballot in
/// the leader's 2a, plus the few a learner asks for again. Links with
/// jitter reorder messages, and a learner asked again at every 2b that
/// overtook another (300 copies of each command before it waited for the
/// late one, `learner::Early`). The acceptors' 2a deltas still do that
/// (200 copies under jitter), so the classic run has ordered links, as the
/// QUIC transport's one stream per peer gives.
#[test]
fn votes_name_commands_rather_than_carry_them() {
    for fast in [true, false] {
        let mut cfg = SimConfig::new(5, 2_000, 0.0, Faults::None).unwrap();
        cfg.clients = 50;
        cfg.protocol.fast = fast;
        if !fast {
            cfg.jitter_us = 0;
        }
        let out = run_seed(&cfg, 3);
        assert!(judge(&out).is_empty(), "{:?}", judge(&out));
        let s = &out.stats;
        let per_command = s.commands_sent as f64 / 2_000.0;
        eprintln!(
            "fast {fast}: {per_command:.2} copies of each command sent, {} 2bs named a command not held",
            s.payloads_missed
        );
        assert!(per_command < 10.0, "fast {fast}: {per_command:.2}: {s:?}");
    }
}
