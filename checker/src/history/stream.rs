//! Reading a JSON Lines file a block at a time, handing each record to the
//! caller as it is read, so that a history of millions of lines is never
//! held whole: not its text, and not its records.
//!
//! It is the one reader of the format: `check` on a client-only file,
//! harness runs and `analyze` (learner observations and all), and
//! `History::from_jsonl_*`. Each line goes to the in-place scanner
//! (`scan`) and, if declined there, to the full serde reader
//! (`jsonl::parse_line`); lines are `str::lines`, and the first error is
//! reported. A file that is not UTF-8 is refused as a whole, as
//! `read_to_string` refuses it, even when a line before the bad bytes fails
//! to parse.
//!
//! A thread of its own reads and scans the blocks, and numbers the
//! commands of client events (`pairing`), while the caller takes in the
//! records of the previous blocks: the two halves cost about the same, and
//! a long history is read on two cores.

use super::jsonl::parse_line;
pub use super::pairing::Numbering;
use super::pairing::Pairing;
use super::scan::{scan, ScannedEvent};
use super::{ClientEvent, CmdId, Command, History, HistoryError, OpResult, Record};
use crate::intern::Strings;
use std::io::{ErrorKind, Read};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};

/// Bytes read at a time.
const BLOCK: usize = 1 << 20;
/// Blocks read ahead of the caller.
const AHEAD: usize = 4;

/// One record of the file; client events with their command's number.
pub enum Line<'a> {
    /// A client event in the common shape, borrowed from the line.
    Event(u32, ScannedEvent<&'a str>),
    /// A client event in another shape.
    Client(u32, ClientEvent),
    /// Any other record.
    Record(Record),
}

/// How a read ended.
pub enum Ended {
    /// Every line was read; the command ids by number.
    Whole(Strings),
    /// The caller broke off.
    Stopped,
    /// The optimistic numbering of commands went wrong (`pairing`): the
    /// history must be read again, exactly.
    Unpaired,
}

enum Item {
    /// Its strings as where they start and end in the block's text.
    Event(u32, ScannedEvent<(u32, u32)>),
    /// Boxed, so that the many events above stay small.
    Client(u32, Box<ClientEvent>),
    Record(Box<Record>),
}

/// Whole lines of the file, and their records with their lines.
struct Block {
    text: String,
    items: Vec<(usize, Item)>,
}

enum Message {
    Block(Block),
    /// The ids, `None` if the numbering went wrong; or the first error.
    End(Result<Option<Strings>, HistoryError>),
}

/// What takes in the records of a history as it is read.
pub trait Records {
    /// Takes a record and its 1-based line; breaks to stop reading.
    fn take(&mut self, line: Line<'_>, no: usize) -> ControlFlow<()>;
}

/// Reads the JSON Lines history at `path` into `records`, until it breaks.
pub fn read_jsonl(
    path: &Path,
    numbering: Numbering,
    records: &mut impl Records,
) -> Result<Ended, HistoryError> {
    let name = path.display().to_string();
    let io = |source| HistoryError::Io {
        file: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    read_jsonl_from(&name, file, size, numbering, records)
}

/// Reads a JSON Lines history of about `size` bytes from `source` (named
/// `name` in errors) into `records`, until it breaks.
pub fn read_jsonl_from(
    name: &str,
    source: impl Read + Send,
    size: u64,
    numbering: Numbering,
    records: &mut impl Records,
) -> Result<Ended, HistoryError> {
    let mut pairing = Pairing::new(numbering);
    // About two hundred bytes a command (its invocation and its
    // completion), eight of them its id.
    let commands = usize::try_from(size / 200).unwrap_or(0);
    pairing.reserve(commands, commands * 8);
    let (tx, rx) = sync_channel(AHEAD);
    std::thread::scope(|s| {
        let reader = s.spawn(|| produce(source, name, pairing, tx));
        // Returning drops `rx`, which stops the reader at its next block.
        for message in rx.iter() {
            let block = match message {
                Message::Block(block) => block,
                Message::End(end) => {
                    return end.map(|ids| ids.map_or(Ended::Unpaired, Ended::Whole))
                }
            };
            let Block { text, items } = block;
            for (no, item) in items {
                let line = match item {
                    Item::Event(n, e) => {
                        Line::Event(n, e.map(|(at, end)| &text[at as usize..end as usize]))
                    }
                    Item::Client(n, e) => Line::Client(n, *e),
                    Item::Record(r) => Line::Record(*r),
                };
                if records.take(line, no).is_break() {
                    return Ok(Ended::Stopped);
                }
            }
        }
        // The reader ended without a word: it panicked.
        let _ = reader.join();
        Err(HistoryError::parse(name, 0, None, "reader thread panicked"))
    })
}

/// A whole history, every record owned.
struct Whole(History);

impl Records for Whole {
    fn take(&mut self, line: Line<'_>, no: usize) -> ControlFlow<()> {
        let record = match line {
            Line::Record(r) => r,
            Line::Client(_, e) => Record::Client(e),
            Line::Event(_, e) => Record::Client(ClientEvent {
                kind: e.kind,
                process: e.process,
                time: e.time,
                command: Command {
                    id: CmdId(e.id.into()),
                    op: e.op.to_op(),
                },
                result: e.read.map(|r| OpResult::Value(r.map(Into::into))),
            }),
        };
        self.0.records.push(record);
        self.0.lines.push(no);
        ControlFlow::Continue(())
    }
}

/// Reads a whole JSON Lines history of about `size` bytes from `source`.
pub fn read_history(
    name: &str,
    source: impl Read + Send,
    size: u64,
) -> Result<History, HistoryError> {
    let mut whole = Whole(History::new());
    // Records are about a hundred bytes.
    let records = usize::try_from(size / 100).unwrap_or(0);
    whole.0.records.reserve(records);
    whole.0.lines.reserve(records);
    read_jsonl_from(name, source, size, Numbering::Off, &mut whole)?;
    Ok(whole.0)
}

/// The reader's half: reads blocks of whole lines, scans or parses each
/// line, numbers commands, and sends them on; then the end, or the first
/// error.
fn produce(mut file: impl Read, name: &str, mut pairing: Pairing, tx: SyncSender<Message>) {
    let io = |source| HistoryError::Io {
        file: name.to_owned(),
        source,
    };
    let end = |result| {
        let _ = tx.send(Message::End(result));
    };
    let mut carry: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    let mut failed: Option<HistoryError> = None;
    loop {
        let mut buf = std::mem::take(&mut carry);
        let n = match (&mut file).take(BLOCK as u64).read_to_end(&mut buf) {
            Ok(n) => n,
            Err(e) => return end(Err(io(e))),
        };
        let eof = n == 0;
        // Whole lines only; a newline is never inside a UTF-8 sequence.
        let cut = if eof {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => {
                    carry = buf;
                    continue;
                }
            }
        };
        carry.extend_from_slice(&buf[cut..]);
        carry.reserve(BLOCK);
        buf.truncate(cut);
        let Ok(text) = String::from_utf8(buf) else {
            return end(Err(io(std::io::Error::new(
                ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))));
        };
        if failed.is_none() {
            let mut items = Vec::with_capacity(text.len() / 64);
            for line in text.lines() {
                line_no += 1;
                let trimmed = line.trim();
                if trimmed.is_empty() {
                    continue;
                }
                // Places in the block are kept in 32 bits.
                let small = text.len() <= u32::MAX as usize;
                let item = match scan(trimmed).filter(|_| small) {
                    Some(e) => Item::Event(
                        pairing.command(e.kind, e.id, e.process),
                        e.map(|s| {
                            let at = s.as_ptr() as usize - text.as_ptr() as usize;
                            (at as u32, (at + s.len()) as u32)
                        }),
                    ),
                    None => match parse_line(name, line, line_no) {
                        Ok(Some(Record::Client(e))) => {
                            let n = pairing.command(e.kind, &e.command.id.0, e.process);
                            Item::Client(n, Box::new(e))
                        }
                        Ok(Some(record)) => Item::Record(Box::new(record)),
                        Ok(None) => continue,
                        Err(e) => {
                            // The rest is read only to refuse it if it is not
                            // UTF-8.
                            failed = Some(e);
                            break;
                        }
                    },
                };
                items.push((line_no, item));
            }
            if pairing.is_broken() {
                return end(Ok(None));
            }
            if tx.send(Message::Block(Block { text, items })).is_err() {
                return;
            }
        }
        if eof {
            return end(match failed {
                Some(e) => Err(e),
                None => Ok(pairing.into_ids()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the full serde reader alone makes of each line: the oracle the
    /// scanner's fast path must agree with.
    fn line_by_line(name: &str, text: &str) -> Result<History, HistoryError> {
        let mut h = History::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(r) = parse_line(name, line, i + 1)? {
                h.records.push(r);
                h.lines.push(i + 1);
            }
        }
        Ok(h)
    }

    /// A file of this test run's own, removed when the guard goes.
    struct Temp(std::path::PathBuf);

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn temp(name: &str, bytes: &[u8]) -> Temp {
        let path = std::env::temp_dir().join(format!(
            "gpaxos-checker-stream-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        Temp(path)
    }

    #[test]
    fn reads_what_the_full_reader_reads_line_by_line() {
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
        let read = History::from_jsonl_path(&path.0).unwrap();
        let oracle = line_by_line("w", &text).unwrap();
        assert_eq!(read.records, oracle.records);
        assert_eq!(read.lines, oracle.lines);
        assert_eq!(History::from_jsonl_str(&text).unwrap(), oracle);
    }

    #[test]
    fn errors_are_those_of_the_full_reader() {
        let good = "{\"type\":\"invoke\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"get\",\"key\":\"k\"}\n";
        let bad = "  {\"type\":\"invoke\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"get\"}\n";
        let text = format!("{}{bad}{}", good.repeat(20_000), good.repeat(20_000));
        let path = temp("bad.jsonl", text.as_bytes());
        let e = History::from_jsonl_path(&path.0).unwrap_err().to_string();
        let path_name = path.0.display().to_string();
        assert_eq!(e, line_by_line(&path_name, &text).unwrap_err().to_string());
        assert!(e.starts_with(&format!("{path_name}:20001:")), "{e}");

        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xff\n");
        let path = temp("utf8.jsonl", &bytes);
        let e = History::from_jsonl_path(&path.0).unwrap_err().to_string();
        assert!(e.contains("valid UTF-8"), "{e}");
    }

    /// Client events numbered as the caller asked, and the numbering the
    /// same however the history was read.
    #[test]
    fn numbers_commands_in_every_mode() {
        #[derive(Default)]
        struct Numbers(Vec<u32>);
        impl Records for Numbers {
            fn take(&mut self, line: Line<'_>, _: usize) -> ControlFlow<()> {
                match line {
                    Line::Event(n, _) | Line::Client(n, _) => self.0.push(n),
                    Line::Record(_) => {}
                }
                ControlFlow::Continue(())
            }
        }
        let text = "{\"type\":\"invoke\",\"process\":1,\"time\":1,\"id\":\"a\",\"f\":\"get\",\"key\":\"k\"}\n\
                    {\"type\":\"invoke\",\"process\":2,\"time\":2,\"id\":\"b\",\"f\":\"get\",\"key\":\"k\"}\n\
                    {\"type\":\"ok\",\"process\":1,\"time\":3,\"id\":\"a\",\"f\":\"get\",\"key\":\"k\",\"result\":null}\n";
        for numbering in [Numbering::Optimistic, Numbering::Exact] {
            let mut numbers = Numbers::default();
            let ended = read_jsonl_from("t", text.as_bytes(), 0, numbering, &mut numbers).unwrap();
            assert!(matches!(ended, Ended::Whole(_)));
            assert_eq!(numbers.0, [0, 1, 0]);
        }
    }
}
