//! The runs in a store, for the table: every directory that holds a
//! `test.json` or a `summary.json` (`store/<test>/<time>/`, and a level or
//! two deeper for suites: `store/suite-ci/<test>/<time>/`), with what its
//! `summary.json` says when the run has been judged.

use serde::Deserialize;
use std::path::Path;

/// How deep under the store runs are looked for.
const DEPTH: usize = 4;

/// One run directory, as the table shows it.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// The directory, relative to the store, `/`-separated.
    pub path: String,
    /// The test's name: the directory the run is in, relative to the store.
    pub test: String,
    /// The run directory's own name, `YYYYMMDDTHHMMSS` for the harness's.
    pub stamp: String,
    /// `None` for a run not (yet) judged.
    pub summary: Option<Judged>,
    /// The files of the run a person reads, those present, relative to it.
    pub report: bool,
    pub history: bool,
    /// harness.log, checker.log, then the nodes' logs.
    pub logs: Vec<String>,
}

/// What the table shows of `summary.json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Judged {
    pub verdict: String,
    #[serde(default)]
    pub ok: u64,
    #[serde(default)]
    pub fail: u64,
    #[serde(default)]
    pub info: u64,
    /// One line per fault, as `judge` writes them.
    #[serde(default)]
    pub faults: Vec<String>,
}

/// Every run under `store`, newest first.
pub fn scan(store: &Path) -> Vec<Run> {
    let mut runs = Vec::new();
    walk(store, "", DEPTH, &mut runs);
    runs.sort_by(|a, b| (&b.stamp, &b.path).cmp(&(&a.stamp, &a.path)));
    runs
}

fn walk(dir: &Path, rel: &str, depth: usize, runs: &mut Vec<Run>) {
    if !rel.is_empty() && (dir.join("test.json").is_file() || dir.join("summary.json").is_file()) {
        runs.push(read_run(dir, rel));
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // Symlinks (store/latest) name runs listed under their own path.
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        walk(&e.path(), &rel, depth - 1, runs);
    }
}

fn read_run(dir: &Path, rel: &str) -> Run {
    let (test, stamp) = match rel.rsplit_once('/') {
        Some((test, stamp)) => (test.to_owned(), stamp.to_owned()),
        None => (String::new(), rel.to_owned()),
    };
    let summary = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Judged>(&b).ok());
    let mut logs: Vec<String> = ["harness.log", "checker.log"]
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .map(str::to_owned)
        .collect();
    logs.extend(node_logs(dir));
    Run {
        path: rel.to_owned(),
        test,
        stamp,
        summary,
        report: dir.join("report.html").is_file(),
        history: dir.join("history.jsonl").is_file(),
        logs,
    }
}

/// `nodes/<n>.log`, in node order.
fn node_logs(dir: &Path) -> Vec<String> {
    let mut logs: Vec<String> = std::fs::read_dir(dir.join("nodes"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    // n2 before n10.
    logs.sort_by_key(|n| (n.len(), n.clone()));
    logs.into_iter().map(|n| format!("nodes/{n}")).collect()
}

/// The kinds of the faults `judge` listed (`  3.0s partition: ...`), in
/// order of first appearance.
pub fn fault_kinds(faults: &[String]) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for line in faults {
        let rest = line.trim_start();
        let rest = rest.split_once("s ").map_or(rest, |(_, r)| r);
        let kind = rest.split([':', ' ']).next().unwrap_or("").to_owned();
        if !kind.is_empty() && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}
