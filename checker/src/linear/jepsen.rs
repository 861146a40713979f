//! The client operations of a Jepsen history, taken in one event at a
//! time, so that a history read as a stream is never held whole.
//!
//! A completion pairs with its process's pending invocation; a process that
//! invokes again without completing leaves the earlier operation with no
//! completion (indeterminate), as does the end of the history. Times are
//! event positions: a Jepsen history's order is its real-time order. The
//! operations go into the same compact slots as the project's own
//! histories (`ClientOps`), which turn them into partitions at the end.

use super::build::{BuildError, FailReading, LinearHistory, ModelKind};
use super::clients::ClientOps;
use crate::fxhash::FxHashMap;
use crate::history::edn::Edn;
use crate::history::scan::{ScannedEvent, ScannedOp};
use crate::history::{EventKind, JepsenEvent, Process};
use crate::intern::Strings;
use std::collections::BTreeMap;

/// Jepsen events in, client operations out.
pub struct JepsenOps {
    ops: ClientOps,
    /// Per process, its pending command.
    pending: FxHashMap<i64, u32>,
    commands: u32,
    /// Events taken in: the time of the next.
    events: u64,
}

/// A value as the text the model compares: strings as they are, `nil` as
/// nothing (absent), anything else as it prints.
enum Text<'a> {
    Absent,
    Borrowed(&'a str),
    Owned(String),
}

impl<'a> Text<'a> {
    fn of(v: &'a Edn) -> Self {
        match v {
            Edn::Nil => Text::Absent,
            Edn::Str(s) => Text::Borrowed(s),
            other => Text::Owned(other.to_string()),
        }
    }

    fn get(&self) -> Option<&str> {
        match self {
            Text::Absent => None,
            Text::Borrowed(s) => Some(s),
            Text::Owned(s) => Some(s),
        }
    }
}

fn unsupported(file: &str, line: usize, message: String) -> BuildError {
    BuildError::Unsupported {
        file: file.to_owned(),
        line,
        message,
    }
}

impl JepsenOps {
    pub fn new(fail: FailReading) -> Self {
        JepsenOps {
            ops: ClientOps::jepsen(fail),
            pending: FxHashMap::default(),
            commands: 0,
            events: 0,
        }
    }

    /// The command `process`'s event of `kind` belongs to; `None` for a
    /// completion with no invocation pending.
    fn command(&mut self, process: i64, kind: EventKind) -> Option<u32> {
        if kind == EventKind::Invoke {
            let command = self.commands;
            self.commands += 1;
            self.pending.insert(process, command);
            Some(command)
        } else {
            self.pending.remove(&process)
        }
    }

    /// Takes in the next event of the history (of `file`).
    pub fn event(&mut self, file: &str, e: &JepsenEvent) -> Result<(), BuildError> {
        let time = self.events;
        self.events += 1;
        let Process::Client(process) = e.process else {
            return Ok(());
        };
        let Some(command) = self.command(process, e.kind) else {
            return Ok(());
        };
        // A timed-out completion says nothing: as if there were none.
        let kind = if e.kind != EventKind::Invoke && e.timed_out() {
            EventKind::Info
        } else {
            e.kind
        };
        let key = match &e.key {
            None => Text::Borrowed("register"),
            Some(Edn::Str(s)) => Text::Borrowed(s),
            Some(other) => Text::Owned(other.to_string()),
        };
        let value = Text::of(&e.value);
        let pair = e.value.as_seq().and_then(|s| <&[Edn; 2]>::try_from(s).ok());
        let (from, to) = pair.map_or((Text::Absent, Text::Absent), |[f, t]| {
            (Text::of(f), Text::of(t))
        });
        let operands = Operands {
            key: key.get().unwrap_or("register"),
            value: value.get(),
            cas: pair.is_some().then(|| (from.get(), to.get().unwrap_or(""))),
        };
        let op = scanned_op(file, e, kind, &operands)?;
        let read = (kind == EventKind::Ok && matches!(op, ScannedOp::Get { .. }))
            .then_some(operands.value);
        let event = ScannedEvent {
            kind,
            process: process as u64,
            time,
            id: "",
            op,
            read,
        };
        self.ops.scanned(command, &event, e.line);
        Ok(())
    }

    /// The partitions of every event taken in.
    pub fn finish(self, file: &str, model: Option<ModelKind>) -> Result<LinearHistory, BuildError> {
        self.ops
            .build(&Strings::default(), file, model, &BTreeMap::new())
    }
}

/// The texts an event's operation is made of.
struct Operands<'a> {
    key: &'a str,
    value: Option<&'a str>,
    /// A `[from to]` value.
    cas: Option<(Option<&'a str>, &'a str)>,
}

/// The operation of event `e` (completed as `kind`).
fn scanned_op<'a>(
    file: &str,
    e: &JepsenEvent,
    kind: EventKind,
    o: &Operands<'a>,
) -> Result<ScannedOp<&'a str>, BuildError> {
    let key = o.key;
    Ok(match e.f.as_str() {
        "read" | "get" if matches!(e.value, Edn::Map(_)) && kind == EventKind::Ok => {
            return Err(unsupported(
                file,
                e.line,
                format!(
                    "a read of balances {} needs the bank model, and Jepsen bank histories do not record the \
                     initial balances; write the history in the JSON Lines format with an init record",
                    e.value
                ),
            ))
        }
        "read" | "get" => ScannedOp::Get { key },
        "write" | "put" => ScannedOp::Put {
            key,
            value: o.value.unwrap_or(""),
        },
        "append" => ScannedOp::Append {
            key,
            value: o.value.unwrap_or(""),
        },
        "cas" | "compare-and-set" => match o.cas {
            Some((from, to)) => ScannedOp::Cas { key, from, to },
            // A completion may say `:timed-out` in its place.
            None if kind != EventKind::Invoke => ScannedOp::Get { key },
            None => {
                return Err(unsupported(
                    file,
                    e.line,
                    format!("expected :cas's value to be [from to], found {}", e.value),
                ))
            }
        },
        "transfer" => {
            return Err(unsupported(
                file,
                e.line,
                "Jepsen bank histories do not record the initial balances; write the history in the JSON \
                 Lines format with an init record"
                    .into(),
            ))
        }
        other => {
            return Err(unsupported(
                file,
                e.line,
                format!(
                    "unknown operation :{other}: expected :read, :write, :cas, :append, :get, :put or :transfer"
                ),
            ))
        }
    })
}
