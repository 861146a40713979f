//! The acceptor: `Phase1b`, `Phase2bClassic` and `Phase2bFast` of
//! appendix C.6, over a sequence of instances (Section 6.3).
//!
//! Per instance the acceptor keeps C.6's `bal[a]` and `val[a]` (a
//! [`VoteLog`]); `mbal[a]` is shared by all instances, as in Multi-Paxos, so
//! one phase 1 covers every instance. Instances without an explicit vote
//! have `val = ⊥` and the `bal` of the rest range they lie in: a ballot
//! start sets `bal` for every instance from some point on, so the rest is
//! a few ranges, never one entry per instance. Every change is emitted as a
//! [`Record`] before the message that reports it; the replica holds the
//! message until the record is durable.

use super::ballot::{Ballot, NodeId};
use super::message::{Instance, InstanceVote, Message, Record, Suggestion};
use super::outbox::Outbox;
use super::planted::{planted, Planted};
use super::vote::VoteLog;
use crate::command::Command;
use crate::cstruct::CStruct;
use std::collections::BTreeMap;

/// Proposals an acceptor holds while it cannot vote; beyond this the
/// proposers' retries bring them again.
const MAX_BUFFERED: usize = 4096;

#[derive(Debug)]
pub struct Acceptor<C> {
    id: NodeId,
    /// `mbal[a]`: the ballot the acceptor is participating in.
    mbal: Ballot,
    /// `bal[a]` of the instances without an explicit vote, as ranges: the
    /// instances from each key up to the next take its ballot. The first
    /// key is `forgotten_below`; the last range runs on forever.
    rests: BTreeMap<Instance, Ballot>,
    /// `bal[a]`, `val[a]` per instance, for instances `≥ forgotten_below`.
    votes: BTreeMap<Instance, VoteLog<C>>,
    /// Instances below this are decided and forgotten (Section 6.3).
    forgotten_below: Instance,
    /// Proposals received while no instance could take a fast vote (between
    /// joining a fast ballot and hearing its Phase2Start).
    buffered: Vec<Command>,
    /// Whether this cluster uses fast ballots at all; a classic-only
    /// cluster's acceptors never vote on their own, not even in ballot 0.
    fast_enabled: bool,
    planted: Planted,
}

impl<C: CStruct> Acceptor<C> {
    /// The initial state of C.6's `Init`: every acceptor is in ballot 0 and
    /// has voted `⊥` in it, in every instance.
    pub fn new(id: NodeId, fast_enabled: bool, planted: Planted) -> Self {
        Acceptor {
            id,
            mbal: Ballot::ZERO,
            rests: BTreeMap::from([(0, Ballot::ZERO)]),
            votes: BTreeMap::new(),
            forgotten_below: 0,
            buffered: Vec::new(),
            fast_enabled,
            planted,
        }
    }

    pub fn mbal(&self) -> Ballot {
        self.mbal
    }

    pub fn forgotten_below(&self) -> Instance {
        self.forgotten_below
    }

    /// The acceptor's vote in an instance, if it has not forgotten it.
    pub fn vote(&self, instance: Instance) -> Option<(Ballot, &[Command])> {
        if instance < self.forgotten_below {
            return None;
        }
        Some(match self.votes.get(&instance) {
            Some(v) => (v.bal, &v.log[..]),
            None => (self.rest_at(instance), &[]),
        })
    }

    /// How many explicit votes and rest ranges the acceptor holds.
    pub fn held(&self) -> usize {
        self.votes.len() + self.rests.len()
    }

    /// `bal[a]` of an instance without an explicit vote.
    fn rest_at(&self, instance: Instance) -> Ballot {
        self.rests
            .range(..=instance)
            .next_back()
            .map_or(Ballot::ZERO, |(_, &b)| b)
    }

    /// The ballot of the last rest range, which runs on forever.
    fn rest_bal(&self) -> Ballot {
        self.rests
            .last_key_value()
            .map_or(Ballot::ZERO, |(_, &b)| b)
    }

    /// A summary of the acceptor's votes, for diagnosis.
    pub fn describe(&self) -> String {
        let votes: Vec<String> = self
            .votes
            .iter()
            .map(|(i, v)| {
                format!(
                    "{i}@{:?}:{}{}",
                    v.bal,
                    v.len(),
                    if v.val.is_closed() { "c" } else { "" }
                )
            })
            .collect();
        format!(
            "votes=[{}] rests={:?} forgotten_below={} buffered={}",
            votes.join(" "),
            self.rests,
            self.forgotten_below,
            self.buffered.len()
        )
    }

    /// Rebuilds the durable state from records, in the order written.
    pub fn recover(&mut self, r: &Record) {
        match r {
            Record::Promise { mbal } => self.mbal = self.mbal.max(*mbal),
            Record::Vote {
                instance,
                bal,
                base,
                cmds,
            } => {
                let v = self
                    .votes
                    .entry(*instance)
                    .or_insert_with(|| VoteLog::bottom(*bal));
                if v.bal != *bal || *base == 0 {
                    *v = VoteLog::bottom(*bal);
                }
                let _ = v.apply_delta(*base, cmds);
                self.mbal = self.mbal.max(*bal);
            }
            Record::Rest { from, bal } => self.set_rest(*from, *bal),
            Record::Forget { below } => self.forget(*below),
            Record::LeaderRound { .. } | Record::Learned { .. } | Record::Snapshot { .. } => {}
        }
    }

    /// Records that rebuild this acceptor's durable state through
    /// [`Acceptor::recover`], for a compacted log.
    pub fn snapshot_records(&self) -> Vec<Record> {
        let mut records = vec![Record::Forget {
            below: self.forgotten_below,
        }];
        records.extend(
            self.rests
                .iter()
                .map(|(&from, &bal)| Record::Rest { from, bal }),
        );
        records.extend(self.votes.iter().map(|(&instance, v)| Record::Vote {
            instance,
            bal: v.bal,
            base: 0,
            cmds: v.log.clone(),
        }));
        records.push(Record::Promise { mbal: self.mbal });
        records
    }

    /// `Phase1b(a, m)`: join ballot `m` iff `mbal[a] < m` (docs/PAPER.md trap 1:
    /// the prose of Section 5.5 has the comparison reversed) and report
    /// `bal[a]`, `val[a]` of every instance.
    pub fn phase1b(&mut self, m: Ballot, out: &mut Outbox) {
        let joins = self.mbal < m || (planted!(self.planted, Phase1bJoinsLower) && m != self.mbal);
        if joins {
            self.mbal = m;
            out.write(Record::Promise { mbal: m });
        } else if self.mbal > m {
            out.send(
                m.leader_of(),
                Message::Preempted {
                    bal: m,
                    mbal: self.mbal,
                },
            );
            return;
        } else if self.votes.values().any(|v| v.bal == m) || self.rests.values().any(|&b| b == m) {
            // Already voting in m: the leader has finished phase 1 and a 1b
            // reporting a vote in m itself would not be a 1b of C.6.
            return;
        }
        // A repeated 1a for the ballot we are in: repeat the 1b (lost
        // messages).
        let votes = self
            .votes
            .iter()
            .map(|(&instance, v)| InstanceVote {
                instance,
                vbal: v.bal,
                vote: v.log.clone(),
            })
            .collect();
        out.send(
            m.leader_of(),
            Message::Phase1b {
                bal: m,
                acc: self.id,
                from: self.forgotten_below,
                votes,
                rests: self.rests.iter().map(|(&i, &b)| (i, b)).collect(),
            },
        );
    }

    /// Joining a ballot by receiving its 2a without its 1a is `JoinBallot`
    /// followed by a vote, which the abstract algorithm allows.
    fn join_for_phase2(&mut self, m: Ballot, out: &mut Outbox) -> bool {
        if self.mbal > m {
            out.send(
                m.leader_of(),
                Message::Preempted {
                    bal: m,
                    mbal: self.mbal,
                },
            );
            return false;
        }
        if self.mbal < m {
            self.mbal = m;
            out.write(Record::Promise { mbal: m });
        }
        true
    }

    /// `Phase2bClassic(a, v)` for the values a leader suggested when it
    /// started ballot `m` (Section 5.4, `Phase2Start`).
    pub fn phase2b_classic_start(
        &mut self,
        m: Ballot,
        values: &[Suggestion],
        rest_from: Instance,
        out: &mut Outbox,
    ) {
        if !self.join_for_phase2(m, out) {
            return;
        }
        let mut dropped = Vec::new();
        for s in values {
            self.vote_classic(m, s.instance, 0, &s.value, &mut dropped, out);
        }
        if self.rest_bal() < m {
            for (_, v) in self.votes.range(rest_from..) {
                if v.bal < m {
                    dropped.extend(v.log.iter().cloned());
                }
            }
            let from = rest_from.max(self.forgotten_below);
            self.set_rest(from, m);
            out.write(Record::Rest { from, bal: m });
        }
        if m.fast {
            // Commands this acceptor fast-voted that the new ballot's
            // suggestion left out were proposed, so they may be fast-voted
            // again, in the next open instance.
            let mut again = std::mem::take(&mut self.buffered);
            again.extend(dropped);
            self.phase2b_fast(&again, out);
        }
    }

    /// `Phase2bClassic(a, v)` for a `Phase2aClassic` delta of the leader of
    /// ballot `m`.
    pub fn phase2b_classic(
        &mut self,
        m: Ballot,
        instance: Instance,
        base: u32,
        cmds: &[Command],
        out: &mut Outbox,
    ) {
        if !self.join_for_phase2(m, out) {
            return;
        }
        let mut dropped = Vec::new();
        self.vote_classic(m, instance, base, cmds, &mut dropped, out);
    }

    /// Votes for the leader's suggestion `v` in `instance` of ballot `m`,
    /// where `v` is the leader's earlier suggestion of length `base` followed
    /// by `cmds`. Enabled iff `bal[a] < mbal[a]` or `val[a] < v` (C.6).
    fn vote_classic(
        &mut self,
        m: Ballot,
        instance: Instance,
        base: u32,
        cmds: &[Command],
        dropped: &mut Vec<Command>,
        out: &mut Outbox,
    ) {
        if instance < self.forgotten_below {
            return;
        }
        let current_bal = self
            .votes
            .get(&instance)
            .map_or_else(|| self.rest_at(instance), |v| v.bal);
        if current_bal < m {
            if base != 0 {
                out.send(
                    m.leader_of(),
                    Message::Resend {
                        bal: m,
                        instance,
                        have: 0,
                    },
                );
                return;
            }
            let new = VoteLog::<C>::from_commands(m, cmds);
            if let Some(old) = self.votes.get(&instance) {
                dropped.extend(old.log.iter().filter(|c| !new.val.contains(&c.id)).cloned());
            }
            let msg = self.phase2b_ids(m, instance, 0, &new.log, false);
            out.write(Record::Vote {
                instance,
                bal: m,
                base: 0,
                cmds: new.log.clone(),
            });
            self.votes.insert(instance, new);
            out.broadcast(msg);
            return;
        }
        if current_bal > m {
            return;
        }
        let vote = self
            .votes
            .entry(instance)
            .or_insert_with(|| VoteLog::bottom(m));
        let before = vote.len();
        if let Err(have) = vote.apply_delta(base, cmds) {
            out.send(
                m.leader_of(),
                Message::Resend {
                    bal: m,
                    instance,
                    have,
                },
            );
            return;
        }
        if vote.len() > before {
            let delta = vote.log[before as usize..].to_vec();
            let msg = self.phase2b_ids(m, instance, before, &delta, false);
            out.write(Record::Vote {
                instance,
                bal: m,
                base: before,
                cmds: delta,
            });
            out.broadcast(msg);
        }
    }

    /// `Phase2bFast(a, C)` for a batch of proposed commands. Enabled only if
    /// the acceptor's ballot is fast (Sections 5.3 and 5.4; docs/PAPER.md trap 2)
    /// and it has voted in it (`bal[a] = mbal[a]`). Each command goes to the
    /// lowest open instance; a checkpoint closes it and later commands go to
    /// the next one.
    pub fn phase2b_fast(&mut self, cmds: &[Command], out: &mut Outbox) {
        if cmds.is_empty() {
            return;
        }
        let may_vote = self.mbal.fast && self.fast_enabled;
        if !may_vote && !planted!(self.planted, FastVoteInClassic) {
            return;
        }
        let mut deltas: BTreeMap<Instance, u32> = BTreeMap::new();
        for cmd in cmds {
            if self.votes.values().any(|v| v.val.contains(&cmd.id)) {
                continue;
            }
            let Some(instance) = self.open_instance() else {
                if self.buffered.len() < MAX_BUFFERED
                    && !self.buffered.iter().any(|c| c.id == cmd.id)
                {
                    self.buffered.push(cmd.clone());
                }
                continue;
            };
            let rest_bal = self.rest_at(instance);
            let vote = self
                .votes
                .entry(instance)
                .or_insert_with(|| VoteLog::bottom(rest_bal));
            let before = vote.len();
            if vote.append(cmd) {
                deltas.entry(instance).or_insert(before);
            }
        }
        for (instance, base) in deltas {
            let vote = &self.votes[&instance];
            let delta = vote.log[base as usize..].to_vec();
            let bal = vote.bal;
            let msg = self.phase2b_ids(bal, instance, base, &delta, true);
            out.write(Record::Vote {
                instance,
                bal,
                base,
                cmds: delta,
            });
            out.broadcast(msg);
        }
    }

    /// A `Close` from the leader of fast ballot `m`: the commands of
    /// `upto` this acceptor has not voted for, then the checkpoint, into
    /// `instance`. Each is a proposed command, so this is `Phase2bFast`
    /// for them in that order; an acceptor elsewhere (another ballot or
    /// open instance) votes the checkpoint as any proposal.
    pub fn close(
        &mut self,
        m: Ballot,
        instance: Instance,
        upto: &[Command],
        ckpt: &Command,
        out: &mut Outbox,
    ) {
        if self.mbal != m || self.open_instance() != Some(instance) {
            self.phase2b_fast(std::slice::from_ref(ckpt), out);
            return;
        }
        let mut cmds: Vec<Command> = upto
            .iter()
            .filter(|c| !c.is_checkpoint())
            .cloned()
            .collect();
        cmds.push(ckpt.clone());
        self.phase2b_fast(&cmds, out);
    }

    /// The lowest instance in which the acceptor may fast-vote: one it has
    /// voted in within its current ballot and that no checkpoint closed.
    pub fn open_instance(&self) -> Option<Instance> {
        let votable = |bal: Ballot| bal == self.mbal || planted!(self.planted, FastVoteInClassic);
        let mut next = self.forgotten_below;
        for (&i, v) in &self.votes {
            if i > next && votable(self.rest_at(next)) {
                return Some(next);
            }
            if votable(v.bal) && !v.val.is_closed() {
                return Some(i);
            }
            next = i + 1;
        }
        votable(self.rest_at(next)).then_some(next)
    }

    /// The 2b of a vote's delta `cmds` from position `base`, broadcast to
    /// every learner. It names the commands rather than carrying them:
    /// every learner has them from their proposer or leader (`payloads`),
    /// and one that does not asks for them (`resend_vote`).
    fn phase2b_ids(
        &self,
        bal: Ballot,
        instance: Instance,
        base: u32,
        cmds: &[Command],
        fast: bool,
    ) -> Message {
        Message::Phase2bIds {
            bal,
            acc: self.id,
            instance,
            base,
            cmds: cmds.iter().map(|c| (c.id, c.digest())).collect(),
            fast,
        }
    }

    /// A learner missed part of this acceptor's vote, or asks for it whole.
    pub fn resend_vote(
        &self,
        to: NodeId,
        instance: Instance,
        bal: Option<Ballot>,
        have: u32,
        out: &mut Outbox,
    ) {
        let Some((vbal, log)) = self.vote(instance) else {
            return;
        };
        if log.is_empty() {
            return;
        }
        let base = if bal == Some(vbal) {
            have.min(log.len() as u32)
        } else {
            0
        };
        out.send(
            to,
            Message::Phase2b {
                bal: vbal,
                acc: self.id,
                instance,
                base,
                cmds: log[base as usize..].to_vec(),
                fast: vbal.fast,
            },
        );
    }

    /// Forgets the instances below `below`, which this node's learner has
    /// learned closed: no later ballot needs their votes (Section 6.3).
    pub fn forget_below(&mut self, below: Instance, out: &mut Outbox) {
        if below > self.forgotten_below {
            self.forget(below);
            out.write(Record::Forget { below });
        }
    }

    fn forget(&mut self, below: Instance) {
        if below <= self.forgotten_below {
            return;
        }
        let kept = self.rest_at(below);
        self.forgotten_below = below;
        self.votes = self.votes.split_off(&below);
        self.rests = self.rests.split_off(&below);
        self.rests.insert(below, kept);
    }

    /// Gives every instance `≥ from` without an explicit vote `bal` and `⊥`,
    /// and drops the explicit votes there of lower ballots; instances below
    /// `from` keep their ranges. One range more, whatever `from` is.
    fn set_rest(&mut self, from: Instance, bal: Ballot) {
        let from = from.max(self.forgotten_below);
        self.votes.retain(|&i, v| i < from || v.bal >= bal);
        self.rests.split_off(&from);
        if self.rests.last_key_value().map(|(_, &b)| b) != Some(bal) {
            self.rests.insert(from, bal);
        }
    }
}
