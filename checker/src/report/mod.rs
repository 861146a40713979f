//! What the checker writes for people and programs: `results.json`, and
//! `report.html`.

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
