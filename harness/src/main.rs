use anyhow::Result;
use clap::{Parser, Subcommand};
use gpaxos_checker::check::{check_file, check_history, CheckOptions};
use gpaxos_checker::{History, Verdict};
use gpaxos_harness::bench::{self, BenchConfig, Mode};
use gpaxos_harness::cluster::external::ExternalSetup;
use gpaxos_harness::cluster::{docker, nfqueue, Backend};
use gpaxos_harness::exit::{self, bad_argument};
use gpaxos_harness::faults::LinkFaults;
use gpaxos_harness::judge;
use gpaxos_harness::latency::Latency;
use gpaxos_harness::logging;
use gpaxos_harness::nemesis::Kind;
use gpaxos_harness::runner::{self, TestConfig};
use gpaxos_harness::sim::{self, Faults, SimConfig};
use gpaxos_harness::ssh::{self as ssh_backend, SshSetup};
use gpaxos_harness::suite;
use gpaxos_harness::workload::WorkloadKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    Sim(SimArgs),
    /// Measures throughput and latency of a local cluster (fsync on), fast
    /// ballots against classic ones.
    Bench(BenchArgs),
    /// Runs a local cluster at a steady rate for minutes and samples each
    /// node's resident memory, log size, snapshot size and client sessions
    /// into soak.json and soak.svg: they must level off.
    Soak(SoakArgs),
    /// One Jepsen-style run: a cluster, clients, faults on a schedule, a
    /// final heal, and the checker's verdict (exit 0 valid, 1 invalid, 2
    /// unknown, 254 bad arguments, 255 the harness failed).
    Test(TestArgs),
    /// A matrix of test runs: `ci` runs every nemesis kind with every
    /// workload on local clusters, each run at least 20 s; `docker` runs
    /// shorter ones on the compose containers; `ssh` short ones on the
    /// hosts of --nodes-file.
    Suite {
        /// The suite: ci, docker or ssh.
        name: String,
        #[arg(long, default_value = "store")]
        store: PathBuf,
        #[command(flatten)]
        ssh: SshArgs,
    },
    /// Serves an NFQUEUE in this host's network until SIGTERM, holding
    /// packets back as told: the ssh backend runs it on hosts whose kernel
    /// has no tc netem.
    #[command(hide = true)]
    Nfqueue {
        #[arg(long, default_value_t = 0)]
        delay_us: u64,
        #[arg(long, default_value_t = 0)]
        jitter_us: u64,
        #[arg(long, default_value_t = 0.0)]
        reorder: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Serves the store's runs (reports, histories, logs) over HTTP.
    Serve {
        #[arg(long, default_value = "store")]
        store: PathBuf,
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Checks a stored run again, with the options the run was checked
    /// with (from its test.json), and rewrites everything the run wrote:
    /// results.json, report.html, summary.json, history.edn, results.edn.
    Analyze {
        /// A run directory (or its history.jsonl).
        #[arg(default_value = "store/latest")]
        run: PathBuf,
    },
}

/// How the ssh backend reaches its hosts.
#[derive(clap::Args, Clone, Default)]
pub struct SshArgs {
    /// The ssh backend's hosts, as Jepsen's --nodes-file: one node a line,
    /// `name host[:port]` (`n1 10.0.0.11:7000`; port 7000 if none), `#`
    /// comments; the names are n1 to nN.
    #[arg(long)]
    nodes_file: Option<PathBuf>,
    /// The user the harness logs in as; it must be able to run iptables
    /// (and tc) on the hosts.
    #[arg(long, default_value = "root")]
    ssh_user: String,
    /// The private key to log in with (default: ssh's own defaults).
    #[arg(long)]
    ssh_key: Option<PathBuf>,
    #[arg(long, default_value_t = 22)]
    ssh_port: u16,
    /// The directory on each host that holds its node's binary, keys, data
    /// and log (one subdirectory per node, emptied at the start of a run).
    #[arg(long, default_value = "/tmp/gpaxos")]
    remote_dir: String,
}

#[derive(clap::Args, Clone)]
pub struct TestArgs {
    /// Where the cluster runs. `local`: node processes on loopback behind
    /// the harness's UDP relays. `docker`: the five containers of
    /// docker-compose.yml (image from docker/build.sh), faulted with
    /// iptables in their network namespaces; needs root. `ssh`: the hosts
    /// of --nodes-file, driven over SSH and faulted with iptables (and tc
    /// netem) on them. `external`: a cluster the harness did not start
    /// (--cluster, --tls), with clients and checks but no faults. (`sim` is
    /// the `sim` command.)
    #[arg(long, value_enum, default_value_t = Backend::Local)]
    backend: Backend,
    /// The external backend's nodes, as the node's own flag:
    /// n1=HOST:PORT,n2=HOST:PORT,... (each node's client address).
    #[arg(long)]
    cluster: Option<String>,
    /// The external backend's client certificate: a directory holding
    /// ca.pem, client.pem and client.key (as `gpaxos-node certs` writes).
    #[arg(long)]
    tls: Option<PathBuf>,
    /// Nodes in the cluster (default 5; with --backend ssh, the nodes
    /// file's).
    #[arg(long)]
    nodes: Option<usize>,
    #[arg(long, value_enum, default_value_t = WorkloadKind::Kv)]
    workload: WorkloadKind,
    /// Fault kinds, mixed: partition,kill,pause,loss,delay,duplicate,reorder,torn-wal,lag, or all, or none.
    #[arg(long, default_value = "partition,kill,pause")]
    nemesis: String,
    /// Seconds between a fault and its heal, and between a heal and the next fault.
    #[arg(long, default_value_t = 3.0)]
    nemesis_interval: f64,
    /// Seconds of workload and faults before the final heal.
    #[arg(long, default_value_t = 20.0)]
    time_limit: f64,
    /// Operations per second over all clients; 0 is as fast as they go.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Probability that a kv operation touches a key every client shares.
    #[arg(long, default_value_t = 0.2)]
    conflict: f64,
    /// How many runs.
    #[arg(long, default_value_t = 1)]
    test_count: usize,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// One-way delays of the node-to-node links: `uniform:MS`,
    /// `matrix:ROW;ROW;...` (row i holds the ms from n(i+1) to each node,
    /// comma-separated; quote the `;` from the shell), `matrix:FILE` (a row
    /// a line), or `regions:NAME=n1,n2;NAME=n3,...` with the built-in table
    /// of one-way delays between us-east, us-west, eu-west, eu-central,
    /// ap-northeast, ap-southeast and sa-east (half of published AWS
    /// round-trip times; approximate). Local backend only. Clients reach their nodes at zero
    /// delay. The nodes' tick grows to half the longest delay.
    #[arg(long)]
    latency: Option<String>,
    /// The nodes' TOML configuration (see the README's node section), for
    /// example `checkpoint_every = 8` and `snapshot_every = 2` to compact
    /// often; recorded in the run's test.json. Local backend only.
    #[arg(long)]
    node_config: Option<PathBuf>,
    /// Runs nodes with a deliberate protocol mistake (kebab-case name of a
    /// `PlantedBug`); only builds of gpaxos-node with the `planted-bugs`
    /// feature accept it, and the run should then fail.
    #[arg(long, hide = true)]
    planted_bug: Option<String>,
    #[command(flatten)]
    ssh: SshArgs,
}

#[derive(clap::Args)]
struct SimArgs {
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
    /// Instances between snapshots that replace a node's log; 0 never
    /// takes one.
    #[arg(long, default_value_t = 2)]
    snapshot_every: u64,
    /// Every this many seeds (by number) is a long seed: at least 3,000
    /// commands, a checkpoint every 8, a snapshot every 2 instances, and
    /// a node kept away while the others compact and restart one by
    /// one, then brought back. 0: none; 1: every seed.
    #[arg(long, default_value_t = 10)]
    long_every: u64,
    /// One-way delays of the node-to-node links: `uniform:MS`,
    /// `matrix:ROW;ROW;...` (row i holds the ms from n(i+1) to each node,
    /// comma-separated; quote the `;` from the shell), `matrix:FILE` (a row
    /// a line), or `regions:NAME=n1,n2;NAME=n3,...` with the built-in table
    /// of one-way delays between us-east, us-west, eu-west, eu-central,
    /// ap-northeast, ap-southeast and sa-east (half of published AWS
    /// round-trip times; approximate). Clients reach their nodes at zero
    /// delay. The simulated nodes' tick grows to half the longest delay.
    #[arg(long)]
    latency: Option<String>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the histories of failing seeds are written.
    #[arg(long, default_value = "store/sim")]
    store: PathBuf,
    /// Stops at the first failing seed (seeds already running finish)
    /// and prints its replay command.
    #[arg(long)]
    fail_fast: bool,
    /// Runs the nodes with a deliberate protocol mistake (kebab-case
    /// name of a `PlantedBug`); only builds with the node's
    /// `planted-bugs` feature (test builds) accept it.
    #[arg(long, hide = true)]
    planted_bug: Option<String>,
}

#[derive(clap::Args)]
struct SoakArgs {
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Operations per second over all clients.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Distinct keys written.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Operations after which a client process is replaced by a new one
    /// (a new client id, so old sessions go idle and must expire).
    #[arg(long, default_value_t = 200)]
    ops_per_process: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10.0)]
    sample_every: f64,
    /// The nodes' TOML configuration; by default the node's defaults with
    /// sessions expiring after 64 idle instances.
    #[arg(long)]
    node_config: Option<PathBuf>,
    #[arg(long, default_value = "store/soak")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Concurrent clients, one run each: 16,64,500
    #[arg(long, value_delimiter = ',', default_value = "16,64,500")]
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
    /// Probabilities that a put goes to the key all clients share, one run
    /// each: 0,0.1
    #[arg(long, value_delimiter = ',', default_value = "0")]
    conflict: Vec<f64>,
    /// One-way delay on every node-to-node link, in ms (through the relays):
    /// the same as `--latency uniform:MS`.
    #[arg(long, default_value_t = 0.0)]
    link_delay_ms: f64,
    /// One-way delays of the node-to-node links: `uniform:MS`,
    /// `matrix:ROW;ROW;...` (row i holds the ms from n(i+1) to each node,
    /// comma-separated; quote the `;` from the shell), `matrix:FILE` (a row
    /// a line), or `regions:NAME=n1,n2;NAME=n3,...` with the built-in table
    /// of one-way delays between us-east, us-west, eu-west, eu-central,
    /// ap-northeast, ap-southeast and sa-east (half of published AWS
    /// round-trip times; approximate). Clients reach their nodes at zero
    /// delay. The nodes' tick grows to half the longest delay.
    #[arg(long, conflicts_with = "link_delay_ms")]
    latency: Option<String>,
    /// Where the clusters' directories, bench.json and bench.svg go.
    #[arg(long, default_value = "store/bench")]
    out: PathBuf,
    /// Also run five etcd members on loopback and `etcdctl check perf
    /// --load=l` (500 clients, 60 s) against them (Debian's etcd-server
    /// and etcd-client).
    #[arg(long)]
    etcd: bool,
}

fn main() {
    let cli: Cli = exit::parse_or_exit();
    gpaxos_harness::logging::init();
    exit::run_and_exit("gpaxos-harness", || real_main(cli))
}

/// Runs the command; the exit code of what it found.
fn real_main(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Sim(a) => sim(a),
        Cmd::Test(a) => test(a).map(Verdict::exit_code),
        Cmd::Suite { name, store, ssh } => suite(&name, store, ssh),
        Cmd::Nfqueue {
            delay_us,
            jitter_us,
            reorder,
            seed,
        } => serve_nfqueue(delay_us, jitter_us, reorder, seed),
        Cmd::Serve { store, port } => gpaxos_harness::serve::serve(&store, port).map(|()| 0),
        Cmd::Analyze { run } => analyze(&run),
        Cmd::Bench(a) => bench(a),
        Cmd::Soak(a) => soak(a).map(|()| 0),
    }
}

/// `sim`: a sweep of seeds, each checked; exit 1 if any failed.
fn sim(a: SimArgs) -> Result<i32> {
    let SimArgs {
        seeds,
        start_seed,
        nodes,
        commands,
        conflict,
        faults,
        checkpoint_every,
        snapshot_every,
        long_every,
        latency,
        threads,
        store,
        fail_fast,
        planted_bug,
    } = a;
    if !(0.0..=1.0).contains(&conflict) {
        return Err(bad_argument(format!(
            "--conflict must be between 0 and 1, got {conflict}"
        )));
    }
    if checkpoint_every == 0 {
        return Err(bad_argument("--checkpoint-every must be at least 1"));
    }
    let mut cfg = SimConfig::new(nodes, commands, conflict, faults)
        .map_err(|e| bad_argument(format!("{e:#}")))?;
    cfg.protocol.checkpoint_every = checkpoint_every;
    cfg.protocol.snapshot_every = snapshot_every;
    cfg.long_every = long_every;
    if let Some(bug) = &planted_bug {
        cfg.protocol.planted = planted_protocol(bug, nodes)?.planted;
        cfg.planted_bug = Some(bug.clone());
    }
    if let Some(spec) = &latency {
        let l = Latency::parse(spec, nodes).map_err(|e| bad_argument(format!("{e:#}")))?;
        cfg.set_latency(&l);
    }
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let report = sim::sweep(
        &cfg,
        start_seed..start_seed + seeds,
        threads,
        &store,
        fail_fast,
    )?;
    print!("{report}");
    Ok(if report.failures.is_empty() { 0 } else { 1 })
}

/// `bench`: fast against classic ballots (and etcd with `--etcd`).
fn bench(a: BenchArgs) -> Result<i32> {
    if a.nodes == 0
        || a.clients.contains(&0)
        || a.duration == 0
        || a.conflict.iter().any(|c| !(0.0..=1.0).contains(c))
        || !(0.0..=10_000.0).contains(&a.link_delay_ms)
    {
        return Err(bad_argument(
            "--nodes, --clients and --duration must be positive, --conflict in [0, 1], --link-delay-ms in [0, 10000]",
        ));
    }
    let latency = bench_latency(&a)?;
    let cfg = BenchConfig {
        nodes: a.nodes,
        clients: a.clients,
        modes: a.modes,
        duration: Duration::from_secs(a.duration),
        warmup: Duration::from_secs(2),
        value_size: a.value_size,
        conflicts: a.conflict,
        latency,
        etcd: a.etcd,
    };
    if a.etcd {
        bench::etcd::available().map_err(|e| bad_argument(e.to_string()))?;
    }
    let _ = std::fs::remove_dir_all(&a.out);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench::run(&a.out, &cfg))?;
    println!("results: {}", a.out.join("bench.json").display());
    Ok(0)
}

/// `bench`'s link delays: `--latency`, or `--link-delay-ms` as a uniform
/// one.
fn bench_latency(a: &BenchArgs) -> Result<Option<Latency>> {
    let spec = match (&a.latency, a.link_delay_ms) {
        (Some(spec), _) => spec.clone(),
        (None, ms) if ms > 0.0 => format!("uniform:{ms}"),
        (None, _) => return Ok(None),
    };
    Latency::parse(&spec, a.nodes)
        .map(Some)
        .map_err(|e| bad_argument(format!("{e:#}")))
}

/// `nfqueue`: holds this host's queued packets back until SIGTERM.
fn serve_nfqueue(delay_us: u64, jitter_us: u64, reorder: f64, seed: u64) -> Result<i32> {
    let faults = LinkFaults {
        delay: Duration::from_micros(delay_us),
        jitter: Duration::from_micros(jitter_us),
        reorder,
        ..LinkFaults::default()
    };
    nfqueue::serve_until_signalled(faults, seed).map(|()| 0)
}

/// `analyze`: the run's verdict again, written as the run wrote it.
fn analyze(run: &Path) -> Result<i32> {
    if !run.exists() {
        return Err(bad_argument(format!("{}: no such run", run.display())));
    }
    let (dir, file) = if run.is_dir() {
        (run.to_owned(), run.join("history.jsonl"))
    } else {
        let dir = run.parent().map(Path::to_owned).unwrap_or_default();
        (dir, run.to_owned())
    };
    let options = match judge::recorded_options(&dir)? {
        Some(options) => options,
        None => {
            eprintln!(
                "note: no test.json in {}: checked as a kv run, without the run checks",
                dir.display()
            );
            CheckOptions {
                run: None,
                ..judge::check_options(WorkloadKind::Kv)
            }
        }
    };
    // The history is read once for the checks and the summary; one that
    // cannot be read is judged by check_file, which says why (unknown).
    // The run's log gains the lines of this second judgement.
    logging::append_run(&dir)?;
    tracing::info!(history = %file.display(), "analyze: checking the stored run again");
    let (result, history) = match History::from_jsonl_path(&file) {
        Ok(h) => (check_history(&file.display().to_string(), &h, &options), h),
        Err(_) => (check_file(&file, &options), History::new()),
    };
    let summary = judge::write_verdict(&dir, &result, &history);
    log_verdict(&summary);
    let summary = summary?;
    println!("{summary}");
    Ok(result.verdict.exit_code())
}

fn soak(a: SoakArgs) -> Result<()> {
    if a.nodes == 0
        || a.clients == 0
        || a.keys == 0
        || a.ops_per_process == 0
        || a.minutes <= 0.0
        || a.rate <= 0.0
        || a.sample_every <= 0.0
    {
        return Err(bad_argument(
            "--nodes, --clients, --keys, --ops-per-process, --minutes, --rate and --sample-every must be positive",
        ));
    }
    let node_config = match &a.node_config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| bad_argument(format!("--node-config {}: {e}", path.display())))?,
        None => "session_idle_instances = 64\n".to_owned(),
    };
    gpaxos_node::config_file::ConfigFile::parse(&node_config)
        .and_then(|c| c.protocol(a.nodes).map(|_| ()))
        .map_err(|e| bad_argument(format!("node configuration: {e:#}")))?;
    let cfg = gpaxos_harness::soak::SoakConfig {
        nodes: a.nodes,
        duration: Duration::from_secs_f64(a.minutes * 60.0),
        rate: a.rate,
        clients: a.clients,
        keys: a.keys,
        value_size: a.value_size,
        ops_per_process: a.ops_per_process,
        sample_every: Duration::from_secs_f64(a.sample_every),
        node_config,
    };
    let _ = std::fs::remove_dir_all(&a.out);
    std::fs::create_dir_all(&a.out)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(gpaxos_harness::soak::run(&a.out, &cfg))?;
    println!(
        "results: {} and {}",
        a.out.join("soak.json").display(),
        a.out.join("soak.svg").display()
    );
    Ok(())
}

/// Runs `--test-count` tests; the worst verdict of them.
fn test(mut a: TestArgs) -> Result<Verdict> {
    let template = test_config(&mut a)?;
    let (rt, interrupted) = runtime_with_ctrl_c()?;
    let mut worst = Verdict::Valid;
    for i in 0..a.test_count.max(1) {
        let seed = a.seed.map_or_else(
            || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            },
            |s| s + i as u64,
        );
        let cfg = TestConfig {
            seed,
            ..template.clone()
        };
        eprintln!(
            "test {}/{}: {:?} backend, {} nodes, {:?}, nemesis {}, {} s, seed {seed}",
            i + 1,
            a.test_count.max(1),
            a.backend,
            cfg.nodes,
            a.workload,
            a.nemesis,
            a.time_limit
        );
        let summary = rt.block_on(runner::run(cfg, interrupted.clone()));
        log_verdict(&summary);
        let summary = summary?;
        println!("{summary}");
        worst = worst.and(summary.verdict);
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(worst)
}

/// A runtime for the runs, and the flag Ctrl-C sets: a run interrupted
/// heals everything and checks what it recorded.
fn runtime_with_ctrl_c() -> Result<(tokio::runtime::Runtime, Arc<AtomicBool>)> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let flag = interrupted.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: healing everything and checking what was recorded");
            flag.store(true, Ordering::Relaxed);
        }
    });
    Ok((rt, interrupted))
}

/// The nodes of the run: the nodes file's or `--cluster`'s count, else
/// `--nodes` (5 by default); a mismatch is a usage error.
fn node_count(
    a: &TestArgs,
    ssh: Option<&SshSetup>,
    external: Option<&ExternalSetup>,
) -> Result<usize> {
    let named = match (ssh, external) {
        (Some(s), _) => Some((s.nodes.len(), "the nodes file names")),
        (_, Some(e)) => Some((e.addrs.len(), "--cluster names")),
        _ => None,
    };
    match (named, a.nodes) {
        (Some((len, what)), Some(n)) if n != len => {
            Err(bad_argument(format!("--nodes {n}, but {what} {len} nodes")))
        }
        (Some((len, _)), _) => Ok(len),
        (None, n) => Ok(n.unwrap_or(5)),
    }
}

/// Every run's configuration but its seed, from the flags, checked so that
/// a mistake is a usage error (exit 254) before any node starts.
fn test_config(a: &mut TestArgs) -> Result<TestConfig> {
    let ssh = ssh_setup(a)?;
    let external = external_setup(a)?;
    let n = node_count(a, ssh.as_ref(), external.as_ref())?;
    a.nodes = Some(n);
    if a.backend == Backend::Docker {
        if a.planted_bug.is_some() || a.node_config.is_some() {
            return Err(bad_argument(
                "--planted-bug and --node-config need a node configuration, and the docker \
                 backend runs the nodes with docker-compose.yml's settings: use --backend local",
            ));
        }
        if n != docker::NODES {
            return Err(bad_argument(format!(
                "the docker backend is the {} nodes of docker-compose.yml; got --nodes {n}",
                docker::NODES,
            )));
        }
    }
    if n == 0
        || a.concurrency == 0
        || a.time_limit <= 0.0
        || a.nemesis_interval <= 0.0
        || a.rate < 0.0
    {
        return Err(bad_argument("--nodes, --concurrency, --time-limit and --nemesis-interval must be positive, --rate at least 0"));
    }
    let latency = test_latency(a, n)?;
    let node_config = with_tick(node_config_text(a)?, latency.as_ref())?;
    if !(0.0..=1.0).contains(&a.conflict) {
        return Err(bad_argument("--conflict must be between 0 and 1"));
    }
    let nemesis =
        Kind::parse_list(&a.nemesis).map_err(|e| bad_argument(format!("--nemesis: {e:#}")))?;
    let prefix = match a.backend {
        Backend::Local => "",
        Backend::Docker => "docker-",
        Backend::Ssh => "ssh-",
        Backend::External => "external-",
    };
    let cfg = TestConfig {
        name: format!("{prefix}{:?}-{}", a.workload, a.nemesis.replace(',', "+")).to_lowercase(),
        backend: a.backend,
        nodes: n,
        workload: a.workload,
        nemesis,
        nemesis_interval: a.nemesis_interval,
        time_limit: a.time_limit,
        rate: a.rate,
        concurrency: a.concurrency,
        conflict: a.conflict,
        seed: 0,
        store: a.store.clone(),
        node_config,
        latency,
        ssh,
        external,
    };
    runner::check_external(&cfg).map_err(|e| bad_argument(format!("{e:#}")))?;
    Ok(cfg)
}

/// The run's last lines in its harness.log (the verdict, or the error
/// that ended it), then the log is closed: the next run opens its own.
fn log_verdict(summary: &Result<judge::Summary>) {
    match summary {
        Ok(s) => tracing::info!(
            "verdict: {} ({} ok, {} fail, {} info; {} faults)",
            s.verdict,
            s.ok,
            s.fail,
            s.info,
            s.faults.len()
        ),
        Err(e) => tracing::error!("the run failed: {e:#}"),
    }
    logging::end_run();
}

/// The nodes' configuration: the `--node-config` file, checked here so a
/// mistake is named before any node starts, plus the planted bug if any.
fn node_config_text(a: &TestArgs) -> Result<Option<String>> {
    let mut text = match &a.node_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad_argument(format!("--node-config {}: {e}", path.display())))?;
            if let Err(e) = gpaxos_node::config_file::ConfigFile::parse(&text)
                .and_then(|c| c.protocol(a.nodes.unwrap_or(5)).map(|_| ()))
            {
                return Err(bad_argument(format!(
                    "--node-config {}: {e:#}",
                    path.display()
                )));
            }
            Some(text)
        }
        None => None,
    };
    if let Some(b) = &a.planted_bug {
        let line = format!("planted_bug = {:?}\n", pascal(b));
        text = Some(text.map_or(line.clone(), |t| format!("{t}\n{line}")));
    }
    Ok(text)
}

/// The protocol configuration with planted bug `kebab`, through the node's
/// own configuration file reader (which knows the field only in builds with
/// the `planted-bugs` feature).
fn planted_protocol(kebab: &str, nodes: usize) -> Result<gpaxos_node::protocol::Config> {
    let text = format!("planted_bug = {:?}\n", pascal(kebab));
    gpaxos_node::config_file::ConfigFile::parse(&text)
        .and_then(|c| c.protocol(nodes))
        .map(|(config, _, _)| config)
        .map_err(|e| {
            bad_argument(format!(
                "--planted-bug {kebab}: {e:#} (planted bugs exist only in test builds of the harness)"
            ))
        })
}

/// `test`'s link delays, for the local backend only: the others' links are
/// real networks (or, for docker, ones the harness does not relay).
fn test_latency(a: &TestArgs, n: usize) -> Result<Option<Latency>> {
    let Some(spec) = &a.latency else {
        return Ok(None);
    };
    if a.backend != Backend::Local {
        return Err(bad_argument(
            "--latency needs --backend local (its relays hold each datagram for its link's delay)",
        ));
    }
    Latency::parse(spec, n)
        .map(Some)
        .map_err(|e| bad_argument(format!("{e:#}")))
}

/// The nodes' configuration with the tick `--latency` asks for
/// ([`Latency::tick_ms`]), unless the configuration sets its own.
fn with_tick(config: Option<String>, latency: Option<&Latency>) -> Result<Option<String>> {
    let Some(l) = latency else {
        return Ok(config);
    };
    let text = config.unwrap_or_default();
    let own = gpaxos_node::config_file::ConfigFile::parse(&text)
        .map_err(|e| bad_argument(format!("node configuration: {e:#}")))?
        .tick_ms
        .is_some();
    if own {
        return Ok(Some(text));
    }
    Ok(Some(format!("tick_ms = {}\n{text}", l.tick_ms())))
}

/// `fast-learner-classic-quorum` -> `FastLearnerClassicQuorum`.
fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The CI matrix: every workload, with every nemesis kind coming round once
/// in each run (9 kinds at 2.5 s per fault and per heal, the lagging node's
/// four extra steps: 55 s of faults).
fn suite(name: &str, store: PathBuf, ssh: SshArgs) -> Result<i32> {
    match name {
        "ci" => {}
        "docker" => return suite_docker(store),
        "ssh" => return suite_ssh(store, ssh),
        _ => {
            return Err(bad_argument(format!(
                "unknown suite {name:?}: the suites are: ci, docker, ssh"
            )))
        }
    }
    // Short instances and a snapshot every two: the lagging-node nemesis
    // then keeps a node down while its peers compact far past it.
    let dir = store.join("suite-ci");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("node.toml");
    std::fs::write(&config, "checkpoint_every = 16\nsnapshot_every = 2\n")?;
    let runs = [WorkloadKind::Kv, WorkloadKind::Bank, WorkloadKind::Set]
        .into_iter()
        .enumerate()
        .map(|(i, workload)| {
            let args = TestArgs {
                backend: Backend::Local,
                nodes: Some(5),
                workload,
                nemesis: "all".into(),
                nemesis_interval: 2.5,
                time_limit: 56.0,
                rate: 150.0,
                concurrency: 8,
                conflict: 0.2,
                test_count: 1,
                seed: Some(1000 + i as u64),
                store: dir.clone(),
                node_config: Some(config.clone()),
                planted_bug: None,
                latency: None,
                cluster: None,
                tls: None,
                ssh: SshArgs::default(),
            };
            (format!("{workload:?} with every nemesis"), args)
        })
        .collect();
    Ok(suite::run("ci", runs, &dir, test)?.exit_code())
}

/// The docker matrix: shorter runs on the compose containers, every
/// workload and every nemesis kind once. Without a Docker engine or its
/// image it is skipped, loudly, except under CI=true, where it fails.
fn suite_docker(store: PathBuf) -> Result<i32> {
    let root = docker::project_root()?;
    if let Err(why) = docker::preflight(&root) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if ci {
            anyhow::bail!("suite docker cannot run under CI=true: {why}");
        }
        let bar = "#".repeat(72);
        eprintln!("{bar}\n## suite docker SKIPPED: nothing ran.\n## {why}\n{bar}");
        return Ok(0);
    }
    let runs = [
        (WorkloadKind::Kv, "partition,kill,pause"),
        (WorkloadKind::Bank, "loss,delay,torn-wal"),
        (WorkloadKind::Set, "duplicate,reorder,partition"),
    ];
    let dir = store.join("suite-docker");
    let runs = runs
        .into_iter()
        .enumerate()
        .map(|(i, (workload, nemesis))| {
            let args = TestArgs {
                backend: Backend::Docker,
                nodes: Some(docker::NODES),
                workload,
                nemesis: nemesis.into(),
                nemesis_interval: 3.0,
                time_limit: 48.0,
                rate: 100.0,
                concurrency: 8,
                conflict: 0.2,
                test_count: 1,
                seed: Some(2000 + i as u64),
                store: dir.clone(),
                node_config: None,
                planted_bug: None,
                latency: None,
                cluster: None,
                tls: None,
                ssh: SshArgs::default(),
            };
            (format!("{workload:?} with {nemesis}"), args)
        })
        .collect();
    Ok(suite::run("docker", runs, &dir, test)?.exit_code())
}

/// The external backend's setup from the flags, checked here so that a
/// bad map or a missing certificate is a usage error.
fn external_setup(a: &TestArgs) -> Result<Option<ExternalSetup>> {
    if a.backend != Backend::External {
        if a.cluster.is_some() || a.tls.is_some() {
            return Err(bad_argument("--cluster and --tls need --backend external"));
        }
        return Ok(None);
    }
    let (Some(cluster), Some(tls)) = (&a.cluster, &a.tls) else {
        return Err(bad_argument(
            "--backend external needs --cluster n1=HOST:PORT,... and --tls DIR (ca.pem, client.pem, client.key)",
        ));
    };
    ExternalSetup::parse(cluster, tls)
        .map(Some)
        .map_err(|e| bad_argument(format!("{e:#}")))
}

/// The ssh backend's setup from the flags, checked here so that a bad
/// nodes file, a missing key or a host that does not let us in is a bad
/// argument (exit 254) named before anything starts.
fn ssh_setup(a: &TestArgs) -> Result<Option<SshSetup>> {
    let s = &a.ssh;
    if a.backend != Backend::Ssh {
        if s.nodes_file.is_some() {
            return Err(bad_argument("--nodes-file needs --backend ssh"));
        }
        return Ok(None);
    }
    let Some(file) = &s.nodes_file else {
        return Err(bad_argument(
            "--backend ssh needs --nodes-file (one `name host[:port]` a line)",
        ));
    };
    let nodes = ssh_backend::nodes_file::load(file).map_err(|e| bad_argument(format!("{e:#}")))?;
    if let Some(key) = &s.ssh_key {
        if !key.is_file() {
            return Err(bad_argument(format!(
                "--ssh-key {}: no such file",
                key.display()
            )));
        }
    }
    if !s.remote_dir.starts_with('/') || s.remote_dir.trim_matches('/').is_empty() {
        return Err(bad_argument(format!(
            "--remote-dir {:?} must be an absolute directory other than /",
            s.remote_dir
        )));
    }
    let setup = SshSetup {
        nodes_file: file.clone(),
        nodes,
        options: ssh_backend::remote::SshOptions {
            user: s.ssh_user.clone(),
            key: s
                .ssh_key
                .as_ref()
                .map(|k| std::path::absolute(k).unwrap_or(k.clone())),
            port: s.ssh_port,
            remote_dir: s.remote_dir.clone(),
        },
    };
    ssh_backend::check_reachable(&setup).map_err(|e| bad_argument(format!("{e:#}")))?;
    Ok(Some(setup))
}

/// The ssh matrix: three short runs on the hosts of --nodes-file, every
/// process and network fault once, one of them with kills and pauses
/// together with partitions.
fn suite_ssh(store: PathBuf, ssh: SshArgs) -> Result<i32> {
    if ssh.nodes_file.is_none() {
        return Err(bad_argument(
            "suite ssh needs --nodes-file (scripts/ssh-hosts.sh up makes one)",
        ));
    }
    let runs = [
        (WorkloadKind::Kv, "partition,kill,pause"),
        (WorkloadKind::Bank, "loss,delay,torn-wal"),
        (WorkloadKind::Set, "duplicate,reorder,partition"),
    ];
    let dir = store.join("suite-ssh");
    let runs = runs
        .into_iter()
        .enumerate()
        .map(|(i, (workload, nemesis))| {
            let args = TestArgs {
                backend: Backend::Ssh,
                nodes: None,
                workload,
                nemesis: nemesis.into(),
                nemesis_interval: 2.5,
                time_limit: 20.0,
                rate: 100.0,
                concurrency: 8,
                conflict: 0.2,
                test_count: 1,
                seed: Some(3000 + i as u64),
                store: dir.clone(),
                node_config: None,
                planted_bug: None,
                latency: None,
                cluster: None,
                tls: None,
                ssh: ssh.clone(),
            };
            (format!("{workload:?} with {nemesis}"), args)
        })
        .collect();
    Ok(suite::run("ssh", runs, &dir, test)?.exit_code())
}
