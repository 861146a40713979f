//! The tokio runtime around the sans-I/O core (the "shell" to the
//! protocol's "proto", as quinn splits them).
//!
//! One task owns the [`Replica`] and the state machine and does, after every
//! input, what [`Replica::drain`] asks, in its order: writes go to the
//! storage thread, messages to the transport, learned commands to the state
//! machine and to the clients waiting for them. The storage thread appends
//! every batch it finds waiting and syncs once (group commit), then reports
//! how many records are durable, which releases the messages that depended
//! on them.

pub mod metrics;
mod storage_thread;

use crate::app::{Reply, StateMachine};
use crate::client::{ClientRequest, ClientResponse, Status};
use crate::command::{CmdId, IdMap};
use crate::cstruct::CStruct;
use crate::net::{certs, Inbound, NetConfig, PeerNet};
use crate::protocol::{node_name, Config, NodeId, Replica};
use crate::service::{admit, Admission};
use crate::storage::{self, Wal};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use storage_thread::StorageThread;
use tokio::sync::{mpsc, oneshot};

/// Everything a node needs to run.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub id: NodeId,
    /// `host:port` of every node, in node order.
    pub cluster: Vec<String>,
    pub data_dir: PathBuf,
    pub tls_dir: PathBuf,
    /// The address to bind, when it differs from `cluster[id]`.
    pub listen: Option<SocketAddr>,
    pub protocol: Config,
    /// How long a protocol tick is.
    pub tick: Duration,
    /// Bank accounts and their opening balances.
    pub accounts: Vec<(String, i64)>,
    /// Where to serve Prometheus metrics over HTTP, if anywhere.
    pub metrics: Option<SocketAddr>,
}

/// A client request on its way to the core, with where to answer.
type Request = (ClientRequest, oneshot::Sender<ClientResponse>);

/// Runs a node until `shutdown` resolves. `C` is the c-struct set:
/// `History` for Generalized Paxos, `Sequence` for the classic baseline.
pub async fn run<C: CStruct>(
    cfg: ServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let name = node_name(cfg.id);
    // Durably: a directory entry lost to a power loss would take the log
    // and the owner file with it.
    storage::create_dir_durable(&storage::RealFs, &cfg.data_dir)
        .with_context(|| format!("creating the data directory {}", cfg.data_dir.display()))?;
    let fresh = check_data_dir(&cfg.data_dir, &name)?;
    let (wal, recovered) = Wal::open(&cfg.data_dir)?;
    if fresh {
        // Only once the log exists, so a crash in between cannot leave a
        // claimed directory without a log.
        let owner = cfg.data_dir.join(OWNER_FILE);
        storage::write_durably(&storage::RealFs, &owner, format!("{name}\n").as_bytes())
            .with_context(|| format!("writing {}", owner.display()))?;
    }
    if let Some(torn) = &recovered.torn_tail {
        tracing::warn!(
            offset = torn.offset,
            bytes = torn.dropped_bytes,
            "cut a torn tail off the log"
        );
    }
    tracing::info!(node = %name, records = recovered.records.len(), "recovered");
    let mut replica = Replica::<C>::recover(cfg.id, cfg.protocol.clone(), recovered.records.iter())
        .with_context(|| format!("{}: refusing to start", wal.path().display()))?;
    drop(recovered);
    let mut app = StateMachine::with_accounts(&cfg.accounts);
    if let Some(bytes) = replica.take_recovered_app() {
        app.restore_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}; refusing to start", wal.path().display()))?;
        tracing::info!(
            closed_below = replica.closed_below(),
            learned = replica.learned_len(),
            "resumed from a snapshot"
        );
    }

    let credentials = certs::load_node(&cfg.tls_dir, cfg.id)?;
    let mut net_cfg = NetConfig::new(cfg.id, cfg.cluster.clone(), credentials);
    net_cfg.listen = cfg.listen;
    let (
        net,
        Inbound {
            mut messages,
            clients,
        },
    ) = PeerNet::start(net_cfg).await?;
    tracing::info!(node = %name, addr = %net.local_addr(), "listening");

    let (status_tx, status_rx) = tokio::sync::watch::channel(None);
    if let Some(addr) = cfg.metrics {
        let bound = metrics::serve(addr, status_rx)
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(addr = %bound, "metrics at http://{bound}/metrics");
    }
    let (durable_tx, mut durable_rx) = mpsc::unbounded_channel();
    let storage = StorageThread::start(wal, durable_tx);
    let (request_tx, mut requests) = mpsc::channel::<Request>(4096);
    tokio::spawn(accept_clients(clients, request_tx));

    let mut core = Core {
        replica: &mut replica,
        app,
        waiting: IdMap::default(),
        waiting_count: 0,
        expired_at: Instant::now(),
        net: &net,
        storage: &storage,
    };
    core.pump();
    let mut ticks = tokio::time::interval(cfg.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refusals = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(n) = durable_rx.recv() => {
                let mut n = n;
                while let Ok(more) = durable_rx.try_recv() {
                    n = n.max(more);
                }
                core.replica.durable(n);
            }
            Some((from, msg)) = messages.recv() => {
                core.replica.step(from, msg);
                // Take what else has arrived before handing anything out, so
                // one drain answers a burst with batched messages.
                while let Ok((from, msg)) = messages.try_recv() {
                    core.replica.step(from, msg);
                }
            }
            Some((req, answer)) = requests.recv() => {
                core.request(req, answer);
                while let Ok((req, answer)) = requests.try_recv() {
                    core.request(req, answer);
                }
            }
            _ = ticks.tick() => {
                core.replica.tick();
                refusals.tick(core.replica);
                core.expire_waiting();
                if cfg.metrics.is_some() {
                    status_tx.send_replace(Some(core.status()));
                }
            }
            else => break,
        }
        core.pump();
        if let Some(e) = storage.failed() {
            // A node that cannot make its promises durable must not make
            // them at all.
            anyhow::bail!("storage failed: {e}");
        }
    }
    net.shutdown().await;
    Ok(())
}

/// How long a client request waits for its command to be applied before
/// the node stops holding it (the client's own deadline is shorter).
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Requests waiting at once, beyond which new ones are refused.
const MAX_WAITING: usize = 65_536;

/// Logs refused peer messages at most once a second: a hostile peer must
/// not be able to fill the disk with warnings.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    logged: u64,
}

impl RefusalLog {
    fn tick<C: CStruct>(&mut self, replica: &mut Replica<C>) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let Some(why) = replica.take_refused() else {
            return;
        };
        let total = replica.stats().refused;
        tracing::warn!(
            refused = total - self.logged,
            total,
            "refused messages from peers; the last: {why}"
        );
        self.logged = total;
        self.last = Some(Instant::now());
    }
}

/// The file naming the node a data directory belongs to.
const OWNER_FILE: &str = "node";

/// Refuses a data directory that belongs to another node, or whose log
/// vanished after the node first started there: an acceptor that came back
/// with no memory of its promises could break them (docs/PAPER.md trap 9), so it
/// must not come back silently.
/// Returns whether the directory is new to this node.
fn check_data_dir(dir: &std::path::Path, name: &str) -> anyhow::Result<bool> {
    let owner = dir.join(OWNER_FILE);
    let log = dir.join(crate::storage::LOG_FILE);
    match std::fs::read_to_string(&owner) {
        Ok(text) => {
            let claimed = text.trim();
            if claimed != name {
                anyhow::bail!("{} belongs to node {claimed}, not {name}", dir.display());
            }
            if !log.exists() {
                anyhow::bail!(
                    "{} was used by {name} but its log {} is gone: refusing to start with no memory of its promises",
                    dir.display(),
                    log.display()
                );
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", owner.display())),
    }
}

struct Core<'a, C> {
    replica: &'a mut Replica<C>,
    app: StateMachine,
    /// Clients waiting for a command to be applied here, since when.
    waiting: IdMap<Vec<(Instant, oneshot::Sender<ClientResponse>)>>,
    waiting_count: usize,
    expired_at: Instant,
    net: &'a PeerNet,
    storage: &'a StorageThread,
}

impl<C: CStruct> Core<'_, C> {
    /// Carries out what the replica hands out, in its order.
    fn pump(&mut self) {
        let out = self.replica.drain();
        if !out.writes.is_empty() {
            self.storage.append(out.writes);
        }
        for (to, msg) in out.messages {
            if let Err(e) = self.net.send(to, msg) {
                tracing::debug!(to = %node_name(to), error = %e, "message not sent");
            }
        }
        for l in out.learned {
            let reply = self.app.apply(&l.cmd);
            self.answer(l.cmd.id, reply);
        }
        if let Some(app) = out.installed {
            // A snapshot from a peer: it holds everything learned before it.
            match self.app.restore_bytes(&app) {
                Ok(()) => tracing::info!(
                    closed_below = self.replica.closed_below(),
                    learned = self.replica.learned_len(),
                    from = %self.replica.snapshot_source().map(node_name).unwrap_or_default(),
                    "installed a snapshot from a peer"
                ),
                Err(e) => self
                    .storage
                    .fail(format!("installing a peer's snapshot: {e}")),
            }
        }
        if self.replica.snapshot_due() {
            // Everything drained is applied and every write drained is
            // queued, so the snapshot and the log agree. Replies of clients
            // whose sessions expired are dropped with them.
            let replica = &*self.replica;
            self.app.retain_clients(|c| replica.has_session(c));
            let records = self.replica.snapshot(self.app.snapshot_bytes());
            self.storage.compact(records);
        }
    }

    fn answer(&mut self, id: CmdId, reply: Reply) {
        let waiting = self.waiting.remove(&id).unwrap_or_default();
        self.waiting_count -= waiting.len();
        for (_, tx) in waiting {
            let _ = tx.send(ClientResponse::Applied {
                reply: reply.clone(),
            });
        }
    }

    /// Parks a client until its command is applied, unless too many wait.
    fn wait_for(&mut self, id: CmdId, answer: oneshot::Sender<ClientResponse>) -> bool {
        if self.waiting_count >= MAX_WAITING {
            let _ = answer.send(ClientResponse::Error {
                message: format!("{MAX_WAITING} requests are waiting here already; retry later"),
            });
            return false;
        }
        self.waiting_count += 1;
        self.waiting
            .entry(id)
            .or_default()
            .push((Instant::now(), answer));
        true
    }

    /// Tells clients that waited longer than [`WAIT_LIMIT`] so, and forgets
    /// those that went away; the commands themselves may still be applied,
    /// and a retry with the same id gets the reply then.
    fn expire_waiting(&mut self) {
        if self.expired_at.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.expired_at = Instant::now();
        let mut expired = Vec::new();
        self.waiting.retain(|&id, list| {
            let mut kept = Vec::new();
            for (since, tx) in list.drain(..) {
                if tx.is_closed() {
                    continue;
                }
                if since.elapsed() >= WAIT_LIMIT {
                    expired.push((id, tx));
                } else {
                    kept.push((since, tx));
                }
            }
            *list = kept;
            !list.is_empty()
        });
        for (id, tx) in expired {
            let _ = tx.send(ClientResponse::Error {
                message: format!(
                    "{id} was not applied within {} s; it may still be: retry it with the same id",
                    WAIT_LIMIT.as_secs()
                ),
            });
        }
        self.waiting_count = self.waiting.values().map(Vec::len).sum();
    }

    fn request(&mut self, req: ClientRequest, answer: oneshot::Sender<ClientResponse>) {
        match req {
            ClientRequest::Submit { cmd } => match admit(self.replica, &self.app, &cmd) {
                Admission::Propose => {
                    if self.wait_for(cmd.id, answer) {
                        self.replica.propose(cmd);
                    }
                }
                Admission::Wait => {
                    self.wait_for(cmd.id, answer);
                }
                Admission::Answer(reply) => {
                    let _ = answer.send(ClientResponse::Applied { reply });
                }
                Admission::Refuse(message) => {
                    let _ = answer.send(ClientResponse::Error { message });
                }
            },
            ClientRequest::Status => {
                let _ = answer.send(ClientResponse::Status(Box::new(self.status())));
            }
            ClientRequest::Learned { from, max } => {
                let total = self.replica.learned_len();
                let max = max.min(65_536) as usize;
                let (from, cmds) = match self.replica.learned_range(from, max) {
                    Ok(cmds) => (from, cmds),
                    Err(compacted) => (
                        compacted.base,
                        self.replica
                            .learned_range(compacted.base, max)
                            .unwrap_or_default(),
                    ),
                };
                let (rewrites, rewritten_at) = self.replica.learned_rewrites();
                let _ = answer.send(ClientResponse::Learned {
                    from,
                    total,
                    cmds,
                    rewrites,
                    rewritten_at,
                });
            }
        }
    }

    fn status(&self) -> Status {
        let r = &*self.replica;
        let mbal = r.mbal();
        Status {
            node: node_name(r.id()),
            role: if r.leading().is_some() {
                "leader"
            } else {
                "follower"
            }
            .into(),
            mbal,
            fast: mbal.fast && r.config().fast,
            leader: node_name(r.leader_hint()),
            closed_below: r.closed_below(),
            learned: r.learned_len(),
            pending: r.pending_proposals() as u64,
            stats: r.stats().clone(),
            fsyncs: self.storage.syncs(),
            log_bytes: self.storage.log_bytes(),
            log_compactions: self.storage.compactions(),
            snapshot_writing: self.storage.writing_snapshot(),
            snapshot_bytes: r.snapshot_bytes(),
            sessions: r.sessions() as u64,
        }
    }
}

/// Serves every client connection: one request at a time per stream, each
/// handed to the core.
async fn accept_clients(
    mut clients: mpsc::Receiver<crate::net::ClientStream>,
    core: mpsc::Sender<Request>,
) {
    while let Some(stream) = clients.recv().await {
        let core = core.clone();
        tokio::spawn(async move {
            let (mut reader, mut writer) = stream.typed::<ClientRequest, ClientResponse>();
            loop {
                let req = match reader.recv().await {
                    Ok(Some(req)) => req,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "client stream closed");
                        return;
                    }
                };
                let (tx, rx) = oneshot::channel();
                if core.send((req, tx)).await.is_err() {
                    return;
                }
                let Ok(resp) = rx.await else { return };
                if writer.send(&resp).await.is_err() {
                    return;
                }
            }
        });
    }
}
