//! A fast path for the client events of a JSON Lines history: the one
//! shape that makes up nearly all of a long history (a flat object of
//! plain strings and integers, a get, put, append or cas) read in place,
//! without allocating.
//!
//! It accepts only what the full reader (`wire`) reads to the same event,
//! and declines everything else: escapes, other fields, other record types
//! and operations, and anything malformed. A declined line goes to the full
//! reader, which reads it or says what is wrong with it, so the fast path
//! changes no result and no error message.

use super::EventKind;

/// An operation as the line spells it; `S` is a string of the line, or
/// where it is in the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScannedOp<S> {
    Get {
        key: S,
    },
    Put {
        key: S,
        value: S,
    },
    Append {
        key: S,
        value: S,
    },
    /// `from: None` is `null`, the absent value.
    Cas {
        key: S,
        from: Option<S>,
        to: S,
    },
}

impl<S: Copy> ScannedOp<S> {
    pub fn key(&self) -> S {
        match *self {
            ScannedOp::Get { key }
            | ScannedOp::Put { key, .. }
            | ScannedOp::Append { key, .. }
            | ScannedOp::Cas { key, .. } => key,
        }
    }
}

/// A client event borrowed from its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedEvent<S> {
    pub kind: EventKind,
    pub process: u64,
    pub time: u64,
    pub id: S,
    pub op: ScannedOp<S>,
    /// A get's `result`: `Some(None)` is `null`, an absent key.
    pub read: Option<Option<S>>,
}

impl<S: Copy> ScannedEvent<S> {
    /// The same event with its strings mapped: from slices to places in a
    /// buffer, to send the event to another thread, and back.
    pub fn map<T>(&self, mut f: impl FnMut(S) -> T) -> ScannedEvent<T> {
        let op = match self.op {
            ScannedOp::Get { key } => ScannedOp::Get { key: f(key) },
            ScannedOp::Put { key, value } => ScannedOp::Put {
                key: f(key),
                value: f(value),
            },
            ScannedOp::Append { key, value } => ScannedOp::Append {
                key: f(key),
                value: f(value),
            },
            ScannedOp::Cas { key, from, to } => ScannedOp::Cas {
                key: f(key),
                from: from.map(&mut f),
                to: f(to),
            },
        };
        ScannedEvent {
            kind: self.kind,
            process: self.process,
            time: self.time,
            id: f(self.id),
            op,
            read: self.read.map(|r| r.map(&mut f)),
        }
    }
}

/// The fields the fast path reads, in the order writers use: each name
/// with its closing quote, as the little-endian word of its bytes and the
/// mask of those bytes, so that a name is matched with one comparison.
const FIELDS: [(u64, u64, usize); 10] = [
    name(b"type\""),
    name(b"process\""),
    name(b"time\""),
    name(b"id\""),
    name(b"f\""),
    name(b"key\""),
    name(b"value\""),
    name(b"result\""),
    name(b"from\""),
    name(b"to\""),
];

const fn name(bytes: &[u8]) -> (u64, u64, usize) {
    let mut word = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        word |= (bytes[i] as u64) << (8 * i);
        i += 1;
    }
    let mask = if bytes.len() == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * bytes.len())) - 1
    };
    (word, mask, bytes.len())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A word whose lowest set high bit marks the first byte that is `"`,
/// `\\` or below 0x20 (bits above it may be false alarms from borrows).
fn special(word: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// The whitespace JSON allows between tokens.
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.bump()? == byte).then_some(())
    }

    /// A string with no escapes and no control characters (which JSON
    /// forbids unescaped).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let bytes = self.text.as_bytes();
        // Eight bytes at a time: the first byte that is a quote, a
        // backslash or a control character ends the plain string.
        while let Some(word) = bytes.get(self.at..self.at + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let found = special(word);
            if found != 0 {
                self.at += (found.trailing_zeros() / 8) as usize;
                break;
            }
            self.at += 8;
        }
        loop {
            match *bytes.get(self.at)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        // Both ends are ASCII quotes, so these are character boundaries.
        Some(&self.text[start..self.at - 1])
    }

    /// The name of a field the fast path reads, as its index in `FIELDS`;
    /// `None` for any other name, or one spelled with escapes. Lines
    /// usually list fields in `FIELDS` order, so the search starts at
    /// `next`, after the previous field.
    fn field(&mut self, next: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        // A line this short is no record the fast path reads.
        let word = bytes.get(self.at + 1..self.at + 9)?;
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let found = (next..FIELDS.len())
            .chain(0..next)
            .find(|&i| word & FIELDS[i].1 == FIELDS[i].0)?;
        self.at += 1 + FIELDS[found].2;
        Some(found)
    }

    fn string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            let rest = self.text.get(self.at..self.at + 4)?;
            (rest == "null").then_some(())?;
            self.at += 4;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// A non-negative integer that fits in a u64, spelled as JSON allows
    /// (no leading zeros); fractions and exponents are declined by the
    /// caller, which finds them where it expects a delimiter.
    fn integer(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(&b) = bytes.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        (digits == 1 || (digits > 1 && bytes[start] != b'0')).then_some(n)
    }
}

/// Sets a field once; a repeated field is the full reader's to report.
fn once<T>(field: &mut Option<T>, value: T) -> Option<()> {
    match field {
        Some(_) => None,
        None => {
            *field = Some(value);
            Some(())
        }
    }
}

#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    process: Option<u64>,
    time: Option<u64>,
    id: Option<&'a str>,
    f: Option<&'a str>,
    key: Option<&'a str>,
    value: Option<&'a str>,
    from: Option<Option<&'a str>>,
    to: Option<&'a str>,
    result: Option<Option<&'a str>>,
}

/// Reads a trimmed line as a client event, or declines it (`None`).
pub fn scan(line: &str) -> Option<ScannedEvent<&str>> {
    let mut c = Cursor { text: line, at: 0 };
    let mut w = Fields::default();
    c.expect(b'{')?;
    let mut next = 0;
    loop {
        c.space();
        let field = c.field(next)?;
        next = field + 1;
        c.space();
        c.expect(b':')?;
        c.space();
        match field {
            0 => once(&mut w.kind, c.string()?)?,
            1 => once(&mut w.process, c.integer()?)?,
            2 => once(&mut w.time, c.integer()?)?,
            3 => once(&mut w.id, c.string()?)?,
            4 => once(&mut w.f, c.string()?)?,
            5 => once(&mut w.key, c.string()?)?,
            6 => once(&mut w.value, c.string()?)?,
            7 => once(&mut w.result, c.string_or_null()?)?,
            8 => once(&mut w.from, c.string_or_null()?)?,
            _ => once(&mut w.to, c.string()?)?,
        }
        c.space();
        match c.bump()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    if c.at != line.len() {
        return None;
    }
    let kind = match w.kind? {
        "invoke" => EventKind::Invoke,
        "ok" => EventKind::Ok,
        "fail" => EventKind::Fail,
        "info" => EventKind::Info,
        _ => return None,
    };
    let key = w.key?;
    let (op, read) = match w.f? {
        "get" => (ScannedOp::Get { key }, w.result),
        "put" => (
            ScannedOp::Put {
                key,
                value: w.value?,
            },
            None,
        ),
        "append" => (
            ScannedOp::Append {
                key,
                value: w.value?,
            },
            None,
        ),
        "cas" => (
            ScannedOp::Cas {
                key,
                from: w.from?,
                to: w.to?,
            },
            None,
        ),
        _ => return None,
    };
    Some(ScannedEvent {
        kind,
        process: w.process?,
        time: w.time?,
        id: w.id?,
        op,
        read,
    })
}

impl ScannedOp<&str> {
    /// The operation as the full reader makes it.
    pub(crate) fn to_op(self) -> crate::history::Op {
        use crate::history::Op;
        match self {
            ScannedOp::Get { key } => Op::Get { key: key.into() },
            ScannedOp::Put { key, value } => Op::Put {
                key: key.into(),
                value: value.into(),
            },
            ScannedOp::Append { key, value } => Op::Append {
                key: key.into(),
                value: value.into(),
            },
            ScannedOp::Cas { key, from, to } => Op::Cas {
                key: key.into(),
                from: from.map(Into::into),
                to: to.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ClientEvent, OpResult, Record};

    /// What the full reader makes of a line, in the scanner's terms.
    fn full(line: &str) -> Option<ClientEvent> {
        match serde_json::from_str::<Record>(line) {
            Ok(Record::Client(e)) => Some(e),
            _ => None,
        }
    }

    fn same(scanned: &ScannedEvent<&str>, e: &ClientEvent) -> bool {
        let op = scanned.op.to_op();
        let result = scanned
            .read
            .map(|r| OpResult::Value(r.map(ToOwned::to_owned)));
        scanned.kind == e.kind
            && scanned.process == e.process
            && scanned.time == e.time
            && scanned.id == e.command.id.0
            && op == e.command.op
            && result == e.result
    }

    #[test]
    fn reads_the_common_shapes_as_the_full_reader_does() {
        for line in [
            r#"{"type":"invoke","process":10,"time":3,"id":"10.1","f":"put","key":"k712","value":"10.1"}"#,
            r#"{"type":"ok","process":1,"time":0,"id":"1.1","f":"get","key":"k","result":null}"#,
            r#"{"type":"ok","process":1,"time":9,"id":"1.1","f":"get","key":"k","result":"é€"}"#,
            r#"{ "time" : 5 , "type":"fail","process":18446744073709551615,"id":"x","f":"cas","key":"k","from":null,"to":"y"}"#,
            r#"{"type":"info","process":1,"time":5,"id":"x","f":"cas","key":"k","from":"a","to":"y","result":"z"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"append","key":"k","value":""}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"abcdefgh","f":"append","key":"abcdefghijklmnopé€😀xyz~","value":"12345678"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k","value":"v","to":"t","from":null}"#,
        ] {
            let s = scan(line).unwrap_or_else(|| panic!("declined {line}"));
            let e = full(line).unwrap();
            assert!(same(&s, &e), "{line}: {s:?} vs {e:?}");
        }
    }

    #[test]
    fn declines_what_it_does_not_read_exactly() {
        for line in [
            r#"{"type":"invoke","process":1,"time":5,"id":"x\"","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k","key":"j"}"#,
            r#"{"type":"invoke","process":01,"time":5,"id":"x","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":1.0,"time":5,"id":"x","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":1e2,"time":5,"id":"x","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":-1,"time":5,"id":"x","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":18446744073709551616,"time":5,"id":"x","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":null}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"put","key":"k"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"cas","key":"k","to":"y"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k","result":5}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k","amount":5}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"transfer","from":"a","to":"b","amount":5}"#,
            r#"{"type":"Invoke","process":1,"time":5,"id":"x","f":"get","key":"k"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k"} x"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k",}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k""#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"k","from":nul}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"	"}"#,
            "{\"type\":\"invoke\",\"process\":1,\"time\":5,\"id\":\"x\",\"f\":\"get\",\"key\":\"abcdefghij\u{1}kl\"}",
            r#"{"type":"invoke","process":1,"time":5,"id":"x","f":"get","key":"abcdefghijklmnopq\"}"#,
            r#"{"type":"invoke","process":1,"time":5,"id":"abcdefgh""#,
            r#"{"type":"nemesis","time":5,"f":"heal"}"#,
            "{}",
            "",
        ] {
            assert_eq!(scan(line), None, "{line}");
        }
    }
}
