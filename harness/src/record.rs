//! Turns what the harness sees (node commands, replies, learned sequences)
//! into the checker's history records (docs/history-format.md).

use gpaxos_checker::history as h;
use gpaxos_node::app::Reply;
use gpaxos_node::{Command, Op};

pub fn command(c: &Command) -> h::Command {
    let op = match &*c.op {
        Op::Get { key } => h::Op::Get { key: key.clone() },
        Op::Put { key, value } => h::Op::Put {
            key: key.clone(),
            value: value.clone(),
        },
        Op::Cas { key, from, to } => h::Op::Cas {
            key: key.clone(),
            from: from.clone(),
            to: to.clone(),
        },
        Op::Append { key, value } => h::Op::Append {
            key: key.clone(),
            value: value.clone(),
        },
        Op::Transfer { from, to, amount } => h::Op::Transfer {
            from: from.clone(),
            to: to.clone(),
            amount: *amount,
        },
        Op::Balances { accounts } => h::Op::Balances {
            accounts: accounts.clone(),
        },
        Op::Checkpoint => h::Op::Checkpoint,
    };
    h::Command {
        id: h::CmdId(c.id.to_string()),
        op,
    }
}

pub fn invoke(process: u64, time: u64, c: &Command) -> h::Record {
    h::Record::Client(h::ClientEvent {
        kind: h::EventKind::Invoke,
        process,
        time,
        command: command(c),
        result: None,
    })
}

/// The completion of an operation from the state machine's reply.
pub fn completion(process: u64, time: u64, c: &Command, reply: &Reply) -> h::Record {
    let (kind, result) = match reply {
        Reply::Value(v) => (h::EventKind::Ok, Some(h::OpResult::Value(v.clone()))),
        Reply::Balances(b) => (
            h::EventKind::Ok,
            Some(h::OpResult::Balances(b.clone().into_iter().collect())),
        ),
        Reply::Swapped(false) | Reply::Moved(false) => (h::EventKind::Fail, None),
        Reply::Done | Reply::Swapped(true) | Reply::Moved(true) | Reply::Duplicate => {
            (h::EventKind::Ok, None)
        }
    };
    h::Record::Client(h::ClientEvent {
        kind,
        process,
        time,
        command: command(c),
        result,
    })
}

pub fn info(process: u64, time: u64, c: &Command) -> h::Record {
    h::Record::Client(h::ClientEvent {
        kind: h::EventKind::Info,
        process,
        time,
        command: command(c),
        result: None,
    })
}

pub fn nemesis(time: u64, f: &str, phase: &str, value: Option<String>) -> h::Record {
    h::Record::Nemesis(h::NemesisEvent {
        time,
        f: f.to_owned(),
        phase: Some(phase.to_owned()),
        value: value.map(serde_json::Value::String),
    })
}

pub fn learned(
    node: String,
    time: u64,
    from: usize,
    cmds: &[Command],
    is_final: bool,
) -> h::Record {
    h::Record::Learned(h::LearnerObservation {
        node,
        time,
        from,
        len: from + cmds.len(),
        cmds: cmds.iter().map(command).collect(),
        is_final,
    })
}
