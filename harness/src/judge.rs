//! One verdict per run: the options a run is checked with, and everything
//! written from the one `FileResult` the checker returns (`results.json`,
//! `report.html`, `results.edn`, `summary.json`, the exit code), with the
//! history exported for Jepsen's tools (`history.edn`). `test` and
//! `analyze` both come through here, so a run analyzed again says what it
//! said the first time.

use crate::workload::WorkloadKind;
use anyhow::{Context, Result};
use gpaxos_checker::check::{CheckOptions, FileResult};
use gpaxos_checker::history::{jepsen_write, EventKind, History, Record};
use gpaxos_checker::report::timeline::Timeline;
use gpaxos_checker::run::{RunChecks, CRASH, SELF_REPORT};
use gpaxos_checker::{report, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a run of `workload` is checked with, by the run and by `analyze`.
pub fn check_options(workload: WorkloadKind) -> CheckOptions {
    let mut options = CheckOptions {
        timeline: true,
        ..Default::default()
    };
    options.linear.time_limit = Some(Duration::from_secs(120));
    options.linear.memory_limit = Some(2 << 30);
    // An append-only set on one key makes the linearizability search
    // explode; Jepsen checks sets by their final read instead, and the
    // execution replay holds every read to the learned history.
    options.skip_linearizability = workload == WorkloadKind::Set;
    options.run = Some(RunChecks {
        set_key: (workload == WorkloadKind::Set).then(|| "set".to_owned()),
    });
    options
}

/// The check options of the run in `dir`, rebuilt from its `test.json`;
/// `None` for a directory without one (a history from elsewhere).
pub fn recorded_options(dir: &Path) -> Result<Option<CheckOptions>> {
    // Only what the options depend on; the rest of test.json is for
    // rerunning the test.
    #[derive(Deserialize)]
    struct Recorded {
        workload: WorkloadKind,
    }
    let path = dir.join("test.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let recorded: Recorded =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(check_options(recorded.workload)))
}

/// What a run did and what the checker said; `summary.json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub seconds: f64,
    pub throughput: f64,
    pub latency_ms: [f64; 4],
    pub faults: Vec<String>,
    pub findings: Vec<String>,
    pub checks: Vec<(String, String)>,
}

/// Writes every file of the verdict into the run directory `dir` and
/// returns the summary, whose verdict is `result`'s.
pub fn write_verdict(dir: &Path, result: &FileResult, history: &History) -> Result<Summary> {
    let one = std::slice::from_ref(result);
    report::write_results(dir, one).context("writing results.json")?;
    report::write_html(dir, one).context("writing report.html")?;
    report::edn::write_results(dir, result).context("writing results.edn")?;
    let mut edn = std::io::BufWriter::new(std::fs::File::create(dir.join("history.edn"))?);
    jepsen_write::write_edn(history, &mut edn).context("writing history.edn")?;
    std::io::Write::flush(&mut edn)?;
    let summary = Summary::of(dir, result, history);
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    Ok(summary)
}

impl Summary {
    /// The summary of `history` as judged in `result`: everything in it is
    /// read from the history, so `analyze` gets the run's own summary.
    pub fn of(dir: &Path, result: &FileResult, history: &History) -> Summary {
        let count = |k: EventKind| history.client_events().filter(|e| e.kind == k).count() as u64;
        let ok = count(EventKind::Ok);
        let seconds = history.records.iter().map(Record::time).max().unwrap_or(0) as f64 / 1e9;
        Summary {
            dir: dir.to_owned(),
            verdict: result.verdict,
            ok,
            fail: count(EventKind::Fail),
            info: count(EventKind::Info),
            seconds,
            throughput: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
            latency_ms: latencies(result, history),
            faults: faults(history),
            findings: result.findings(),
            checks: result
                .by_check()
                .into_iter()
                .map(|c| (c.name, c.verdict.to_string()))
                .collect(),
        }
    }
}

/// p50, p95, p99 and max of the time from an invocation to its `ok` or
/// `fail`, in milliseconds: the report's own figures (`Timeline::of_history`
/// gathers the same latencies into the same `gpaxos_checker::latency`).
fn latencies(result: &FileResult, history: &History) -> [f64; 4] {
    let percentiles = match &result.timeline {
        Some(t) => t.percentiles,
        None => Timeline::of_history(history, &Default::default()).percentiles,
    };
    percentiles.values().map(|ns| ns as f64 / 1e6)
}

/// One line per fault: when, what, and the note its heal left; nodes that
/// crashed on their own are marked UNEXPECTED.
fn faults(history: &History) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut open: HashMap<&str, usize> = HashMap::new();
    for e in history.nemesis_events() {
        let at = e.time as f64 / 1e9;
        let value = match &e.value {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        match e.phase.as_deref() {
            _ if e.f == CRASH => lines.push(format!("{at:>6.1}s UNEXPECTED {value}")),
            _ if e.f == SELF_REPORT => {}
            Some("start") => {
                open.insert(&e.f, lines.len());
                lines.push(format!("{at:>6.1}s {}: {value}", e.f));
            }
            Some("failed") => lines.push(format!("{at:>6.1}s {value}")),
            Some("stop") if !value.is_empty() => {
                if let Some(line) = open.remove(e.f.as_str()).and_then(|i| lines.get_mut(i)) {
                    line.push_str(&format!(" ({value})"));
                }
            }
            _ => {}
        }
    }
    lines
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "operations   {} ok, {} fail, {} info in {:.1} s ({:.0} ok/s)",
            self.ok, self.fail, self.info, self.seconds, self.throughput
        )?;
        let [p50, p95, p99, max] = self.latency_ms;
        writeln!(
            f,
            "latency      p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        )?;
        writeln!(f, "faults       {}", self.faults.len())?;
        for x in &self.faults {
            writeln!(f, "  {x}")?;
        }
        for (name, v) in &self.checks {
            writeln!(f, "check        {name:<24} {v}")?;
        }
        for x in self.findings.iter().take(10) {
            writeln!(f, "  {x}")?;
        }
        writeln!(f, "verdict      {}", self.verdict)?;
        write!(f, "report       {}", self.dir.join("report.html").display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpaxos_checker::check::check_history;

    /// 400 puts on their own keys, latencies from 0.2 ms to seconds.
    fn history() -> History {
        let mut lines = Vec::new();
        let mut t = 1_000u64;
        for i in 0..400u64 {
            let latency = 200_000 + (i * 7919 % 400) * (i * 7919 % 400) * 9_000;
            let (p, id) = (i % 8, format!("{}.{i}", i % 8));
            for (kind, at) in [("invoke", t), ("ok", t + latency)] {
                lines.push(format!(
                    r#"{{"type":"{kind}","process":{p},"time":{at},"id":"{id}","f":"put","key":"k{i}","value":"{i}"}}"#
                ));
            }
            t += 1_000_000;
        }
        History::from_jsonl_str(&lines.join("\n")).unwrap()
    }

    /// The report's cell for `quantile`: its value in ns and its text.
    fn report_cell(html: &str, quantile: &str) -> (u64, String) {
        let at = html
            .find(&format!("data-quantile=\"{quantile}\" data-value=\""))
            .expect("the report shows the quantile");
        let rest = &html[at..];
        let value = rest.split('"').nth(3).unwrap().parse().unwrap();
        let text = &rest[rest.find('>').unwrap() + 1..rest.find("</td>").unwrap()];
        (value, text.to_owned())
    }

    #[test]
    fn summary_and_report_show_the_same_p99() {
        let history = history();
        let result = check_history("h", &history, &check_options(WorkloadKind::Kv));
        let summary = Summary::of(Path::new("."), &result, &history);
        let html = report::html::render(std::slice::from_ref(&result));
        for (i, quantile) in ["p50", "p95", "p99", "max"].iter().enumerate() {
            let (ns, text) = report_cell(&html, quantile);
            assert_eq!(summary.latency_ms[i], ns as f64 / 1e6, "{quantile}");
            let line = summary.to_string();
            assert!(
                line.contains(&format!("{quantile} {text}")),
                "summary says {line:?}, report says {text}"
            );
        }
        // Without the report's timeline the summary finds the same figures.
        let mut bare = result.clone();
        bare.timeline = None;
        assert_eq!(
            Summary::of(Path::new("."), &bare, &history).latency_ms,
            summary.latency_ms
        );
        assert!(summary.latency_ms[2] > 100.0, "{:?}", summary.latency_ms);
    }
}
