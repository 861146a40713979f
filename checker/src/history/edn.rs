//! A small reader for EDN, the notation of Jepsen histories: enough of it
//! (nil, booleans, numbers, strings, characters, keywords, symbols, lists,
//! vectors, sets, maps, tagged values, comments and `#_` discards) to read
//! any history Jepsen writes.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Char(char),
    /// Without the leading colon.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value under keyword `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(name) if name == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_keyword(&self) -> Option<&str> {
        match self {
            Edn::Keyword(k) => Some(k),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Edn::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of a vector or list.
    pub fn as_seq(&self) -> Option<&[Edn]> {
        match self {
            Edn::Vector(v) | Edn::List(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        };
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => write!(f, "{x}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(v) => seq(f, "(", v, ")"),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::Set(v) => seq(f, "#{", v, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, v) => write!(f, "#{tag} {v}"),
        }
    }
}

/// Why EDN text could not be read, and where (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    /// In characters, from 1.
    pub column: usize,
    pub message: String,
    /// The text ended inside a form: more text could complete it.
    pub incomplete: bool,
}

/// A position in the text a [`Reader`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pos: usize,
    line: usize,
    line_start: isize,
}

/// Reads EDN values one after another, counting lines and columns.
pub struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    /// Where the current line starts in `text` (negative when the text
    /// starts within a line, see [`Reader::resume`]).
    line_start: isize,
    /// Collections open around the current position.
    depth: usize,
}

/// The bytes that end a token.
const DELIMITER: [bool; 256] = {
    let mut table = [false; 256];
    let ends = b" \t\r\n,()[]{}\";";
    let mut i = 0;
    while i < ends.len() {
        table[ends[i] as usize] = true;
        i += 1;
    }
    table
};

/// Deeper nesting is refused rather than allowed to exhaust the stack; no
/// history nests more than a few levels.
const MAX_DEPTH: usize = 200;

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader::resume(text.as_bytes(), 1, 1)
    }

    /// Reads `text`, whose first byte is at `line` and `column` of its
    /// source. The text is checked to be UTF-8 where it is read into
    /// strings and symbols.
    pub fn resume(text: &'a [u8], line: usize, column: usize) -> Self {
        Reader {
            text,
            pos: 0,
            line,
            line_start: 1 - column as isize,
            depth: 0,
        }
    }

    /// The line of the next byte.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The position of the next byte, to come back to or to name.
    pub fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            line_start: self.line_start,
        }
    }

    /// Bytes before `mark`.
    pub fn offset(mark: Mark) -> usize {
        mark.pos
    }

    /// The line and column of `mark`.
    pub fn place(&self, mark: Mark) -> (usize, usize) {
        let start = mark.line_start.max(0) as usize;
        let before = (-mark.line_start).max(0) as usize;
        let chars = String::from_utf8_lossy(&self.text[start.min(mark.pos)..mark.pos])
            .chars()
            .count();
        (mark.line, before + chars + 1)
    }

    /// An error at `mark`.
    pub fn error_at<T>(&self, mark: Mark, message: impl Into<String>) -> Result<T, EdnError> {
        let (line, column) = self.place(mark);
        Err(EdnError {
            line,
            column,
            message: message.into(),
            incomplete: false,
        })
    }

    /// The byte `ahead` bytes after the next.
    pub fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text.get(self.pos + ahead).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    pub fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.line_start = self.pos as isize;
        }
        Some(c)
    }

    /// An error at the current position.
    pub fn error<T>(&self, message: impl Into<String>) -> Result<T, EdnError> {
        let (line, column) = self.place(self.mark());
        Err(EdnError {
            line,
            column,
            message: message.into(),
            incomplete: self.at_end(),
        })
    }

    /// Skips what is not a value: whitespace, commas, `;` comments, and
    /// `#_` discards with the form each discards.
    pub fn skip_blank(&mut self) -> Result<(), EdnError> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b',' => self.pos += 1,
                b'\n' => {
                    self.bump();
                }
                b';' => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                b'#' if self.text.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.skip_blank()?;
                    if self.at_end() {
                        return self.error("unexpected end of input: expected a form after #_");
                    }
                    self.value()?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// Steps into a top-level vector or list, if the text starts with one,
    /// so that its elements can be read one by one with their lines;
    /// returns the byte that closes it.
    pub fn open_seq(&mut self) -> Result<Option<u8>, EdnError> {
        self.skip_blank()?;
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => return Ok(None),
        };
        self.bump();
        Ok(Some(close))
    }

    /// Steps out of the sequence [`Reader::open_seq`] entered, if the next
    /// form closes it.
    pub fn close_seq(&mut self, close: u8) -> Result<bool, EdnError> {
        self.skip_blank()?;
        let closes = self.peek() == Some(close);
        if closes {
            self.bump();
        }
        Ok(closes)
    }

    /// The next top-level value, or `None` at the end of the text.
    pub fn next_value(&mut self) -> Result<Option<Edn>, EdnError> {
        self.skip_blank()?;
        if self.at_end() {
            return Ok(None);
        }
        self.value().map(Some)
    }

    /// The next value; blanks before it are skipped.
    pub fn value(&mut self) -> Result<Edn, EdnError> {
        if self.depth >= MAX_DEPTH {
            return self.error(format!("values nested more than {MAX_DEPTH} deep"));
        }
        self.depth += 1;
        let value = self.value_here();
        self.depth -= 1;
        value
    }

    fn value_here(&mut self) -> Result<Edn, EdnError> {
        self.skip_blank()?;
        let Some(c) = self.peek() else {
            return self.error("unexpected end of input: expected a value");
        };
        match c {
            b'(' => {
                self.bump();
                Ok(Edn::List(self.items(b')')?))
            }
            b'[' => {
                self.bump();
                Ok(Edn::Vector(self.items(b']')?))
            }
            b'{' => {
                self.bump();
                self.map()
            }
            b'"' => Ok(Edn::Str(self.string()?)),
            b'\\' => self.character(),
            b'#' => self.dispatch(),
            b')' | b']' | b'}' => {
                self.error(format!("unexpected '{}': expected a value", c as char))
            }
            b':' => {
                self.bump();
                let name = self.token()?;
                if name.is_empty() {
                    return self.error("expected a keyword name after ':'");
                }
                Ok(Edn::Keyword(name.to_owned()))
            }
            _ => {
                let token = self.token()?;
                if token.is_empty() {
                    return self.error(format!("unexpected character '{}'", c as char));
                }
                self.atom(token)
            }
        }
    }

    /// The entries of a map whose `{` is read.
    fn map(&mut self) -> Result<Edn, EdnError> {
        let mut entries = Vec::with_capacity(6);
        loop {
            self.skip_blank()?;
            match self.peek() {
                None => return self.error("unexpected end of input: expected '}'"),
                Some(b'}') => {
                    self.bump();
                    return Ok(Edn::Map(entries));
                }
                Some(_) => {
                    let key = self.value()?;
                    self.expect_map_value()?;
                    entries.push((key, self.value()?));
                }
            }
        }
    }

    /// After a map's key: a value must follow.
    pub fn expect_map_value(&mut self) -> Result<(), EdnError> {
        self.skip_blank()?;
        match self.peek() {
            Some(b'}') => {
                self.error("a map needs an even number of forms: expected a value for every key")
            }
            None => self.error("unexpected end of input: expected a value for the map's key"),
            Some(_) => Ok(()),
        }
    }

    fn character(&mut self) -> Result<Edn, EdnError> {
        self.bump();
        let token = self.token()?;
        let ch = match token {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            t if t.chars().count() == 1 => t.chars().next().unwrap_or(' '),
            t => return self.error(format!("unknown character literal \\{t}")),
        };
        Ok(Edn::Char(ch))
    }

    /// What follows `#`: a set or a tagged value (discards are blanks).
    fn dispatch(&mut self) -> Result<Edn, EdnError> {
        self.bump();
        if self.peek() == Some(b'{') {
            self.bump();
            return Ok(Edn::Set(self.items(b'}')?));
        }
        let tag = self.token()?.to_owned();
        if tag.is_empty() {
            return self.error("expected a tag, a set or a discard after #");
        }
        Ok(Edn::Tagged(tag, Box::new(self.value()?)))
    }

    fn items(&mut self, close: u8) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                None => {
                    return self.error(format!(
                        "unexpected end of input: expected '{}'",
                        close as char
                    ))
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.value()?),
            }
        }
    }

    /// The token at the position: up to the next delimiter.
    pub fn token(&mut self) -> Result<&'a str, EdnError> {
        let start = self.pos;
        let bytes = self.token_bytes();
        match std::str::from_utf8(bytes) {
            Ok(t) => Ok(t),
            Err(e) => {
                self.pos = start + e.valid_up_to();
                self.error("the text is not UTF-8")
            }
        }
    }

    /// The token at the position as bytes, not checked to be UTF-8.
    pub fn token_bytes(&mut self) -> &'a [u8] {
        let text = self.text;
        let rest = &text[self.pos..];
        // A token never holds a newline, so the line count stands.
        let len = rest
            .iter()
            .position(|&c| DELIMITER[c as usize])
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// A plain integer at the position (digits, perhaps a sign), read
    /// without a detour through text; `None`, and nothing read, otherwise.
    pub fn plain_int(&mut self) -> Option<i64> {
        let start = self.pos;
        let token = self.token_bytes();
        let (negative, digits) = match token {
            [b'-', rest @ ..] => (true, rest),
            _ => (false, token),
        };
        let plain =
            !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit);
        if !plain {
            self.pos = start;
            return None;
        }
        let n = digits
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Some(if negative { -n } else { n })
    }

    fn atom(&self, token: &str) -> Result<Edn, EdnError> {
        match token {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        let first = token.as_bytes()[0];
        let numeric = first.is_ascii_digit()
            || ((first == b'-' || first == b'+')
                && token.len() > 1
                && token.as_bytes()[1].is_ascii_digit());
        if !numeric {
            return Ok(Edn::Symbol(token.to_owned()));
        }
        let digits = token.trim_end_matches(['N', 'M']);
        if let Ok(i) = digits.parse::<i64>() {
            return Ok(Edn::Int(i));
        }
        match digits.parse::<f64>() {
            Ok(x) => Ok(Edn::Float(x)),
            Err(_) => self.error(format!("malformed number {token:?}")),
        }
    }

    /// A string whose opening `"` is next.
    pub fn string(&mut self) -> Result<String, EdnError> {
        self.bump();
        let start = self.pos;
        // Most strings have no escape: one look for the closing quote.
        let plain = self.text[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b == b'\n');
        if let Some(n) = plain {
            if self.text[start + n] == b'"' {
                self.pos = start + n + 1;
                return match std::str::from_utf8(&self.text[start..start + n]) {
                    Ok(s) => Ok(s.to_owned()),
                    Err(e) => {
                        self.pos = start + e.valid_up_to();
                        self.error("the text is not UTF-8")
                    }
                };
            }
        }
        let mut out = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return self.error("unexpected end of input inside a string: expected '\"'");
            };
            match c {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                _ => out.push(c),
            }
        }
        String::from_utf8(out).or_else(|_| self.error("the text is not UTF-8"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), EdnError> {
        let Some(e) = self.bump() else {
            return self.error("unexpected end of input after '\\' in a string");
        };
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'"' | b'\\' => out.push(e),
            b'u' => {
                let end = (self.pos + 4).min(self.text.len());
                let hex = String::from_utf8_lossy(&self.text[self.pos..end]).into_owned();
                let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) else {
                    return self.error(format!("malformed \\u escape {hex:?} in a string"));
                };
                self.pos = end;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Vec<Edn> {
        let mut r = Reader::new(text);
        let mut out = Vec::new();
        while let Some(v) = r.next_value().unwrap() {
            out.push(v);
        }
        out
    }

    #[test]
    fn reads_a_jepsen_event() {
        let v = read_all(r#"{:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}"#);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].get("process"), Some(&Edn::Int(0)));
        assert_eq!(v[0].get("type").and_then(Edn::as_keyword), Some("invoke"));
        assert_eq!(v[0].get("value"), Some(&Edn::Str("x 0 1 y".into())));
        assert_eq!(v[0].get("missing"), None);
    }

    #[test]
    fn reads_every_form() {
        let v = read_all(
            "nil true -3 4.5 12N \"a\\\"b\\n\" \\x :k sym (1 2) [3 [4]] #{5} {:a {:b nil}} #inst \"2020\" #_ 99 ; comment\n 7",
        );
        assert_eq!(v.len(), 15);
        assert_eq!(v[2], Edn::Int(-3));
        assert_eq!(v[4], Edn::Int(12));
        assert_eq!(v[5], Edn::Str("a\"b\n".into()));
        assert_eq!(v[6], Edn::Char('x'));
        assert_eq!(v[8], Edn::Symbol("sym".into()));
        assert!(matches!(&v[13], Edn::Tagged(t, _) if t == "inst"));
        assert_eq!(v[14], Edn::Int(7));
    }

    #[test]
    fn discards_and_comments_go_anywhere() {
        let v = read_all("#_ {:a 1} [1 #_2 ; two\n 3 #_ #_ 4 5] {:k #_ :x 1 #_ :y} #_ (nil)");
        assert_eq!(
            v,
            vec![
                Edn::Vector(vec![Edn::Int(1), Edn::Int(3)]),
                Edn::Map(vec![(Edn::Keyword("k".into()), Edn::Int(1))]),
            ]
        );
        let e = Reader::new("[1 #_]").next_value().unwrap_err();
        assert!(e.message.contains("expected a value"), "{}", e.message);
        let e = Reader::new("1 #_").next_value().unwrap();
        assert_eq!(e, Some(Edn::Int(1)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        let e = Reader::new(&text).next_value().unwrap_err();
        assert!(e.message.contains("nested"), "{}", e.message);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let mut r = Reader::new("{:a 1}\n{:b 2\n");
        assert!(r.next_value().unwrap().is_some());
        let e = r.next_value().unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert!(e.incomplete);
        assert!(e.message.contains("expected '}'"), "{}", e.message);
        let e = Reader::new("{:a 1}\n  {:b ]}").next_value().unwrap();
        assert!(e.is_some());
        let mut r = Reader::new("{:a 1}\n  {:b ]}");
        r.next_value().unwrap();
        let e = r.next_value().unwrap_err();
        assert_eq!((e.line, e.column), (2, 7), "{e:?}");
        assert!(!e.incomplete);
        let e = Reader::new("[\"é\" ]]").next_value().unwrap();
        assert!(e.is_some());
        let mut r = Reader::new("\"é\" }");
        r.next_value().unwrap();
        let e = r.next_value().unwrap_err();
        assert_eq!((e.line, e.column), (1, 5), "columns count characters");
        let e = Reader::new("{:a}").next_value().unwrap_err();
        assert!(e.message.contains("even number"), "{}", e.message);
    }
}
