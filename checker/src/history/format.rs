//! Which of the three history formats a file is in, and loading it.

use super::jepsen::{self, JepsenEvent};
use super::{History, HistoryError};
use std::path::Path;

/// A history format, as `--format` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decide from the file's name and first line.
    Auto,
    /// The project's JSON Lines format (`docs/history-format.md`).
    Jsonl,
    /// A Jepsen EDN history.
    Edn,
    /// Jepsen's old text log.
    JepsenLog,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        }
    }
}

/// A loaded history, in the shape its format gives.
#[derive(Clone, Debug)]
pub enum Loaded {
    Jsonl(History),
    Jepsen(Vec<JepsenEvent>),
}

/// The format of `text` read from `name`: the first meaningful line
/// decides, the extension breaks ties.
pub fn detect(name: &str, text: &str) -> Format {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(';'))
        .unwrap_or("");
    if first.starts_with("{\"") || first.starts_with("{ \"") {
        Format::Jsonl
    } else if first.starts_with("{:")
        || first.starts_with("{ :")
        || first.starts_with(['[', '(', '#'])
    {
        Format::Edn
    } else if text.contains("jepsen.util - ") {
        Format::JepsenLog
    } else if name.ends_with(".edn") {
        Format::Edn
    } else if name.ends_with(".log") || name.ends_with(".txt") {
        Format::JepsenLog
    } else {
        Format::Jsonl
    }
}

/// Whether the file at `path` is to be read as JSON Lines, judged for
/// `Auto` from the file's start as `detect` judges the whole text; `false`
/// when the start does not settle it.
pub fn is_jsonl(path: &Path, format: Format) -> bool {
    match format {
        Format::Jsonl => true,
        Format::Auto => {
            first_line(path).is_some_and(|l| l.starts_with("{\"") || l.starts_with("{ \""))
        }
        _ => false,
    }
}

/// Whether the file at `path` is to be read as Jepsen EDN, judged for
/// `Auto` from its first meaningful line as `detect` judges it; `false`
/// when the start does not settle it.
pub fn is_edn(path: &Path, format: Format) -> bool {
    match format {
        Format::Edn => true,
        Format::Auto => first_line(path).is_some_and(|l| detect("", &l) == Format::Edn),
        _ => false,
    }
}

/// The first line of the file that is neither blank nor a comment, if its
/// start holds one.
fn first_line(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut start = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    file.take(PEEK as u64).read_to_end(&mut start).ok()?;
    // Only whole lines, unless the file ended within the peek.
    if start.len() == PEEK {
        let end = start.iter().rposition(|&b| b == b'\n')?;
        start.truncate(end + 1);
    }
    let text = std::str::from_utf8(&start).ok()?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(';'))?;
    Some(first.to_owned())
}

/// Bytes of a file's start `is_jsonl` looks at.
const PEEK: usize = 64 << 10;

/// Parses `text` (read from `name`) in `format`, detecting it for `Auto`.
/// Returns the format used too.
pub fn parse(name: &str, text: &str, format: Format) -> Result<(Format, Loaded), HistoryError> {
    let format = match format {
        Format::Auto => detect(name, text),
        f => f,
    };
    let loaded = match format {
        Format::Jsonl => Loaded::Jsonl(super::stream::read_history(
            name,
            text.as_bytes(),
            text.len() as u64,
        )?),
        Format::Edn => Loaded::Jepsen(jepsen::parse_edn(name, text)?),
        Format::JepsenLog => Loaded::Jepsen(jepsen::parse_log(name, text)?),
        Format::Auto => unreachable!("resolved above"),
    };
    Ok((format, loaded))
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path, format: Format) -> Result<(Format, Loaded), HistoryError> {
    if is_jsonl(path, format) {
        // Read as it streams in, never held whole as text.
        return Ok((
            Format::Jsonl,
            Loaded::Jsonl(History::from_jsonl_path(path)?),
        ));
    }
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
        file: name.clone(),
        source,
    })?;
    parse(&name, &text, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(detect("x", "{\"type\":\"init\"}\n"), Format::Jsonl);
        assert_eq!(detect("x", "\n{:process 0, :type :invoke}"), Format::Edn);
        assert_eq!(detect("x", "[{:process 0}]"), Format::Edn);
        assert_eq!(detect("x", "; a history\n({:process 0})"), Format::Edn);
        assert_eq!(detect("x", "#_ {:a 1}\n{:process 0}"), Format::Edn);
        assert_eq!(
            detect("x", "INFO  jepsen.util - 3\t:invoke\t:read\tnil"),
            Format::JepsenLog
        );
        assert_eq!(detect("a.edn", ""), Format::Edn);
    }
}
