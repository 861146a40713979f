//! `results.edn`: a run's verdict as Jepsen writes its results, an EDN map
//! with `:valid?` (`true`, `false` or `:unknown`) and one entry per check,
//! each with its own `:valid?` and findings, so Jepsen's tools can read it.

use crate::check::FileResult;
use crate::history::edn::Edn;
use crate::history::jepsen_write::{keyword_or_string, print};
use crate::verdict::Verdict;
use std::path::Path;

/// Jepsen's `:valid?` for a verdict.
pub fn valid(v: Verdict) -> Edn {
    match v {
        Verdict::Valid => Edn::Bool(true),
        Verdict::Invalid => Edn::Bool(false),
        Verdict::Unknown => Edn::Keyword("unknown".into()),
    }
}

fn kw(name: &str) -> Edn {
    Edn::Keyword(name.to_owned())
}

/// The results of one history as an EDN map.
pub fn results(result: &FileResult) -> Edn {
    let mut map = vec![
        (kw("valid?"), valid(result.verdict)),
        (kw("file"), Edn::Str(result.file.clone())),
    ];
    if let Some(e) = &result.error {
        map.push((kw("error"), Edn::Str(e.clone())));
    }
    for c in result.by_check() {
        let findings = c.findings.into_iter().map(Edn::Str).collect();
        let entry = Edn::Map(vec![
            (kw("valid?"), valid(c.verdict)),
            (kw("findings"), Edn::Vector(findings)),
        ]);
        map.push((keyword_or_string(&c.name), entry));
    }
    Edn::Map(map)
}

/// Writes `results.edn` into `dir`, creating it.
pub fn write_results(dir: &Path, result: &FileResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut text = String::new();
    print(&mut text, &results(result));
    text.push('\n');
    std::fs::write(dir.join("results.edn"), text)
}
