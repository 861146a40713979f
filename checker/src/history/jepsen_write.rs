//! A project history written as a Jepsen history (`history.edn`): one
//! vector of op maps, `{:index 0, :time 120034, :type :invoke, :process 3,
//! :f :write, :key "k1", :value "5"}`, so that Jepsen's own tools (and this
//! checker's EDN reader) can read a run.
//!
//! Operations map to Jepsen's names: `get` and `balances` are `:read`,
//! `put` is `:write`, `cas` is `:cas` with `[from to]`, `append` and
//! `transfer` keep their names (a transfer's value is `{:from :to
//! :amount}`, a read of balances a map of account to balance). The key of
//! a kv operation is the op's `:key`, where the checker's reader takes it.
//! A `fail` stays `:fail`; for a `cas` it is the refusal the node answers
//! when the comparison failed, as Jepsen's clients write it, so read the
//! export with Porcupine's `cas-refused` reading to keep that observation.
//! An `ok` read whose result no one saw (a duplicate's reply) is written
//! `:info`: a Jepsen `:ok` read of `nil` would claim the key was absent.
//! Nemesis records are `:info` ops of process `:nemesis`; learner
//! observations and the bank's `init` have no Jepsen form and are left out.

use super::edn::Edn;
use super::{ClientEvent, EventKind, History, NemesisEvent, Op, OpResult, Record};
use std::io::{self, Write};

/// Writes `history` as a Jepsen EDN history, one op a line.
pub fn write_edn(history: &History, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    let mut index = 0i64;
    for record in &history.records {
        let op = match record {
            Record::Client(e) => client_op(e),
            Record::Nemesis(e) => nemesis_op(e),
            Record::Init(_) | Record::Learned(_) => continue,
        };
        let mut fields = vec![kw("index", Edn::Int(index)), kw("time", int(record.time()))];
        fields.extend(op);
        if index > 0 {
            out.write_all(b"\n ")?;
        }
        let mut line = String::new();
        print(&mut line, &Edn::Map(fields));
        out.write_all(line.as_bytes())?;
        index += 1;
    }
    out.write_all(b"]\n")
}

fn kw(name: &str, value: Edn) -> (Edn, Edn) {
    (Edn::Keyword(name.to_owned()), value)
}

fn int(n: u64) -> Edn {
    Edn::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn text(s: &str) -> Edn {
    Edn::Str(s.to_owned())
}

/// A keyword where the name is one, else a string.
pub fn keyword_or_string(name: &str) -> Edn {
    let symbolic = |c: char| c.is_ascii_alphanumeric() || "*+!-_?<>=.".contains(c);
    let starts_well = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if starts_well && name.chars().all(symbolic) {
        Edn::Keyword(name.to_owned())
    } else {
        text(name)
    }
}

/// The fields after `:index` and `:time` of a client event.
fn client_op(e: &ClientEvent) -> Vec<(Edn, Edn)> {
    let mut kind = e.kind;
    let completed_ok = e.kind == EventKind::Ok;
    let (f, key, value) = match &e.command.op {
        Op::Get { key } => {
            let value = match &e.result {
                Some(OpResult::Value(v)) if completed_ok => v.as_deref().map_or(Edn::Nil, text),
                None if completed_ok => {
                    kind = EventKind::Info;
                    Edn::Nil
                }
                _ => Edn::Nil,
            };
            ("read", Some(key), value)
        }
        Op::Put { key, value } => ("write", Some(key), text(value)),
        Op::Cas { key, from, to } => {
            let from = from.as_deref().map_or(Edn::Nil, text);
            ("cas", Some(key), Edn::Vector(vec![from, text(to)]))
        }
        Op::Append { key, value } => ("append", Some(key), text(value)),
        Op::Transfer { from, to, amount } => {
            let value = Edn::Map(vec![
                kw("from", text(from)),
                kw("to", text(to)),
                kw("amount", Edn::Int(*amount)),
            ]);
            ("transfer", None, value)
        }
        Op::Balances { .. } => {
            let value = match &e.result {
                Some(OpResult::Balances(b)) if completed_ok => {
                    Edn::Map(b.iter().map(|(a, n)| (text(a), Edn::Int(*n))).collect())
                }
                None if completed_ok => {
                    kind = EventKind::Info;
                    Edn::Nil
                }
                _ => Edn::Nil,
            };
            ("read", None, value)
        }
        Op::Checkpoint => ("checkpoint", None, Edn::Nil),
    };
    let mut fields = vec![
        kw("type", Edn::Keyword(kind.name().to_owned())),
        kw("process", int(e.process)),
        kw("f", Edn::Keyword(f.to_owned())),
    ];
    if let Some(key) = key {
        fields.push(kw("key", text(key)));
    }
    fields.push(kw("value", value));
    fields
}

/// The fields after `:index` and `:time` of a nemesis record.
fn nemesis_op(e: &NemesisEvent) -> Vec<(Edn, Edn)> {
    let value = match &e.value {
        None => Edn::Nil,
        Some(serde_json::Value::String(s)) => text(s),
        Some(v) => text(&v.to_string()),
    };
    let mut fields = vec![
        kw("type", Edn::Keyword("info".into())),
        kw("process", Edn::Keyword("nemesis".into())),
        kw("f", keyword_or_string(&e.f)),
    ];
    if let Some(phase) = &e.phase {
        fields.push(kw("phase", keyword_or_string(phase)));
    }
    fields.push(kw("value", value));
    fields
}

/// Prints `v` as EDN that Clojure's reader reads back as the same value.
/// (`Edn`'s `Display` is for messages: it escapes strings the Rust way.)
pub fn print(out: &mut String, v: &Edn) {
    let seq = |out: &mut String, open: &str, items: &[Edn], close: &str| {
        out.push_str(open);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            print(out, item);
        }
        out.push_str(close);
    };
    match v {
        Edn::Nil => out.push_str("nil"),
        Edn::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Edn::Int(i) => out.push_str(&i.to_string()),
        Edn::Float(x) if x.is_nan() => out.push_str("##NaN"),
        Edn::Float(x) if x.is_infinite() => out.push_str(if *x > 0.0 { "##Inf" } else { "##-Inf" }),
        // `{:?}` keeps the `.0` that makes it a float again.
        Edn::Float(x) => out.push_str(&format!("{x:?}")),
        Edn::Str(s) => string(out, s),
        Edn::Char(c) => out.push_str(&format!("\\{c}")),
        Edn::Keyword(k) => {
            out.push(':');
            out.push_str(k);
        }
        Edn::Symbol(s) => out.push_str(s),
        Edn::List(items) => seq(out, "(", items, ")"),
        Edn::Vector(items) => seq(out, "[", items, "]"),
        Edn::Set(items) => seq(out, "#{", items, "}"),
        Edn::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print(out, k);
                out.push(' ');
                print(out, v);
            }
            out.push('}');
        }
        Edn::Tagged(tag, v) => {
            out.push('#');
            out.push_str(tag);
            out.push(' ');
            print(out, v);
        }
    }
}

/// A string literal with EDN's escapes (also what `generate --format edn`
/// writes).
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
