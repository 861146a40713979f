//! The full reader of one JSON Lines record (serde, through `wire`), for
//! the lines the in-place scanner (`scan`) declines; `stream` reads files
//! with the two.

use super::{HistoryError, Record};

/// One line as `str::lines` gives it; `None` for a blank line.
pub(super) fn parse_line(
    file: &str,
    line: &str,
    line_no: usize,
) -> Result<Option<Record>, HistoryError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(trimmed).map(Some).map_err(|e| {
        // serde_json numbers columns within the line it was given; the
        // message already says what it expected ("missing field `id`",
        // "invalid type: integer `5`, expected a string").
        let column = (e.line() == 1 && e.column() > 0)
            .then(|| e.column() + (line.len() - line.trim_start().len()));
        HistoryError::parse(file, line_no, column, strip_position(&e.to_string()))
    })
}

/// serde_json appends " at line L column C" to its messages; the error
/// already carries the position in the file.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::history::{EventKind, History, HistoryError, Op, OpResult};

    fn parse_str(name: &str, text: &str) -> Result<History, HistoryError> {
        crate::history::stream::read_history(name, text.as_bytes(), text.len() as u64)
    }

    const SAMPLE: &str = r#"{"type":"init","accounts":{"a0":100,"a1":50}}
{"type":"invoke","process":3,"time":120034,"id":"7.2","f":"put","key":"k1","value":"5"}
{"type":"ok","process":3,"time":380990,"id":"7.2","f":"put","key":"k1","value":"5"}

{"type":"invoke","process":4,"time":400000,"id":"8.1","f":"get","key":"k1"}
{"type":"ok","process":4,"time":410000,"id":"8.1","f":"get","key":"k1","result":"5"}
{"type":"invoke","process":5,"time":400001,"id":"9.1","f":"cas","key":"k2","from":null,"to":"x"}
{"type":"fail","process":5,"time":410001,"id":"9.1","f":"cas","key":"k2","from":null,"to":"x"}
{"type":"invoke","process":6,"time":1,"id":"6.1","f":"transfer","from":"a0","to":"a1","amount":7}
{"type":"info","process":6,"time":2,"id":"6.1","f":"transfer","from":"a0","to":"a1","amount":7}
{"type":"invoke","process":7,"time":1,"id":"7.9","f":"balances","accounts":["a0","a1"]}
{"type":"ok","process":7,"time":2,"id":"7.9","f":"balances","accounts":["a0","a1"],"result":{"a0":93,"a1":57}}
{"type":"nemesis","time":5000000000,"f":"partition","phase":"start","value":"n1,n2 | n3,n4,n5"}
{"type":"nemesis","time":9000000000,"f":"partition","phase":"stop"}
{"type":"nemesis","time":30000000000,"f":"heal","phase":"final"}
{"type":"learned","node":"n2","time":7000000,"from":0,"len":2,"cmds":[{"id":"7.2","f":"put","key":"k1","value":"5"},{"id":"n1.1","f":"checkpoint"}]}
{"type":"learned","node":"n2","time":8000000,"from":2,"len":3,"cmds":[{"id":"9.1","f":"cas","key":"k2","from":null,"to":"x"}],"final":true}
"#;

    #[test]
    fn parses_every_record_type() {
        let h = parse_str("sample", SAMPLE).unwrap();
        assert_eq!(h.records.len(), 16);
        assert_eq!(h.lines[3], 5, "the blank line is counted");
        assert_eq!(h.init().unwrap().accounts["a0"], 100);
        let events: Vec<_> = h.client_events().collect();
        assert_eq!(events.len(), 10);
        assert_eq!(events[0].kind, EventKind::Invoke);
        assert_eq!(events[3].result, Some(OpResult::Value(Some("5".into()))));
        assert_eq!(
            events[4].command.op,
            Op::Cas {
                key: "k2".into(),
                from: None,
                to: "x".into()
            }
        );
        assert_eq!(
            events[6].command.op,
            Op::Transfer {
                from: "a0".into(),
                to: "a1".into(),
                amount: 7
            }
        );
        match &events[9].result {
            Some(OpResult::Balances(b)) => assert_eq!(b["a1"], 57),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.final_heal_time(), Some(30_000_000_000));
        let obs: Vec<_> = h.observations().collect();
        assert_eq!(obs.len(), 2);
        assert!(obs[0].cmds[1].is_checkpoint());
        assert!(obs[1].is_final && !obs[0].is_final);
    }

    #[test]
    fn long_histories_parse_in_blocks_with_the_right_lines() {
        let line = SAMPLE.lines().nth(1).unwrap();
        // Several of the reader's blocks (a mebibyte each).
        let n = (4 << 20) / line.len() + 1000;
        // Non-ASCII text, so that a block boundary could fall inside a
        // character.
        let line = line.replace("\"5\"", "\"é€😀\"");
        let line = line.as_str();
        let mut text = vec![line; n].join("\n");
        text.push_str("\n{\"type\":\"bogus\"}\n");
        let e = parse_str("big", &text).unwrap_err().to_string();
        assert!(e.starts_with(&format!("big:{}:", n + 1)), "{e}");
        let h = parse_str("big", &vec![line; n].join("\n")).unwrap();
        assert_eq!(h.records.len(), n);
        assert_eq!(h.lines[n - 1], n);
    }

    #[test]
    fn writes_what_it_reads() {
        let h = parse_str("sample", SAMPLE).unwrap();
        let text = h.to_jsonl_string();
        let again = parse_str("again", &text).unwrap();
        assert_eq!(h.records, again.records);
    }

    fn error_of(text: &str) -> String {
        parse_str("h.jsonl", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let e = error_of("{\"type\":\"init\"}\n{\"type\":\"invoke\",\"time\":1,\"id\":\"1.1\",\"f\":\"get\",\"key\":\"k\"}\n");
        assert!(e.starts_with("h.jsonl:2"), "{e}");
        assert!(e.contains("process"), "{e}");

        let e = error_of("{\"type\":\"frobnicate\"}");
        assert!(e.starts_with("h.jsonl:1"), "{e}");
        assert!(e.contains("expected one of"), "{e}");

        let e = error_of("\n\n{\"type\":\"ok\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"put\",\"key\":\"k\"}");
        assert!(e.starts_with("h.jsonl:3"), "{e}");
        assert!(e.contains("value"), "{e}");

        let e = error_of("{\"type\":\"ok\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"get\",\"key\":\"k\",\"result\":5}");
        assert!(e.contains("result"), "{e}");
        let e = error_of("{\"type\":\"ok\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"balances\",\"accounts\":[\"a\"],\"result\":{\"a\":\"x\"}}");
        assert!(e.contains("result"), "{e}");

        let e = error_of(
            "{\"type\":\"learned\",\"node\":\"n1\",\"time\":1,\"from\":0,\"len\":2,\"cmds\":[]}",
        );
        assert!(e.contains("len - from"), "{e}");

        let e = error_of("{\"type\":\"invoke\", oops");
        assert!(e.starts_with("h.jsonl:1:"), "{e}");

        let e = error_of(
            "{\"type\":\"invoke\",\"process\":1,\"time\":1,\"id\":\"1.1\",\"f\":\"teleport\"}",
        );
        assert!(e.contains("teleport"), "{e}");
    }
}
