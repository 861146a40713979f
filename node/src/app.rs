//! The replicated state machine: a kv store and a bank.
//!
//! Learners execute the learned history in any linearization (Section 4.4:
//! executions of equivalent c-seqs yield the same result when
//! non-interfering commands commute). So every command may read or write
//! only the keys of its footprint, and the bookkeeping that is not keyed,
//! the reply cache, is kept order-independent.
//!
//! Exactly-once is the learner's: its client sessions
//! ([`crate::protocol::session`]) hand out each command id once, so the
//! state machine executes whatever it is given. It keeps each client's
//! latest reply, so a retry of a command already executed is answered
//! without running it again.

use crate::command::{CmdId, Command, Key, Op};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The outcome of one command, sent back to the client that proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `Get`: the value, or `None` if the key is absent.
    Value(Option<String>),
    /// `Put`, `Append` and `Checkpoint`, which cannot fail.
    Done,
    /// `Cas`: whether it swapped.
    Swapped(bool),
    /// `Transfer`: whether the money moved.
    Moved(bool),
    /// `Balances`: each listed account's balance (absent accounts hold 0).
    Balances(BTreeMap<Key, i64>),
    /// The id was applied before and is no longer its client's latest
    /// command, so its reply is no longer kept. The client has already
    /// moved on, so nobody waits for this reply.
    Duplicate,
}

/// The state a checkpoint saves (Section 6.3): enough to rebuild the state
/// machine without replaying the instances before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    kv: BTreeMap<Key, String>,
    balances: BTreeMap<Key, i64>,
    latest: BTreeMap<u64, (u64, Reply)>,
}

/// The kv store and bank. Ordered maps keep snapshots of equal states
/// byte-for-byte equal across replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    kv: BTreeMap<Key, String>,
    balances: BTreeMap<Key, i64>,
    /// Per client, its highest applied seq and that command's reply, so a
    /// retry of the command a client still waits for gets the original
    /// reply. Keyed by the highest seq, not the last applied, because
    /// non-interfering commands of one client may be applied in either
    /// order and replicas must end in the same state.
    latest: BTreeMap<u64, (u64, Reply)>,
}

impl StateMachine {
    pub fn new() -> Self {
        StateMachine::default()
    }

    /// A bank whose accounts start with the given balances (the `init`
    /// record of `docs/history-format.md`).
    pub fn with_accounts(accounts: &[(Key, i64)]) -> Self {
        StateMachine {
            balances: accounts.iter().cloned().collect(),
            ..StateMachine::default()
        }
    }

    /// Executes `cmd` (the learner hands out each id once) and keeps its
    /// reply if it is its client's latest command.
    pub fn apply(&mut self, cmd: &Command) -> Reply {
        let id = cmd.id;
        let reply = self.execute(&cmd.op);
        match self.latest.get(&id.client) {
            Some((seq, _)) if *seq > id.seq => {}
            _ => {
                self.latest.insert(id.client, (id.seq, reply.clone()));
            }
        }
        reply
    }

    fn execute(&mut self, op: &Op) -> Reply {
        match op {
            Op::Get { key } => Reply::Value(self.kv.get(key).cloned()),
            Op::Put { key, value } => {
                self.kv.insert(key.clone(), value.clone());
                Reply::Done
            }
            Op::Cas { key, from, to } => {
                let swap = self.kv.get(key) == from.as_ref();
                if swap {
                    self.kv.insert(key.clone(), to.clone());
                }
                Reply::Swapped(swap)
            }
            Op::Append { key, value } => {
                self.kv.entry(key.clone()).or_default().push_str(value);
                Reply::Done
            }
            Op::Transfer { from, to, amount } => {
                // A negative amount would take money from `to` without
                // asking whether `to` can afford it, so it never moves.
                let moved = *amount >= 0 && self.balance(from) >= *amount;
                if moved {
                    *self.balances.entry(from.clone()).or_insert(0) -= amount;
                    *self.balances.entry(to.clone()).or_insert(0) += amount;
                }
                Reply::Moved(moved)
            }
            Op::Balances { accounts } => Reply::Balances(
                accounts
                    .iter()
                    .map(|a| (a.clone(), self.balance(a)))
                    .collect(),
            ),
            Op::Checkpoint => Reply::Done,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.kv.get(key).map(String::as_str)
    }

    /// An account's balance; an account never credited holds 0.
    pub fn balance(&self, account: &str) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    /// The sum of every balance, which transfers preserve.
    pub fn total_balance(&self) -> i64 {
        self.balances.values().sum()
    }

    /// The reply to `id`, a command this state machine executed: kept if it
    /// is its client's latest; `None` if the client's latest executed
    /// command is older (`id` is yet to be executed here).
    pub fn cached_reply(&self, id: CmdId) -> Option<Reply> {
        match self.latest.get(&id.client) {
            Some((seq, reply)) if *seq == id.seq => Some(reply.clone()),
            Some((seq, _)) if *seq > id.seq => Some(Reply::Duplicate),
            _ => None,
        }
    }

    /// Keeps the replies of the clients `keep` names: those whose sessions
    /// have not expired.
    pub fn retain_clients(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.latest.retain(|&c, _| keep(c));
    }

    /// How many clients' replies are kept.
    pub fn clients(&self) -> usize {
        self.latest.len()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            kv: self.kv.clone(),
            balances: self.balances.clone(),
            latest: self.latest.clone(),
        }
    }

    /// The snapshot encoded for a log's snapshot record.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self.snapshot(), bincode::config::standard())
            .expect("a snapshot of plain data encodes")
    }

    /// Replaces the whole state with an encoded snapshot's.
    pub fn restore_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let snapshot: Snapshot = crate::codec::decode_exact(bytes)
            .map_err(|e| format!("the state machine's snapshot does not decode: {e}"))?;
        self.restore(snapshot);
        Ok(())
    }

    /// Replaces the whole state with a snapshot's, as a replica that
    /// installs a checkpoint instead of replaying the instances before it.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let Snapshot {
            kv,
            balances,
            latest,
        } = snapshot;
        *self = StateMachine {
            kv,
            balances,
            latest,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client: u64, seq: u64, key: &str, value: &str) -> Command {
        Command::new(
            client,
            seq,
            Op::Put {
                key: key.into(),
                value: value.into(),
            },
        )
    }

    fn get(client: u64, seq: u64, key: &str) -> Command {
        Command::new(client, seq, Op::Get { key: key.into() })
    }

    fn transfer(client: u64, seq: u64, from: &str, to: &str, amount: i64) -> Command {
        Command::new(
            client,
            seq,
            Op::Transfer {
                from: from.into(),
                to: to.into(),
                amount,
            },
        )
    }

    fn bank() -> StateMachine {
        StateMachine::with_accounts(&[("a".into(), 100), ("b".into(), 50)])
    }

    #[test]
    fn get_put_on_absent_and_present_keys() {
        let mut sm = StateMachine::new();
        assert_eq!(sm.apply(&get(1, 1, "k")), Reply::Value(None));
        assert_eq!(sm.apply(&put(1, 2, "k", "v")), Reply::Done);
        assert_eq!(sm.apply(&get(1, 3, "k")), Reply::Value(Some("v".into())));
        assert_eq!(sm.get("k"), Some("v"));
    }

    #[test]
    fn cas_swaps_only_on_match_and_none_means_absent() {
        let mut sm = StateMachine::new();
        let cas = |seq, from: Option<&str>, to: &str| {
            Command::new(
                1,
                seq,
                Op::Cas {
                    key: "k".into(),
                    from: from.map(Into::into),
                    to: to.into(),
                },
            )
        };
        assert_eq!(sm.apply(&cas(1, Some("x"), "y")), Reply::Swapped(false));
        assert_eq!(sm.get("k"), None);
        assert_eq!(sm.apply(&cas(2, None, "a")), Reply::Swapped(true));
        assert_eq!(sm.apply(&cas(3, None, "b")), Reply::Swapped(false));
        assert_eq!(sm.apply(&cas(4, Some("a"), "c")), Reply::Swapped(true));
        assert_eq!(sm.get("k"), Some("c"));
    }

    #[test]
    fn append_concatenates_and_absent_is_empty() {
        let mut sm = StateMachine::new();
        let app = |seq, v: &str| {
            Command::new(
                1,
                seq,
                Op::Append {
                    key: "k".into(),
                    value: v.into(),
                },
            )
        };
        assert_eq!(sm.apply(&app(1, "ab")), Reply::Done);
        assert_eq!(sm.apply(&app(2, "cd")), Reply::Done);
        assert_eq!(sm.get("k"), Some("abcd"));
    }

    #[test]
    fn transfer_moves_only_what_the_source_can_afford() {
        let mut sm = bank();
        assert_eq!(sm.apply(&transfer(1, 1, "a", "b", 100)), Reply::Moved(true));
        assert_eq!((sm.balance("a"), sm.balance("b")), (0, 150));
        assert_eq!(sm.apply(&transfer(1, 2, "a", "b", 1)), Reply::Moved(false));
        assert_eq!(sm.apply(&transfer(1, 3, "b", "a", -5)), Reply::Moved(false));
        assert_eq!(sm.apply(&transfer(1, 4, "b", "c", 0)), Reply::Moved(true));
        assert_eq!(sm.apply(&transfer(1, 5, "b", "b", 150)), Reply::Moved(true));
        assert_eq!(sm.balance("b"), 150);
        assert_eq!(sm.total_balance(), 150);
    }

    #[test]
    fn balances_reads_listed_accounts_with_absent_as_zero() {
        let mut sm = bank();
        let cmd = Command::new(
            2,
            1,
            Op::Balances {
                accounts: vec!["b".into(), "a".into(), "z".into()],
            },
        );
        let expected: BTreeMap<Key, i64> = [("a".into(), 100), ("b".into(), 50), ("z".into(), 0)]
            .into_iter()
            .collect();
        assert_eq!(sm.apply(&cmd), Reply::Balances(expected));
    }

    #[test]
    fn checkpoint_changes_nothing() {
        let mut sm = bank();
        let before = sm.clone();
        let reply = sm.apply(&Command::checkpoint(CmdId { client: 0, seq: 9 }));
        assert_eq!(reply, Reply::Done);
        assert_eq!(sm.kv, before.kv);
        assert_eq!(sm.balances, before.balances);
    }

    #[test]
    fn a_retry_is_answered_from_the_reply_cache() {
        let mut sm = bank();
        let t = transfer(7, 1, "a", "b", 60);
        assert_eq!(sm.cached_reply(t.id), None, "not executed yet");
        assert_eq!(sm.apply(&t), Reply::Moved(true));
        // Executed again it would fail (40 < 60); the cache has the reply.
        assert_eq!(sm.cached_reply(t.id), Some(Reply::Moved(true)));
        sm.apply(&put(7, 2, "k", "v"));
        assert_eq!(sm.cached_reply(t.id), Some(Reply::Duplicate));
        sm.retain_clients(|c| c != 7);
        assert_eq!(sm.clients(), 0);
    }

    #[test]
    fn non_interfering_commands_commute_including_the_dedup_table() {
        // Same client, different keys: a history leaves them unordered.
        let a = put(4, 1, "x", "1");
        let b = transfer(4, 2, "a", "b", 10);
        let mut one = bank();
        one.apply(&a);
        one.apply(&b);
        let mut two = bank();
        two.apply(&b);
        two.apply(&a);
        assert_eq!(one, two);
        assert_eq!(one.snapshot(), two.snapshot());
    }

    #[test]
    fn snapshot_restore_round_trips_including_exactly_once() {
        let mut sm = bank();
        let t = transfer(1, 1, "a", "b", 30);
        sm.apply(&t);
        sm.apply(&put(2, 1, "k", "v"));
        let snap = sm.snapshot();
        let mut other = StateMachine::new();
        other.restore(snap.clone());
        assert_eq!(other, sm);
        assert_eq!(other.snapshot(), snap);
        assert_eq!(other.cached_reply(t.id), Some(Reply::Moved(true)));
        assert_eq!(other.balance("a"), 70);
    }

    #[test]
    fn reply_and_snapshot_are_serde_types() {
        fn is_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        is_serde::<Reply>();
        is_serde::<Snapshot>();
    }
}
