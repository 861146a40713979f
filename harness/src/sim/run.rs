//! One simulated run.

mod lag;
mod partition;
mod probe;

pub use partition::Injected;
pub use probe::{learning_delays, learning_delays_across};

use super::disk::Disk;
use super::network::{LinkFaults, Network};
use crate::faults::Kind;
use crate::latency::Latency;
use crate::record;
use crate::workload::KvWorkload;
use gpaxos_checker::consensus::{self, Property};
use gpaxos_checker::history::History as CheckedHistory;
use gpaxos_node::app::{Reply, StateMachine};
use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{node_name, Config, Message, NodeId, Replica, Stats};
use gpaxos_node::service::{self, Admission};
use gpaxos_node::{CmdId, Command};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

const MS: u64 = 1_000;

/// Which faults the nemesis injects.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum Faults {
    /// No loss, duplication, partitions, crashes or forced elections; links
    /// still jitter.
    None,
    /// Loss, duplication, jitter, partitions, crashes with restarts, and
    /// forced elections (several would-be leaders), healed before the end.
    Default,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    pub commands: usize,
    pub clients: usize,
    pub conflict: f64,
    pub faults: Faults,
    /// One-way link delay and jitter in µs.
    pub link_us: u64,
    /// One-way delay in µs of each directed link `[from][to]`, instead of
    /// `link_us` (`--latency`; jitter still adds to it).
    pub latency_us: Option<Vec<Vec<u64>>>,
    pub jitter_us: u64,
    pub fsync_us: u64,
    pub tick_us: u64,
    /// A client gives up on an operation after this long (an `info`).
    pub client_timeout_us: u64,
    /// A client sends its command again, to another node, when no answer
    /// came within this long.
    pub client_attempt_us: u64,
    /// Faults happen in `[0, fault_window_us)`; then everything heals.
    pub fault_window_us: u64,
    /// Simulated time after which an unfinished run is cut off.
    pub max_us: u64,
    /// With default faults, each seed holds back up to this share of
    /// messages (stragglers: old ballots' messages arriving late).
    pub straggle_max: f64,
    /// Every this many seeds (by seed number) is a long seed: thousands of
    /// commands, small instances, a snapshot every two instances, and the
    /// lagging-node nemesis. 0: none; 1: every seed.
    pub long_every: u64,
    /// Whether this run is a long seed (set by [`SimConfig::for_seed`]).
    pub long: bool,
    pub protocol: Config,
    /// The planted bug's name as given (`--planted-bug`), for the replay
    /// command.
    pub planted_bug: Option<String>,
}

impl SimConfig {
    pub fn new(
        nodes: usize,
        commands: usize,
        conflict: f64,
        faults: Faults,
    ) -> anyhow::Result<SimConfig> {
        let mut protocol = Config::new(nodes)?;
        protocol.checkpoint_every = 64;
        // Often, so that crashes and restarts meet compacted logs.
        protocol.snapshot_every = 2;
        Ok(SimConfig {
            nodes,
            commands,
            clients: 5,
            conflict,
            faults,
            link_us: 1_000,
            latency_us: None,
            jitter_us: 500,
            fsync_us: 200,
            tick_us: 10 * MS,
            client_timeout_us: 1_000 * MS,
            client_attempt_us: 150 * MS,
            fault_window_us: 3_000 * MS,
            straggle_max: 0.02,
            long_every: 0,
            long: false,
            max_us: 120_000 * MS,
            protocol,
            planted_bug: None,
        })
    }
}

impl SimConfig {
    /// Runs the links with `latency`'s one-way delays, the nodes' tick at
    /// [`Latency::tick_ms`], and the clients' patience stretched to match:
    /// a client retries after four of the longest delays (at least 150
    /// ms) and gives up after twenty (at least 1 s). A run is cut off
    /// after 4,000 of the longest delays (at least 120 s): a long seed's
    /// 3,000 commands take five clients a round trip across the slowest
    /// quorum each, over 100 s at 100 ms a link.
    pub fn set_latency(&mut self, latency: &Latency) {
        let max_us = latency.max().as_micros() as u64;
        self.max_us = self.max_us.max(4_000 * max_us);
        self.latency_us = Some(latency.one_way_us.clone());
        self.tick_us = self.tick_us.max(latency.tick_ms() * MS);
        self.client_attempt_us = self.client_attempt_us.max(4 * max_us);
        self.client_timeout_us = self.client_timeout_us.max(20 * max_us);
    }

    /// The configuration seed `seed` runs with: a long seed's where
    /// `long_every` says so.
    pub fn for_seed(&self, seed: u64) -> SimConfig {
        let mut cfg = self.clone();
        if self.long_every > 0
            && seed.is_multiple_of(self.long_every)
            && self.faults == Faults::Default
        {
            cfg.long = true;
            cfg.commands = cfg.commands.max(3_000);
            cfg.protocol.checkpoint_every = 8;
            cfg.protocol.snapshot_every = 2;
            // Time for the peers to run far past the lagging node, restart
            // one by one, and for it to come back, all under faults.
            cfg.fault_window_us = cfg.fault_window_us.max(10_000 * MS);
        }
        cfg
    }
}

/// What one seed did.
#[derive(Debug)]
pub struct SimOutcome {
    pub seed: u64,
    pub history: CheckedHistory,
    pub stats: Stats,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub sim_time_us: u64,
    /// Set when the run was cut off at `max_us` before every operation
    /// completed and every learner caught up.
    pub timed_out: bool,
    /// Set when the run stopped early because its history already broke a
    /// safety property (at `sim_time_us`).
    pub stopped_at_violation: bool,
    /// Each node's protocol state at the end, for a run that timed out.
    pub diagnosis: Vec<String>,
    /// Every partition the nemesis injected: when (simulated µs), its
    /// shape, and the links the network cut for it.
    pub partitions: Vec<partition::Injected>,
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Message,
    },
    Tick {
        node: NodeId,
    },
    Fsync {
        node: NodeId,
        upto: u64,
        incarnation: u64,
    },
    ClientInvoke {
        client: usize,
    },
    ClientTimeout {
        client: usize,
        id: CmdId,
    },
    ClientRetry {
        client: usize,
        id: CmdId,
    },
    Lag(lag::LagStep),
    Nemesis,
    Heal {
        what: Heal,
    },
    Observe,
}

#[derive(Debug, Clone, Copy)]
enum Heal {
    Partition,
    Restart(NodeId),
    /// The node's machine loses power (it crashes and its page cache is
    /// lost), and restarts later.
    PowerLoss(NodeId),
    Final,
}

struct Queued {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Node {
    replica: Option<Replica<History>>,
    disk: Disk,
    app: StateMachine,
    incarnation: u64,
    fsync_pending: bool,
    observed: usize,
    /// The replica's count of rewrites by peers' snapshots when observed.
    rewrites: u64,
}

/// A Jepsen-style client process: one operation at a time; after an `info`
/// it continues as a fresh process.
struct Client {
    process: u64,
    seq: u64,
    waiting: Option<(Command, NodeId)>,
}

struct Sim {
    cfg: SimConfig,
    rng: SmallRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    net: Network,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    next_process: u64,
    issued: usize,
    /// Which client waits for a command at which node.
    waiting: BTreeMap<CmdId, usize>,
    history: CheckedHistory,
    workload: KvWorkload,
    healed: bool,
    ok: usize,
    fail: usize,
    info: usize,
    /// Stats of replicas lost to crashes.
    lost_stats: Vec<Stats>,
    /// When each node learned each command, if asked for.
    learn_times: Option<BTreeMap<(NodeId, CmdId), u64>>,
    /// The node the lagging-node nemesis keeps away, and how, and the
    /// instance its learner was at when it went.
    lagging: Option<(NodeId, lag::Away)>,
    lag_from: u64,
    partitions: Vec<partition::Injected>,
}

pub fn run_seed(cfg: &SimConfig, seed: u64) -> SimOutcome {
    // A seed's run must repeat in any process: no hash order may vary.
    gpaxos_node::command::fix_hash_key(0x6770_6178_6f73);
    let mut sim = Sim::new(cfg.for_seed(seed), seed);
    let end = sim.run();
    sim.finish(seed, end)
}

/// How a seed's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Every operation completed and every learner caught up.
    Done,
    /// Cut off at `max_us`.
    TimedOut,
    /// Stopped early: a safety violation was already in the history.
    Violation,
}

/// Simulated time between safety checks of a run that is not done after
/// its final heal.
const CHECK_EVERY_US: u64 = 1_000 * MS;

/// The seed's network: with default faults each seed draws its own
/// weather (and its fsync time into `cfg`).
fn weather(cfg: &mut SimConfig, rng: &mut SmallRng) -> LinkFaults {
    match cfg.faults {
        Faults::None => LinkFaults {
            base_us: cfg.link_us,
            jitter_us: cfg.jitter_us,
            loss: 0.0,
            duplicate: 0.0,
            straggle: 0.0,
            straggle_us: (0, 0),
            replay: 0.0,
        },
        Faults::Default => {
            // Each seed draws its own weather: how much links reorder,
            // how slow fsync is (the window in which a crash loses
            // writes), how lossy and duplicating the network is.
            cfg.jitter_us = rng.gen_range(cfg.jitter_us..=10 * cfg.jitter_us);
            cfg.fsync_us = rng.gen_range(cfg.fsync_us / 2..=15 * cfg.fsync_us);
            LinkFaults {
                base_us: cfg.link_us,
                jitter_us: cfg.jitter_us,
                loss: rng.gen_range(0.0..0.05),
                duplicate: rng.gen_range(0.0..0.03),
                straggle: rng.gen_range(0.0..cfg.straggle_max),
                straggle_us: (10 * MS, 400 * MS),
                replay: rng.gen_range(0.0..cfg.straggle_max),
            }
        }
    }
}

impl Sim {
    fn new(cfg: SimConfig, seed: u64) -> Sim {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut cfg = cfg;
        let faults = weather(&mut cfg, &mut rng);
        let nodes = (0..cfg.nodes as NodeId)
            .map(|id| Node {
                replica: Some(Replica::new(id, cfg.protocol.clone())),
                disk: Disk::default(),
                app: StateMachine::new(),
                incarnation: 0,
                fsync_pending: false,
                observed: 0,
                rewrites: 0,
            })
            .collect();
        let clients = (0..cfg.clients)
            .map(|i| Client {
                process: i as u64,
                seq: 0,
                waiting: None,
            })
            .collect();
        let workload = KvWorkload {
            conflict: cfg.conflict,
        };
        let mut sim = Sim {
            next_process: cfg.clients as u64,
            net: Network::new(faults, cfg.latency_us.clone()),
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            clients,
            issued: 0,
            waiting: BTreeMap::new(),
            history: CheckedHistory::new(),
            workload,
            healed: false,
            ok: 0,
            fail: 0,
            info: 0,
            lost_stats: Vec::new(),
            learn_times: None,
            lagging: None,
            lag_from: 0,
            partitions: Vec::new(),
            cfg,
        };
        for id in 0..sim.cfg.nodes as NodeId {
            let phase = sim.rng.gen_range(0..sim.cfg.tick_us);
            sim.schedule(phase, Event::Tick { node: id });
        }
        for c in 0..sim.cfg.clients {
            let at = sim.rng.gen_range(0..MS);
            sim.schedule(at, Event::ClientInvoke { client: c });
        }
        sim.schedule(50 * MS, Event::Observe);
        match sim.cfg.faults {
            Faults::Default => {
                let at = sim.rng.gen_range(50 * MS..300 * MS);
                sim.schedule(at, Event::Nemesis);
                if sim.cfg.long {
                    sim.schedule_lag();
                }
                let end = sim.cfg.fault_window_us;
                sim.schedule(end, Event::Heal { what: Heal::Final });
            }
            Faults::None => sim.schedule(0, Event::Heal { what: Heal::Final }),
        }
        sim
    }

    fn schedule(&mut self, after: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: self.now + after,
            seq: self.seq,
            event,
        }));
    }

    /// Processes every event up to time `until`.
    fn run_until(&mut self, until: u64) {
        while self.queue.peek().is_some_and(|Reverse(q)| q.at <= until) {
            let Reverse(q) = self.queue.pop().expect("peeked");
            self.now = q.at;
            self.handle(q.event);
        }
        self.now = until;
    }

    /// Runs to completion, to `max_us`, or until a safety violation is
    /// certain.
    fn run(&mut self) -> End {
        let mut next_check = u64::MAX;
        while let Some(Reverse(q)) = self.queue.pop() {
            self.now = q.at;
            if self.now > self.cfg.max_us {
                return End::TimedOut;
            }
            let observe = matches!(q.event, Event::Observe);
            self.handle(q.event);
            // Checked when learners are observed: comparing every learned
            // sequence after every event would dominate the run.
            if !(observe && self.healed) {
                continue;
            }
            if self.done() {
                return End::Done;
            }
            // A run that does not finish soon after the final heal is
            // checked once a simulated second: a wedged cluster with a
            // safety violation already observed stops here rather than at
            // `max_us` (a passing seed is usually done before the first
            // check, so sweeps hardly pay for it).
            next_check = next_check.min(self.now + CHECK_EVERY_US);
            if self.now >= next_check {
                next_check = self.now + CHECK_EVERY_US;
                if self.violation_certain() {
                    return End::Violation;
                }
            }
        }
        End::TimedOut
    }

    /// Whether the history so far already breaks Nontriviality, Stability
    /// or Consistency: those cannot be undone by anything later, unlike
    /// Liveness or a client result not yet explained by a learned
    /// sequence.
    fn violation_certain(&mut self) -> bool {
        self.observe(false);
        consensus::check(&self.history)
            .violations
            .iter()
            .any(|v| v.property != Property::Liveness)
    }

    /// Every operation was issued and completed, every node is up with
    /// nothing left to propose, and all learned the same commands.
    fn done(&self) -> bool {
        if self.issued < self.cfg.commands || self.clients.iter().any(|c| c.waiting.is_some()) {
            return false;
        }
        let mut replicas = Vec::new();
        for n in &self.nodes {
            match n.replica.as_ref() {
                Some(r) if r.pending_proposals() == 0 => replicas.push(r),
                _ => return false,
            }
        }
        let len = replicas[0].learned_len();
        if replicas.iter().any(|r| r.learned_len() != len) {
            return false;
        }
        // A run longer than the nodes keep of their learned sequences is
        // compared by length; the checker judges all of it from the
        // observations either way.
        let Ok(logs) = replicas
            .iter()
            .map(|r| r.learned_range(0, usize::MAX))
            .collect::<Result<Vec<Vec<Command>>, _>>()
        else {
            return true;
        };
        let ids = |log: &[Command]| {
            let mut v: Vec<CmdId> = log.iter().map(|c| c.id).collect();
            v.sort_unstable();
            v
        };
        let first = ids(&logs[0]);
        logs[1..].iter().all(|l| ids(l) == first)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => {
                if let Some(r) = self.nodes[to as usize].replica.as_mut() {
                    r.step(from, msg);
                    self.pump(to);
                }
            }
            Event::Tick { node } => {
                if let Some(r) = self.nodes[node as usize].replica.as_mut() {
                    r.tick();
                    self.pump(node);
                }
                let t = self.cfg.tick_us;
                self.schedule(t, Event::Tick { node });
            }
            Event::Fsync {
                node,
                upto,
                incarnation,
            } => {
                let n = &mut self.nodes[node as usize];
                if n.incarnation != incarnation {
                    return;
                }
                n.fsync_pending = false;
                n.disk.synced(upto);
                if let Some(r) = n.replica.as_mut() {
                    r.durable(upto);
                }
                self.pump(node);
            }
            Event::ClientInvoke { client } => self.invoke(client),
            Event::ClientRetry { client, id } => self.retry(client, id),
            Event::Lag(step) => self.lag(step),
            Event::ClientTimeout { client, id } => {
                let c = &mut self.clients[client];
                if let Some((cmd, _)) = c.waiting.take_if(|(cmd, _)| cmd.id == id) {
                    self.waiting.remove(&id);
                    self.history
                        .push(record::info(c.process, self.now * 1000, &cmd));
                    self.info += 1;
                    c.process = self.next_process;
                    c.seq = 0;
                    self.next_process += 1;
                    self.schedule(0, Event::ClientInvoke { client });
                }
            }
            Event::Nemesis => self.nemesis(),
            Event::Heal { what } => self.heal(what),
            Event::Observe => {
                self.observe(false);
                self.schedule(50 * MS, Event::Observe);
            }
        }
    }

    fn invoke(&mut self, client: usize) {
        if self.issued >= self.cfg.commands {
            return;
        }
        self.issued += 1;
        let c = &mut self.clients[client];
        c.seq += 1;
        let cmd = self.workload.next(c.process, c.seq, &mut self.rng);
        let node = self.rng.gen_range(0..self.cfg.nodes) as NodeId;
        let c = &mut self.clients[client];
        self.history
            .push(record::invoke(c.process, self.now * 1000, &cmd));
        c.waiting = Some((cmd.clone(), node));
        self.waiting.insert(cmd.id, client);
        let timeout = self.cfg.client_timeout_us;
        self.schedule(timeout, Event::ClientTimeout { client, id: cmd.id });
        let attempt = self.cfg.client_attempt_us;
        self.schedule(attempt, Event::ClientRetry { client, id: cmd.id });
        self.submit(node, cmd);
    }

    /// A client that got no answer in time sends the same command (same
    /// id) to another node, as the client library does.
    fn retry(&mut self, client: usize, id: CmdId) {
        let n = self.cfg.nodes;
        let Some((cmd, at)) = self.clients[client]
            .waiting
            .as_mut()
            .filter(|(cmd, _)| cmd.id == id)
        else {
            return;
        };
        let next = (*at as usize + self.rng.gen_range(1..n.max(2))) % n;
        *at = next as NodeId;
        let cmd = cmd.clone();
        let attempt = self.cfg.client_attempt_us;
        self.schedule(attempt, Event::ClientRetry { client, id });
        self.submit(next as NodeId, cmd);
    }

    /// Carries out what a replica handed out: writes to its disk (with an
    /// fsync in flight at most once: group commit), messages to the network,
    /// learned commands to its state machine and waiting clients.
    fn pump(&mut self, id: NodeId) {
        let n = &mut self.nodes[id as usize];
        let Some(r) = n.replica.as_mut() else { return };
        let out = r.drain();
        let node = &mut self.nodes[id as usize];
        if !out.writes.is_empty() {
            node.disk.append(out.writes);
        }
        self.start_fsync(id);
        for l in out.learned {
            if let Some(t) = self.learn_times.as_mut() {
                t.entry((id, l.cmd.id)).or_insert(self.now);
            }
            let reply = self.nodes[id as usize].app.apply(&l.cmd);
            self.answer(id, l.cmd.id, reply);
        }
        if let Some(app) = out.installed {
            self.nodes[id as usize]
                .app
                .restore_bytes(&app)
                .expect("a peer's snapshot holds what its state machine encoded");
        }
        if self.nodes[id as usize]
            .replica
            .as_ref()
            .is_some_and(|r| r.snapshot_due())
        {
            self.snapshot(id);
        }
        for (to, msg) in out.messages {
            for delay in self.net.transmit(id, to, &mut self.rng) {
                self.schedule(
                    delay,
                    Event::Deliver {
                        from: id,
                        to,
                        msg: msg.clone(),
                    },
                );
            }
        }
    }

    /// Answers the client waiting at node `id` for command `cmd`, if any.
    fn answer(&mut self, id: NodeId, cmd: CmdId, reply: Reply) {
        let Some(&client) = self.waiting.get(&cmd) else {
            return;
        };
        let c = &mut self.clients[client];
        if !matches!(&c.waiting, Some((w, at)) if w.id == cmd && *at == id) {
            return;
        }
        let (cmd, _) = c.waiting.take().expect("waiting");
        self.waiting.remove(&cmd.id);
        let rec = record::completion(c.process, self.now * 1000, &cmd, &reply);
        match &rec {
            gpaxos_checker::history::Record::Client(e)
                if e.kind == gpaxos_checker::history::EventKind::Fail =>
            {
                self.fail += 1
            }
            _ => self.ok += 1,
        }
        self.history.push(rec);
        let think = self.rng.gen_range(0..MS);
        self.schedule(think, Event::ClientInvoke { client });
    }

    /// A client's command reaches node `id` (again, for a retry): the
    /// server's request path decides what happens to it.
    fn submit(&mut self, id: NodeId, cmd: Command) {
        let node = &mut self.nodes[id as usize];
        // A crashed node loses the request and the client retries or times
        // out, exactly as against a crashed server.
        let Some(r) = node.replica.as_mut() else {
            return;
        };
        match service::admit(r, &node.app, &cmd) {
            Admission::Propose => {
                r.propose(cmd);
                self.pump(id);
            }
            Admission::Wait | Admission::Refuse(_) => {}
            Admission::Answer(reply) => self.answer(id, cmd.id, reply),
        }
    }

    /// Replaces the node's log with a snapshot, as its server would after
    /// applying what it drained.
    fn snapshot(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        let Some(r) = node.replica.as_mut() else {
            return;
        };
        node.app.retain_clients(|c| r.has_session(c));
        let records = r.snapshot(node.app.snapshot_bytes());
        node.disk.compact(records);
        self.start_fsync(id);
    }

    /// Issues an fsync of everything the node's disk holds unsynced, unless
    /// one is in flight (group commit).
    fn start_fsync(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        if node.fsync_pending || !node.disk.has_unsynced() {
            return;
        }
        let (upto, incarnation) = (node.disk.appended(), node.incarnation);
        node.fsync_pending = true;
        let d = self.cfg.fsync_us;
        self.schedule(
            d,
            Event::Fsync {
                node: id,
                upto,
                incarnation,
            },
        );
    }

    fn nemesis(&mut self) {
        if self.now >= self.cfg.fault_window_us {
            return;
        }
        let n = self.cfg.nodes;
        match self.rng.gen_range(0..10) {
            0..=1 if !self.net.is_partitioned() => self.inject_partition(),
            // While a node lags, the lagging-node nemesis does the crashing.
            2..=5 if self.lagging.is_none() => self.crash_one(),
            6 if self.lagging.is_none() && self.rng.gen_bool(0.5) => {
                // Power loss: every node crashes at the same instant and
                // loses whatever it had not synced. Only promises kept on
                // disk survive (docs/PAPER.md trap 9).
                for id in 0..n as NodeId {
                    // A node already down loses its page cache too.
                    self.nodes[id as usize].disk.power_loss();
                    if self.nodes[id as usize].replica.is_some() {
                        self.lose_power(id);
                    }
                }
                self.history.push(record::nemesis(
                    self.now * 1000,
                    "power-loss",
                    "start",
                    None,
                ));
            }
            6 => {
                // A second would-be leader (Section 6.2; docs/PAPER.md trap 8).
                let who = self.rng.gen_range(0..n) as NodeId;
                if let Some(r) = self.nodes[who as usize].replica.as_mut() {
                    r.start_election();
                    self.history.push(record::nemesis(
                        self.now * 1000,
                        "elect",
                        "start",
                        Some(node_name(who)),
                    ));
                    self.pump(who);
                }
            }
            _ => {
                // Two at once, racing.
                for who in [0, self.rng.gen_range(1..n) as NodeId] {
                    if let Some(r) = self.nodes[who as usize].replica.as_mut() {
                        r.start_election();
                        self.pump(who);
                    }
                }
                self.history.push(record::nemesis(
                    self.now * 1000,
                    "elect",
                    "start",
                    Some("dueling".into()),
                ));
            }
        }
        let d = self.rng.gen_range(50 * MS..300 * MS);
        self.schedule(d, Event::Nemesis);
    }

    /// Crashes one node, unless that would leave fewer than a majority up,
    /// and restarts it 50 to 500 ms later.
    fn crash_one(&mut self) {
        let n = self.cfg.nodes;
        let down = self.nodes.iter().filter(|x| x.replica.is_none()).count();
        // Half the time, crash a node at the worst moment: while it
        // has writes that are not yet durable.
        let unsynced: Vec<NodeId> = (0..n as NodeId)
            .filter(|&i| {
                self.nodes[i as usize].replica.is_some()
                    && self.nodes[i as usize].disk.has_unsynced()
            })
            .collect();
        let victim = if !unsynced.is_empty() && self.rng.gen_bool(0.5) {
            unsynced[self.rng.gen_range(0..unsynced.len())]
        } else {
            self.rng.gen_range(0..n) as NodeId
        };
        if down < n.div_ceil(2) - 1 && self.nodes[victim as usize].replica.is_some() {
            self.crash(victim);
            // Half the time the node's machine fails, not only its
            // process: the page cache is lost with it.
            if self.rng.gen_bool(0.5) {
                self.nodes[victim as usize].disk.power_loss();
            }
            let d = self.rng.gen_range(50 * MS..500 * MS);
            self.schedule(
                d,
                Event::Heal {
                    what: Heal::Restart(victim),
                },
            );
        }
    }

    /// The node's machine loses power: it crashes, its page cache is lost,
    /// and it restarts 20 to 200 ms later.
    fn lose_power(&mut self, id: NodeId) {
        self.crash(id);
        self.nodes[id as usize].disk.power_loss();
        let d = self.rng.gen_range(20 * MS..200 * MS);
        self.schedule(
            d,
            Event::Heal {
                what: Heal::Restart(id),
            },
        );
    }

    fn crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        if let Some(r) = node.replica.take() {
            self.lost_stats.push(r.stats().clone());
        }
        node.disk.process_crash();
        node.incarnation += 1;
        node.fsync_pending = false;
        node.app = StateMachine::new();
        // Observed again from the start after the restart, so the checker
        // compares what the learner shows then with what it showed before
        // (Stability across restarts).
        node.observed = 0;
        node.rewrites = 0;
        self.history.push(record::nemesis(
            self.now * 1000,
            Kind::Kill.name(),
            "start",
            Some(node_name(id)),
        ));
    }

    fn restart(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        if node.replica.is_some() {
            return;
        }
        let records = node.disk.open(&self.cfg.protocol);
        let mut r = Replica::recover(id, self.cfg.protocol.clone(), records.iter())
            .expect("the simulated disk holds what the replica wrote");
        if let Some(bytes) = r.take_recovered_app() {
            node.app
                .restore_bytes(&bytes)
                .expect("the snapshot holds what the state machine encoded");
        }
        node.replica = Some(r);
        self.history.push(record::nemesis(
            self.now * 1000,
            Kind::Kill.name(),
            "stop",
            Some(node_name(id)),
        ));
        self.pump(id);
    }

    fn heal(&mut self, what: Heal) {
        match what {
            Heal::Partition => {
                if self.net.is_partitioned() {
                    self.net.heal();
                    self.history
                        .push(record::nemesis(self.now * 1000, "partition", "stop", None));
                }
            }
            Heal::Restart(id) => {
                let was_down = self.nodes[id as usize].replica.is_none();
                self.restart(id);
                // Now and then the machine fails again just after the node
                // came back: whatever the restarted node trusted without
                // an fsync is gone.
                if was_down && !self.healed && self.rng.gen_bool(0.1) {
                    let d = self.rng.gen_range(2 * MS..30 * MS);
                    self.schedule(
                        d,
                        Event::Heal {
                            what: Heal::PowerLoss(id),
                        },
                    );
                }
            }
            Heal::PowerLoss(id) => {
                if !self.healed && self.nodes[id as usize].replica.is_some() {
                    self.lose_power(id);
                }
            }
            Heal::Final => {
                self.lag_return();
                self.net.heal();
                self.net.faults.loss = 0.0;
                self.net.faults.duplicate = 0.0;
                self.net.faults.straggle = 0.0;
                self.net.faults.replay = 0.0;
                for id in 0..self.cfg.nodes as NodeId {
                    self.restart(id);
                }
                self.healed = true;
                self.history
                    .push(record::nemesis(self.now * 1000, "heal", "final", None));
            }
        }
    }

    /// Records what each live learner learned since its last observation.
    fn observe(&mut self, is_final: bool) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let Some(r) = node.replica.as_ref() else {
                continue;
            };
            let len = r.learned_len() as usize;
            let (rewrites, rewritten_at) = r.learned_rewrites();
            if len > node.observed || is_final || rewrites != node.rewrites {
                let mut from = node.observed.min(len);
                if rewrites != node.rewrites {
                    // A snapshot from a peer rewrote the sequence from
                    // `rewritten_at` on.
                    from = from.min(rewritten_at as usize);
                    node.rewrites = rewrites;
                }
                // A restarted learner holds its sequence only from the
                // snapshot's recent tail on; observe what it holds.
                let cmds = match r.learned_range(from as u64, usize::MAX) {
                    Ok(cmds) => cmds,
                    Err(compacted) => {
                        from = compacted.base as usize;
                        r.learned_range(compacted.base, usize::MAX)
                            .expect("held from its base")
                    }
                };
                self.history.push(record::learned(
                    node_name(i as NodeId),
                    self.now * 1000,
                    from,
                    &cmds,
                    is_final,
                ));
                node.observed = len;
            }
        }
    }

    fn finish(mut self, seed: u64, end: End) -> SimOutcome {
        let timed_out = end == End::TimedOut;
        self.observe(true);
        let mut stats = Stats::default();
        let live: Vec<Stats> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| r.stats().clone())
            .collect();
        for s in live.iter().chain(self.lost_stats.iter()) {
            stats.add(s);
        }
        let diagnosis =
            if timed_out {
                self.nodes
                    .iter()
                    .map(|n| {
                        n.replica
                            .as_ref()
                            .map_or("down".to_owned(), |r| r.describe())
                    })
                    .chain(self.clients.iter().filter_map(|c| c.waiting.as_ref()).map(
                        |(cmd, at)| format!("client waits for {:?} at {}", cmd.id, node_name(*at)),
                    ))
                    .collect()
            } else {
                Vec::new()
            };
        SimOutcome {
            diagnosis,
            seed,
            history: self.history,
            stats,
            ok: self.ok,
            fail: self.fail,
            info: self.info,
            sim_time_us: self.now,
            timed_out,
            stopped_at_violation: end == End::Violation,
            partitions: self.partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What stops a failing seed early: a history that already breaks a
    /// safety property. A learner shown to hold a command twice does.
    #[test]
    fn a_command_learned_twice_makes_the_violation_certain() {
        let cfg = SimConfig::new(3, 50, 0.0, Faults::None).unwrap();
        let mut sim = Sim::new(cfg, 1);
        sim.run_until(2_000 * MS);
        assert!(!sim.violation_certain(), "a clean run is not a violation");
        let r = sim.nodes[0].replica.as_ref().expect("n1 is up");
        let len = r.learned_len();
        let first = r.learned_range(0, 1).expect("held")[0].clone();
        assert!(len > 1, "n1 learned commands in 2 s");
        sim.history.push(record::learned(
            node_name(0),
            sim.now * 1000 + 1,
            len as usize,
            &[first],
            false,
        ));
        sim.nodes[0].observed = len as usize + 1;
        assert!(sim.violation_certain());
    }
}
