//! Jepsen histories: EDN (maps one after another, usually one a line, or
//! one vector or list of them; comments and `#_` discards anywhere) and
//! Jepsen's old text log (`INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[1 4]`,
//! with tabs or spaces between the fields).

use super::edn::{Edn, EdnError, Reader};
use super::{EventKind, HistoryError};

/// Who performed an event: a client process, or a named one such as
/// `:nemesis`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    Client(i64),
    Named(String),
}

/// One event of a Jepsen history.
#[derive(Clone, Debug, PartialEq)]
pub struct JepsenEvent {
    pub process: Process,
    pub kind: EventKind,
    pub f: String,
    /// `:key`, for histories of independent keys.
    pub key: Option<Edn>,
    pub value: Edn,
    /// `:time` in nanoseconds, when the history has it.
    pub time: Option<i64>,
    /// `:error`, or the keyword a text log puts in place of the value
    /// (`:timed-out`).
    pub error: Option<Edn>,
    /// The 1-based line the event starts on.
    pub line: usize,
}

impl JepsenEvent {
    /// Whether the completion says its outcome is unknown: Jepsen's
    /// `:timed-out`, whatever its `:type`.
    pub fn timed_out(&self) -> bool {
        let is_timeout = |e: &Edn| matches!(e, Edn::Keyword(k) if k == "timed-out");
        self.error.as_ref().is_some_and(is_timeout) || is_timeout(&self.value)
    }
}

fn kind_of(name: &str) -> Option<EventKind> {
    kind_of_bytes(name.as_bytes())
}

fn kind_of_bytes(name: &[u8]) -> Option<EventKind> {
    Some(match name {
        b"invoke" => EventKind::Invoke,
        b"ok" => EventKind::Ok,
        b"fail" => EventKind::Fail,
        b"info" => EventKind::Info,
        _ => return None,
    })
}

/// The fields of an event map, as they are read.
#[derive(Default)]
struct Fields {
    kind: Option<Result<EventKind, Edn>>,
    process: Option<Edn>,
    f: Option<Edn>,
    key: Option<Edn>,
    value: Option<Edn>,
    time: Option<Edn>,
    error: Option<Edn>,
}

impl Fields {
    /// Reads the value of the field `name` from `r`.
    fn take(&mut self, name: &[u8], r: &mut Reader<'_>) -> Result<(), EdnError> {
        r.skip_blank()?;
        let keyword = r.peek() == Some(b':') && r.peek_at(1).is_some_and(|b| b != b' ');
        match name {
            b"type" if keyword => {
                r.bump();
                let k = r.token_bytes();
                self.kind = Some(match kind_of_bytes(k) {
                    Some(kind) => Ok(kind),
                    None => Err(Edn::Keyword(String::from_utf8_lossy(k).into_owned())),
                });
            }
            b"type" => self.kind = Some(Err(r.value()?)),
            b"f" if keyword => {
                r.bump();
                self.f = Some(Edn::Keyword(r.token()?.to_owned()));
            }
            b"f" => self.f = Some(r.value()?),
            b"process" => self.process = Some(int_or_value(r)?),
            b"key" => self.key = Some(r.value()?),
            b"value" => self.value = Some(r.value()?),
            b"time" => self.time = Some(int_or_value(r)?),
            b"error" => self.error = Some(r.value()?),
            _ => {
                r.value()?;
            }
        }
        Ok(())
    }

    fn event(self, line: usize) -> Result<JepsenEvent, String> {
        let found = |v: Option<&Edn>| v.map_or("nothing".to_owned(), Edn::to_string);
        let kind = match self.kind {
            Some(Ok(kind)) => kind,
            other => {
                return Err(format!(
                    "expected :type to be one of :invoke, :ok, :fail, :info, found {}",
                    found(other.and_then(Result::err).as_ref())
                ))
            }
        };
        let process = match self.process {
            Some(Edn::Int(p)) => Process::Client(p),
            Some(Edn::Keyword(k) | Edn::Symbol(k) | Edn::Str(k)) => Process::Named(k),
            Some(Edn::Nil) => Process::Named("nil".to_owned()),
            other => {
                return Err(format!(
                    "expected :process to be an integer or a keyword such as :nemesis, found {}",
                    found(other.as_ref())
                ))
            }
        };
        let f = match self.f {
            Some(Edn::Keyword(f) | Edn::Str(f) | Edn::Symbol(f)) => f,
            other => {
                return Err(format!(
                    "expected :f to be a keyword naming the operation, found {}",
                    found(other.as_ref())
                ))
            }
        };
        Ok(JepsenEvent {
            process,
            kind,
            f,
            key: self.key,
            value: self.value.unwrap_or(Edn::Nil),
            time: self.time.as_ref().and_then(Edn::as_int),
            error: self.error,
            line,
        })
    }
}

/// The value at the position, integers read the short way.
fn int_or_value(r: &mut Reader<'_>) -> Result<Edn, EdnError> {
    match r.plain_int() {
        Some(i) => Ok(Edn::Int(i)),
        None => r.value(),
    }
}

/// Reads one event map, or a record Jepsen prints with its type
/// (`#jepsen.history.Op{...}`), whose fields are those of the map.
fn read_event(r: &mut Reader<'_>) -> Result<JepsenEvent, EdnError> {
    r.skip_blank()?;
    let start = r.mark();
    let line = r.line();
    if r.peek() == Some(b'#') && r.peek_at(1) != Some(b'{') {
        r.bump();
        r.token()?;
        r.skip_blank()?;
    }
    if r.peek() != Some(b'{') {
        let found = r.value()?;
        return r.error_at(
            start,
            format!("expected an event map {{:process .. :type .. :f ..}}, found {found}"),
        );
    }
    r.bump();
    let mut fields = Fields::default();
    loop {
        r.skip_blank()?;
        match r.peek() {
            None => return r.error("unexpected end of input: expected '}'"),
            Some(b'}') => {
                r.bump();
                break;
            }
            Some(b':') => {
                r.bump();
                let name = r.token_bytes();
                r.expect_map_value()?;
                fields.take(name, r)?;
            }
            Some(_) => {
                r.value()?;
                r.expect_map_value()?;
                r.value()?;
            }
        }
    }
    fields.event(line).or_else(|m| r.error_at(start, m))
}

/// Where a reader of a Jepsen EDN history is: before its first form,
/// within a top-level vector or list, among forms one after another, or
/// past the top-level sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdnEvents {
    Start,
    /// Within a sequence this byte closes.
    Within(u8),
    Loose,
    Closed,
}

impl EdnEvents {
    /// The next event from `r`, or `None` at the end of its text.
    pub fn next(&mut self, r: &mut Reader<'_>) -> Result<Option<JepsenEvent>, EdnError> {
        loop {
            match *self {
                EdnEvents::Start => {
                    r.skip_blank()?;
                    if r.at_end() {
                        return Ok(None);
                    }
                    *self = match r.open_seq()? {
                        Some(close) => EdnEvents::Within(close),
                        None => EdnEvents::Loose,
                    }
                }
                EdnEvents::Within(close) => {
                    if r.close_seq(close)? {
                        *self = EdnEvents::Closed;
                        continue;
                    }
                    if r.at_end() {
                        return r.error(format!(
                            "unexpected end of input: expected '{}'",
                            close as char
                        ));
                    }
                    return read_event(r).map(Some);
                }
                EdnEvents::Loose => {
                    r.skip_blank()?;
                    if r.at_end() {
                        return Ok(None);
                    }
                    return read_event(r).map(Some);
                }
                EdnEvents::Closed => {
                    r.skip_blank()?;
                    if r.at_end() {
                        return Ok(None);
                    }
                    return r.error("expected the end of the history after its closing bracket");
                }
            }
        }
    }
}

/// An EDN error as a history error of `file`.
pub fn edn_error(file: &str, e: EdnError) -> HistoryError {
    HistoryError::parse(file, e.line, Some(e.column), e.message)
}

/// Reads a Jepsen EDN history: maps one after another (usually one a
/// line), or a single vector or list of them.
pub fn parse_edn(file: &str, text: &str) -> Result<Vec<JepsenEvent>, HistoryError> {
    let mut events = Vec::new();
    super::jepsen_file::read_edn_from(file, text.as_bytes(), text.len() + 1, |e| {
        events.push(e);
        Ok::<_, HistoryError>(())
    })?;
    Ok(events)
}

/// The fields of a text log's event line after `jepsen.util - `: process,
/// type and operation separated by any whitespace, then the value.
fn log_fields(rest: &str) -> Option<(&str, &str, &str, &str)> {
    let mut rest = rest.trim_start();
    let mut field = || {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (field, after) = rest.split_at(end);
        rest = after.trim_start();
        (!field.is_empty()).then_some(field)
    };
    let (process, kind, f) = (field()?, field()?, field()?);
    Some((process, kind, f, rest.trim_end()))
}

/// Reads Jepsen's old text log. Only `jepsen.util` event lines count; the
/// rest of the log is skipped. Fields may be separated by tabs or spaces.
pub fn parse_log(file: &str, text: &str) -> Result<Vec<JepsenEvent>, HistoryError> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some(at) = line.find("jepsen.util - ") else {
            continue;
        };
        let rest = &line[at + "jepsen.util - ".len()..];
        let column = line[..at + "jepsen.util - ".len()].chars().count() + 1;
        let err = |message: String| HistoryError::parse(file, line_no, Some(column), message);
        let Some((process, kind, f, value_text)) = log_fields(rest) else {
            return Err(err(
                "expected \"<process> :<type> :<f> <value>\" after \"jepsen.util - \"".into(),
            ));
        };
        let process = match process.parse::<i64>() {
            Ok(p) => Process::Client(p),
            Err(_) => Process::Named(process.trim_start_matches(':').to_owned()),
        };
        let kind = kind_of(kind.trim_start_matches(':')).ok_or_else(|| {
            err(format!(
                "expected the type :invoke, :ok, :fail or :info, found {kind:?}"
            ))
        })?;
        let f = f.trim_start_matches(':').to_owned();
        let mut reader = Reader::new(value_text);
        // The value is EDN; a nemesis may log free text, which is kept as a
        // string rather than refused.
        let value = match reader.next_value() {
            Ok(Some(v)) if matches!(reader.next_value(), Ok(None)) => v,
            Ok(None) => Edn::Nil,
            _ => Edn::Str(value_text.to_owned()),
        };
        events.push(JepsenEvent {
            process,
            kind,
            f,
            key: None,
            value,
            time: None,
            error: None,
            line: line_no,
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edn_lines_and_vectors() {
        let lines = "{:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\
                     {:process 0, :type :ok, :f :get, :key \"7\", :value \"\"}\n\
                     {:process :nemesis, :type :info, :f :start, :value nil}\n";
        let events = parse_edn("h.edn", lines).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].line, 2);
        assert_eq!(events[1].key, Some(Edn::Str("7".into())));
        assert_eq!(events[2].process, Process::Named("nemesis".into()));

        let vector = "[{:process 1 :type :invoke :f :write :value 3 :time 10}\n {:process 1 :type :ok :f :write :value 3 :time 20}]";
        let events = parse_edn("h.edn", vector).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].line, 2);
        assert_eq!(events[1].time, Some(20));
    }

    #[test]
    fn reads_a_list_of_maps() {
        let list = "(\n{:process 1 :type :invoke :f :write :value 3}\n{:process 1 :type :ok :f :write :value 3})\n";
        let events = parse_edn("h.edn", list).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].line, 3);
        assert_eq!(events[1].kind, EventKind::Ok);
        let e = parse_edn("h.edn", "({:process 1 :type :ok :f :read}").unwrap_err();
        assert!(e.to_string().contains("expected ')'"), "{e}");
        let e = parse_edn("h.edn", "({:process 1 :type :ok :f :read}) {}").unwrap_err();
        assert!(e.to_string().contains("closing bracket"), "{e}");
    }

    #[test]
    fn reads_comments_and_discards_anywhere() {
        let text = "; a Jepsen history\n\
                    [#_{:process 9 :type :invoke :f :read} ; dropped\n\
                    {:process 0, ; the process\n :type :invoke, #_ :ignored :f :read #_ :x}\n\
                    #_ #_ 1 2\n\
                    {:process 0 :type :ok :f :read :value 5} ; done\n\
                    #_ nil]\n; trailing comment";
        let events = parse_edn("h.edn", text).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].f, "read");
        assert_eq!(events[0].line, 3);
        assert_eq!(events[1].value, Edn::Int(5));
    }

    #[test]
    fn reads_nil_tuples_records_and_info() {
        let text = "{:process nil, :type :info, :f :start, :value [:isolated {:n1 #{:n2}}]}\n\
                    #jepsen.history.Op{:index 1, :process 3, :type :invoke, :f :cas, :key [1 2], :value [nil 4]}\n\
                    {:process 3, :type :info, :f :cas, :value [nil 4], :error :timed-out}\n\
                    {:process 4, :type :invoke, :f :read, :value nil}\n";
        let events = parse_edn("h.edn", text).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].process, Process::Named("nil".into()));
        assert_eq!(events[1].process, Process::Client(3));
        assert_eq!(
            events[1].key,
            Some(Edn::Vector(vec![Edn::Int(1), Edn::Int(2)]))
        );
        assert_eq!(events[1].value, Edn::Vector(vec![Edn::Nil, Edn::Int(4)]));
        assert!(events[2].timed_out());
        assert_eq!(events[2].kind, EventKind::Info);
        assert_eq!(events[3].value, Edn::Nil);
        // Integers the short way and the long way.
        let text = "{:process -2, :type :ok, :f :read, :time 12N}\n\
                    {:process 7, :type :ok, :f :read, :time 1.5}\n\
                    {:process 9223372036854775807, :type :ok, :f :read, :time -40}\n";
        let events = parse_edn("h.edn", text).unwrap();
        assert_eq!(events[0].process, Process::Client(-2));
        assert_eq!(events[0].time, Some(12));
        assert_eq!(events[1].time, None);
        assert_eq!(events[2].process, Process::Client(i64::MAX));
        assert_eq!(events[2].time, Some(-40));
    }

    #[test]
    fn edn_errors_name_line_column_and_expectation() {
        let e = parse_edn(
            "h.edn",
            "{:process 0, :type :invoke, :f :get}\n  {:process 0, :type :done, :f :get}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("h.edn:2:3: "), "{e}");
        assert!(e.contains("found :done"), "{e}");
        let e = parse_edn(
            "h.edn",
            "{:process 0, :type :invoke, :f :get}\n{:process 0 :type :ok :f :get :value [1 2}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("h.edn:2:42: unexpected '}'"), "{e}");
    }

    #[test]
    fn edn_errors_name_line_and_expectation() {
        let e = parse_edn(
            "h.edn",
            "{:process 0, :type :invoke, :f :get}\n{:process 0, :type :done, :f :get}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("h.edn:2"), "{e}");
        assert!(e.contains(":invoke, :ok, :fail, :info"), "{e}");
        let e = parse_edn("h.edn", "[{:process 0, :type :invoke, :f :get}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected ']'"), "{e}");
    }

    #[test]
    fn reads_the_text_log() {
        let log = "2015-01-01 INFO  jepsen.core - starting\n\
                   INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n\
                   INFO  jepsen.util - 3\t:fail\t:cas\t[1 4]\n\
                   INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 0\t:info\t:read\t:timed-out\n\
                   INFO  jepsen.util - :nemesis\t:info\t:start\tCut off {:n1 #{:n2}}\n";
        let events = parse_log("etcd.log", log).unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].line, 2);
        assert_eq!(events[0].value, Edn::Vector(vec![Edn::Int(1), Edn::Int(4)]));
        assert!(events[3].timed_out());
        assert_eq!(events[4].process, Process::Named("nemesis".into()));
        let e = parse_log("etcd.log", "INFO  jepsen.util - 3\t:done\t:cas\t[1 4]").unwrap_err();
        assert!(e.to_string().starts_with("etcd.log:1:21: "), "{e}");
    }

    #[test]
    fn reads_text_logs_whatever_the_whitespace() {
        let tabs = "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n\
                    INFO  jepsen.util - 3\t:ok\t:cas\t[1 4]\n";
        let spaces = "INFO  jepsen.util - 3 :invoke :cas [1 4]\n\
                      INFO  jepsen.util - 3  \t :ok   :cas\t [1 4] \n";
        let a = parse_log("a.log", tabs).unwrap();
        let b = parse_log("b.log", spaces).unwrap();
        assert_eq!(a, b);
        assert_eq!(b[1].value, Edn::Vector(vec![Edn::Int(1), Edn::Int(4)]));
        let no_value = parse_log("c.log", "INFO  jepsen.util - 0 :invoke :read").unwrap();
        assert_eq!(no_value[0].value, Edn::Nil);
        let e = parse_log("d.log", "INFO  jepsen.util - 0 :invoke").unwrap_err();
        assert!(e.to_string().contains("expected"), "{e}");
    }
}
