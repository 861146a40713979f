//! The learner: `Learn(l, v)` of appendix C.6, per instance.
//!
//! A learner learns `v` when every acceptor of some m-quorum sent a 2b for
//! ballot m whose value extends `v`; it then sets `learned := learned ⊔ v`.
//! The largest such `v` for a quorum Q is the glb of Q's votes, so learning
//! is: for each m-quorum, `learned ⊔= ⊓ {vote(a) : a ∈ Q}` (docs/PAPER.md trap 4:
//! the glb of a quorum, never one acceptor's value). The quorum size depends
//! on the ballot (trap 3).
//!
//! Learned commands are handed out instance by instance: the history is
//! `v_1 • C • v_2 • C • ...` (Section 6.3), so nothing of instance i+1 is
//! handed out before instance i is closed by its checkpoint. A command learned
//! in two instances (a retry that raced) counts once: histories have no
//! duplicates.

use super::ballot::{subsets_of, Ballot, NodeId, Quorums};
use super::message::{Instance, Message, Record};
use super::outbox::Outbox;
use super::planted::{planted, Planted};
use super::session::Sessions;
use super::snapshot;
use super::vote::VoteLog;
use crate::command::{CmdId, Command, Digest, FastHash};
use crate::cstruct::CStruct;
use std::collections::{BTreeMap, HashSet};

/// How many ballots' votes a learner keeps per instance. Older ballots can
/// only have chosen values that later ballots extend.
const BALLOTS_KEPT: usize = 3;

/// How many deltas that arrived ahead of the one they extend a learner
/// keeps per instance (see [`Early`]).
const EARLY_KEPT: usize = 64;

/// A 2b delta that arrived before the delta it extends. Links reorder
/// (jitter, a lost packet's retransmission), and asking the acceptor again
/// at once (`Resend`) brings its whole vote from the gap on, a copy of
/// every command in it: under jitter that resent most commands dozens of
/// times (issue 13). The missing delta is most likely on its way, so the
/// early one waits; only if it still waits at the next tick, or too many
/// wait, does the learner ask.
#[derive(Debug)]
struct Early {
    bal: Ballot,
    acc: NodeId,
    base: u32,
    cmds: Vec<Command>,
    fast: bool,
    since: u64,
}

/// How many closed instances, and commands in them, a learner keeps to hand
/// to lagging nodes; a node further behind gets a snapshot. Bounded by
/// commands too, or memory would follow the instance size (4,096 instances
/// of 256 commands is a million commands).
const CLOSED_KEPT: usize = 4096;
const CLOSED_COMMANDS_KEPT: usize = 1 << 16;

/// How many commands of closed instances one `Sync` is answered with.
const CATCH_UP_COMMANDS: usize = 4096;

#[derive(Debug)]
struct InstanceState<C> {
    learned: C,
    /// The learned commands in the order learned, with whether each was
    /// learned on the fast path.
    order: Vec<(Command, bool)>,
    ballots: BTreeMap<Ballot, Vec<Option<VoteLog<C>>>>,
    /// Commands that reached an acceptor's vote through a leader's
    /// suggestion rather than a fast vote, per ballot.
    suggested: HashSet<(Ballot, CmdId), FastHash>,
    /// When the learner last learned something here or saw a vote it has
    /// not learned yet, and whether such a vote is outstanding.
    unlearned_since: Option<u64>,
    /// The fast ballot in which a collision was last reported.
    collision: Option<Ballot>,
    early: Vec<Early>,
}

impl<C: CStruct> InstanceState<C> {
    fn new() -> Self {
        InstanceState {
            learned: C::bottom(),
            order: Vec::new(),
            ballots: BTreeMap::new(),
            suggested: HashSet::default(),
            unlearned_since: None,
            collision: None,
            early: Vec::new(),
        }
    }
}

/// What a snapshot keeps of a learner.
pub struct LearnerSnapshot {
    /// The client sessions: which ids were handed out.
    pub sessions: Sessions,
    /// The last closed instances, for lagging nodes.
    pub closed: Vec<(Instance, Vec<Command>)>,
    /// A `Learned` record of what is learned of each instance from `next`
    /// on.
    pub open: Vec<Record>,
}

/// A collision seen in a fast ballot: two acceptors voted incompatible
/// c-structs (Section 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collision {
    pub instance: Instance,
    pub bal: Ballot,
}

#[derive(Debug)]
pub struct Learner<C> {
    n: usize,
    quorums: Quorums,
    /// The lowest instance not yet learned closed.
    next: Instance,
    /// Instances `≥ next` being learned.
    open: BTreeMap<Instance, InstanceState<C>>,
    /// Recently closed instances, to hand to lagging nodes, and how many
    /// commands they hold.
    closed: BTreeMap<Instance, Vec<Command>>,
    closed_commands: usize,
    /// How many commands of instance `next` have been handed out.
    handed_out: usize,
    /// Which ids were handed out, so a command learned twice is handed
    /// out once, in state bounded by the active clients.
    sessions: Sessions,
    /// Sessions idle for this many instances expire; 0 never.
    session_idle: u64,
    /// The highest `closed_below` a leader reported.
    hint: Instance,
    /// How many commands of an instance a leader has learned.
    open_hint: (Instance, usize),
    last_sync: u64,
    /// Syncs sent since the learner last made progress.
    syncs_without_progress: u32,
    /// Learned values that were incompatible with what was learned before:
    /// a safety violation this learner noticed. Counted, never acted on.
    pub incompatible: u64,
    /// Syncs for a closed instance this learner no longer holds (it was
    /// compacted into a snapshot): the asking node cannot catch up from
    /// this one.
    pub syncs_compacted: u64,
    planted: Planted,
}

impl<C: CStruct> Learner<C> {
    pub fn new(n: usize, quorums: Quorums, session_idle: u64, planted: Planted) -> Self {
        Learner {
            n,
            quorums,
            next: 0,
            open: BTreeMap::new(),
            closed: BTreeMap::new(),
            closed_commands: 0,
            handed_out: 0,
            sessions: Sessions::default(),
            session_idle,
            hint: 0,
            open_hint: (0, 0),
            last_sync: 0,
            syncs_without_progress: 0,
            incompatible: 0,
            syncs_compacted: 0,
            planted,
        }
    }

    /// Every instance below this one is learned closed.
    pub fn closed_below(&self) -> Instance {
        self.next
    }

    /// The number of commands learned in the lowest open instance.
    pub fn open_len(&self) -> usize {
        self.open.get(&self.next).map_or(0, |s| s.learned.len())
    }

    /// The commands learned so far in the lowest open instance, in the
    /// order learned, by id and digest (what a leader closes it after,
    /// `Message::Close`).
    pub fn open_refs(&self) -> Vec<(CmdId, Digest)> {
        self.open.get(&self.next).map_or_else(Vec::new, |s| {
            s.order.iter().map(|(c, _)| (c.id, c.digest())).collect()
        })
    }

    /// Whether a vote delta waits here for an earlier one in the lowest
    /// open instance: a vote not yet seen, so the instance is not quiet.
    pub fn open_has_early(&self) -> bool {
        self.open
            .get(&self.next)
            .is_some_and(|st| !st.early.is_empty())
    }

    /// Whether some acceptor's vote in `instance` and ballot `bal` that
    /// this learner holds has `id`.
    pub fn voted(&self, instance: Instance, bal: Ballot, id: &CmdId) -> bool {
        self.open
            .get(&instance)
            .and_then(|st| st.ballots.get(&bal))
            .is_some_and(|votes| votes.iter().flatten().any(|v| v.val.contains(id)))
    }

    /// The length of the vote of acceptor `acc` in ballot `bal` that this
    /// learner holds for `instance` (0 for none).
    pub fn vote_len(&self, instance: Instance, bal: Ballot, acc: NodeId) -> u32 {
        self.open
            .get(&instance)
            .and_then(|st| st.ballots.get(&bal))
            .and_then(|votes| votes.get(acc as usize))
            .and_then(|v| v.as_ref())
            .map_or(0, |v| v.len())
    }

    /// Whether anything is known of an instance after the lowest open one:
    /// it cannot be handed out until the open instance closes.
    pub fn blocked(&self) -> bool {
        self.open.range(self.next + 1..).next().is_some()
    }

    /// Rebuilds learned state from the learner's records.
    pub fn recover(&mut self, r: &Record, out: &mut Outbox) {
        if let Record::Learned { instance, cmds } = r {
            if *instance < self.next {
                return;
            }
            let st = self
                .open
                .entry(*instance)
                .or_insert_with(InstanceState::new);
            for c in cmds {
                if !st.learned.contains(&c.id) && !st.learned.is_closed() {
                    st.learned.append(c);
                    st.order.push((c.clone(), false));
                }
            }
            self.hand_out(out, false);
        }
    }

    /// The learner's part of a snapshot.
    pub fn snapshot(&self) -> LearnerSnapshot {
        let sessions = self.sessions.clone();
        let skip = self.closed.len().saturating_sub(snapshot::CLOSED_KEPT);
        let closed = self
            .closed
            .iter()
            .skip(skip)
            .map(|(&i, cmds)| (i, cmds.clone()))
            .collect();
        let open = self
            .open
            .iter()
            .filter(|(_, st)| !st.order.is_empty())
            .map(|(&instance, st)| Record::Learned {
                instance,
                cmds: st.order.iter().map(|(c, _)| c.clone()).collect(),
            })
            .collect();
        LearnerSnapshot {
            sessions,
            closed,
            open,
        }
    }

    /// Resumes from a snapshot: everything below `instance` is learned
    /// closed and `sessions` tell which ids were handed out. What was
    /// learned before it is superseded; what is known of later instances is
    /// kept (the sessions skip what the snapshot already holds).
    pub fn install(
        &mut self,
        instance: Instance,
        sessions: Sessions,
        closed: Vec<(Instance, Vec<Command>)>,
    ) {
        self.next = instance;
        self.open = self.open.split_off(&instance);
        self.closed = closed.into_iter().collect();
        self.closed_commands = self.closed.values().map(Vec::len).sum();
        self.handed_out = 0;
        self.sessions = sessions;
        self.hint = self.hint.max(instance);
        self.syncs_without_progress = 0;
        self.last_sync = 0;
    }

    /// Hands out what is already learned of the instances after an
    /// installed snapshot.
    pub fn hand_out_learned(&mut self, out: &mut Outbox) {
        self.hand_out(out, false);
    }

    /// The client sessions as of what this learner handed out.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Receipt of `⟨"2b", m, a, v⟩` as a delta. Returns a collision if this
    /// vote is incompatible with another acceptor's vote in the same fast
    /// ballot.
    #[allow(clippy::too_many_arguments)]
    pub fn on_phase2b(
        &mut self,
        bal: Ballot,
        acc: NodeId,
        instance: Instance,
        base: u32,
        cmds: &[Command],
        fast: bool,
        now: u64,
        out: &mut Outbox,
    ) -> Option<Collision> {
        if instance < self.next || acc as usize >= self.n {
            return None;
        }
        let n = self.n;
        let st = self.open.entry(instance).or_insert_with(InstanceState::new);
        if st.learned.is_closed() {
            return None;
        }
        let votes = st.ballots.entry(bal).or_insert_with(|| vec![None; n]);
        let vote = &mut votes[acc as usize];
        let applied = match vote {
            None if base == 0 => {
                *vote = Some(VoteLog::from_commands(bal, cmds));
                Ok(())
            }
            None => Err(0),
            Some(v) => v.apply_delta(base, cmds),
        };
        if let Err(have) = applied {
            if st.early.len() >= EARLY_KEPT {
                // The acceptor's answer covers the early deltas too.
                st.early.retain(|e| e.bal != bal || e.acc != acc);
                ask_again(acc, bal, instance, have, out);
            } else {
                st.early.push(Early {
                    bal,
                    acc,
                    base,
                    cmds: cmds.to_vec(),
                    fast,
                    since: now,
                });
            }
            return None;
        }
        if !fast {
            st.suggested.extend(cmds.iter().map(|c| (bal, c.id)));
        }
        while st.ballots.len() > BALLOTS_KEPT {
            st.ballots.pop_first();
        }
        if cmds.iter().any(|c| !st.learned.contains(&c.id)) && st.unlearned_since.is_none() {
            st.unlearned_since = Some(now);
        }
        let collision = self.detect_collision(instance, bal, acc, cmds);
        self.learn(instance, bal, acc, cmds, now, out);
        match self.take_early(instance, bal, acc) {
            Some(e) => {
                let later = self.on_phase2b(bal, acc, instance, e.base, &e.cmds, e.fast, now, out);
                collision.or(later)
            }
            None => collision,
        }
    }

    /// Asks again for the deltas that early ones have waited for since an
    /// earlier tick: those were lost, not late.
    fn ask_for_missing_deltas(&mut self, now: u64, out: &mut Outbox) {
        for (&instance, st) in self.open.iter_mut() {
            while let Some(at) = st.early.iter().position(|e| e.since < now) {
                let (bal, acc) = (st.early[at].bal, st.early[at].acc);
                st.early.retain(|e| e.bal != bal || e.acc != acc);
                let have = st
                    .ballots
                    .get(&bal)
                    .and_then(|votes| votes[acc as usize].as_ref())
                    .map_or(0, |v| v.len());
                ask_again(acc, bal, instance, have, out);
            }
        }
    }

    /// An early delta of this vote that now extends it, if one waits.
    fn take_early(&mut self, instance: Instance, bal: Ballot, acc: NodeId) -> Option<Early> {
        let st = self.open.get_mut(&instance)?;
        let len = st.ballots.get(&bal)?[acc as usize].as_ref()?.len();
        let at = st
            .early
            .iter()
            .position(|e| e.bal == bal && e.acc == acc && e.base <= len)?;
        Some(st.early.swap_remove(at))
    }

    fn detect_collision(
        &mut self,
        instance: Instance,
        bal: Ballot,
        acc: NodeId,
        delta: &[Command],
    ) -> Option<Collision> {
        if !bal.fast {
            return None;
        }
        let st = self.open.get_mut(&instance)?;
        if st.collision == Some(bal) {
            return None;
        }
        let votes = st.ballots.get(&bal)?;
        let mine = votes[acc as usize].as_ref()?;
        // Every pair was compatible before this vote grew (or a collision was
        // reported), so only what the delta touched needs a look.
        let collided = votes
            .iter()
            .flatten()
            .any(|other| !mine.val.still_compatible(&other.val, delta));
        if collided {
            st.collision = Some(bal);
            return Some(Collision { instance, bal });
        }
        None
    }

    /// `Learn(l, v)` for the quorums of ballot `bal` that include `acc`,
    /// whose vote just grew by `delta`. Only quorums whose every member now
    /// holds one of the new commands can have a larger glb than before.
    fn learn(
        &mut self,
        instance: Instance,
        bal: Ballot,
        acc: NodeId,
        delta: &[Command],
        now: u64,
        out: &mut Outbox,
    ) {
        let mut size = self.quorums.size(bal);
        if bal.fast && planted!(self.planted, FastLearnerClassicQuorum) {
            size = self.quorums.classic;
        }
        let Some(st) = self.open.get_mut(&instance) else {
            return;
        };
        let Some(votes) = st.ballots.get(&bal) else {
            return;
        };
        let voters: u32 = (0..votes.len())
            .filter(|&i| votes[i].is_some())
            .fold(0, |m, i| m | 1 << i);
        if (voters.count_ones() as usize) < size {
            return;
        }
        let others = voters & !(1 << acc);
        let mut learned_any = false;
        for rest in subsets_of(others, size - 1) {
            let members: Vec<&VoteLog<C>> = std::iter::once(acc as usize)
                .chain((0..votes.len()).filter(|i| rest & (1 << i) != 0))
                .map(|i| votes[i].as_ref().expect("voter"))
                .collect();
            let grows = delta.iter().any(|c| {
                !st.learned.contains(&c.id) && members.iter().all(|m| m.val.contains(&c.id))
            });
            if !grows {
                continue;
            }
            let glb = C::glb_all(members.iter().map(|m| &m.val)).expect("a quorum is not empty");
            if glb.is_prefix_of(&st.learned) {
                continue;
            }
            match st.learned.lub(&glb) {
                Some(new) => {
                    let added = new.suffix_after(&st.learned);
                    for c in &added {
                        let fast = bal.fast && !st.suggested.contains(&(bal, c.id));
                        st.order.push((c.clone(), fast));
                    }
                    out.write(Record::Learned {
                        instance,
                        cmds: added,
                    });
                    st.learned = new;
                    learned_any = true;
                }
                None => self.incompatible += 1,
            }
        }
        if learned_any {
            let outstanding = st
                .ballots
                .values()
                .flat_map(|v| v.iter().flatten())
                .any(|v| v.log.iter().any(|c| !st.learned.contains(&c.id)));
            st.unlearned_since = outstanding.then_some(now);
            self.syncs_without_progress = 0;
            self.hand_out(out, true);
        }
    }

    /// A closed instance's value from a learner that learned it.
    pub fn on_chosen(&mut self, instance: Instance, value: &[Command], out: &mut Outbox) {
        if instance < self.next {
            return;
        }
        let v = C::from_commands(value);
        if !v.is_closed() {
            return;
        }
        let st = self.open.entry(instance).or_insert_with(InstanceState::new);
        match st.learned.lub(&v) {
            Some(new) => {
                let added = new.suffix_after(&st.learned);
                if added.is_empty() {
                    return;
                }
                st.order.extend(added.iter().map(|c| (c.clone(), false)));
                out.write(Record::Learned {
                    instance,
                    cmds: added,
                });
                st.learned = new;
                self.hand_out(out, true);
                // Progress: a learner still behind asks again at its next
                // tick instead of waiting out a backoff.
                self.syncs_without_progress = 0;
                self.last_sync = 0;
            }
            None => self.incompatible += 1,
        }
    }

    /// Hands out what is learned of instance `next` and moves past every
    /// closed instance.
    // `Planted` is `()` in builds without planted bugs.
    #[allow(clippy::unit_arg)]
    fn hand_out(&mut self, out: &mut Outbox, live: bool) {
        while let Some(st) = self.open.get(&self.next) {
            for (cmd, fast) in &st.order[self.handed_out..] {
                if self.sessions.admit(cmd.id, self.next, self.planted) {
                    out.learn(self.next, cmd.clone(), *fast && live);
                } else {
                    out.done(cmd.id);
                }
            }
            self.handed_out = st.order.len();
            if !st.learned.is_closed() {
                return;
            }
            let st = self.open.remove(&self.next).expect("present");
            self.closed_commands += st.order.len();
            self.closed
                .insert(self.next, st.order.into_iter().map(|(c, _)| c).collect());
            while self.closed.len() > CLOSED_KEPT || self.closed_commands > CLOSED_COMMANDS_KEPT {
                let (_, cmds) = self.closed.pop_first().expect("non-empty");
                self.closed_commands -= cmds.len();
            }
            self.sessions.close_instance(self.next, self.session_idle);
            self.next += 1;
            self.handed_out = 0;
        }
    }

    /// Per acceptor, the ballot and length of the latest vote held for
    /// `instance`.
    fn holdings(&self, instance: Instance) -> Vec<(NodeId, Ballot, u32)> {
        let Some(st) = self.open.get(&instance) else {
            return Vec::new();
        };
        let mut have = Vec::new();
        for a in 0..self.n {
            if let Some((bal, v)) = st
                .ballots
                .iter()
                .rev()
                .find_map(|(b, votes)| votes[a].as_ref().map(|v| (*b, v)))
            {
                have.push((a as NodeId, bal, v.len()));
            }
        }
        have
    }

    /// A node asks for an instance's value; answer if it is closed here,
    /// with the closed instances after it too (up to [`CATCH_UP_COMMANDS`]),
    /// so a node far behind catches up in a few round trips rather than one
    /// per instance.
    /// Returns false when the instance was compacted away here: the asking
    /// node needs a snapshot.
    pub fn on_sync(&mut self, from: NodeId, instance: Instance, out: &mut Outbox) -> bool {
        if instance < self.next && !self.closed.contains_key(&instance) {
            self.syncs_compacted += 1;
            return false;
        }
        let mut budget = CATCH_UP_COMMANDS;
        for (&i, value) in self.closed.range(instance..) {
            if i != instance && (budget < value.len() || !self.closed.contains_key(&(i - 1))) {
                break;
            }
            budget = budget.saturating_sub(value.len());
            out.send(
                from,
                Message::Chosen {
                    instance: i,
                    value: value.clone(),
                },
            );
        }
        true
    }

    /// How many instances this learner holds state for (open ones and
    /// the closed ones kept for catch-up).
    pub fn held_instances(&self) -> usize {
        self.open.len() + self.closed.len()
    }

    /// Whether a leader or acceptor reported closed instances this learner
    /// has not closed: it is catching up.
    pub fn behind(&self) -> bool {
        self.hint > self.next
    }

    /// A leader reports how far it has learned.
    pub fn on_hint(&mut self, closed_below: Instance) {
        self.hint = self.hint.max(closed_below);
    }

    /// A leader reports how much of an open instance it has learned.
    pub fn on_open_hint(&mut self, instance: Instance, len: usize) {
        self.open_hint = (instance, len);
    }

    /// When the lowest open instance has had votes this learner has not
    /// learned from, since when.
    pub fn unlearned_since(&self) -> Option<u64> {
        self.open.get(&self.next).and_then(|s| s.unlearned_since)
    }

    /// Asks everyone for instance `next` when this learner is behind a
    /// leader or has seen votes it could not learn from for a while (lost
    /// messages, a restart).
    pub fn tick(&mut self, now: u64, sync_ticks: u64, out: &mut Outbox) {
        self.ask_for_missing_deltas(now, out);
        if now < self.last_sync + sync_ticks {
            return;
        }
        let behind = self.hint > self.next
            || self.blocked()
            || (self.open_hint.0 == self.next && self.open_hint.1 > self.open_len());
        let stalled = self
            .unlearned_since()
            .is_some_and(|t| now >= t + sync_ticks);
        if behind || stalled {
            // Back off while nothing changes: a sync that did not help once
            // will not help more by being repeated at once.
            let wait = sync_ticks << self.syncs_without_progress.min(5);
            if now < self.last_sync + wait {
                return;
            }
            self.last_sync = now;
            self.syncs_without_progress += 1;
            let have = self.holdings(self.next);
            out.broadcast(Message::Sync {
                instance: self.next,
                have,
            });
        } else {
            self.syncs_without_progress = 0;
        }
    }
}

/// Asks acceptor `acc` again for its vote in `instance` and `bal` from
/// position `have` on.
fn ask_again(acc: NodeId, bal: Ballot, instance: Instance, have: u32, out: &mut Outbox) {
    out.send(
        acc,
        Message::Resend {
            bal,
            instance,
            have,
        },
    );
}
