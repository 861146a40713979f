//! A suite: a list of test runs made one after another. A run that fails to
//! run (the cluster would not start, the harness errored or panicked) is
//! recorded as such and the suite goes on, so one broken run does not hide
//! what the others would have found; the suite's exit code is then 255.

use crate::exit;
use anyhow::Result;
use gpaxos_checker::Verdict;
use serde::Serialize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

/// How one run of a suite ended.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub run: String,
    /// The checker's verdict; `None` when the run failed to run.
    pub verdict: Option<Verdict>,
    /// Why the run failed to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
}

/// Every run of a suite, in order.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub suite: String,
    pub seconds: f64,
    pub runs: Vec<Entry>,
}

impl Outcome {
    /// The worst verdict, or `None` if any run failed to run: nothing can
    /// be said of the suite then.
    pub fn worst(&self) -> Option<Verdict> {
        self.runs
            .iter()
            .try_fold(Verdict::Valid, |worst, e| Some(worst.and(e.verdict?)))
    }

    /// The worst verdict's code, or 255 if any run failed to run.
    pub fn exit_code(&self) -> i32 {
        self.worst().map_or(exit::FAILED, Verdict::exit_code)
    }
}

/// Makes every run with `one`, prints the summary and writes it to
/// `dir/suite.json`.
pub fn run<A>(
    suite: &str,
    runs: Vec<(String, A)>,
    dir: &Path,
    mut one: impl FnMut(A) -> Result<Verdict>,
) -> Result<Outcome> {
    let started = Instant::now();
    let mut entries = Vec::new();
    let total = runs.len();
    for (k, (run, args)) in runs.into_iter().enumerate() {
        let run_started = Instant::now();
        eprintln!(
            "suite {suite}: run {} of {total}: {run} ({:.0} s so far)",
            k + 1,
            started.elapsed().as_secs_f64()
        );
        // A panic is one run failing (the hook has printed it), not the
        // end of the suite.
        let (verdict, error) = match catch_unwind(AssertUnwindSafe(|| one(args))) {
            Ok(Ok(v)) => (Some(v), None),
            Ok(Err(e)) => (None, Some(format!("{e:#}"))),
            Err(_) => (None, Some("the harness panicked".to_owned())),
        };
        if let Some(e) = &error {
            eprintln!("suite {suite}: {run} failed to run: {e}");
        }
        entries.push(Entry {
            run,
            verdict,
            error,
            seconds: run_started.elapsed().as_secs_f64(),
        });
    }
    let outcome = Outcome {
        suite: suite.to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        runs: entries,
    };
    print!("{outcome}");
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("suite.json"),
        serde_json::to_string_pretty(&outcome)?,
    )?;
    Ok(outcome)
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (suite, runs) = (&self.suite, &self.runs);
        writeln!(
            f,
            "\nsuite {suite}: {} runs in {:.0} s",
            runs.len(),
            self.seconds
        )?;
        for e in runs {
            match (&e.verdict, &e.error) {
                (Some(v), _) => writeln!(f, "  {}: {v} ({:.0} s)", e.run, e.seconds)?,
                (None, why) => writeln!(
                    f,
                    "  {}: FAILED TO RUN ({:.0} s): {}",
                    e.run,
                    e.seconds,
                    why.as_deref().unwrap_or("")
                )?,
            }
        }
        match self.worst() {
            Some(v) => writeln!(f, "suite {suite}: {v}"),
            None => writeln!(f, "suite {suite}: a run failed to run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("gpaxos-suite-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_run_that_fails_to_run_is_recorded_and_the_suite_goes_on() {
        let dir = scratch("failed");
        let runs = vec![
            ("first".to_owned(), Ok(Verdict::Valid)),
            ("broken".to_owned(), Err("cluster would not start")),
            ("third".to_owned(), Ok(Verdict::Invalid)),
        ];
        let mut made = Vec::new();
        let outcome = run("t", runs, &dir, |r| {
            made.push(r);
            r.map_err(anyhow::Error::msg)
        })
        .unwrap();
        assert_eq!(made.len(), 3, "every run was made");
        assert_eq!(outcome.runs[1].verdict, None);
        assert_eq!(outcome.runs[2].verdict, Some(Verdict::Invalid));
        assert_eq!(outcome.exit_code(), 255);
        let json = std::fs::read_to_string(dir.join("suite.json")).unwrap();
        assert!(json.contains("cluster would not start"), "{json}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_panicking_run_is_one_failed_run() {
        let dir = scratch("panic");
        let runs = vec![("boom".to_owned(), true), ("fine".to_owned(), false)];
        let outcome = run("t", runs, &dir, |panics| {
            assert!(!panics, "planted panic");
            Ok(Verdict::Unknown)
        })
        .unwrap();
        assert_eq!(outcome.runs[0].verdict, None);
        assert_eq!(outcome.runs[1].verdict, Some(Verdict::Unknown));
        assert_eq!(outcome.exit_code(), 255);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn without_failures_the_worst_verdict_decides() {
        let dir = scratch("verdicts");
        let runs = vec![
            ("a".to_owned(), Verdict::Valid),
            ("b".to_owned(), Verdict::Unknown),
            ("c".to_owned(), Verdict::Invalid),
        ];
        let outcome = run("t", runs, &dir, Ok).unwrap();
        assert_eq!(outcome.exit_code(), 1);
        std::fs::remove_dir_all(dir).ok();
    }
}
