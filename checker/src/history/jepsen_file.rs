//! The one reader of Jepsen EDN histories: a block at a time, handing each
//! event to the caller as it is read, so that a history of millions of
//! events is never held whole: not its text, and not its events. A text
//! already in memory (`jepsen::parse_edn`) is read the same way, as one
//! block.
//!
//! Blocks end at a line's end, so no token is cut; a form that runs past
//! a block (a string with a newline in it, a map written over several
//! lines, a discard) is read again from its start once the next block is
//! in. Events, lines, columns and errors do not depend on where the
//! blocks end.

use super::edn::Reader;
use super::jepsen::{edn_error, EdnEvents, JepsenEvent};
use super::HistoryError;
use std::io::Read;
use std::path::Path;

/// Bytes read at a time.
const BLOCK: usize = 1 << 20;

/// Where the next block starts.
struct Place {
    line: usize,
    column: usize,
    top: EdnEvents,
}

/// Reads the Jepsen EDN history at `path`, handing `take` each event in
/// order; stops at the first error, the reader's or `take`'s.
pub fn read_edn<E: From<HistoryError>>(
    path: &Path,
    take: impl FnMut(JepsenEvent) -> Result<(), E>,
) -> Result<(), E> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Io {
        file: name.clone(),
        source,
    })?;
    read_edn_from(&name, file, BLOCK, take)
}

/// Reads an EDN history from `source` (named `name` in errors) `block`
/// bytes at a time, handing `take` each event in order.
pub fn read_edn_from<E: From<HistoryError>>(
    name: &str,
    mut source: impl Read,
    block: usize,
    mut take: impl FnMut(JepsenEvent) -> Result<(), E>,
) -> Result<(), E> {
    let io = |source| HistoryError::Io {
        file: name.to_owned(),
        source,
    };
    let block = block.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(2 * block);
    let mut place = Place {
        line: 1,
        column: 1,
        top: EdnEvents::Start,
    };
    let mut eof = false;
    loop {
        if !eof {
            let before = buf.len();
            buf.resize(before + block, 0);
            let n = read_full(&mut source, &mut buf[before..]).map_err(io)?;
            buf.truncate(before + n);
            eof = n == 0;
        }
        // Whole lines only, until the end.
        let usable = match buf.iter().rposition(|&b| b == b'\n') {
            _ if eof => buf.len(),
            Some(end) => end + 1,
            None => continue,
        };
        let consumed = read_block(name, &buf[..usable], eof, &mut place, &mut take)?;
        if eof && consumed == usable {
            return Ok(());
        }
        buf.drain(..consumed);
    }
}

/// Reads the events of one block; returns the bytes it used up, which
/// stop short of a form the block cuts (unless it is the last).
fn read_block<E: From<HistoryError>>(
    name: &str,
    block: &[u8],
    last: bool,
    place: &mut Place,
    take: &mut impl FnMut(JepsenEvent) -> Result<(), E>,
) -> Result<usize, E> {
    let mut r = Reader::resume(block, place.line, place.column);
    loop {
        let mark = r.mark();
        let top = place.top;
        match place.top.next(&mut r) {
            Ok(Some(event)) => take(event)?,
            Ok(None) => {
                (place.line, place.column) = r.place(r.mark());
                return Ok(block.len());
            }
            Err(e) if e.incomplete && !last => {
                place.top = top;
                (place.line, place.column) = r.place(mark);
                return Ok(Reader::offset(mark));
            }
            Err(e) => return Err(edn_error(name, e).into()),
        }
    }
}

/// Fills `buf` as far as the file goes; the bytes read.
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::jepsen::parse_edn;
    use super::*;

    /// The same events, or the same error, in small blocks as in one, for
    /// histories whose forms straddle the blocks.
    #[test]
    fn reads_the_same_whatever_the_blocks() {
        let dir = std::env::temp_dir().join(format!("gpaxos-jf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let event = |i: usize| {
            format!(
                "{{:process {}, :type :invoke, :f :append, :key \"k{}\", :value \"v\n{}\"}}",
                i % 7,
                i % 3,
                "x".repeat(i % 50)
            )
        };
        let body: Vec<String> = (0..60_000).map(event).collect();
        let texts = [
            body.join("\n"),
            format!("; history\n[{}\n]\n", body.join("\n #_ {:skipped 1}\n")),
            format!("(\n{}\n)", body.join(" ")),
            format!("{}\n{{:process 1 :type :done :f :read}}\n", body.join("\n")),
            format!("[{}\n", body.join("\n")),
        ];
        for (i, text) in texts.iter().enumerate() {
            let path = dir.join(format!("h{i}.edn"));
            std::fs::write(&path, text).unwrap();
            let name = path.display().to_string();
            let whole = parse_edn(&name, text);
            let mut small = Vec::new();
            let in_small = read_edn_from(&name, text.as_bytes(), 4096, |e| {
                small.push(e);
                Ok::<_, HistoryError>(())
            });
            let mut from_file = Vec::new();
            let in_file = read_edn(&path, |e| {
                from_file.push(e);
                Ok::<_, HistoryError>(())
            });
            match whole {
                Ok(events) => {
                    in_small.unwrap();
                    in_file.unwrap();
                    assert_eq!(events.len(), small.len(), "text {i}");
                    assert!(events == small, "text {i}");
                    assert!(events == from_file, "text {i}");
                }
                Err(e) => {
                    assert_eq!(e.to_string(), in_small.unwrap_err().to_string(), "text {i}");
                    assert_eq!(e.to_string(), in_file.unwrap_err().to_string(), "text {i}");
                }
            }
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::remove_dir(&dir).unwrap();
    }
}
