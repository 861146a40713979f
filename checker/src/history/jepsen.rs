//! Jepsen histories: EDN (one map per line, or one vector of maps) and
//! Jepsen's old text log (`INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[1 4]`).

use super::edn::{Edn, Reader};
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
    Some(match name {
        "invoke" => EventKind::Invoke,
        "ok" => EventKind::Ok,
        "fail" => EventKind::Fail,
        "info" => EventKind::Info,
        _ => return None,
    })
}

fn event_from_map(file: &str, line: usize, map: &Edn) -> Result<JepsenEvent, HistoryError> {
    let err = |message: String| HistoryError::parse(file, line, None, message);
    if !matches!(map, Edn::Map(_)) {
        return Err(err(format!(
            "expected an event map {{:process .. :type .. :f ..}}, found {map}"
        )));
    }
    let kind = map
        .get("type")
        .and_then(Edn::as_keyword)
        .and_then(kind_of)
        .ok_or_else(|| err("expected :type to be one of :invoke, :ok, :fail, :info".into()))?;
    let process = match map.get("process") {
        Some(Edn::Int(p)) => Process::Client(*p),
        Some(Edn::Keyword(k)) => Process::Named(k.clone()),
        Some(Edn::Symbol(s)) | Some(Edn::Str(s)) => Process::Named(s.clone()),
        other => {
            return Err(err(format!(
                "expected :process to be an integer or a keyword such as :nemesis, found {}",
                other.map_or("nothing".to_owned(), Edn::to_string)
            )))
        }
    };
    let f = match map.get("f") {
        Some(Edn::Keyword(f)) | Some(Edn::Str(f)) | Some(Edn::Symbol(f)) => f.clone(),
        other => {
            return Err(err(format!(
                "expected :f to be a keyword naming the operation, found {}",
                other.map_or("nothing".to_owned(), Edn::to_string)
            )))
        }
    };
    Ok(JepsenEvent {
        process,
        kind,
        f,
        key: map.get("key").cloned(),
        value: map.get("value").cloned().unwrap_or(Edn::Nil),
        time: map.get("time").and_then(Edn::as_int),
        error: map.get("error").cloned(),
        line,
    })
}

/// Reads a Jepsen EDN history: maps one after another (usually one a
/// line), or a single vector of them.
pub fn parse_edn(file: &str, text: &str) -> Result<Vec<JepsenEvent>, HistoryError> {
    let mut reader = Reader::new(text);
    let in_vector = reader.open_vector();
    let mut events = Vec::new();
    loop {
        if in_vector && reader.close_vector() {
            break;
        }
        let line = reader.line();
        let value = reader
            .next_value()
            .map_err(|e| HistoryError::parse(file, e.line, None, e.message))?;
        let Some(value) = value else {
            if in_vector {
                return Err(HistoryError::parse(
                    file,
                    line,
                    None,
                    "unexpected end of input: expected ']'",
                ));
            }
            break;
        };
        events.push(event_from_map(file, line, &value)?);
    }
    Ok(events)
}

/// Reads Jepsen's old text log. Only `jepsen.util` event lines count; the
/// rest of the log is skipped.
pub fn parse_log(file: &str, text: &str) -> Result<Vec<JepsenEvent>, HistoryError> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some(at) = line.find("jepsen.util - ") else {
            continue;
        };
        let rest = &line[at + "jepsen.util - ".len()..];
        let err = |message: String| HistoryError::parse(file, line_no, None, message);
        let mut fields = rest.splitn(4, '\t');
        let (Some(process), Some(kind), Some(f)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(err(
                "expected \"<process>\\t:<type>\\t:<f>\\t<value>\" after \"jepsen.util - \"".into(),
            ));
        };
        let value_text = fields.next().unwrap_or("").trim();
        let process = match process.trim().parse::<i64>() {
            Ok(p) => Process::Client(p),
            Err(_) => Process::Named(process.trim().trim_start_matches(':').to_owned()),
        };
        let kind = kind_of(kind.trim().trim_start_matches(':')).ok_or_else(|| {
            err(format!(
                "expected the type :invoke, :ok, :fail or :info, found {kind:?}"
            ))
        })?;
        let f = f.trim().trim_start_matches(':').to_owned();
        let mut reader = Reader::new(value_text);
        // The value is EDN; a nemesis may log free text, which is kept as a
        // string rather than refused.
        let value = match reader.next_value() {
            Ok(Some(v)) if reader.next_value().ok().flatten().is_none() => v,
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
        assert!(e.to_string().starts_with("etcd.log:1"), "{e}");
    }
}
