use anyhow::Result;
use clap::{Parser, Subcommand};
use gpaxos_harness::bench::{self, BenchConfig, Mode};
use gpaxos_harness::sim::{self, Faults, SimConfig};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Measures throughput and latency of a local cluster (fsync on), fast
    /// ballots against classic ones.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Concurrent clients, one run each: 16,64
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    clients: Vec<usize>,
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "fast,classic"
    )]
    modes: Vec<Mode>,
    /// Measured seconds per run (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Probability that a put goes to the key all clients share.
    #[arg(long, default_value_t = 0.0)]
    conflict: f64,
    /// Where the clusters' directories and bench.json go.
    #[arg(long, default_value = "store/bench")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Sim {
            seeds,
            start_seed,
            nodes,
            commands,
            conflict,
            faults,
            checkpoint_every,
            threads,
            store,
        } => {
            if !(0.0..=1.0).contains(&conflict) {
                anyhow::bail!("--conflict must be between 0 and 1, got {conflict}");
            }
            if checkpoint_every == 0 {
                anyhow::bail!("--checkpoint-every must be at least 1");
            }
            let mut cfg = SimConfig::new(nodes, commands, conflict, faults)?;
            cfg.protocol.checkpoint_every = checkpoint_every;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let report = sim::sweep(&cfg, start_seed..start_seed + seeds, threads, &store)?;
            print!("{report}");
            std::process::exit(if report.failures.is_empty() { 0 } else { 1 });
        }
        Cmd::Bench(a) => {
            if a.nodes == 0
                || a.clients.contains(&0)
                || a.duration == 0
                || !(0.0..=1.0).contains(&a.conflict)
            {
                anyhow::bail!(
                    "--nodes, --clients and --duration must be positive and --conflict in [0, 1]"
                );
            }
            let cfg = BenchConfig {
                nodes: a.nodes,
                clients: a.clients,
                modes: a.modes,
                duration: Duration::from_secs(a.duration),
                warmup: Duration::from_secs(2),
                value_size: a.value_size,
                conflict: a.conflict,
            };
            let _ = std::fs::remove_dir_all(&a.out);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(bench::run(&a.out, &cfg))?;
            println!("results: {}", a.out.join("bench.json").display());
            Ok(())
        }
    }
}
