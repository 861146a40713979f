//! The harness's own log: `harness.log` in each run directory.
//!
//! One subscriber for the whole process, installed by the binary; its file
//! layer writes to the log of the run in progress, which `RunDir::create`
//! opens and `end_run` closes. Runs in one process (`--test-count`,
//! suites) come one after another, so one current file is enough, and it
//! catches events from every thread, the checker's worker threads
//! included. Outside a run the file layer is switched off, so the
//! simulator's hot path formats nothing.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The log file's name in a run directory.
pub const FILE: &str = "harness.log";

/// What goes into harness.log: the harness's and the checker's own lines,
/// and only warnings and errors from the node library the harness links
/// (its client retries are not the run's story).
const FILE_FILTER: &str = "gpaxos_harness=info,gpaxos_checker=info,warn";

static CURRENT: Mutex<Option<File>> = Mutex::new(None);
static OPEN: AtomicBool = AtomicBool::new(false);

/// Installs the process's subscriber: the per-run file layer, and a stderr
/// layer only when `RUST_LOG` asks for one (the commands print their own
/// output; a log on stderr by default would interleave with it).
pub fn init() {
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(RunWriter)
        .with_filter(EnvFilter::new(FILE_FILTER).and(filter_fn(|_| OPEN.load(Ordering::Relaxed))));
    let stderr = std::env::var("RUST_LOG").ok().map(|spec| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_filter(EnvFilter::new(spec))
    });
    // A second init (a test calling main's code twice) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(file)
        .with(stderr)
        .try_init();
}

/// Starts `dir/harness.log` afresh as the log of the run in progress.
pub fn start_run(dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    switch(Some(file));
    Ok(())
}

/// Continues `dir/harness.log` (`analyze` of a stored run adds its lines).
pub fn append_run(dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    switch(Some(file));
    Ok(())
}

/// Closes the run's log; events until the next run go nowhere.
pub fn end_run() {
    switch(None);
}

fn switch(file: Option<File>) {
    let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = current.as_mut() {
        let _ = old.flush();
    }
    OPEN.store(file.is_some(), Ordering::Relaxed);
    *current = file;
}

/// Writes to the current run's file. The fmt layer formats an event into
/// one buffer and writes it with one call, so lines from several threads
/// do not interleave.
struct RunWriter;

impl Write for RunWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_mut() {
            Some(f) => f.write_all(buf).map(|()| buf.len()),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        current.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl<'a> MakeWriter<'a> for RunWriter {
    type Writer = RunWriter;

    fn make_writer(&'a self) -> RunWriter {
        RunWriter
    }
}
