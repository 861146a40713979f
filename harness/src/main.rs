use anyhow::Result;
use clap::{Parser, Subcommand};
use gpaxos_harness::sim::{self, Faults, SimConfig};
use std::path::PathBuf;

/// Jepsen-style harness for gpaxos: runs clusters, breaks them, checks them.
#[derive(Parser)]
#[command(name = "gpaxos-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the protocol core under the deterministic simulator, one run per
    /// seed, and checks every run.
    Sim {
        /// How many seeds to run.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start_seed: u64,
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Client operations per run.
        #[arg(long, default_value_t = 500)]
        commands: usize,
        /// Probability that an operation touches the key all clients share.
        #[arg(long, default_value_t = 0.1)]
        conflict: f64,
        #[arg(long, value_enum, default_value_t = Faults::Default)]
        faults: Faults,
        /// Commands per instance before the leader proposes a checkpoint
        /// (Section 6.3). A checkpoint interferes with every command, so
        /// commands racing one are recovered by the leader.
        #[arg(long, default_value_t = 64)]
        checkpoint_every: usize,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Where the histories of failing seeds are written.
        #[arg(long, default_value = "store/sim")]
        store: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Sim { seeds, start_seed, nodes, commands, conflict, faults, checkpoint_every, threads, store } => {
            if !(0.0..=1.0).contains(&conflict) {
                anyhow::bail!("--conflict must be between 0 and 1, got {conflict}");
            }
            if checkpoint_every == 0 {
                anyhow::bail!("--checkpoint-every must be at least 1");
            }
            let mut cfg = SimConfig::new(nodes, commands, conflict, faults)?;
            cfg.protocol.checkpoint_every = checkpoint_every;
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let report = sim::sweep(&cfg, start_seed..start_seed + seeds, threads, &store)?;
            print!("{report}");
            std::process::exit(if report.failures.is_empty() { 0 } else { 1 });
        }
    }
}
