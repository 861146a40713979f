//! The recorded run: typed records of the JSON Lines history format
//! (`docs/history-format.md`, docs/DESIGN.md section 3).
//!
//! A history is the records in file order: the `init` record of bank runs,
//! client events (`invoke | ok | fail | info`), nemesis events and learner
//! observations. Every record type is `Serialize` as well as `Deserialize`,
//! so the harness can write histories with the same types the checker reads.
//!
//! Jepsen's EDN histories and old text logs are read too (`jepsen`), for
//! checking client histories no one here wrote.

pub mod edn;
mod error;
pub mod format;
pub mod jepsen;
pub mod jepsen_file;
pub mod jepsen_write;
mod jsonl;
pub(crate) mod pairing;
pub(crate) mod scan;
pub(crate) mod stream;
mod wire;

pub use error::HistoryError;
pub use format::{Format, Loaded};
pub use jepsen::{JepsenEvent, Process};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A command's unique id, `"<client>.<seq>"`. Kept as the string the run
/// wrote: leaders choose checkpoint ids, and the checker has no business
/// rejecting a spelling it does not need to understand.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CmdId(pub String);

impl fmt::Debug for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CmdId {
    fn from(s: &str) -> Self {
        CmdId(s.to_owned())
    }
}

/// What a command does (the `f` of the format and its fields).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    /// Swaps iff the current value equals `from`; `None` means absent.
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
    Append {
        key: String,
        value: String,
    },
    /// Moves `amount` from `from` to `to` iff `from` can afford it.
    Transfer {
        from: String,
        to: String,
        amount: i64,
    },
    /// Reads every listed account at once.
    Balances {
        accounts: Vec<String>,
    },
    /// Proposed by leaders; touches every key (Section 6.3).
    Checkpoint,
}

/// The keys a command touches: its interference footprint (Section 4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Footprint<'a> {
    /// Every key: a checkpoint.
    All,
    /// These keys; may repeat a key (a transfer to itself) or be empty.
    Keys(&'a str, Option<&'a str>),
    List(&'a [String]),
}

impl Op {
    /// The name of the operation as the format spells it (`f`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Cas { .. } => "cas",
            Op::Append { .. } => "append",
            Op::Transfer { .. } => "transfer",
            Op::Balances { .. } => "balances",
            Op::Checkpoint => "checkpoint",
        }
    }

    pub fn footprint(&self) -> Footprint<'_> {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => Footprint::Keys(key, None),
            Op::Transfer { from, to, .. } => Footprint::Keys(from, Some(to)),
            Op::Balances { accounts } => Footprint::List(accounts),
            Op::Checkpoint => Footprint::All,
        }
    }

    /// The distinct keys the command touches, or `None` for every key.
    pub fn keys(&self) -> Option<Vec<&str>> {
        let mut keys: Vec<&str> = match self.footprint() {
            Footprint::All => return None,
            Footprint::Keys(a, None) => vec![a],
            Footprint::Keys(a, Some(b)) => vec![a, b],
            Footprint::List(list) => list.iter().map(String::as_str).collect(),
        };
        keys.sort_unstable();
        keys.dedup();
        Some(keys)
    }
}

/// A command as it appears in client events and learner observations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Command {
    pub id: CmdId,
    pub op: Op,
}

impl Command {
    pub fn is_checkpoint(&self) -> bool {
        matches!(self.op, Op::Checkpoint)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.id)?;
        match &self.op {
            Op::Get { key } => write!(f, "get {key}"),
            Op::Put { key, value } => write!(f, "put {key}={value:?}"),
            Op::Cas { key, from, to } => match from {
                Some(from) => write!(f, "cas {key} {from:?}->{to:?}"),
                None => write!(f, "cas {key} absent->{to:?}"),
            },
            Op::Append { key, value } => write!(f, "append {key}+={value:?}"),
            Op::Transfer { from, to, amount } => write!(f, "transfer {amount} {from}->{to}"),
            Op::Balances { accounts } => write!(f, "balances [{}]", accounts.join(",")),
            Op::Checkpoint => f.write_str("checkpoint"),
        }
    }
}

/// The `type` of a client event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Invoke,
    /// Took effect, with this result.
    Ok,
    /// Certainly did not take effect (or, for `cas` and `transfer`, took
    /// effect as the no-op the state machine answers when its condition
    /// fails).
    Fail,
    /// Indeterminate: may or may not have taken effect (Jepsen's meaning).
    Info,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Invoke => "invoke",
            EventKind::Ok => "ok",
            EventKind::Fail => "fail",
            EventKind::Info => "info",
        }
    }
}

/// The `result` of a completed operation, where it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// What a `get` read; `None` is an absent key.
    Value(Option<String>),
    /// What a `balances` read.
    Balances(BTreeMap<String, i64>),
}

/// One client event: an invocation or a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEvent {
    pub kind: EventKind,
    pub process: u64,
    /// Nanoseconds since the run started.
    pub time: u64,
    pub command: Command,
    /// Present on `ok` completions of `get` and `balances`; an `ok`
    /// without it took effect with a result no one saw.
    pub result: Option<OpResult>,
}

/// A fault injected or healed by the nemesis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NemesisEvent {
    pub time: u64,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

impl NemesisEvent {
    /// The record that ends all faults; Liveness is judged from it on.
    pub fn is_final_heal(&self) -> bool {
        self.phase.as_deref() == Some("final")
    }
}

/// The initial balances of a bank run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    #[serde(default)]
    pub accounts: BTreeMap<String, i64>,
}

/// One learner's learned sequence at positions `from..len`; with the
/// previous sequence cut to `from` it gives the learner's whole learned
/// sequence, one order consistent with its learned history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnerObservation {
    pub node: String,
    pub time: u64,
    pub from: usize,
    pub len: usize,
    pub cmds: Vec<Command>,
    /// Taken after the final heal from a live node.
    pub is_final: bool,
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Init(Init),
    Client(ClientEvent),
    Nemesis(NemesisEvent),
    Learned(LearnerObservation),
}

impl Record {
    /// The record's time; an `init` record is at the start.
    pub fn time(&self) -> u64 {
        match self {
            Record::Init(_) => 0,
            Record::Client(e) => e.time,
            Record::Nemesis(e) => e.time,
            Record::Learned(o) => o.time,
        }
    }
}

/// A parsed history: its records in file order, each with its line number.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub records: Vec<Record>,
    /// `lines[i]` is the 1-based line of `records[i]` in its source.
    pub lines: Vec<usize>,
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    /// Appends a record (for tests and writers); its line is its position.
    pub fn push(&mut self, record: Record) {
        self.records.push(record);
        self.lines.push(self.lines.last().map_or(1, |l| l + 1));
    }

    /// Parses a JSON Lines history from a string. Errors name the source as
    /// `<string>`.
    pub fn from_jsonl_str(text: &str) -> Result<History, HistoryError> {
        stream::read_history("<string>", text.as_bytes(), text.len() as u64)
    }

    /// Parses a JSON Lines history from a file. Errors name the file, the
    /// line and what was expected there.
    pub fn from_jsonl_path(path: &Path) -> Result<History, HistoryError> {
        let name = path.display().to_string();
        let io = |source| HistoryError::Io {
            file: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        stream::read_history(&name, file, size)
    }

    /// Writes the history as JSON Lines, one record a line.
    pub fn write_jsonl(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for record in &self.records {
            serde_json::to_writer(&mut *out, record)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn to_jsonl_string(&self) -> String {
        let mut out = Vec::new();
        self.write_jsonl(&mut out)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// The initial balances (the first `init` record), if any.
    pub fn init(&self) -> Option<&Init> {
        self.records.iter().find_map(|r| match r {
            Record::Init(init) => Some(init),
            _ => None,
        })
    }

    pub fn client_events(&self) -> impl Iterator<Item = &ClientEvent> + '_ {
        self.records.iter().filter_map(|r| match r {
            Record::Client(e) => Some(e),
            _ => None,
        })
    }

    pub fn nemesis_events(&self) -> impl Iterator<Item = &NemesisEvent> + '_ {
        self.records.iter().filter_map(|r| match r {
            Record::Nemesis(e) => Some(e),
            _ => None,
        })
    }

    pub fn observations(&self) -> impl Iterator<Item = &LearnerObservation> + '_ {
        self.records.iter().filter_map(|r| match r {
            Record::Learned(o) => Some(o),
            _ => None,
        })
    }

    /// The time of the final heal, after which no fault is injected.
    pub fn final_heal_time(&self) -> Option<u64> {
        self.nemesis_events()
            .find(|e| e.is_final_heal())
            .map(|e| e.time)
    }
}
