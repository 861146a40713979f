//! The records' JSON spelling. Every record type is read in one pass through
//! a flat struct of optional fields and then checked for the fields its
//! `type` and `f` need, so that a history of millions of lines is read
//! without buffering each line into a generic value first, and so that a
//! missing or mistyped field is reported with what was expected.

use super::{
    ClientEvent, CmdId, Command, EventKind, Init, LearnerObservation, NemesisEvent, Op, OpResult,
    Record,
};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RecordKind {
    Init,
    Invoke,
    Ok,
    Fail,
    Info,
    Nemesis,
    Learned,
}

/// `from` is a position in learner observations and an account or old value
/// in commands.
enum Scalar {
    Null,
    Str(String),
    Int(u64),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, null or a non-negative integer")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// `accounts` is a list in `balances` and a map of balances in `init`.
enum Accounts {
    List(Vec<String>),
    Balances(BTreeMap<String, i64>),
}

impl<'de> Deserialize<'de> for Accounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AccountsVisitor;
        impl<'de> Visitor<'de> for AccountsVisitor {
            type Value = Accounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of account keys or an object of integer balances")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Accounts, A::Error> {
                let mut list = Vec::new();
                while let Some(key) = seq.next_element::<String>()? {
                    list.push(key);
                }
                Ok(Accounts::List(list))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Accounts, A::Error> {
                let mut balances = BTreeMap::new();
                while let Some((key, balance)) = map.next_entry::<String, i64>()? {
                    balances.insert(key, balance);
                }
                Ok(Accounts::Balances(balances))
            }
        }
        d.deserialize_any(AccountsVisitor)
    }
}

/// Distinguishes a field given as `null` (`Some(None)`) from an absent one
/// (`None`): `"from": null` in a `cas` means "the key is absent".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct RecordWire<'a> {
    #[serde(rename = "type")]
    kind: RecordKind,
    process: Option<u64>,
    time: Option<u64>,
    id: Option<String>,
    /// Borrowed when it can be: it names the operation and is not kept.
    #[serde(borrow)]
    f: Option<Cow<'a, str>>,
    key: Option<String>,
    #[serde(default, deserialize_with = "present")]
    value: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    from: Option<Scalar>,
    to: Option<String>,
    amount: Option<i64>,
    accounts: Option<Accounts>,
    #[serde(default, deserialize_with = "present")]
    result: Option<serde_json::Value>,
    node: Option<String>,
    len: Option<usize>,
    cmds: Option<Vec<Command>>,
    #[serde(rename = "final")]
    is_final: Option<bool>,
    phase: Option<String>,
}

#[derive(Deserialize)]
struct CommandWire {
    id: Option<String>,
    f: Option<String>,
    key: Option<String>,
    value: Option<String>,
    #[serde(default, deserialize_with = "present")]
    from: Option<Option<String>>,
    to: Option<String>,
    amount: Option<i64>,
    accounts: Option<Vec<String>>,
}

/// The fields that make up an operation, whatever record carried them.
struct OpFields {
    key: Option<String>,
    value: Option<String>,
    from: Option<Option<String>>,
    to: Option<String>,
    amount: Option<i64>,
    accounts: Option<Vec<String>>,
}

fn need<T>(field: Option<T>, name: &str, f: &str, what: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("missing field `{name}`: expected {what} for f={f}"))
}

fn build_command(id: Option<String>, f: Option<&str>, fields: OpFields) -> Result<Command, String> {
    let id = id.ok_or("missing field `id`: expected the command id \"<client>.<seq>\"")?;
    let f =
        f.ok_or_else(|| format!("command {id}: missing field `f`: expected the operation name"))?;
    let op = build_op(f, fields).map_err(|e| format!("command {id}: {e}"))?;
    Ok(Command { id: CmdId(id), op })
}

fn build_op(f: &str, fields: OpFields) -> Result<Op, String> {
    let key = |k: Option<String>| need(k, "key", f, "a string key");
    Ok(match f {
        "get" => Op::Get { key: key(fields.key)? },
        "put" => Op::Put {
            key: key(fields.key)?,
            value: need(fields.value, "value", f, "a string")?,
        },
        "append" => Op::Append {
            key: key(fields.key)?,
            value: need(fields.value, "value", f, "a string")?,
        },
        "cas" => Op::Cas {
            key: key(fields.key)?,
            from: need(fields.from, "from", f, "a string or null (absent)")?,
            to: need(fields.to, "to", f, "a string")?,
        },
        "transfer" => Op::Transfer {
            from: need(fields.from.flatten(), "from", f, "an account key")?,
            to: need(fields.to, "to", f, "an account key")?,
            amount: need(fields.amount, "amount", f, "an integer")?,
        },
        "balances" => Op::Balances {
            accounts: need(fields.accounts, "accounts", f, "a list of account keys")?,
        },
        "checkpoint" => Op::Checkpoint,
        other => {
            return Err(format!(
                "unknown operation f={other:?}: expected one of get, put, cas, append, transfer, balances, checkpoint"
            ))
        }
    })
}

impl TryFrom<CommandWire> for Command {
    type Error = String;
    fn try_from(w: CommandWire) -> Result<Self, String> {
        let fields = OpFields {
            key: w.key,
            value: w.value,
            from: w.from,
            to: w.to,
            amount: w.amount,
            accounts: w.accounts,
        };
        build_command(w.id, w.f.as_deref(), fields)
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = CommandWire::deserialize(d)?;
        Command::try_from(wire).map_err(de::Error::custom)
    }
}

fn result_of(
    op: &Op,
    kind: EventKind,
    result: Option<serde_json::Value>,
) -> Result<Option<OpResult>, String> {
    use serde_json::Value;
    // A completion may say the operation took effect without saying what
    // it read (a retried command answered from the exactly-once table):
    // then there is no result to check.
    let Some(result) = result else {
        return Ok(None);
    };
    match (op, result) {
        (Op::Get { .. }, Value::Null) => Ok(Some(OpResult::Value(None))),
        (Op::Get { .. }, Value::String(s)) => Ok(Some(OpResult::Value(Some(s)))),
        (Op::Balances { .. }, Value::Object(map)) => {
            let mut balances = BTreeMap::new();
            for (account, v) in map {
                let Some(balance) = v.as_i64() else {
                    return Err(format!("field `result`: expected an integer balance for account {account:?}, found {v}"));
                };
                balances.insert(account, balance);
            }
            Ok(Some(OpResult::Balances(balances)))
        }
        // A result on an operation that has none, or on an invoke or a
        // failure, says nothing the checker relies on; ignore it.
        (Op::Get { .. }, v) if kind == EventKind::Ok => Err(format!(
            "field `result`: expected a string or null on a get ok, found {v}"
        )),
        (Op::Balances { .. }, v) if kind == EventKind::Ok => Err(format!(
            "field `result`: expected an object of integer balances on a balances ok, found {v}"
        )),
        _ => Ok(None),
    }
}

fn value_as_string(value: Option<serde_json::Value>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("field `value`: expected a string, found {v}")),
    }
}

impl TryFrom<RecordWire<'_>> for Record {
    type Error = String;
    fn try_from(w: RecordWire<'_>) -> Result<Self, String> {
        let time = |t: Option<u64>| {
            t.ok_or("missing field `time`: expected nanoseconds since the run started")
        };
        let kind = match w.kind {
            RecordKind::Init => {
                return match w.accounts {
                    Some(Accounts::Balances(accounts)) => Ok(Record::Init(Init { accounts })),
                    None => Ok(Record::Init(Init::default())),
                    Some(Accounts::List(_)) => Err(
                        "field `accounts`: expected an object of integer balances in init".into(),
                    ),
                };
            }
            RecordKind::Nemesis => {
                return Ok(Record::Nemesis(NemesisEvent {
                    time: time(w.time)?,
                    f: w.f
                        .ok_or("missing field `f`: expected the nemesis function")?
                        .into_owned(),
                    phase: w.phase,
                    value: w.value,
                }));
            }
            RecordKind::Learned => {
                let node = w
                    .node
                    .ok_or("missing field `node`: expected the learner's name")?;
                let from = match w.from {
                    Some(Scalar::Int(from)) => usize::try_from(from).map_err(|_| "field `from`: position too large")?,
                    _ => return Err("field `from`: expected the first position (a non-negative integer) this observation covers".into()),
                };
                let len = w
                    .len
                    .ok_or("missing field `len`: expected the learned sequence's length")?;
                let cmds = w.cmds.ok_or(
                    "missing field `cmds`: expected the learned commands at positions from..len",
                )?;
                if len < from || len - from != cmds.len() {
                    return Err(format!(
                        "learner {node}: expected cmds to hold len - from = {} commands, found {}",
                        len as i128 - from as i128,
                        cmds.len()
                    ));
                }
                return Ok(Record::Learned(LearnerObservation {
                    node,
                    time: time(w.time)?,
                    from,
                    len,
                    cmds,
                    is_final: w.is_final.unwrap_or(false),
                }));
            }
            RecordKind::Invoke => EventKind::Invoke,
            RecordKind::Ok => EventKind::Ok,
            RecordKind::Fail => EventKind::Fail,
            RecordKind::Info => EventKind::Info,
        };
        let process = w
            .process
            .ok_or("missing field `process`: expected the client process number")?;
        let from = match w.from {
            None => None,
            Some(Scalar::Null) => Some(None),
            Some(Scalar::Str(s)) => Some(Some(s)),
            Some(Scalar::Int(n)) => {
                return Err(format!(
                    "field `from`: expected a string or null in a command, found {n}"
                ))
            }
        };
        let accounts = match w.accounts {
            None => None,
            Some(Accounts::List(list)) => Some(list),
            Some(Accounts::Balances(_)) => {
                return Err("field `accounts`: expected a list of account keys".into())
            }
        };
        let fields = OpFields {
            key: w.key,
            value: value_as_string(w.value)?,
            from,
            to: w.to,
            amount: w.amount,
            accounts,
        };
        let command = build_command(w.id, w.f.as_deref(), fields)?;
        let result = result_of(&command.op, kind, w.result)
            .map_err(|e| format!("command {}: {e}", command.id))?;
        Ok(Record::Client(ClientEvent {
            kind,
            process,
            time: time(w.time)?,
            command,
            result,
        }))
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = RecordWire::deserialize(d)?;
        Record::try_from(wire).map_err(de::Error::custom)
    }
}

fn serialize_op<M: SerializeMap>(map: &mut M, op: &Op) -> Result<(), M::Error> {
    map.serialize_entry("f", op.name())?;
    match op {
        Op::Get { key } => map.serialize_entry("key", key),
        Op::Put { key, value } | Op::Append { key, value } => {
            map.serialize_entry("key", key)?;
            map.serialize_entry("value", value)
        }
        Op::Cas { key, from, to } => {
            map.serialize_entry("key", key)?;
            map.serialize_entry("from", from)?;
            map.serialize_entry("to", to)
        }
        Op::Transfer { from, to, amount } => {
            map.serialize_entry("from", from)?;
            map.serialize_entry("to", to)?;
            map.serialize_entry("amount", amount)
        }
        Op::Balances { accounts } => map.serialize_entry("accounts", accounts),
        Op::Checkpoint => Ok(()),
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        serialize_op(&mut map, &self.op)?;
        map.end()
    }
}

impl Serialize for OpResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OpResult::Value(v) => v.serialize(s),
            OpResult::Balances(b) => b.serialize(s),
        }
    }
}

impl Serialize for ClientEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", self.kind.name())?;
        map.serialize_entry("process", &self.process)?;
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("id", &self.command.id)?;
        serialize_op(&mut map, &self.command.op)?;
        if let Some(result) = &self.result {
            map.serialize_entry("result", result)?;
        }
        map.end()
    }
}

impl Serialize for LearnerObservation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", "learned")?;
        map.serialize_entry("node", &self.node)?;
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("from", &self.from)?;
        map.serialize_entry("len", &self.len)?;
        map.serialize_entry("cmds", &self.cmds)?;
        if self.is_final {
            map.serialize_entry("final", &true)?;
        }
        map.end()
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Record::Init(init) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("type", "init")?;
                map.serialize_entry("accounts", &init.accounts)?;
                map.end()
            }
            Record::Client(event) => event.serialize(s),
            Record::Nemesis(event) => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("type", "nemesis")?;
                map.serialize_entry("time", &event.time)?;
                map.serialize_entry("f", &event.f)?;
                if let Some(phase) = &event.phase {
                    map.serialize_entry("phase", phase)?;
                }
                if let Some(value) = &event.value {
                    map.serialize_entry("value", value)?;
                }
                map.end()
            }
            Record::Learned(obs) => obs.serialize(s),
        }
    }
}
