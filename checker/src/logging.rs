//! The checker's log: what it checked, each check's verdict, and why a
//! file could not be judged. `gpaxos-checker check --out DIR` writes it to
//! `DIR/checker.log`, beside the results; when the harness checks a run in
//! its own process the same lines go into the run's `harness.log`, through
//! whatever subscriber the process has.

use crate::check::FileResult;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

/// The log file's name beside the results.
pub const FILE: &str = "checker.log";

/// How many findings of a check are logged; results.json has them all.
const FINDINGS_LOGGED: usize = 5;

/// Logs the start of a check of `records` records of `file`.
pub fn started(file: &str, records: usize) {
    tracing::info!("checking {file}: {records} records");
}

/// Logs a file's verdict, each check's, and the first findings.
pub fn finished(r: &FileResult) {
    if let Some(e) = &r.error {
        tracing::warn!("{}: not checked: {e}", r.file);
    }
    for c in r.by_check() {
        tracing::info!("{}: check {} {}", r.file, c.name, c.verdict);
        for f in c.findings.iter().take(FINDINGS_LOGGED) {
            tracing::warn!("{}: {}: {f}", r.file, c.name);
        }
    }
    tracing::info!(
        "{}: verdict {} in {:.1} ms",
        r.file,
        r.verdict,
        r.elapsed_us as f64 / 1000.0
    );
}

/// Sends this process's log lines to `dir/checker.log` (created afresh,
/// with `dir`): the CLI's log beside its results. Fails if the process
/// already has a subscriber.
pub fn to_file(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = File::create(dir.join(FILE))?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .with_max_level(tracing::Level::INFO)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the checker's log: {e}"))
}
