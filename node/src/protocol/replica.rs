//! A replica: one node's proposer, acceptor, leader and learner, driven by
//! messages, ticks, client commands and storage completions.

use super::acceptor::Acceptor;
use super::ballot::{node_name, Ballot, NodeId, QuorumError, Quorums};
use super::closing::Closing;
use super::fence::Fence;
use super::leader::{Leader, OneB, StartError};
use super::learned_log::{Compacted, LearnedLog};
use super::learner::{Collision, Learner};
use super::message::{Instance, Message, Record};
use super::outbox::{Dest, Effect, Installed, Outbox};
use super::payloads::{NamedVote, Payloads};
use super::planted::{planted, Planted};
use super::proposer::Proposer;
use super::session::IdStatus;
use super::snapshot::{self, Parts, SnapshotError, SnapshotState};
use super::transfer::{Received, Transfer};
use super::validate;
use crate::command::{CmdId, Command};
use crate::cstruct::CStruct;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

#[cfg(feature = "planted-bugs")]
pub use super::planted::PlantedBug;

/// Protocol parameters. Times are in ticks; the driver decides how long a
/// tick is.
#[derive(Clone, Debug)]
pub struct Config {
    pub quorums: Quorums,
    /// Use fast ballots when enough acceptors answer. `false` runs classic
    /// ballots only: with the sequence c-struct this is Multi-Paxos.
    pub fast: bool,
    /// A leader proposes a checkpoint once the open instance holds this
    /// many commands (Section 6.3).
    pub checkpoint_every: usize,
    /// The driver replaces the log with a snapshot once this many more
    /// instances are learned closed (Section 6.3); 0 never does.
    pub snapshot_every: u64,
    pub heartbeat_ticks: u64,
    /// Silence from the leader after which `n1` starts a ballot; later nodes
    /// wait longer so that one of them usually wins.
    pub election_ticks: u64,
    /// A proposer resends a command not learned after this long.
    pub retry_ticks: u64,
    /// A learner asks for an instance it cannot make progress on after this
    /// long; the leader starts a new ballot for it after `2 ×` this long.
    pub sync_ticks: u64,
    pub max_batch: usize,
    /// A client session idle for this many instances expires (Raft's
    /// client sessions); 0 never expires one.
    pub session_idle_instances: u64,
    pub planted: Planted,
}

impl Config {
    /// Defaults for `n` acceptors, with quorums of Section 6.1.
    pub fn new(n: usize) -> Result<Config, QuorumError> {
        Ok(Config {
            quorums: Quorums::for_cluster(n)?,
            fast: true,
            checkpoint_every: 256,
            snapshot_every: 128,
            heartbeat_ticks: 2,
            election_ticks: 10,
            retry_ticks: 20,
            sync_ticks: 6,
            max_batch: 512,
            session_idle_instances: 1024,
            planted: Default::default(),
        })
    }

    pub fn n(&self) -> usize {
        self.quorums.n
    }
}

/// A command learned by this node, in the order of its learned history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    /// Position in this learner's learned sequence (0-based).
    pub position: u64,
    pub instance: Instance,
    pub cmd: Command,
    /// Learned through fast votes in the ballot it was proposed in, without
    /// a leader suggesting it.
    pub fast: bool,
}

/// What the driver must do, in this order: make `writes` durable (then call
/// [`Replica::durable`]), send `messages`, apply `learned`, then replace
/// its state machine with `installed` if set (a snapshot from a peer, which
/// holds everything learned before it).
#[derive(Debug, Default)]
pub struct Output {
    pub writes: Vec<Record>,
    pub messages: Vec<(NodeId, Message)>,
    pub learned: Vec<Learned>,
    pub installed: Option<Vec<u8>>,
}

/// Counters for `status` and the simulator's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Client commands learned through fast votes alone.
    pub learned_fast: u64,
    /// Client commands learned through a leader's suggestion.
    pub learned_slow: u64,
    pub checkpoints_learned: u64,
    pub collisions: u64,
    pub recoveries: u64,
    pub ballots_started: u64,
    pub elections: u64,
    pub mode_switches: u64,
    pub checkpoints_proposed: u64,
    pub writes: u64,
    pub messages: u64,
    pub max_batch: u64,
    pub incompatible_learned: u64,
    pub start_errors: u64,
    pub snapshots: u64,
    /// Syncs this node could not answer because it had compacted the
    /// instance away.
    pub syncs_compacted: u64,
    /// Snapshots received from peers and installed.
    pub snapshots_installed: u64,
    /// Snapshots received from peers and refused (stale or undecodable).
    pub snapshots_refused: u64,
    /// Messages from peers refused whole by [`validate::check`].
    pub refused: u64,
    /// 2bs naming a command this node had not seen (or had dropped), so
    /// that it asked the acceptor for the commands whole.
    pub payloads_missed: u64,
    /// Commands carried whole in messages this node sent to peers.
    pub commands_sent: u64,
}

impl Stats {
    /// Adds another replica's counters (`max_batch` takes the larger).
    pub fn add(&mut self, s: &Stats) {
        self.learned_fast += s.learned_fast;
        self.learned_slow += s.learned_slow;
        self.checkpoints_learned += s.checkpoints_learned;
        self.collisions += s.collisions;
        self.recoveries += s.recoveries;
        self.ballots_started += s.ballots_started;
        self.elections += s.elections;
        self.mode_switches += s.mode_switches;
        self.checkpoints_proposed += s.checkpoints_proposed;
        self.writes += s.writes;
        self.messages += s.messages;
        self.max_batch = self.max_batch.max(s.max_batch);
        self.incompatible_learned += s.incompatible_learned;
        self.start_errors += s.start_errors;
        self.snapshots += s.snapshots;
        self.syncs_compacted += s.syncs_compacted;
        self.snapshots_installed += s.snapshots_installed;
        self.snapshots_refused += s.snapshots_refused;
        self.refused += s.refused;
        self.payloads_missed += s.payloads_missed;
        self.commands_sent += s.commands_sent;
    }
}

/// A `Close` message's content (`Replica::try_close`).
#[derive(Debug)]
struct PendingClose {
    bal: Ballot,
    instance: Instance,
    upto: Vec<(crate::command::CmdId, crate::command::Digest)>,
    ckpt: Command,
}

#[derive(Debug)]
enum Held {
    Send(Dest, Message),
    Learned(Instance, Command, bool),
    /// A snapshot from a peer, durable.
    Install(Installed),
}

pub struct Replica<C> {
    id: NodeId,
    config: Config,
    acceptor: Acceptor<C>,
    leader: Leader<C>,
    learner: Learner<C>,
    proposer: Proposer,
    now: u64,
    /// The highest ballot seen in any message: the current leader is its
    /// owner.
    max_seen: Ballot,
    last_leader_contact: u64,
    /// Phase 1 attempts since this node last led a ballot in phase 2; each
    /// failed attempt doubles the next one's timeout, so a phase 1 whose 1b
    /// messages are large (a long open instance over a slow link) gets
    /// through instead of being restarted forever.
    phase1_attempts: u32,
    /// Last tick each acceptor answered this node's heartbeats.
    acks: Vec<Option<u64>>,
    /// How far each acceptor said its node has learned, in heartbeat acks.
    ack_hints: Vec<Instance>,
    /// The last message refused, with why, until the driver logs it.
    last_refused: Option<String>,
    last_heartbeat: u64,
    /// Writes emitted so far and how many of them are durable.
    emitted: u64,
    synced: u64,
    writes: Vec<Record>,
    /// Messages and learned commands waiting for the writes before them.
    held: VecDeque<(u64, Held)>,
    inbox: VecDeque<Message>,
    /// Proposals received since the last drain, voted on (or suggested) as
    /// one batch: one write and one 2b per instance for a whole burst.
    proposals: Vec<Command>,
    out: Output,
    learned_log: LearnedLog,
    /// `closed_below` when the log was last replaced by a snapshot.
    snapshot_at: Instance,
    /// The state machine of the snapshot recovered from, for the driver.
    recovered_app: Option<Vec<u8>>,
    /// The instance this node last proposed a checkpoint for, and when.
    checkpoint_for: Option<(Instance, u64)>,
    /// Proposals held back while a checkpoint closes the open instance.
    fence: Fence,
    /// New commands this acceptor holds back from an instance its leader
    /// is closing.
    closing: Closing,
    /// A `Close` naming commands this node has not received yet, waiting
    /// for them (their proposals are queued behind other traffic), and
    /// since when.
    pending_close: Option<(PendingClose, u64)>,
    /// The commands this node has seen, which 2bs name by id, and the
    /// instance the learner had closed below when it last dropped old ones.
    payloads: Payloads,
    payloads_turned: Instance,
    /// Snapshots sent to and received from peers.
    transfer: Transfer,
    /// The peer whose snapshot this node last installed.
    snapshot_source: Option<NodeId>,
    /// The instance of the last command handed out and the position where
    /// that instance starts in the learned sequence: every learner's
    /// sequence holds the same commands below it.
    instance_start: (Instance, u64),
    /// An installed snapshot waits for its records to be durable; the
    /// driver's state machine is not the learner's until then.
    installing: bool,
    stats: Stats,
}

impl<C: CStruct> Replica<C> {
    // `config.planted` is `()` in builds without planted bugs.
    #[allow(clippy::unit_arg)]
    pub fn new(id: NodeId, config: Config) -> Self {
        let n = config.n();
        assert!((id as usize) < n, "node id {id} outside a cluster of {n}");
        Replica {
            id,
            acceptor: Acceptor::new(id, config.fast, config.planted),
            leader: Leader::new(id, n, config.quorums, config.planted),
            learner: Learner::new(
                n,
                config.quorums,
                config.session_idle_instances,
                config.planted,
            ),
            proposer: Proposer::new(config.max_batch),
            now: 0,
            max_seen: Ballot::ZERO,
            last_leader_contact: 0,
            acks: vec![None; n],
            ack_hints: vec![0; n],
            last_refused: None,
            phase1_attempts: 0,
            last_heartbeat: 0,
            emitted: 0,
            synced: 0,
            writes: Vec::new(),
            held: VecDeque::new(),
            inbox: VecDeque::new(),
            proposals: Vec::new(),
            out: Output::default(),
            learned_log: LearnedLog::default(),
            snapshot_at: 0,
            recovered_app: None,
            checkpoint_for: None,
            fence: Fence::default(),
            closing: Closing::default(),
            pending_close: None,
            payloads: Payloads::default(),
            payloads_turned: 0,
            transfer: Transfer::default(),
            snapshot_source: None,
            installing: false,
            instance_start: (0, 0),
            stats: Stats::default(),
            config,
        }
    }

    /// Rebuilds a replica from its durable records after a crash. If the
    /// log starts with a snapshot, [`Replica::take_recovered_app`] hands
    /// its state machine to the driver; the learned commands after it (all
    /// of them, without one) are handed out again so the driver can bring
    /// the state machine up to date. Fails only on a snapshot that is
    /// incomplete or does not decode.
    pub fn recover<'a>(
        id: NodeId,
        config: Config,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Self, SnapshotError> {
        let mut r = Replica::new(id, config);
        let mut out = Outbox::default();
        let mut parts = Parts::default();
        // Records before the snapshot being read: a snapshot installed from
        // a peer is appended to a log, and one whose last parts a crash cut
        // off was never installed; a log that starts with an incomplete one
        // (a compacted log) is broken.
        let mut before = 0usize;
        let mut seen = 0usize;
        for rec in records {
            seen += 1;
            if let Record::Snapshot {
                instance,
                part,
                parts: n,
                bytes,
            } = rec
            {
                if *part == 0 {
                    before = seen - 1;
                }
                if let Some(state) = parts.add(*instance, *part, *n, bytes)? {
                    r.transfer.serve(state.instance, Arc::new(state.encode()));
                    r.install(state, &mut out);
                }
                continue;
            }
            r.acceptor.recover(rec);
            r.leader.recover(rec);
            r.learner.recover(rec, &mut out);
        }
        if before == 0 {
            parts.finish()?;
        }
        r.leader.step_down();
        r.max_seen = r.acceptor.mbal();
        r.absorb(out, false);
        Ok(r)
    }

    /// Resumes the learner and the learned log from a snapshot; the
    /// commands it had not applied are handed out again.
    fn install(&mut self, state: SnapshotState, out: &mut Outbox) {
        // A snapshot supersedes whatever was learned before it.
        out.effects.retain(|e| !matches!(e, Effect::Learn { .. }));
        self.learner
            .install(state.instance, state.sessions, state.closed);
        self.learned_log = LearnedLog::resume(state.position, state.recent);
        self.instance_start = (state.instance, state.open_start);
        for (instance, cmd) in state.unapplied {
            out.learn(instance, cmd, false);
        }
        self.snapshot_at = state.instance;
        self.recovered_app = Some(state.app);
    }

    /// A whole snapshot from a peer: refused unless it is ahead of this
    /// learner and decodes; otherwise installed durably. Its records are
    /// appended to the log (a restart resumes from them), the acceptor
    /// forgets what it covers, the proposer stops retrying what it holds,
    /// and once the records are durable the learned sequence jumps to its
    /// position and the driver takes its state machine.
    fn install_received(&mut self, r: Received, out: &mut Outbox) {
        let held_learned = self
            .held
            .iter()
            .filter(|(_, h)| matches!(h, Held::Learned(..)))
            .count() as u64;
        let next = self.learner.closed_below();
        let state = match SnapshotState::decode(r.instance, &r.bytes) {
            Ok(s)
                if s.instance == r.instance
                    && s.instance > next
                    && s.position >= self.learned_log.len() + held_learned
                    && !self.installing =>
            {
                s
            }
            _ => {
                self.stats.snapshots_refused += 1;
                return;
            }
        };
        for rec in snapshot::records_of(state.instance, &r.bytes) {
            out.write(rec);
        }
        let SnapshotState {
            instance,
            position,
            open_start,
            app,
            sessions,
            unapplied,
            closed,
            recent,
        } = state;
        self.acceptor.forget_below(instance, out);
        self.learner.install(instance, sessions, closed);
        out.effects.push(Effect::Install(Installed {
            instance,
            position,
            open_start,
            recent,
            app,
        }));
        for (i, cmd) in unapplied {
            out.learn(i, cmd, false);
        }
        self.learner.hand_out_learned(out);
        let sessions = self.learner.sessions();
        self.proposer
            .retain(|id| sessions.status(*id) != IdStatus::Done);
        self.transfer.serve(instance, Arc::new(r.bytes));
        self.snapshot_source = Some(r.from);
        // Compact the log (it now holds the snapshot and what came before)
        // as soon as the snapshot is durable.
        self.snapshot_at = instance.saturating_sub(self.config.snapshot_every);
        self.installing = true;
        self.stats.snapshots_installed += 1;
    }

    /// The state machine of the snapshot this replica recovered from, once.
    pub fn take_recovered_app(&mut self) -> Option<Vec<u8>> {
        self.recovered_app.take()
    }

    /// Whether enough instances closed since the last snapshot that the
    /// driver should replace the log with a new one.
    pub fn snapshot_due(&self) -> bool {
        let every = self.config.snapshot_every;
        let due = every > 0 && self.learner.closed_below() >= self.snapshot_at + every;
        // A peer needs a snapshot newer than the one held.
        let wanted = self.transfer.wanted()
            && self.learner.closed_below() > self.transfer.served_instance().unwrap_or(0);
        (due || wanted) && !self.installing
    }

    /// Records that rebuild this replica's durable state (see
    /// [`super::snapshot`]), given the driver's state machine after every
    /// learned command handed out so far by [`Replica::drain`]. The driver
    /// replaces its log with them, queued behind every write already
    /// drained.
    pub fn snapshot(&mut self, app: Vec<u8>) -> Vec<Record> {
        let learner = self.learner.snapshot();
        let unapplied: Vec<(Instance, Command)> = self
            .held
            .iter()
            .filter_map(|(_, h)| match h {
                Held::Learned(i, cmd, _) => Some((*i, cmd.clone())),
                Held::Send(..) | Held::Install(_) => None,
            })
            .collect();
        let instance = self.learner.closed_below();
        let position = self.learned_log.len();
        let open_start = if self.instance_start.0 == instance {
            self.instance_start.1
        } else {
            let before = unapplied_before(&unapplied, instance);
            position + before
        };
        let state = SnapshotState {
            instance,
            position,
            open_start,
            app,
            sessions: learner.sessions,
            unapplied,
            closed: learner.closed,
            recent: self.learned_log.tail(snapshot::RECENT_KEPT),
        };
        let bytes = state.encode();
        let mut records = snapshot::records_of(state.instance, &bytes);
        self.transfer.serve(state.instance, Arc::new(bytes));
        records.extend(self.acceptor.snapshot_records());
        records.push(Record::LeaderRound {
            round: self.leader.claimed_round(),
        });
        records.extend(learner.open);
        self.snapshot_at = state.instance;
        self.stats.snapshots += 1;
        records
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The last message refused since the previous call, and why: the
    /// driver logs it at a rate it chooses (the count is in the stats).
    pub fn take_refused(&mut self) -> Option<String> {
        self.last_refused.take()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many commands this node has learned (and handed out).
    pub fn learned_len(&self) -> u64 {
        self.learned_log.len()
    }

    /// Up to `max` learned commands from position `from` on, if that part
    /// of the learned sequence is still held.
    pub fn learned_range(&self, from: u64, max: usize) -> Result<Vec<Command>, Compacted> {
        self.learned_log.range(from, max)
    }

    /// The ballot this node's acceptor is in (`mbal`).
    pub fn mbal(&self) -> Ballot {
        self.acceptor.mbal()
    }

    /// The ballot this node leads in phase 2, if any.
    pub fn leading(&self) -> Option<Ballot> {
        self.leader.leading()
    }

    /// The node this node believes leads.
    pub fn leader_hint(&self) -> NodeId {
        self.max_seen.leader_of()
    }

    pub fn closed_below(&self) -> Instance {
        self.learner.closed_below()
    }

    pub fn pending_proposals(&self) -> usize {
        self.proposer.pending()
    }

    /// Whether `id` was handed out here already (a retry to answer from the
    /// reply cache) or is new.
    // `Planted` is `()` in builds without planted bugs.
    #[allow(clippy::unit_arg)]
    pub fn session_status(&self, id: CmdId) -> IdStatus {
        self.learner
            .sessions()
            .status_planted(id, self.config.planted)
    }

    /// The size of the last snapshot taken or installed here.
    pub fn snapshot_bytes(&self) -> u64 {
        self.transfer.served_bytes()
    }

    /// How many client sessions the learner keeps.
    pub fn sessions(&self) -> usize {
        self.learner.sessions().len()
    }

    /// Whether `client` has a session here.
    pub fn has_session(&self, client: u64) -> bool {
        self.learner.sessions().has(client)
    }

    /// How many times a snapshot from a peer rewrote the learned sequence,
    /// and the lowest position the last one changed: an observer that read
    /// past it reads again from there.
    pub fn learned_rewrites(&self) -> (u64, u64) {
        self.learned_log.rewrites()
    }

    /// The peer whose snapshot this node last installed, if any.
    pub fn snapshot_source(&self) -> Option<NodeId> {
        self.snapshot_source
    }

    /// How many commands (and 2bs waiting for theirs) this node keeps for the 2bs that name them.
    pub fn payloads_held(&self) -> usize {
        self.payloads.len()
    }

    /// How many per-instance entries the acceptor and learner hold: what
    /// a message naming far instances would make grow.
    pub fn held_instances(&self) -> usize {
        self.acceptor.held() + self.learner.held_instances()
    }

    /// A one-line summary of the replica's protocol state, for status
    /// output and diagnosing stalled runs.
    pub fn describe(&self) -> String {
        format!(
            "{} {} mbal={:?} leading={:?} starting={:?} closed_below={} learned={} pending={} held={} synced={}/{} unlearned_since={:?} now={}",
            super::ballot::node_name(self.id),
            self.acceptor.describe(),
            self.acceptor.mbal(),
            self.leader.leading(),
            self.leader.ballot(),
            self.learner.closed_below(),
            self.learned_log.len(),
            self.proposer.pending(),
            self.held.len(),
            self.synced,
            self.emitted,
            self.learner.unlearned_since(),
            self.now,
        )
    }

    /// A client command submitted at this node.
    pub fn propose(&mut self, cmd: Command) {
        self.proposer.propose(cmd, self.now);
        let mut out = Outbox::default();
        self.flush_proposals(&mut out);
        self.absorb(out, true);
    }

    /// Votes the pending `Close` once every command it names is known
    /// here, or, `anyway`, the checkpoint alone (a command whose proposal
    /// never came cannot be appended; the instance may then collide).
    fn try_close(&mut self, anyway: bool, out: &mut Outbox) {
        let Some((close, _)) = &self.pending_close else {
            return;
        };
        let upto = match self.payloads.resolve(&close.upto) {
            Some(cmds) => cmds,
            None if anyway => Vec::new(),
            None => return,
        };
        let Some((c, _)) = self.pending_close.take() else {
            return;
        };
        self.acceptor.close(c.bal, c.instance, &upto, &c.ckpt, out);
        self.lower_closing_gate(out);
    }

    /// Lowers this acceptor's closing gate and votes what it held back,
    /// into the instance open now.
    fn lower_closing_gate(&mut self, out: &mut Outbox) {
        let held = self.closing.lower();
        self.acceptor.phase2b_fast(&held, out);
    }

    /// The messages of the fast path's machinery (issue 13): 2bs naming
    /// their commands (`payloads`) and an instance's closing (`closing`).
    fn step_fast_path(&mut self, from: NodeId, msg: Message, out: &mut Outbox) {
        match msg {
            Message::Phase2bIds {
                bal,
                acc,
                instance,
                base,
                cmds: ids,
                fast,
            } if instance >= self.learner.closed_below() => {
                let vote = NamedVote {
                    bal,
                    acc,
                    instance,
                    base,
                    refs: ids,
                    fast,
                    since: self.now,
                };
                self.on_named_vote(vote, out);
            }
            Message::Close {
                bal,
                instance,
                upto,
                ckpt,
            } => {
                self.observe(bal, true);
                let close = PendingClose {
                    bal,
                    instance,
                    upto,
                    ckpt,
                };
                self.pending_close = Some((close, self.now));
                self.try_close(false, out);
            }
            Message::Closing { bal, instance } => {
                self.observe(bal, true);
                if self.acceptor.mbal() == bal && self.acceptor.open_instance() == Some(instance) {
                    self.closing.raise(bal, instance, self.now);
                    let acc = self.id;
                    out.send(from, Message::ClosingAck { bal, acc, instance });
                }
            }
            // The leader of ballot 0 never ran phase 1, so the ballot names
            // its leader rather than the phase.
            Message::ClosingAck { bal, acc, instance } if bal.leader == self.id => {
                self.fence.on_ack(instance, acc, self.now);
            }
            _ => {}
        }
    }

    /// Receipt of a 2b, its commands whole.
    #[allow(clippy::too_many_arguments)]
    fn on_phase2b(
        &mut self,
        bal: Ballot,
        acc: NodeId,
        instance: Instance,
        base: u32,
        cmds: &[Command],
        fast: bool,
        out: &mut Outbox,
    ) {
        let collision = self
            .learner
            .on_phase2b(bal, acc, instance, base, cmds, fast, self.now, out);
        if let Some(c) = collision {
            self.on_collision(c, out);
        }
        if self.closing.gate(bal) == Some(instance) && self.closing.held() > 0 {
            // Asked of the learner, not of this 2b: deltas that waited for
            // it (`learner::Early`) may have come in with it.
            let learner = &self.learner;
            let go = self.closing.release(|id| learner.voted(instance, bal, id));
            self.acceptor.phase2b_fast(&go, out);
        }
        self.after_learning(out);
    }

    /// Receipt of a 2b naming its commands (`payloads`): taken if they are
    /// all known, else it waits for them.
    fn on_named_vote(&mut self, vote: NamedVote, out: &mut Outbox) {
        match self.payloads.resolve(&vote.refs) {
            Some(cmds) => self.on_phase2b(
                vote.bal,
                vote.acc,
                vote.instance,
                vote.base,
                &cmds,
                vote.fast,
                out,
            ),
            None => {
                if let Err(vote) = self.payloads.wait(vote) {
                    self.ask_for_payloads(vote, out);
                }
            }
        }
    }

    /// Asks the acceptor for a vote whose commands this node lacks, from
    /// what the learner holds of it, so the answer leaves no gap.
    fn ask_for_payloads(&mut self, vote: NamedVote, out: &mut Outbox) {
        self.stats.payloads_missed += 1;
        let have = self
            .learner
            .vote_len(vote.instance, vote.bal, vote.acc)
            .min(vote.base);
        out.send(
            vote.acc,
            Message::Resend {
                bal: vote.bal,
                instance: vote.instance,
                have,
            },
        );
    }

    /// Takes the waiting 2bs whose commands arrived.
    fn take_ready_votes(&mut self, out: &mut Outbox) {
        for (v, cmds) in self.payloads.ready() {
            if v.instance >= self.learner.closed_below() {
                self.on_phase2b(v.bal, v.acc, v.instance, v.base, &cmds, v.fast, out);
            }
        }
    }

    /// Keeps the commands a message carries, for the 2bs that will name
    /// them (`payloads`); drops the older ones once an instance closed.
    fn remember_payloads(&mut self, msg: &Message) -> bool {
        let closed = self.learner.closed_below();
        if closed > self.payloads_turned {
            self.payloads_turned = closed;
            self.payloads.turn();
        }
        match msg {
            Message::Propose { cmds }
            | Message::Phase2a { cmds, .. }
            | Message::Phase2b { cmds, .. } => self.payloads.remember_all(cmds),
            Message::Phase2Start { values, .. } => {
                for s in values {
                    self.payloads.remember_all(&s.value);
                }
            }
            Message::Close { ckpt, .. } => self.payloads.remember(ckpt),
            _ => return false,
        }
        true
    }

    /// Sends the proposals waiting, unless a checkpoint is closing the
    /// open instance (`fence`): then only checkpoints go.
    fn flush_proposals(&mut self, out: &mut Outbox) {
        let fast = self.config.fast && self.acceptor.mbal().fast;
        let held = self.fence.holds(
            fast,
            self.learner.closed_below(),
            self.learner.open_len(),
            self.config.checkpoint_every,
            self.now,
        );
        self.proposer.hold(held);
        self.proposer.flush(out);
    }

    /// The storage reports that the first `upto` writes handed out are
    /// durable.
    pub fn durable(&mut self, upto: u64) {
        self.synced = self.synced.max(upto.min(self.emitted));
        self.release();
    }

    /// Starts a ballot now, as if the election timer had fired: a second
    /// would-be leader (safety must not depend on there being one leader,
    /// Section 6.2).
    pub fn start_election(&mut self) {
        let mut out = Outbox::default();
        let fast = self.config.fast;
        self.start_ballot(fast, &mut out);
        self.stats.elections += 1;
        self.absorb(out, true);
    }

    /// Everything released since the last call. Messages to this node are
    /// delivered to it here, before returning.
    pub fn drain(&mut self) -> Output {
        loop {
            while let Some(msg) = self.inbox.pop_front() {
                self.step(self.id, msg);
            }
            if self.proposals.is_empty() {
                break;
            }
            self.vote_proposals();
        }
        // What waits behind an installed snapshot is released with the next
        // input: the driver snapshots its state right after this drain, and
        // must find it all still held.
        let out = std::mem::take(&mut self.out);
        self.stats.messages += out.messages.len() as u64;
        self.stats.commands_sent += out
            .messages
            .iter()
            .map(|(_, m)| m.commands_carried() as u64)
            .sum::<u64>();
        out
    }

    /// A timer tick.
    pub fn tick(&mut self) {
        self.now += 1;
        let now = self.now;
        let mut out = Outbox::default();
        self.flush_proposals(&mut out);
        for vote in self.payloads.overdue(now) {
            self.ask_for_payloads(vote, &mut out);
        }
        let overdue = self
            .pending_close
            .as_ref()
            .is_some_and(|(_, since)| now >= since + super::fence::MAX_HOLD_TICKS);
        self.try_close(overdue, &mut out);
        if self
            .closing
            .stale(self.acceptor.mbal(), self.acceptor.open_instance(), now)
        {
            self.lower_closing_gate(&mut out);
        }
        self.proposer.tick(now, self.config.retry_ticks, &mut out);
        self.learner.tick(now, self.config.sync_ticks, &mut out);
        self.transfer.tick(now, &mut out);
        if let Some(bal) = self.leader.leading() {
            self.phase1_attempts = 0;
            self.lead(bal, &mut out);
        } else if let Some(bal) = self.leader.ballot() {
            // Phase 1 did not gather a quorum in time: try a higher ballot,
            // classic if a fast quorum did not answer, and wait longer.
            let timeout = self.config.election_ticks << self.phase1_attempts.min(6);
            // Tell the others a leader is at work, so they do not start
            // rival ballots while a slow phase 1 completes.
            self.heartbeat(bal, &mut out);
            if now >= self.leader.started_at + timeout {
                self.phase1_attempts += 1;
                let fast = bal.fast && self.alive() >= self.config.quorums.fast;
                self.start_ballot(fast && self.config.fast, &mut out);
            }
        } else if now >= self.last_leader_contact + self.election_timeout() {
            self.stats.elections += 1;
            let fast = self.config.fast;
            self.start_ballot(fast, &mut out);
        }
        self.absorb(out, true);
    }

    /// A node that knows it is behind waits four times as long, so one
    /// that is up to date wins the election (a lagging leader would drive
    /// checkpoints and recoveries from instances the others closed long
    /// ago); it still stands if no one else does.
    fn election_timeout(&self) -> u64 {
        let e = self.config.election_ticks;
        let t = e + self.id as u64 * e.div_ceil(2);
        if self.learner.behind() || self.transfer.receiving() {
            4 * t
        } else {
            t
        }
    }

    /// The acceptors that answered a heartbeat recently, this one
    /// included, a bit each.
    fn alive_mask(&self) -> u64 {
        let window = 3 * self.config.heartbeat_ticks + 1;
        (0..self.acks.len())
            .filter(|&i| {
                i as NodeId == self.id || self.acks[i].is_some_and(|t| t + window >= self.now)
            })
            .fold(0, |m, i| m | 1 << i)
    }

    /// Acceptors that answered a heartbeat recently, this one included.
    fn alive(&self) -> usize {
        self.alive_mask().count_ones() as usize
    }

    fn start_ballot(&mut self, fast: bool, out: &mut Outbox) {
        let m = self.leader.next_ballot(self.max_seen, fast);
        self.max_seen = m;
        self.last_leader_contact = self.now;
        self.stats.ballots_started += 1;
        self.leader.phase1a(m, self.now, out);
    }

    /// Every `heartbeat_ticks`, tells everyone that the leader of `bal` is
    /// alive and how far its learner has got; a leader is its own contact.
    fn heartbeat(&mut self, bal: Ballot, out: &mut Outbox) {
        self.last_leader_contact = self.now;
        if self.now >= self.last_heartbeat + self.config.heartbeat_ticks {
            self.last_heartbeat = self.now;
            out.broadcast(Message::Heartbeat {
                bal,
                closed_below: self.learner.closed_below(),
                open_len: self.learner.open_len() as u32,
            });
        }
    }

    /// The leader's duties on a tick (Section 6.2): heartbeats, switching
    /// between fast and classic ballots as acceptors fail and return,
    /// recovering an instance that stopped making progress, checkpoints.
    fn lead(&mut self, bal: Ballot, out: &mut Outbox) {
        let now = self.now;
        self.heartbeat(bal, out);
        let settled = now >= self.leader.started_at + 2 * self.config.election_ticks;
        let alive = self.alive();
        if bal.fast && !self.config.fast {
            // Ballot 0 is fast; a classic-only cluster leaves it at once.
            self.start_ballot(false, out);
            return;
        }
        if bal.fast && alive < self.config.quorums.fast && settled {
            self.stats.mode_switches += 1;
            self.start_ballot(false, out);
            return;
        }
        if !bal.fast && self.config.fast && alive >= self.config.quorums.fast && settled {
            self.stats.mode_switches += 1;
            self.start_ballot(true, out);
            return;
        }
        if self.learner.behind() {
            // Recovery and checkpoints look at the lowest open instance,
            // and this learner's is one the acceptors closed: catch up first.
            return;
        }
        if let Some(since) = self.learner.unlearned_since() {
            if now >= since + 2 * self.config.sync_ticks
                && now >= self.leader.started_at + 2 * self.config.sync_ticks
            {
                self.stats.recoveries += 1;
                self.start_ballot(bal.fast, out);
                return;
            }
        }
        self.maybe_checkpoint(bal, out);
    }

    /// Proposes a checkpoint once the open instance is long enough, or when
    /// later instances wait behind it (a recovery can leave a checkpoint in
    /// a later instance than the one it was meant to close), and again with
    /// a fresh id if the instance has not closed after a while
    /// (Section 6.3). In a classic ballot the leader places it itself.
    fn maybe_checkpoint(&mut self, bal: Ballot, out: &mut Outbox) {
        let instance = self.learner.closed_below();
        let len = if bal.fast {
            self.learner.open_len()
        } else {
            self.leader.open_len().unwrap_or(0)
        };
        if len < self.config.checkpoint_every && !self.learner.blocked() {
            return;
        }
        // A checkpoint lands in the acceptors' lowest open instance; if that
        // is not the one this learner waits on, the learner is behind and
        // must catch up instead.
        if bal.fast && self.acceptor.open_instance() != Some(instance) {
            return;
        }
        if let Some((i, at)) = self.checkpoint_for {
            if i == instance && self.now < at + 2 * self.config.retry_ticks {
                return;
            }
        }
        // In a fast ballot, only once the commands racing the checkpoint
        // have landed (`fence`); a blocked learner cannot wait.
        if bal.fast && !self.learner.blocked() {
            if !self.fence.announced(instance) {
                self.fence.announce(instance, self.now);
                out.broadcast(Message::Closing { bal, instance });
                return;
            }
            // Quiet: every vote seen is learned, and none waits unseen.
            let quiet = self.learner.unlearned_since().is_none()
                && !self.learner.open_has_early()
                && !self.payloads.waiting_for(instance);
            if !self
                .fence
                .checkpoint_ready(instance, self.now, quiet, self.alive_mask())
            {
                return;
            }
        }
        self.checkpoint_for = Some((instance, self.now));
        self.stats.checkpoints_proposed += 1;
        let cmd = Command::checkpoint(self.leader.next_checkpoint_id());
        if bal.fast {
            out.broadcast(Message::Close {
                bal,
                instance,
                upto: self.learner.open_refs(),
                ckpt: cmd.clone(),
            });
            self.proposer.track(cmd, self.now);
        } else {
            self.leader.phase2a_classic(&[cmd], out);
        }
    }

    /// Receipt of a message from node `from`.
    pub fn step(&mut self, from: NodeId, msg: Message) {
        let window = validate::Window {
            n: self.config.n(),
            max_seen: self.max_seen.max(self.acceptor.mbal()),
            next: self
                .learner
                .closed_below()
                .max(self.acceptor.forgotten_below()),
        };
        if let Err(why) = validate::check(&window, from, &msg) {
            self.stats.refused += 1;
            self.last_refused = Some(format!("{} from {}: {why}", msg.kind(), node_name(from)));
            return;
        }
        let mut out = Outbox::default();
        if self.remember_payloads(&msg) {
            if self.payloads.is_waiting() {
                self.take_ready_votes(&mut out);
            }
            self.try_close(false, &mut out);
        }
        match msg {
            Message::Propose { mut cmds } => {
                // Voting later in the same burst is voting a little later,
                // which the algorithm allows at any time.
                self.proposals.append(&mut cmds);
            }
            Message::Phase1a { bal } => {
                self.observe(bal, true);
                self.acceptor.phase1b(bal, &mut out);
            }
            Message::Phase1b {
                bal,
                acc,
                from: first,
                votes,
                rests,
            } => {
                let oneb = OneB {
                    from: first,
                    votes,
                    rests,
                };
                match self.leader.on_phase1b(bal, acc, oneb, &mut out) {
                    Ok(()) => {}
                    Err(StartError::NothingProvedSafe { .. }) => self.stats.start_errors += 1,
                    Err(StartError::ReportGap { from: gap, to }) => {
                        self.stats.refused += 1;
                        self.last_refused = Some(format!(
                            "the 1b messages for {bal:?} report votes with a hole from instance {gap} to {to}"
                        ));
                    }
                }
                if self.leader.leading() == Some(bal) {
                    self.last_heartbeat = 0;
                }
            }
            Message::Preempted { bal, mbal } => {
                self.observe(mbal, false);
                if self.leader.ballot() == Some(bal) && mbal > bal {
                    self.leader.step_down();
                }
            }
            Message::Phase2Start {
                bal,
                values,
                rest_from,
            } => {
                self.observe(bal, true);
                self.acceptor
                    .phase2b_classic_start(bal, &values, rest_from, &mut out);
            }
            Message::Phase2a {
                bal,
                instance,
                base,
                cmds,
            } => {
                self.observe(bal, true);
                self.acceptor
                    .phase2b_classic(bal, instance, base, &cmds, &mut out);
            }
            Message::Phase2b {
                bal,
                acc,
                instance,
                base,
                cmds,
                fast,
            } => self.on_phase2b(bal, acc, instance, base, &cmds, fast, &mut out),
            msg @ (Message::Phase2bIds { .. }
            | Message::Close { .. }
            | Message::Closing { .. }
            | Message::ClosingAck { .. }) => self.step_fast_path(from, msg, &mut out),
            Message::Resend {
                bal,
                instance,
                have,
            } => {
                self.leader.resend(from, bal, instance, have, &mut out);
                self.acceptor
                    .resend_vote(from, instance, Some(bal), have, &mut out);
            }
            Message::Sync { instance, have } => {
                let mine = have.iter().find(|(a, _, _)| *a == self.id);
                let (bal, len) = mine.map_or((None, 0), |(_, b, l)| (Some(*b), *l));
                self.acceptor
                    .resend_vote(from, instance, bal, len, &mut out);
                if !self.learner.on_sync(from, instance, &mut out) {
                    self.transfer.on_compacted_sync(from, instance, &mut out);
                }
                self.stats.syncs_compacted = self.learner.syncs_compacted;
            }
            Message::SnapshotOffer { instance, total } => {
                let next = self.learner.closed_below();
                self.transfer
                    .on_offer(from, instance, total, next, self.now, &mut out);
            }
            Message::SnapshotFetch { instance, offset } => {
                self.transfer.on_fetch(from, instance, offset, &mut out);
            }
            Message::SnapshotChunk {
                instance,
                offset,
                total,
                bytes,
            } => {
                let now = self.now;
                if let Some(received) = self
                    .transfer
                    .on_chunk(from, instance, offset, total, bytes, now, &mut out)
                {
                    self.install_received(received, &mut out);
                }
            }
            Message::Chosen { instance, value } => {
                self.learner.on_chosen(instance, &value, &mut out);
                self.after_learning(&mut out);
            }
            Message::Heartbeat {
                bal,
                closed_below,
                open_len,
            } => {
                self.observe(bal, true);
                // Only the leader of the highest ballot says how far the
                // cluster has learned; the hint reaches no further than
                // the window, so no one peer can make this node think it
                // is behind for good.
                if bal >= self.max_seen {
                    let reach = window.next.saturating_add(validate::INSTANCE_WINDOW);
                    self.learner.on_hint(closed_below.min(reach));
                    self.learner.on_open_hint(closed_below, open_len as usize);
                }
                out.send(
                    from,
                    Message::HeartbeatAck {
                        acc: self.id,
                        mbal: self.acceptor.mbal(),
                        closed_below: self.learner.closed_below(),
                    },
                );
                if self.acceptor.mbal() < bal {
                    // This acceptor missed the ballot's start.
                    out.send(
                        from,
                        Message::Resend {
                            bal,
                            instance: self.learner.closed_below(),
                            have: 0,
                        },
                    );
                }
            }
            Message::HeartbeatAck {
                acc,
                mbal,
                closed_below,
            } => {
                // An acceptor ahead of this leader: the hint is taken only
                // when a second acceptor is as far ahead, so one peer's
                // word cannot make the leader think it is behind.
                self.ack_hints[acc as usize] = closed_below;
                let mut hints = self.ack_hints.clone();
                hints.sort_unstable();
                if let Some(&second) = hints.iter().rev().nth(1) {
                    let reach = window.next.saturating_add(validate::INSTANCE_WINDOW);
                    self.learner.on_hint(second.min(reach));
                }
                if let Some(slot) = self.acks.get_mut(acc as usize) {
                    *slot = Some(self.now);
                }
                self.observe(mbal, false);
                if let Some(b) = self.leader.ballot() {
                    if mbal > b {
                        self.leader.step_down();
                    } else if mbal < b && self.leader.leading() == Some(b) {
                        self.leader.repeat_start(acc, &mut out);
                    }
                }
            }
        }
        // The open instance may have closed: what the fence held goes now.
        self.flush_proposals(&mut out);
        self.absorb(out, true);
    }

    /// `Phase2bFast` and `Phase2aClassic` for the proposals of a burst.
    fn vote_proposals(&mut self) {
        let mut cmds = std::mem::take(&mut self.proposals);
        self.stats.max_batch = self.stats.max_batch.max(cmds.len() as u64);
        let mut out = Outbox::default();
        let mbal = self.acceptor.mbal();
        if let Some(instance) = self.closing.gate(mbal) {
            // Into a closing instance only what another acceptor put there.
            let (mut go, held): (Vec<Command>, Vec<Command>) = cmds
                .into_iter()
                .partition(|c| c.is_checkpoint() || self.learner.voted(instance, mbal, &c.id));
            for c in held {
                if let Err(c) = self.closing.hold(c) {
                    go.push(c);
                }
            }
            cmds = go;
        }
        self.acceptor.phase2b_fast(&cmds, &mut out);
        self.leader.phase2a_classic(&cmds, &mut out);
        self.absorb(out, true);
    }

    /// Notes a ballot seen in a message; a message from the leader of the
    /// highest ballot counts as contact with the leader.
    fn observe(&mut self, bal: Ballot, from_leader: bool) {
        if bal > self.max_seen {
            self.max_seen = bal;
            if let Some(mine) = self.leader.ballot() {
                if mine < bal {
                    self.leader.step_down();
                }
            }
        }
        if from_leader && bal >= self.max_seen {
            self.last_leader_contact = self.now;
        }
    }

    /// The leader of a fast ballot saw two acceptors vote incompatible
    /// c-structs: it starts a higher ballot whose Phase2Start orders the
    /// colliding commands (Section 6.1).
    fn on_collision(&mut self, c: Collision, out: &mut Outbox) {
        self.stats.collisions += 1;
        if self.leader.leading() == Some(c.bal) {
            self.stats.recoveries += 1;
            self.start_ballot(true, out);
        }
    }

    /// Lets the acceptor, the leader and a transfer under way forget
    /// instances the learner has closed.
    fn after_learning(&mut self, out: &mut Outbox) {
        let closed = self.learner.closed_below();
        self.acceptor.forget_below(closed, out);
        self.leader.prune_below(closed);
        self.transfer.forget_below(closed);
        self.stats.incompatible_learned = self.learner.incompatible;
    }

    /// Queues a role's effects behind the writes emitted before them.
    fn absorb(&mut self, out: Outbox, live: bool) {
        for e in out.effects {
            match e {
                Effect::Write(r) => {
                    self.writes.push(r);
                    self.emitted += 1;
                    self.stats.writes += 1;
                }
                Effect::Send(dest, msg) => {
                    if planted!(self.config.planted, ReplyBeforeDurable)
                        && matches!(
                            msg,
                            Message::Phase1b { .. }
                                | Message::Phase2b { .. }
                                | Message::Phase2bIds { .. }
                        )
                    {
                        self.route(Held::Send(dest, msg));
                    } else {
                        self.held.push_back((self.emitted, Held::Send(dest, msg)));
                    }
                }
                Effect::Learn {
                    instance,
                    cmd,
                    fast,
                } => {
                    self.proposer.learned(&cmd.id);
                    self.held
                        .push_back((self.emitted, Held::Learned(instance, cmd, fast && live)));
                }
                Effect::Done(id) => self.proposer.learned(&id),
                Effect::Install(installed) => self
                    .held
                    .push_back((self.emitted, Held::Install(installed))),
            }
        }
        self.out.writes.append(&mut self.writes);
        if !live {
            // Recovered records are durable already.
            self.synced = self.emitted;
        }
        self.release();
    }

    /// Releases held messages and learned commands whose writes are durable.
    fn release(&mut self) {
        // Gates are non-decreasing, so stopping at the first blocked item
        // keeps FIFO order. Nothing learned after an installed snapshot goes
        // into the same output: the driver applies `learned` before it
        // takes the snapshot's state machine.
        while let Some((gate, _)) = self.held.front() {
            if *gate > self.synced || self.out.installed.is_some() {
                break;
            }
            let (_, item) = self.held.pop_front().expect("front exists");
            self.route(item);
        }
    }

    fn route(&mut self, item: Held) {
        match item {
            Held::Send(Dest::To(to), msg) if to == self.id => self.inbox.push_back(msg),
            Held::Send(Dest::To(to), msg) => self.out.messages.push((to, msg)),
            Held::Send(Dest::All, msg) => {
                for to in 0..self.config.n() as NodeId {
                    if to != self.id {
                        self.out.messages.push((to, msg.clone()));
                    }
                }
                self.inbox.push_back(msg);
            }
            Held::Install(Installed {
                instance,
                position,
                open_start,
                recent,
                app,
            }) => {
                self.learned_log
                    .splice(self.instance_start.1, position, recent);
                self.instance_start = (instance, open_start);
                self.installing = false;
                if !planted!(self.config.planted, InstallKeepsOldApp) {
                    self.out.installed = Some(app);
                }
            }
            Held::Learned(instance, cmd, fast) => {
                if cmd.is_checkpoint() {
                    self.stats.checkpoints_learned += 1;
                } else if fast {
                    self.stats.learned_fast += 1;
                } else {
                    self.stats.learned_slow += 1;
                }
                let position = self.learned_log.len();
                if instance != self.instance_start.0 {
                    self.instance_start = (instance, position);
                }
                self.learned_log.push(cmd.clone());
                self.out.learned.push(Learned {
                    position,
                    instance,
                    cmd,
                    fast,
                });
            }
        }
    }
}

/// How many of the commands handed out but not yet applied belong to
/// instances below `instance`.
fn unapplied_before(unapplied: &[(Instance, Command)], instance: Instance) -> u64 {
    unapplied.iter().filter(|(i, _)| *i < instance).count() as u64
}
