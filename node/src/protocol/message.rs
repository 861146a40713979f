//! The messages of appendix C.6, with c-structs sent as deltas
//! (Section 6.3): a vote or suggestion is `⊥ • log` for a log that only
//! grows within a ballot, so a message carries `log[base..]`.

use super::ballot::{Ballot, NodeId};
use crate::command::{CmdId, Command, Digest};
use serde::{Deserialize, Serialize};

/// An instance of the consensus algorithm: the part of the command history
/// between two checkpoints (Section 6.3).
pub type Instance = u64;

/// What an acceptor reports for one instance in a 1b message: `vbal` and
/// `vote` of C.6 (`bal[a]` and `val[a]`), the vote as a full command log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceVote {
    pub instance: Instance,
    pub vbal: Ballot,
    pub vote: Vec<Command>,
}

/// A value suggested for one instance when a ballot starts (`Phase2Start`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub instance: Instance,
    pub value: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// `⟨"propose", C⟩`, batched.
    Propose { cmds: Vec<Command> },
    /// `⟨"1a", m⟩`.
    Phase1a { bal: Ballot },
    /// `⟨"1b", m, a, vbal, vote⟩` for every instance the acceptor has not
    /// forgotten. Instances `≥ from` that are not listed have `vote = ⊥`
    /// and the `vbal` of the range of `rests` they lie in (each range runs
    /// from its instance to the next one's; the first starts at `from`);
    /// instances below `from` are decided and forgotten by this acceptor.
    Phase1b {
        bal: Ballot,
        acc: NodeId,
        from: Instance,
        votes: Vec<InstanceVote>,
        rests: Vec<(Instance, Ballot)>,
    },
    /// An acceptor already in a higher ballot tells a leader (Section 6.1:
    /// "the acceptor notifies the leader").
    Preempted { bal: Ballot, mbal: Ballot },
    /// `⟨"2a", m, v⟩` sent by `Phase2Start`: the suggested values for the
    /// listed instances, and `⊥` for every instance `≥ rest_from`.
    Phase2Start {
        bal: Ballot,
        values: Vec<Suggestion>,
        rest_from: Instance,
    },
    /// `⟨"2a", m, maxTried • σ⟩` sent by `Phase2aClassic`, as a delta: the
    /// leader's suggestion for `instance` is its previous one of length
    /// `base` followed by `cmds`.
    Phase2a {
        bal: Ballot,
        instance: Instance,
        base: u32,
        cmds: Vec<Command>,
    },
    /// `⟨"2b", m, a, v⟩` as a delta on the acceptor's previous vote in the
    /// same instance and ballot. `fast` tells whether the commands were
    /// appended by `Phase2bFast` rather than suggested by the leader.
    Phase2b {
        bal: Ballot,
        acc: NodeId,
        instance: Instance,
        base: u32,
        cmds: Vec<Command>,
        fast: bool,
    },
    /// A receiver missed part of a delta and asks for it again: the sender's
    /// vote (or suggestion) for `instance` in `bal` from position `have` on.
    Resend {
        bal: Ballot,
        instance: Instance,
        have: u32,
    },
    /// A learner asks every acceptor for its current vote in an instance it
    /// has not finished learning, and any node for the value if chosen.
    /// `have` lists, per acceptor, the ballot and length of the vote the
    /// learner holds, so the answer is only what it lacks.
    Sync {
        instance: Instance,
        have: Vec<(NodeId, Ballot, u32)>,
    },
    /// A learner that learned a closed instance hands its value to a node
    /// that asked for it (catch-up of a lagging or restarted node).
    Chosen {
        instance: Instance,
        value: Vec<Command>,
    },
    /// The leader of `bal` is alive; its learner has learned every instance
    /// below `closed_below` and `open_len` commands of the next one, so a
    /// node that has not can catch up.
    Heartbeat {
        bal: Ballot,
        closed_below: Instance,
        open_len: u32,
    },
    /// State transfer (as Raft's InstallSnapshot): a node asked for an
    /// instance it compacted away offers its snapshot of every instance
    /// below `instance`, `total` bytes long.
    SnapshotOffer { instance: Instance, total: u64 },
    /// The asking node fetches the offered snapshot from `offset` on.
    SnapshotFetch { instance: Instance, offset: u64 },
    /// Bytes `offset..offset + bytes.len()` of the snapshot of every
    /// instance below `instance`.
    SnapshotChunk {
        instance: Instance,
        offset: u64,
        total: u64,
        bytes: Vec<u8>,
    },
    /// An acceptor answers a heartbeat with the ballot it is in and how far
    /// its node has learned.
    HeartbeatAck {
        acc: NodeId,
        mbal: Ballot,
        closed_below: Instance,
    },
    /// A [`Message::Phase2b`] broadcast to every learner, naming its
    /// commands by id and digest: every node received the commands already,
    /// from their proposer or leader (`protocol::payloads`). A learner
    /// lacking one asks with `Resend` and gets the full `Phase2b`.
    Phase2bIds {
        bal: Ballot,
        acc: NodeId,
        instance: Instance,
        base: u32,
        cmds: Vec<(CmdId, Digest)>,
        fast: bool,
    },
    /// The leader of fast ballot `bal` closes `instance` with the
    /// checkpoint `ckpt` after the commands `upto` (by id and digest), the
    /// ones its learner learned there: an acceptor appends those it has
    /// not voted for, then the checkpoint, so that the acceptors close the
    /// instance after the same commands, whatever order the proposals and
    /// the checkpoint reached them in (`protocol::closing`).
    Close {
        bal: Ballot,
        instance: Instance,
        upto: Vec<(CmdId, Digest)>,
        ckpt: Command,
    },
    /// The leader of fast ballot `bal` will close `instance`: an acceptor
    /// votes into it only commands another acceptor voted there, and
    /// answers with `ClosingAck` (`protocol::closing`).
    Closing { bal: Ballot, instance: Instance },
    /// Acceptor `acc` holds back new commands from `instance`; every vote
    /// it sent before this went ahead of it on the same stream.
    ClosingAck {
        bal: Ballot,
        acc: NodeId,
        instance: Instance,
    },
}

impl Message {
    /// A short name for traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Propose { .. } => "propose",
            Message::Phase1a { .. } => "1a",
            Message::Phase1b { .. } => "1b",
            Message::Preempted { .. } => "preempted",
            Message::Phase2Start { .. } => "2a-start",
            Message::Phase2a { .. } => "2a",
            Message::Phase2b { .. } => "2b",
            Message::Resend { .. } => "resend",
            Message::Sync { .. } => "sync",
            Message::Chosen { .. } => "chosen",
            Message::SnapshotOffer { .. } => "snapshot-offer",
            Message::SnapshotFetch { .. } => "snapshot-fetch",
            Message::SnapshotChunk { .. } => "snapshot-chunk",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatAck { .. } => "heartbeat-ack",
            Message::Phase2bIds { .. } => "2b-ids",
            Message::Close { .. } => "close",
            Message::Closing { .. } => "closing",
            Message::ClosingAck { .. } => "closing-ack",
        }
    }

    /// How many commands the message carries whole (their payloads).
    pub fn commands_carried(&self) -> usize {
        match self {
            Message::Propose { cmds }
            | Message::Phase2a { cmds, .. }
            | Message::Phase2b { cmds, .. } => cmds.len(),
            Message::Chosen { value, .. } => value.len(),
            Message::Close { .. } => 1,
            Message::Phase2Start { values, .. } => values.iter().map(|s| s.value.len()).sum(),
            Message::Phase1b { votes, .. } => votes.iter().map(|v| v.vote.len()).sum(),
            _ => 0,
        }
    }
}

/// A durable record. The acceptor's records are its promises (`mbal`, `bal`,
/// `val` of Section 5.5); the learner's make Stability survive restarts.
/// Replaying a node's records in order rebuilds its durable state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The acceptor joined ballot `mbal` (Phase1b).
    Promise { mbal: Ballot },
    /// The acceptor's vote in `instance` is now in ballot `bal`: its
    /// previous log of length `base` (0 when the ballot changed) followed by
    /// `cmds`.
    Vote {
        instance: Instance,
        bal: Ballot,
        base: u32,
        cmds: Vec<Command>,
    },
    /// Every instance `≥ from` without an explicit vote has `bal = bal` and
    /// `val = ⊥`.
    Rest { from: Instance, bal: Ballot },
    /// The acceptor forgot the decided instances below `below`.
    Forget { below: Instance },
    /// The leader claimed ballots up to this round; after a restart it never
    /// reuses one of them (a reused ballot could carry a different value).
    LeaderRound { round: u64 },
    /// The learner learned these commands of `instance` (appended to what it
    /// had learned of it).
    Learned {
        instance: Instance,
        cmds: Vec<Command>,
    },
    /// Part `part` of `parts` of a snapshot of every instance below
    /// `instance`: the bytes of an encoded
    /// [`SnapshotState`](super::snapshot::SnapshotState). A compacted log
    /// starts with one (Section 6.3).
    Snapshot {
        instance: Instance,
        part: u32,
        parts: u32,
        bytes: Vec<u8>,
    },
}
