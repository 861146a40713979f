//! `gpaxos-checker`: checks recorded histories and exits as Jepsen does:
//! 0 (all valid), 1 (some invalid), 2 (none invalid, some unknown), 254
//! (arguments refused), 255 (the checker failed, for instance writing its
//! results).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use gpaxos_checker::check::{check_file, CheckOptions, FileResult};
use gpaxos_checker::exit::{self, bad_argument};
use gpaxos_checker::generate::{write_kv_as, KvWorkload, OutFormat, Style};
use gpaxos_checker::history::Format;
use gpaxos_checker::linear::{FailReading, ModelKind, Options};
use gpaxos_checker::report::{self, Summary};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "gpaxos-checker",
    version,
    about = "Checks gpaxos and Jepsen histories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks each history file and prints one verdict line per file.
    Check(CheckArgs),
    /// Writes a synthetic key-value history (JSON Lines or Jepsen EDN),
    /// linearizable unless reads are planted stale, for benchmarks.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    #[arg(long, default_value_t = 1_000_000)]
    ops: usize,
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    #[arg(long, default_value_t = 50)]
    processes: usize,
    /// Fraction of operations that end `info`.
    #[arg(long, default_value_t = 0.01)]
    indeterminate: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Processes that hang on a write until the end of the run (as in
    /// Porcupine's 50-client kv logs).
    #[arg(long, value_name = "N", default_value_t = 0)]
    hang: usize,
    /// The operations drawn: `mixed` (gets, puts, appends, cas) or
    /// `appends` (as Porcupine's kv logs: gets and appends, few puts).
    #[arg(long, value_enum, default_value = "mixed")]
    style: StyleArg,
    /// Reads planted stale (each makes the history not linearizable),
    /// spread over the history.
    #[arg(long, value_name = "N", default_value_t = 0)]
    bad: usize,
    /// The format written: the project's JSON Lines, or Jepsen EDN.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: GenFormatArg,
    /// Where to write the history.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// History files: JSON Lines, Jepsen EDN, or Jepsen text logs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The linearizability model; by default it follows the operations.
    #[arg(long, value_enum)]
    model: Option<ModelArg>,
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// How a `:fail` of a Jepsen history is read: `not-applied` (Jepsen's
    /// and Knossos' meaning: it did not happen) or `cas-refused`
    /// (Porcupine's etcd model: a failed cas saw another value).
    #[arg(long, value_enum, default_value = "not-applied")]
    jepsen_fail: FailArg,
    /// Directory for results.json and report.html.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds each file's linearizability search may take before its
    /// verdict is unknown; 0 for no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIME_LIMIT)]
    time_limit: f64,
    /// Memory the search may hold per file (bytes, or with KiB, MiB, GiB);
    /// 0 for no limit. By default half of the machine's physical memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// Worker threads for the search; 0 is one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Checks every file this many times and reports the times (a
    /// benchmark mode; the verdicts are those of the last round).
    #[arg(long, value_name = "ROUNDS")]
    bench: Option<usize>,
    /// Prints only the summary line.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Register,
    CasRegister,
    Kv,
    Bank,
}

#[derive(Clone, Copy, ValueEnum)]
enum StyleArg {
    Mixed,
    Appends,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenFormatArg {
    Jsonl,
    Edn,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailArg {
    NotApplied,
    CasRefused,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Jsonl,
    Edn,
    JepsenLog,
}

/// Seconds a file's search may take unless `--time-limit` says otherwise.
const DEFAULT_TIME_LIMIT: f64 = 300.0;

/// Half of the machine's physical memory (`MemTotal` of `/proc/meminfo`),
/// or 4 GiB where that cannot be read.
fn default_memory_limit() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<usize>().ok()
    });
    total_kib.map_or(4 << 30, |kib| kib * 1024 / 2)
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a size such as 4GiB, found {s:?}"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: expected B, KiB, MiB or GiB"
            ))
        }
    };
    Ok((number * scale) as usize)
}

fn main() {
    let cli: Cli = exit::parse_or_exit();
    exit::run_and_exit("gpaxos-checker", || match cli.command {
        Command::Check(args) => Ok(check(args)?.exit_code()),
        Command::Generate(args) => generate(args).map(|()| 0),
    })
}

fn generate(args: GenerateArgs) -> Result<()> {
    if args.processes == 0 || args.keys == 0 {
        return Err(bad_argument("--processes and --keys must be at least 1"));
    }
    if !(0.0..=1.0).contains(&args.indeterminate) {
        return Err(bad_argument(format!(
            "--indeterminate is a fraction between 0 and 1, not {}",
            args.indeterminate
        )));
    }
    let workload = KvWorkload {
        ops: args.ops,
        keys: args.keys,
        processes: args.processes,
        indeterminate: args.indeterminate,
        seed: args.seed,
        hang: args.hang,
        style: match args.style {
            StyleArg::Mixed => Style::Mixed,
            StyleArg::Appends => Style::Appends,
        },
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let format = match args.format {
        GenFormatArg::Jsonl => OutFormat::Jsonl,
        GenFormatArg::Edn => OutFormat::Edn,
    };
    let records = write_kv_as(&workload, format, args.bad, &mut out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    std::io::Write::flush(&mut out)?;
    println!("{records} records written to {}", args.out.display());
    Ok(())
}

fn print_result(r: &FileResult) {
    let mut parts = Vec::new();
    if let Some(c) = &r.consensus {
        parts.push(format!("consensus {}", c.verdict));
    }
    if let Some(e) = r.execution.as_ref().filter(|e| e.judged) {
        parts.push(format!("execution {}", e.verdict));
    }
    if let Some(l) = &r.linearizability {
        parts.push(format!(
            "linearizability {} ({} ops, {} objects)",
            l.verdict, l.operations, l.objects
        ));
    }
    println!(
        "{:<7} {}  [{}; {}] {:.1} ms",
        r.verdict.to_string(),
        r.file,
        r.format,
        parts.join(", "),
        r.elapsed_us as f64 / 1000.0
    );
    let findings = r.findings();
    for f in findings.iter().take(5) {
        println!("        {f}");
    }
    if findings.len() > 5 {
        println!(
            "        ... and {} more (see results.json)",
            findings.len() - 5
        );
    }
}

/// Per file, side by side: its verdict and its fastest, median and
/// slowest round.
fn print_bench(results: &[FileResult], times: &mut [Vec<Duration>]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "bench: {:<8} {:>10} {:>10} {:>10}  file",
        "verdict", "min ms", "median ms", "max ms"
    );
    for (r, t) in results.iter().zip(times.iter_mut()) {
        t.sort();
        println!(
            "bench: {:<8} {:>10.2} {:>10.2} {:>10.2}  {}",
            r.verdict.to_string(),
            ms(t[0]),
            ms(t[t.len() / 2]),
            ms(t[t.len() - 1]),
            r.file
        );
    }
}

/// The checks `check` runs, from its flags.
fn check_options(args: &CheckArgs) -> CheckOptions {
    CheckOptions {
        model: args.model.map(|m| match m {
            ModelArg::Register => ModelKind::Register,
            ModelArg::CasRegister => ModelKind::CasRegister,
            ModelArg::Kv => ModelKind::Kv,
            ModelArg::Bank => ModelKind::Bank,
        }),
        format: Some(match args.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Edn => Format::Edn,
            FormatArg::JepsenLog => Format::JepsenLog,
        }),
        linear: Options {
            time_limit: (args.time_limit > 0.0).then(|| Duration::from_secs_f64(args.time_limit)),
            memory_limit: Some(args.memory_limit.unwrap_or_else(default_memory_limit))
                .filter(|&m| m > 0),
            threads: args.threads,
        },
        timeline: args.out.is_some(),
        skip_linearizability: false,
        jepsen_fail: match args.jepsen_fail {
            FailArg::NotApplied => FailReading::NotApplied,
            FailArg::CasRefused => FailReading::CasRefused,
        },
        run: None,
    }
}

fn check(args: CheckArgs) -> Result<gpaxos_checker::Verdict> {
    if args.bench == Some(0) {
        return Err(bad_argument("--bench needs at least one round"));
    }
    if !(args.time_limit >= 0.0 && args.time_limit.is_finite()) {
        return Err(bad_argument(format!(
            "--time-limit is seconds, 0 or more, not {}",
            args.time_limit
        )));
    }
    let options = check_options(&args);
    if let Some(out) = &args.out {
        // The log goes beside the results, and is open before the first
        // check so it holds every line of them.
        gpaxos_checker::logging::to_file(out)
            .with_context(|| format!("writing {}", out.display()))?;
        tracing::info!(
            "gpaxos-checker check: {} file(s), results to {}",
            args.files.len(),
            out.display()
        );
    }
    let rounds = args.bench.unwrap_or(1);
    let mut round_times = Vec::with_capacity(rounds);
    let mut file_times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); args.files.len()];
    let mut results = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        results = Vec::with_capacity(args.files.len());
        for (f, times) in args.files.iter().zip(&mut file_times) {
            let file_started = Instant::now();
            results.push(check_file(f, &options));
            times.push(file_started.elapsed());
        }
        round_times.push(started.elapsed());
    }
    if !args.quiet {
        for r in &results {
            print_result(r);
        }
    }
    let summary = Summary::of(&results);
    let counts = format!(
        "{} file(s): {} valid, {} invalid, {} unknown => {}",
        results.len(),
        summary.valid,
        summary.invalid,
        summary.unknown,
        summary.verdict()
    );
    println!("{counts}");
    if args.bench.is_some() {
        print_bench(&results, &mut file_times);
        round_times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "bench: {rounds} round(s) of {} file(s): min {:.2} ms, median {:.2} ms, max {:.2} ms",
            results.len(),
            ms(round_times[0]),
            ms(round_times[round_times.len() / 2]),
            ms(round_times[round_times.len() - 1])
        );
    }
    if let Some(out) = &args.out {
        report::write_results(out, &results)
            .with_context(|| format!("writing {}", out.display()))?;
        report::write_html(out, &results).with_context(|| format!("writing {}", out.display()))?;
        tracing::info!("{counts}; results.json and report.html written");
    }
    Ok(summary.verdict())
}
