//! The leader: `Phase1a`, `Phase2Start` and `Phase2aClassic` of
//! appendix C.6, and `ProvedSafe` of Definition 5.
//!
//! A leader keeps C.6's `curLdrBal[ldr]` and `maxLdrTried[ldr]`, the latter
//! per instance. When it starts a ballot it computes, per instance, a value
//! proved safe by the 1b messages of a quorum and suggests it extended by
//! every command the quorum reported (so commands of a collision are not
//! lost: Section 6.1, "get the conflicting proposed commands chosen").

use super::ballot::{subsets_of, Ballot, NodeId, Quorums};
use super::message::{Instance, InstanceVote, Message, Record, Suggestion};
use super::outbox::Outbox;
use super::planted::{planted, Planted};
use super::vote::VoteLog;
use crate::command::{CmdId, Command};
use crate::cstruct::CStruct;
use std::collections::BTreeMap;

/// The 1b message of one acceptor, as checked by the replica: `votes` and
/// `rests` in increasing instance order, `rests` starting at `from`.
#[derive(Clone, Debug)]
pub struct OneB {
    pub from: Instance,
    pub votes: Vec<InstanceVote>,
    /// The ballots of the instances without an explicit vote, as ranges
    /// from each instance listed up to the next.
    pub rests: Vec<(Instance, Ballot)>,
}

impl OneB {
    /// `⟨vbal, vote⟩` reported for instance `i ≥ from`.
    fn report(&self, i: Instance) -> (Ballot, &[Command]) {
        match self.votes.binary_search_by_key(&i, |v| v.instance) {
            Ok(at) => (self.votes[at].vbal, &self.votes[at].vote[..]),
            Err(_) => {
                let ranges_started = self.rests.partition_point(|&(from, _)| from <= i);
                let bal = ranges_started
                    .checked_sub(1)
                    .map_or(Ballot::ZERO, |r| self.rests[r].1);
                (bal, &[])
            }
        }
    }
}

#[derive(Debug)]
enum Phase<C> {
    /// Not leading any ballot.
    Idle,
    /// Phase 1 of `curLdrBal`: collecting 1b messages.
    Collecting {
        oneb: BTreeMap<NodeId, OneB>,
        pending: Vec<Command>,
    },
    /// Phase 2 of `curLdrBal`: `maxLdrTried` per instance; every instance
    /// `≥ rest_from` not in `tried` was suggested `⊥`.
    Voting {
        tried: BTreeMap<Instance, VoteLog<C>>,
        rest_from: Instance,
    },
}

/// Why a ballot could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// `ProvedSafe` was empty: the ballot array was not conservative
    /// (Proposition 3), which a correct algorithm never produces.
    NothingProvedSafe { instance: Instance },
    /// The 1b messages report votes with a hole of more than the instance
    /// window between them, which no correct quorum produces.
    ReportGap { from: Instance, to: Instance },
}

#[derive(Debug)]
pub struct Leader<C> {
    id: NodeId,
    n: usize,
    quorums: Quorums,
    /// `curLdrBal[ldr]`.
    bal: Option<Ballot>,
    phase: Phase<C>,
    /// The highest round this leader has used, durable across restarts.
    claimed_round: u64,
    pub started_at: u64,
    /// Checkpoints this leader proposed since it claimed `claimed_round`.
    checkpoints: u64,
    planted: Planted,
}

impl<C: CStruct> Leader<C> {
    /// The leader of ballot 0 starts leading it with `maxTried = ⊥` (C.6
    /// `Init`); every other leader starts idle.
    pub fn new(id: NodeId, n: usize, quorums: Quorums, planted: Planted) -> Self {
        let (bal, phase) = if Ballot::ZERO.leader_of() == id {
            (
                Some(Ballot::ZERO),
                Phase::Voting {
                    tried: BTreeMap::new(),
                    rest_from: 0,
                },
            )
        } else {
            (None, Phase::Idle)
        };
        Leader {
            id,
            n,
            quorums,
            bal,
            phase,
            claimed_round: 0,
            started_at: 0,
            checkpoints: 0,
            planted,
        }
    }

    pub fn recover(&mut self, r: &Record) {
        if let Record::LeaderRound { round } = r {
            self.claimed_round = self.claimed_round.max(*round);
        }
        // A restarted leader never resumes a ballot: its maxTried is lost.
        self.bal = None;
        self.phase = Phase::Idle;
    }

    /// The highest round this leader has claimed (see `LeaderRound`).
    pub fn claimed_round(&self) -> u64 {
        self.claimed_round
    }

    /// The ballot this node leads in phase 2, if any.
    pub fn leading(&self) -> Option<Ballot> {
        match self.phase {
            Phase::Voting { .. } => self.bal,
            _ => None,
        }
    }

    /// The ballot this node is starting or leading.
    pub fn ballot(&self) -> Option<Ballot> {
        match self.phase {
            Phase::Idle => None,
            _ => self.bal,
        }
    }

    pub fn is_collecting(&self) -> bool {
        matches!(self.phase, Phase::Collecting { .. })
    }

    /// The next ballot of the given kind this leader may start: above every
    /// ballot seen and every round it claimed before a restart.
    pub fn next_ballot(&self, seen: Ballot, fast: bool) -> Ballot {
        let claimed = Ballot {
            round: self.claimed_round,
            leader: self.id,
            fast: true,
        };
        seen.max(claimed).next(self.id, fast)
    }

    /// `Phase1a(ldr)`: start ballot `m`, forgetting lower ones.
    pub fn phase1a(&mut self, m: Ballot, now: u64, out: &mut Outbox) {
        debug_assert_eq!(m.leader_of(), self.id, "LeaderOf(m) = ldr");
        if m.round > self.claimed_round {
            self.claimed_round = m.round;
            self.checkpoints = 0;
            out.write(Record::LeaderRound { round: m.round });
        }
        let pending = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Collecting { pending, .. } => pending,
            _ => Vec::new(),
        };
        self.bal = Some(m);
        self.phase = Phase::Collecting {
            oneb: BTreeMap::new(),
            pending,
        };
        self.started_at = now;
        out.broadcast(Message::Phase1a { bal: m });
    }

    /// A fresh id for a checkpoint: unique across this leader's restarts
    /// because `claimed_round` is durable and only grows.
    pub fn next_checkpoint_id(&mut self) -> CmdId {
        self.checkpoints += 1;
        CmdId {
            client: u64::MAX - self.id as u64,
            seq: (self.claimed_round << 32) | self.checkpoints,
        }
    }

    /// Stops leading: a higher ballot exists.
    pub fn step_down(&mut self) {
        self.bal = None;
        self.phase = Phase::Idle;
    }

    /// Receipt of a 1b; starts phase 2 once an m-quorum answered.
    pub fn on_phase1b(
        &mut self,
        m: Ballot,
        acc: NodeId,
        oneb: OneB,
        out: &mut Outbox,
    ) -> Result<(), StartError> {
        if self.bal != Some(m) {
            return Ok(());
        }
        let Phase::Collecting { oneb: got, .. } = &mut self.phase else {
            return Ok(());
        };
        got.insert(acc, oneb);
        if got.len() < self.quorums.size(m) {
            return Ok(());
        }
        self.phase2_start(m, out)
    }

    /// `Phase2Start(ldr, v)`: for every instance some acceptor of the quorum
    /// still holds, suggest `w • σ` with `w ∈ ProvedSafe(Q, m, β)` and σ the
    /// commands the quorum voted for that `w` lacks, plus any proposals this
    /// leader holds.
    fn phase2_start(&mut self, m: Ballot, out: &mut Outbox) -> Result<(), StartError> {
        let Phase::Collecting { oneb, pending } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Ok(());
        };
        // Instances below some member's `from` are decided; the quorum cannot
        // prove anything about them, and need not.
        let start = oneb.values().map(|b| b.from).max().unwrap_or(0);
        let reported: std::collections::BTreeSet<Instance> = oneb
            .values()
            .flat_map(|b| b.votes.iter())
            .filter(|v| v.instance >= start && !v.vote.is_empty())
            .map(|v| v.instance)
            .collect();
        // A correct quorum's votes are contiguous (an acceptor votes in an
        // instance only once the one before it is closed), so every
        // instance from `start` to the last reported is suggested. A hole
        // wider than the replica's instance window is no correct report:
        // the ballot does not start rather than walk it.
        let mut below = start;
        for &i in &reported {
            if i - below > super::validate::INSTANCE_WINDOW {
                return Err(StartError::ReportGap { from: below, to: i });
            }
            below = i;
        }
        let last = reported.last().copied();
        let mut tried = BTreeMap::new();
        let mut values = Vec::new();
        let mut leftover: Vec<Command> = Vec::new();
        if let Some(last) = last {
            for i in start..=last {
                let reports: Vec<(Ballot, &[Command])> =
                    oneb.values().map(|b| b.report(i)).collect();
                let Some(w) = self.proved_safe(&oneb, i) else {
                    return Err(StartError::NothingProvedSafe { instance: i });
                };
                let mut v = VoteLog::<C>::from_commands(m, &w.linearize());
                let mut next_leftover = Vec::new();
                for c in leftover
                    .drain(..)
                    .chain(reports.iter().flat_map(|(_, cmds)| cmds.iter().cloned()))
                {
                    if !v.val.contains(&c.id)
                        && !v.append(&c)
                        && !next_leftover.iter().any(|x: &Command| x.id == c.id)
                    {
                        next_leftover.push(c);
                    }
                }
                leftover = next_leftover;
                values.push(Suggestion {
                    instance: i,
                    value: v.log.clone(),
                });
                tried.insert(i, v);
            }
        }
        let rest_from = last.map_or(start, |l| l + 1);
        leftover.extend(pending);
        if !m.fast && !leftover.is_empty() {
            // Classic ballots: the leader places the commands it holds.
            let mut v = VoteLog::<C>::bottom(m);
            for c in &leftover {
                v.append(c);
            }
            values.push(Suggestion {
                instance: rest_from,
                value: v.log.clone(),
            });
            tried.insert(rest_from, v);
        }
        out.broadcast(Message::Phase2Start {
            bal: m,
            values,
            rest_from,
        });
        self.phase = Phase::Voting { tried, rest_from };
        Ok(())
    }

    /// `ProvedSafe(Q, m, β)` of Definition 5 (C.6's `PrSafe`) for one
    /// instance, returning one element of it.
    fn proved_safe(&self, oneb: &BTreeMap<NodeId, OneB>, instance: Instance) -> Option<C> {
        let q: Vec<(NodeId, Ballot, C)> = oneb
            .iter()
            .map(|(&a, b)| {
                let (vbal, vote) = b.report(instance);
                (a, vbal, C::from_commands(vote))
            })
            .collect();
        // k: the highest ballot in which a member of Q voted.
        let k = q.iter().map(|(_, vbal, _)| *vbal).max()?;
        let voted_k: Vec<&(NodeId, Ballot, C)> =
            q.iter().filter(|(_, vbal, _)| *vbal == k).collect();
        if planted!(self.planted, ProvedSafeOneVote) {
            return Some(voted_k[0].2.clone());
        }
        // RS: the k-quorums R such that every acceptor in Q ∩ R voted in k.
        // γ(R) = ⊓ of their votes. Only Q ∩ R matters, so enumerate R over
        // all acceptors and collect distinct intersections.
        let size = self.quorums.size(k);
        let all: u32 = (1u32 << self.n) - 1;
        let mut gammas: Vec<C> = Vec::new();
        for r in subsets_of(all, size) {
            let members: Vec<&(NodeId, Ballot, C)> =
                q.iter().filter(|(a, _, _)| r & (1 << a) != 0).collect();
            debug_assert!(!members.is_empty(), "Quorum Assumption: Q ∩ R is not empty");
            if members.is_empty() || members.iter().any(|(_, vbal, _)| *vbal != k) {
                continue;
            }
            let g = C::glb_all(members.iter().map(|(_, _, v)| v)).expect("non-empty");
            if !gammas.contains(&g) {
                gammas.push(g);
            }
        }
        if gammas.is_empty() {
            // R = {}: any vote cast in k by a member of Q.
            return Some(voted_k[0].2.clone());
        }
        // Γ is compatible when β is conservative (Proposition 3).
        C::lub_all(gammas.iter())
    }

    /// `Phase2aClassic(ldr, C)` for a batch of proposed commands, in a
    /// classic ballot only (in a fast ballot acceptors take proposals
    /// themselves). Each command goes to the lowest instance whose
    /// suggestion is not closed. Returns the instance that holds the most
    /// commands, for checkpointing.
    pub fn phase2a_classic(&mut self, cmds: &[Command], out: &mut Outbox) {
        let Some(m) = self.bal.filter(|b| !b.fast) else {
            return;
        };
        match &mut self.phase {
            Phase::Collecting { pending, .. } => {
                for c in cmds {
                    if !pending.iter().any(|p| p.id == c.id) {
                        pending.push(c.clone());
                    }
                }
            }
            Phase::Idle => {}
            Phase::Voting { tried, rest_from } => {
                let mut bases: BTreeMap<Instance, u32> = BTreeMap::new();
                for c in cmds {
                    if tried.values().any(|v| v.val.contains(&c.id)) {
                        continue;
                    }
                    let i = tried
                        .iter()
                        .find(|(_, v)| !v.val.is_closed())
                        .map(|(&i, _)| i)
                        .unwrap_or_else(|| {
                            tried
                                .keys()
                                .next_back()
                                .map_or(*rest_from, |&l| (l + 1).max(*rest_from))
                        });
                    let v = tried.entry(i).or_insert_with(|| VoteLog::bottom(m));
                    let before = v.len();
                    if v.append(c) {
                        bases.entry(i).or_insert(before);
                    }
                }
                for (instance, base) in bases {
                    let cmds = tried[&instance].log[base as usize..].to_vec();
                    out.broadcast(Message::Phase2a {
                        bal: m,
                        instance,
                        base,
                        cmds,
                    });
                }
            }
        }
    }

    /// Forgets the suggestions for instances below `below` (closed and
    /// learned here) but the last, so `tried` holds the open instances
    /// only, however long the ballot runs.
    pub fn prune_below(&mut self, below: Instance) {
        if let Phase::Voting { tried, .. } = &mut self.phase {
            while tried.len() > 1 && tried.first_key_value().is_some_and(|(&i, _)| i < below) {
                tried.pop_first();
            }
        }
    }

    /// The number of commands suggested in the lowest open instance, in a
    /// classic ballot.
    pub fn open_len(&self) -> Option<usize> {
        match &self.phase {
            Phase::Voting { tried, .. } => tried
                .values()
                .find(|v| !v.val.is_closed())
                .map(|v| v.len() as usize),
            _ => None,
        }
    }

    /// An acceptor missed part of a suggestion.
    pub fn resend(&self, to: NodeId, bal: Ballot, instance: Instance, have: u32, out: &mut Outbox) {
        if self.bal != Some(bal) {
            return;
        }
        let Phase::Voting { tried, rest_from } = &self.phase else {
            return;
        };
        match tried.get(&instance) {
            Some(v) => {
                let base = have.min(v.len());
                out.send(
                    to,
                    Message::Phase2a {
                        bal,
                        instance,
                        base,
                        cmds: v.log[base as usize..].to_vec(),
                    },
                );
            }
            None if instance >= *rest_from => out.send(
                to,
                Message::Phase2Start {
                    bal,
                    values: Vec::new(),
                    rest_from: *rest_from,
                },
            ),
            None => {}
        }
    }

    /// Repeats this ballot's Phase2Start to an acceptor that joined late.
    pub fn repeat_start(&self, to: NodeId, out: &mut Outbox) {
        let (Some(bal), Phase::Voting { tried, rest_from }) = (self.bal, &self.phase) else {
            return;
        };
        let values = tried
            .iter()
            .map(|(&instance, v)| Suggestion {
                instance,
                value: v.log.clone(),
            })
            .collect();
        out.send(
            to,
            Message::Phase2Start {
                bal,
                values,
                rest_from: *rest_from,
            },
        );
    }
}
