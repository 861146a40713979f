//! What the checker writes for people and programs: `results.json`, and
//! `report.html`.

pub mod bands;
pub mod divergence;
pub mod edn;
pub mod html;
pub mod linearization;
pub mod plots;
pub mod svg;
pub mod timeline;
pub mod zoom;

use crate::check::FileResult;
use crate::verdict::Verdict;
use serde::Serialize;
use std::path::Path;

/// How many files got each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn of(results: &[FileResult]) -> Self {
        let mut s = Summary::default();
        for r in results {
            match r.verdict {
                Verdict::Valid => s.valid += 1,
                Verdict::Invalid => s.invalid += 1,
                Verdict::Unknown => s.unknown += 1,
            }
        }
        s
    }

    /// `invalid` if any file is, else `unknown` if any is, else `valid`.
    pub fn verdict(&self) -> Verdict {
        if self.invalid > 0 {
            Verdict::Invalid
        } else if self.unknown > 0 {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    }
}

#[derive(Serialize)]
struct Results<'a> {
    verdict: Verdict,
    summary: Summary,
    files: &'a [FileResult],
}

/// Writes `results.json` into `dir`, creating it.
pub fn write_results(dir: &Path, results: &[FileResult]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let summary = Summary::of(results);
    let doc = Results {
        verdict: summary.verdict(),
        summary,
        files: results,
    };
    let file = std::fs::File::create(dir.join("results.json"))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, &doc)?;
    std::io::Write::write_all(&mut out, b"\n")?;
    std::io::Write::flush(&mut out)
}

/// Writes `report.html` into `dir`, creating it.
pub fn write_html(dir: &Path, results: &[FileResult]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.html"), html::render(results))
}

#[cfg(test)]
mod tests {
    use crate::check::{check_file, CheckOptions};
    use std::path::PathBuf;

    fn sample(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gpaxos-checker-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_report_explains_violations_without_the_network() {
        let jsonl = [
            r#"{"type":"invoke","process":1,"time":10,"id":"1.1","f":"put","key":"x","value":"1"}"#,
            r#"{"type":"ok","process":1,"time":20,"id":"1.1","f":"put","key":"x","value":"1"}"#,
            r#"{"type":"invoke","process":2,"time":30,"id":"2.1","f":"put","key":"x","value":"2"}"#,
            r#"{"type":"ok","process":2,"time":40,"id":"2.1","f":"put","key":"x","value":"2"}"#,
            r#"{"type":"nemesis","time":35,"f":"partition","phase":"start","value":"n1 | n2"}"#,
            r#"{"type":"invoke","process":3,"time":50,"id":"3.1","f":"get","key":"x"}"#,
            r#"{"type":"ok","process":3,"time":60,"id":"3.1","f":"get","key":"x","result":"1"}"#,
            r#"{"type":"learned","node":"n1","time":70,"from":0,"len":2,"cmds":[{"id":"1.1","f":"put","key":"x","value":"1"},{"id":"2.1","f":"put","key":"x","value":"2"}]}"#,
            r#"{"type":"learned","node":"n2","time":71,"from":0,"len":2,"cmds":[{"id":"2.1","f":"put","key":"x","value":"2"},{"id":"1.1","f":"put","key":"x","value":"1"}]}"#,
        ]
        .join("\n");
        let path = sample("bad.jsonl", &jsonl);
        let options = CheckOptions {
            timeline: true,
            ..CheckOptions::default()
        };
        let r = check_file(&path, &options);
        let html = super::html::render(std::slice::from_ref(&r));
        assert!(html.contains("Consistency"), "consensus violation shown");
        assert!(
            html.contains("class=\"marked\""),
            "the offending pair is marked"
        );
        assert!(
            html.contains("is not linearizable"),
            "the stale read is explained"
        );
        assert!(html.contains("<svg"), "timelines and plots are drawn");
        assert!(html.contains("partition"), "the nemesis band is labelled");
        assert!(!html.contains("src="), "nothing fetched, no script either");
        for (i, _) in html.match_indices("http") {
            assert!(
                html[i..].starts_with("http://www.w3.org/2000/svg"),
                "no network: {}",
                &html[i..i + 40]
            );
        }
        let partial = &html[html
            .find("<table class=\"partial\">")
            .expect("partial linearization")..];
        let partial = &partial[..partial.find("</table>").unwrap()];
        assert_eq!(
            partial.matches("class=\"linearized\"").count(),
            2,
            "{partial}"
        );
        assert!(
            partial.contains("<td>3</td><td class=\"mono\">&quot;2&quot;</td></tr>"),
            "state after the second put: {partial}"
        );
        assert!(
            partial.contains("class=\"marked unplaced\"")
                && partial.contains("could not be placed"),
            "the get that reads 1 is the operation that cannot be placed: {partial}"
        );
        assert_eq!(
            html.matches("class=\"linpoint\"").count(),
            2,
            "one point per linearized operation"
        );
        std::fs::remove_file(path).ok();
    }
}
