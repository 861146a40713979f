//! Reading a JSON Lines file a block at a time, handing each record to the
//! caller as it is read, so that a history of millions of lines is never
//! held whole: not its text, and not its records.
//!
//! It reads exactly what `jsonl::parse_str` reads from the file's text:
//! the same lines (`str::lines`), the same records, the same first error.
//! A file that is not UTF-8 is refused as a whole, as `read_to_string`
//! refuses it, even when a line before the bad bytes fails to parse.

use super::jsonl::parse_line;
use super::scan::{scan, ScannedEvent};
use super::{HistoryError, Record};
use std::io::{ErrorKind, Read};
use std::ops::ControlFlow;
use std::path::Path;

/// Bytes read at a time.
const BLOCK: usize = 1 << 20;

/// One record of the file.
pub enum Line<'a> {
    /// A client event in the common shape, borrowed from the line.
    Event(ScannedEvent<'a>),
    /// Any other record.
    Record(Record),
}

/// How a read ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every line was read.
    Whole,
    /// The caller broke off.
    Stopped,
}

/// Reads the JSON Lines history at `path`, calling `each` with every
/// record and its 1-based line, until it breaks.
pub fn read_jsonl(
    path: &Path,
    mut each: impl FnMut(Line<'_>, usize) -> ControlFlow<()>,
) -> Result<Ended, HistoryError> {
    let name = path.display().to_string();
    let io = |source| HistoryError::Io {
        file: name.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * BLOCK);
    let mut line_no = 0usize;
    let mut failed: Option<HistoryError> = None;
    loop {
        let filled = buf.len();
        buf.resize(filled + BLOCK, 0);
        let n = loop {
            match file.read(&mut buf[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            }
        };
        buf.truncate(filled + n);
        let eof = n == 0;
        // Whole lines only; a newline is never inside a UTF-8 sequence.
        let end = if eof {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => continue,
            }
        };
        let text = std::str::from_utf8(&buf[..end]).map_err(|_| {
            io(std::io::Error::new(
                ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        if failed.is_none() {
            for line in text.lines() {
                line_no += 1;
                let trimmed = line.trim();
                if trimmed.is_empty() {
                    continue;
                }
                let flow = match scan(trimmed) {
                    Some(event) => each(Line::Event(event), line_no),
                    None => match parse_line(&name, line, line_no) {
                        Ok(Some(record)) => each(Line::Record(record), line_no),
                        Ok(None) => ControlFlow::Continue(()),
                        Err(e) => {
                            // The rest is read only to refuse it if it is not
                            // UTF-8.
                            failed = Some(e);
                            break;
                        }
                    },
                };
                if flow.is_break() {
                    return Ok(Ended::Stopped);
                }
            }
        }
        if eof {
            return match failed {
                Some(e) => Err(e),
                None => Ok(Ended::Whole),
            };
        }
        buf.drain(..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::jsonl::parse_str;
    use crate::history::{ClientEvent, CmdId, Command, Op, OpResult};

    /// The records `read_jsonl` gives, as owned records.
    fn read_all(path: &Path) -> Result<(Vec<Record>, Vec<usize>), HistoryError> {
        let mut records = Vec::new();
        let mut lines = Vec::new();
        read_jsonl(path, |line, no| {
            records.push(match line {
                Line::Record(r) => r,
                Line::Event(e) => {
                    let op = match e.op {
                        crate::history::scan::ScannedOp::Get { key } => Op::Get { key: key.into() },
                        crate::history::scan::ScannedOp::Put { key, value } => Op::Put {
                            key: key.into(),
                            value: value.into(),
                        },
                        crate::history::scan::ScannedOp::Append { key, value } => Op::Append {
                            key: key.into(),
                            value: value.into(),
                        },
                        crate::history::scan::ScannedOp::Cas { key, from, to } => Op::Cas {
                            key: key.into(),
                            from: from.map(Into::into),
                            to: to.into(),
                        },
                    };
                    Record::Client(ClientEvent {
                        kind: e.kind,
                        process: e.process,
                        time: e.time,
                        command: Command {
                            id: CmdId(e.id.into()),
                            op,
                        },
                        result: e.read.map(|r| OpResult::Value(r.map(Into::into))),
                    })
                }
            });
            lines.push(no);
            ControlFlow::Continue(())
        })?;
        Ok((records, lines))
    }

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gpaxos-checker-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_what_the_whole_text_reader_reads() {
        let mut text = String::new();
        for i in 0..30_000 {
            text.push_str(&format!(
                "{{\"type\":\"invoke\",\"process\":{i},\"time\":{i},\"id\":\"{i}.1\",\"f\":\"put\",\"key\":\"k\",\"value\":\"é{i}\"}}\r\n"
            ));
            if i % 1000 == 0 {
                text.push_str("  \n{\"type\":\"nemesis\",\"time\":5,\"f\":\"heal\"}\n");
                text.push_str("{\"type\":\"ok\",\"process\":1,\"time\":1,\"id\":\"a\\\"\",\"f\":\"get\",\"key\":\"k\",\"result\":null}\n");
            }
        }
        text.push_str("{\"type\":\"ok\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"get\",\"key\":\"k\",\"result\":\"x\"}");
        let path = temp("same.jsonl", text.as_bytes());
        let (records, lines) = read_all(&path).unwrap();
        let whole = parse_str("w", &text).unwrap();
        assert_eq!(records, whole.records);
        assert_eq!(lines, whole.lines);
    }

    #[test]
    fn errors_are_those_of_the_whole_text_reader() {
        let good = "{\"type\":\"invoke\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"get\",\"key\":\"k\"}\n";
        let bad = "  {\"type\":\"invoke\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"get\"}\n";
        let text = format!("{}{bad}{}", good.repeat(20_000), good.repeat(20_000));
        let path = temp("bad.jsonl", text.as_bytes());
        let e = read_all(&path).unwrap_err().to_string();
        let path_name = path.display().to_string();
        assert_eq!(e, parse_str(&path_name, &text).unwrap_err().to_string());
        assert!(e.starts_with(&format!("{path_name}:20001:")), "{e}");

        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xff\n");
        let path = temp("utf8.jsonl", &bytes);
        let e = read_all(&path).unwrap_err().to_string();
        let whole = crate::history::History::from_jsonl_path(&path)
            .unwrap_err()
            .to_string();
        assert_eq!(e, whole);
    }
}
