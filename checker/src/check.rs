//! Every check that applies to one history file, and its combined verdict.
//! This is what `gpaxos-checker check` runs per file, and what the harness
//! calls on a run's `history.jsonl`.

use crate::consensus::{self, ConsensusResult};
use crate::execution::{self, ExecutionResult};
use crate::fxhash::FxHashSet;
use crate::history::format::{self, Format, Loaded};
use crate::history::stream::{self, Ended, Line, Numbering, Records};
use crate::history::{jepsen_file, History, HistoryError, Record};
use crate::linear::jepsen::JepsenOps;
use crate::linear::{
    self, BuildError, ClientOps, FailReading, LinearHistory, LinearResult, ModelKind, Options,
};
use crate::logging;
use crate::report::timeline::Timeline;
use crate::run::{self, RunChecks};
use crate::verdict::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

/// What to check a file against, and within what budget.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// The linearizability model; `None` picks it from the operations.
    pub model: Option<ModelKind>,
    pub format: Option<Format>,
    pub linear: Options,
    /// Also gather what `report.html` draws (`FileResult::timeline`).
    pub timeline: bool,
    /// Leave out the linearizability search (for histories another check
    /// covers, such as an append-only set whose search space explodes).
    pub skip_linearizability: bool,
    /// How `fail` completions of Jepsen histories are read; by default as
    /// Jepsen reads them (did not take effect). The project's JSON Lines
    /// always keep their own meaning.
    pub jepsen_fail: FailReading,
    /// The checks of a harness run (`run`); `None` for a history that is
    /// only a history.
    pub run: Option<RunChecks>,
}

/// The results of every check of one file.
#[derive(Clone, Debug, Serialize)]
pub struct FileResult {
    pub file: String,
    pub format: String,
    pub verdict: Verdict,
    /// Why the file could not be checked at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The consensus requirements of Section 4.3 (project histories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusResult>,
    /// The replay of a learned sequence (project histories with learner
    /// observations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linearizability: Option<LinearResult>,
    /// The checks of a harness run, folded into `verdict`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<NamedCheck>,
    pub elapsed_us: u64,
    /// What the report draws, when asked for.
    #[serde(skip)]
    pub timeline: Option<Timeline>,
}

impl FileResult {
    fn failed(file: &str, format: Format, error: String, started: Instant) -> Self {
        FileResult {
            file: file.to_owned(),
            format: format.name().to_owned(),
            verdict: Verdict::Unknown,
            error: Some(error),
            consensus: None,
            execution: None,
            linearizability: None,
            checks: Vec::new(),
            elapsed_us: started.elapsed().as_micros() as u64,
            timeline: None,
        }
    }

    /// History lines the report must draw: the operations of every
    /// linearizability failure.
    fn focus(&self) -> FxHashSet<usize> {
        let mut lines = FxHashSet::default();
        for f in self.linearizability.iter().flat_map(|l| &l.failures) {
            lines.extend(f.window.iter().map(|b| b.op.line));
            lines.extend(f.prefix_tail.iter().map(|o| o.line));
        }
        lines
    }

    /// One-line explanations of what is wrong or undecided, most important
    /// first.
    pub fn findings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.error.iter().cloned().collect();
        out.extend(self.by_check().into_iter().flat_map(|c| c.findings));
        out
    }

    /// Every check that was made, with its verdict and findings, in the
    /// order of `findings`: what `summary.json` and `results.edn` list.
    pub fn by_check(&self) -> Vec<NamedCheck> {
        let mut out = Vec::new();
        if let Some(c) = &self.consensus {
            let mut found: Vec<String> = c.violations.iter().map(ToString::to_string).collect();
            found.extend(
                c.unknown_reasons
                    .iter()
                    .map(|r| format!("consensus not judged: {r}")),
            );
            out.push(NamedCheck::new("consensus", c.verdict, found));
        }
        if let Some(e) = self.execution.as_ref().filter(|e| e.judged) {
            let mut found: Vec<String> = e
                .mismatches
                .iter()
                .map(|m| format!("Execution: {}", m.message))
                .collect();
            found.extend(
                e.unknown_reasons
                    .iter()
                    .map(|r| format!("execution not judged: {r}")),
            );
            out.push(NamedCheck::new("execution", e.verdict, found));
        }
        if let Some(l) = &self.linearizability {
            let mut found: Vec<String> = l
                .failures
                .iter()
                .map(|f| format!("Linearizability: {}", f.message))
                .collect();
            found.extend(
                l.unknown
                    .iter()
                    .map(|u| format!("linearizability unknown: {u}")),
            );
            out.push(NamedCheck::new("linearizability", l.verdict, found));
        }
        out.extend(self.checks.iter().cloned());
        out
    }

    /// Adds the checks of a harness run; the verdict is theirs too.
    pub fn add_checks(&mut self, checks: Vec<NamedCheck>) {
        for c in &checks {
            self.verdict = self.verdict.and(c.verdict);
        }
        self.checks.extend(checks);
    }
}

/// One check's name, its verdict and what it found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedCheck {
    pub name: String,
    pub verdict: Verdict,
    pub findings: Vec<String>,
}

impl NamedCheck {
    pub fn new(name: &str, verdict: Verdict, findings: Vec<String>) -> Self {
        NamedCheck {
            name: name.to_owned(),
            verdict,
            findings,
        }
    }
}

/// Runs every check that applies to a project history.
pub fn check_history(file: &str, history: &History, options: &CheckOptions) -> FileResult {
    logging::started(file, history.records.len());
    let result = history_result(file, history, options);
    logging::finished(&result);
    result
}

fn history_result(file: &str, history: &History, options: &CheckOptions) -> FileResult {
    let started = Instant::now();
    let consensus = consensus::check(history);
    let execution = execution::check(history);
    let linear =
        (!options.skip_linearizability).then(|| linear::from_history(file, history, options.model));
    let mut result = combine(file, consensus, execution, linear, options);
    if let Some(checks) = &options.run {
        result.add_checks(run::check(history, checks));
    }
    if options.timeline {
        result.timeline = Some(Timeline::of_history(history, &result.focus()));
    }
    result.elapsed_us = started.elapsed().as_micros() as u64;
    result
}

/// One verdict from the checks of a project history.
fn combine(
    file: &str,
    consensus: ConsensusResult,
    execution: ExecutionResult,
    linear: Option<Result<LinearHistory, BuildError>>,
    options: &CheckOptions,
) -> FileResult {
    let (linearizability, error) = match linear {
        None => (None, None),
        Some(Ok(h)) => (Some(linear::check(&h, &options.linear)), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    let mut verdict = consensus.verdict;
    if execution.judged {
        verdict = verdict.and(execution.verdict);
    }
    if let Some(l) = &linearizability {
        verdict = verdict.and(l.verdict);
    }
    if error.is_some() {
        verdict = verdict.and(Verdict::Unknown);
    }
    FileResult {
        file: file.to_owned(),
        format: Format::Jsonl.name().to_owned(),
        verdict,
        error,
        consensus: Some(consensus),
        execution: Some(execution),
        linearizability,
        checks: Vec::new(),
        elapsed_us: 0,
        timeline: None,
    }
}

/// A history as `check_streamed` keeps it.
struct Streamed {
    clients: ClientOps,
    /// Everything but the client events, which the consensus and execution
    /// checks do not read without learner observations.
    rest: History,
}

impl Records for Streamed {
    fn take(&mut self, line: Line<'_>, no: usize) -> ControlFlow<()> {
        match line {
            Line::Event(n, e) => self.clients.scanned(n, &e, no),
            Line::Client(n, e) => self.clients.event(n, &e, no),
            Line::Record(Record::Learned(_)) => return ControlFlow::Break(()),
            Line::Record(r) => {
                self.rest.records.push(r);
                self.rest.lines.push(no);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Checks a JSON Lines file as it is read, keeping only its client
/// operations in compact form and its other records. `None` when the file
/// has learner observations: the consensus and execution checks then need
/// every client event, and the file is read whole instead.
fn check_streamed(
    file: &str,
    path: &Path,
    asked: Format,
    options: &CheckOptions,
    started: Instant,
) -> Option<FileResult> {
    // Optimistic numbering of commands first; exact if it went wrong.
    for numbering in [Numbering::Optimistic, Numbering::Exact] {
        let mut clients = ClientOps::default();
        if let Ok(meta) = std::fs::metadata(path) {
            // About two hundred bytes a command: its invocation and
            // completion.
            clients.reserve(usize::try_from(meta.len() / 200).unwrap_or(0));
        }
        let mut streamed = Streamed {
            clients,
            rest: History::new(),
        };
        let read = stream::read_jsonl(path, numbering, &mut streamed);
        let Streamed { clients, rest } = streamed;
        return match read {
            Err(e) => Some(FileResult::failed(file, asked, e.to_string(), started)),
            Ok(Ended::Stopped) => None,
            Ok(Ended::Unpaired) => continue,
            Ok(Ended::Whole(ids)) => {
                let consensus = consensus::check(&rest);
                let execution = execution::check(&rest);
                let linear = (!options.skip_linearizability).then(|| {
                    let initial = rest.init().map(|i| &i.accounts);
                    clients.build(
                        &ids,
                        file,
                        options.model,
                        initial.unwrap_or(&BTreeMap::new()),
                    )
                });
                Some(combine(file, consensus, execution, linear, options))
            }
        };
    }
    // An exact read is never unpaired.
    None
}

/// Why a Jepsen history could not be checked.
enum Unreadable {
    Read(HistoryError),
    Build(BuildError),
}

impl From<HistoryError> for Unreadable {
    fn from(e: HistoryError) -> Self {
        Unreadable::Read(e)
    }
}

impl From<BuildError> for Unreadable {
    fn from(e: BuildError) -> Self {
        Unreadable::Build(e)
    }
}

/// Checks a Jepsen EDN file as it is read, keeping only its client
/// operations in compact form.
fn check_edn_streamed(
    file: &str,
    path: &Path,
    options: &CheckOptions,
    started: Instant,
) -> FileResult {
    let mut ops = JepsenOps::new(options.jepsen_fail);
    let read = jepsen_file::read_edn(path, |e| -> Result<(), Unreadable> {
        ops.event(file, &e)?;
        Ok(())
    });
    let built = read.and_then(|()| Ok(ops.finish(file, options.model)?));
    match built {
        Ok(h) => jepsen_result(file, Format::Edn, linear::check(&h, &options.linear)),
        Err(Unreadable::Read(e)) => FileResult::failed(file, Format::Edn, e.to_string(), started),
        Err(Unreadable::Build(e)) => FileResult::failed(file, Format::Edn, e.to_string(), started),
    }
}

/// The result of the linearizability check of a Jepsen history.
fn jepsen_result(file: &str, format: Format, l: LinearResult) -> FileResult {
    FileResult {
        file: file.to_owned(),
        format: format.name().to_owned(),
        verdict: l.verdict,
        error: None,
        consensus: None,
        execution: None,
        linearizability: Some(l),
        checks: Vec::new(),
        elapsed_us: 0,
        timeline: None,
    }
}

/// Reads and checks one file. A file that cannot be read or parsed gets the
/// verdict `unknown` and the error.
pub fn check_file(path: &Path, options: &CheckOptions) -> FileResult {
    let result = file_result(path, options);
    logging::finished(&result);
    result
}

fn file_result(path: &Path, options: &CheckOptions) -> FileResult {
    let started = Instant::now();
    let file = path.display().to_string();
    tracing::info!("checking {file}");
    let asked = options.format.unwrap_or(Format::Auto);
    // The report draws from the whole history, and the run checks read
    // every client event, so the history is read whole for them.
    if !options.timeline && options.run.is_none() && format::is_jsonl(path, asked) {
        if let Some(mut result) = check_streamed(&file, path, asked, options, started) {
            result.elapsed_us = started.elapsed().as_micros() as u64;
            return result;
        }
    }
    if !options.timeline && format::is_edn(path, asked) {
        let mut result = check_edn_streamed(&file, path, options, started);
        result.elapsed_us = started.elapsed().as_micros() as u64;
        return result;
    }
    let (format, loaded) = match format::load(path, asked) {
        Ok(x) => x,
        Err(e) => return FileResult::failed(&file, asked, e.to_string(), started),
    };
    let mut result = match loaded {
        Loaded::Jsonl(history) => history_result(&file, &history, options),
        Loaded::Jepsen(events) => {
            match linear::from_jepsen_with(&file, &events, options.model, options.jepsen_fail) {
                Ok(h) => {
                    let l = linear::check(&h, &options.linear);
                    let mut result = FileResult {
                        file: file.clone(),
                        format: format.name().to_owned(),
                        verdict: l.verdict,
                        error: None,
                        consensus: None,
                        execution: None,
                        linearizability: Some(l),
                        checks: Vec::new(),
                        elapsed_us: 0,
                        timeline: None,
                    };
                    if options.timeline {
                        result.timeline = Some(Timeline::of_jepsen(&events, &result.focus()));
                    }
                    result
                }
                Err(e) => FileResult::failed(&file, format, e.to_string(), started),
            }
        }
    };
    result.elapsed_us = started.elapsed().as_micros() as u64;
    result
}
