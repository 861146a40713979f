//! Many seeds: run each, check each, summarise.

use super::run::{run_seed, SimConfig, SimOutcome};
use crate::progress::Progress;
use gpaxos_checker::{consensus, execution, Verdict};
use gpaxos_node::protocol::Stats;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A seed whose run the checker rejected.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub problems: Vec<String>,
    pub history_file: Option<String>,
    pub replay: String,
}

#[derive(Debug, Default)]
pub struct SweepReport {
    pub seeds: u64,
    pub elapsed_s: f64,
    pub stats: Stats,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub failures: Vec<Failure>,
    /// `--fail-fast` stopped the sweep at a failing seed.
    pub stopped_early: bool,
}

/// The problems the checker (and the run itself) found in one outcome.
pub fn judge(out: &SimOutcome) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    let c = consensus::check(&out.history);
    problems.extend(c.violations.iter().map(|v| v.to_string()));
    if c.verdict == Verdict::Unknown {
        problems.extend(
            c.unknown_reasons
                .iter()
                .map(|r| format!("consensus unknown: {r}")),
        );
    }
    let e = execution::check(&out.history);
    problems.extend(
        e.mismatches
            .iter()
            .map(|m| format!("execution: {}", m.message)),
    );
    if e.verdict == Verdict::Unknown {
        problems.extend(
            e.unknown_reasons
                .iter()
                .map(|r| format!("execution unknown: {r}")),
        );
    }
    if out.timed_out {
        problems.push(format!(
            "liveness: the run did not finish within {} s of simulated time after the final heal",
            out.sim_time_us / 1_000_000
        ));
        problems.extend(out.diagnosis.iter().map(|d| format!("  state: {d}")));
    }
    problems
}

fn replay_command(cfg: &SimConfig, seed: u64) -> String {
    let mut cmd = format!(
        "gpaxos-harness sim --seeds 1 --start-seed {seed} --long-every {} --nodes {} --commands {} --conflict {} --checkpoint-every {} --snapshot-every {} --faults {}",
        cfg.long_every,
        cfg.nodes,
        cfg.commands,
        cfg.conflict,
        cfg.protocol.checkpoint_every,
        cfg.protocol.snapshot_every,
        match cfg.faults {
            super::Faults::None => "none",
            super::Faults::Default => "default",
        }
    );
    if let Some(bug) = &cfg.planted_bug {
        cmd.push_str(&format!(" --planted-bug {bug}"));
    }
    cmd
}

/// Runs `seeds` on `threads` threads, with a progress line; with
/// `fail_fast`, no new seed starts once one has failed.
pub fn sweep(
    cfg: &SimConfig,
    seeds: Range<u64>,
    threads: usize,
    store: &Path,
    fail_fast: bool,
) -> anyhow::Result<SweepReport> {
    let started = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let report = Mutex::new(SweepReport::default());
    let progress = Progress::new("sim", seeds.end - seeds.start, "seeds");
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end || stop.load(Ordering::Relaxed) {
                    break;
                }
                let out = run_seed(cfg, seed);
                let failure = failure(cfg, store, &out);
                let mut r = report.lock().expect("report lock");
                r.seeds += 1;
                r.stats.add(&out.stats);
                r.ok += out.ok;
                r.fail += out.fail;
                r.info += out.info;
                if let Some(f) = failure {
                    progress.println(&format!("seed {seed} FAILED: {}", f.problems[0]));
                    progress.println(&format!("  replay: {}", f.replay));
                    r.failures.push(f);
                    if fail_fast {
                        stop.store(true, Ordering::Relaxed);
                        r.stopped_early = true;
                    }
                }
                let per_min = r.seeds as f64 * 60.0 / started.elapsed().as_secs_f64().max(1e-9);
                progress.update(r.seeds, || {
                    format!("{per_min:.0} seeds/min, {} violations", r.failures.len())
                });
            });
        }
    });
    progress.finish();
    let mut report = report.into_inner().expect("report lock");
    report.failures.sort_by_key(|f| f.seed);
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The failure of a seed the checker rejected, its history written to
/// `store/seed-N/history.jsonl`; `None` if it passed.
fn failure(cfg: &SimConfig, store: &Path, out: &SimOutcome) -> Option<Failure> {
    let mut problems = judge(out);
    if problems.is_empty() {
        return None;
    }
    let seed = out.seed;
    if out.stopped_at_violation {
        problems.push(format!(
            "(stopped at {:.1} s of simulated time: the violation was already certain)",
            out.sim_time_us as f64 / 1e6
        ));
    }
    let dir = store.join(format!("seed-{seed}"));
    let file = std::fs::create_dir_all(&dir).ok().and_then(|_| {
        let path = dir.join("history.jsonl");
        let mut f = std::fs::File::create(&path).ok()?;
        out.history.write_jsonl(&mut f).ok()?;
        Some(path.display().to_string())
    });
    Some(Failure {
        seed,
        problems,
        history_file: file,
        replay: replay_command(cfg, seed),
    })
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let learned = s.learned_fast + s.learned_slow;
        let ratio = if learned == 0 {
            0.0
        } else {
            100.0 * s.learned_fast as f64 / learned as f64
        };
        let per_min = if self.elapsed_s > 0.0 {
            self.seeds as f64 * 60.0 / self.elapsed_s
        } else {
            0.0
        };
        writeln!(
            f,
            "seeds:        {} in {:.1} s ({:.0} seeds/min)",
            self.seeds, self.elapsed_s, per_min
        )?;
        writeln!(
            f,
            "operations:   {} ok, {} fail, {} info",
            self.ok, self.fail, self.info
        )?;
        writeln!(
            f,
            "fast path:    {ratio:.2}% of {learned} client commands learned (all learners)"
        )?;
        writeln!(
            f,
            "collisions:   {} seen, {} recoveries, {} ballots started, {} elections, {} mode switches, {} checkpoints, {} snapshots",
            s.collisions, s.recoveries, s.ballots_started, s.elections, s.mode_switches, s.checkpoints_proposed, s.snapshots
        )?;
        writeln!(
            f,
            "catch-up:     {} snapshots installed from peers, {} refused, {} syncs for compacted instances",
            s.snapshots_installed, s.snapshots_refused, s.syncs_compacted
        )?;
        writeln!(f, "violations:   {}", self.failures.len())?;
        if self.stopped_early {
            writeln!(f, "stopped:      at the first failing seed (--fail-fast)")?;
        }
        for fl in &self.failures {
            writeln!(f, "\nseed {} FAILED", fl.seed)?;
            for p in &fl.problems {
                writeln!(f, "  {p}")?;
            }
            if let Some(h) = &fl.history_file {
                writeln!(f, "  history: {h}")?;
            }
            writeln!(f, "  replay:  {}", fl.replay)?;
        }
        Ok(())
    }
}
