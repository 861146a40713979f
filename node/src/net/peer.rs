//! Node-to-node messages over QUIC.
//!
//! Every node dials every other node and sends on its own outgoing
//! connection: one unidirectional stream carrying a [`PeerHello`] frame and
//! then one [`Message`] per frame. What arrives on the connections a node
//! accepted comes out of [`Inbound::messages`]. Two connections per pair, one
//! per direction, means no tie-breaking between simultaneous dials.
//!
//! [`PeerNet::send`] never blocks: a message goes into the destination's
//! bounded queue, and that peer's task writes every message queued at the
//! moment in one batch. While a peer cannot be reached its queue is emptied
//! at every backoff step (counted as dropped), as a lossy network would:
//! Paxos tolerates lost messages and the protocol retries.

use super::client_stream::ClientStream;
use super::framing::{FrameReader, FrameWriter, DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT};
use super::{close_code, tls, Credentials, NetError, ALPN_CLIENT, ALPN_PEER};
use crate::protocol::{node_name, Message, NodeId};
use quinn::{Connection, ConnectionError, Endpoint};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// The first frame on a peer stream: who the dialer is (its certificate
/// must name it) and whom it meant to reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHello {
    /// [`PeerHello::MAGIC`]; a different value is another protocol version.
    pub magic: u32,
    pub from: NodeId,
    pub to: NodeId,
    pub cluster_size: u32,
}

impl PeerHello {
    pub const MAGIC: u32 = u32::from_be_bytes(*b"GPX1");
}

/// How a node's transport is set up. [`NetConfig::new`] fills in defaults.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// This node.
    pub id: NodeId,
    /// `host:port` of every node, indexed by [`NodeId`]; others reach node
    /// `i` at `cluster[i]`. Host names are resolved at every dial.
    pub cluster: Vec<String>,
    /// The address to bind, when it differs from `cluster[id]` (relays in
    /// between, `0.0.0.0` in a container).
    pub listen: Option<SocketAddr>,
    pub credentials: Credentials,
    /// The longest frame sent or accepted, at most [`MAX_FRAME_LIMIT`].
    pub max_frame: usize,
    pub keep_alive: Duration,
    /// A connection silent this long is dropped (a paused or partitioned
    /// peer is only ever noticed this way).
    pub idle_timeout: Duration,
    /// First and largest wait between failed dials (doubling, with jitter).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long one dial (the handshake included) may take before it is
    /// abandoned and tried again: a peer that comes back is found within
    /// about this long.
    pub connect_timeout: Duration,
    /// How long an accepted peer connection may take to send its hello.
    pub hello_timeout: Duration,
    /// Messages queued for one peer before `send` refuses more.
    pub peer_queue: usize,
    /// Capacity of [`Inbound::messages`]; a full channel slows the senders
    /// down through QUIC flow control.
    pub inbound_queue: usize,
    /// Capacity of [`Inbound::clients`].
    pub client_queue: usize,
    /// Most messages written in one batch.
    pub max_batch: usize,
}

impl NetConfig {
    pub fn new(id: NodeId, cluster: Vec<String>, credentials: Credentials) -> Self {
        NetConfig {
            id,
            cluster,
            listen: None,
            credentials,
            max_frame: DEFAULT_MAX_FRAME,
            keep_alive: Duration::from_millis(1000),
            idle_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            hello_timeout: Duration::from_secs(5),
            peer_queue: 65_536,
            inbound_queue: 65_536,
            client_queue: 1024,
            max_batch: 1024,
        }
    }

    fn check(&self) -> Result<(), NetError> {
        let n = self.cluster.len();
        let bad = |m: String| Err(NetError::Config(m));
        if self.id as usize >= n {
            return bad(format!(
                "node id {} is not in a cluster of {n}",
                node_name(self.id)
            ));
        }
        if self.max_frame == 0 || self.max_frame > MAX_FRAME_LIMIT {
            return bad(format!(
                "max frame {} is not in 1..={MAX_FRAME_LIMIT}",
                self.max_frame
            ));
        }
        if self.peer_queue == 0
            || self.inbound_queue == 0
            || self.client_queue == 0
            || self.max_batch == 0
        {
            return bad("queue capacities and max batch must be positive".into());
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return bad("backoff_min must be positive and at most backoff_max".into());
        }
        let own = node_name(self.id);
        let names_us = self
            .credentials
            .chain
            .first()
            .is_some_and(|c| tls::certificate_names(c, &own));
        if !names_us {
            return bad(format!(
                "the certificate given to node {own} does not name {own}"
            ));
        }
        Ok(())
    }
}

/// What arrives at a node.
pub struct Inbound {
    /// Messages from peers (and from this node to itself), with the sender
    /// as its certificate proved it.
    pub messages: mpsc::Receiver<(NodeId, Message)>,
    /// Request streams opened by clients, in the order they were opened.
    pub clients: mpsc::Receiver<ClientStream>,
}

/// Why [`PeerNet::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the queue to {} is full; message dropped", node_name(*.0))]
    Full(NodeId),
    #[error("no node {0} in the cluster")]
    UnknownPeer(NodeId),
    #[error("the transport is shut down")]
    Closed,
}

/// Transport counters, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStats {
    pub messages_sent: u64,
    pub messages_received: u64,
    /// Refused by a full queue, discarded while the peer was unreachable,
    /// or too large for a frame.
    pub messages_dropped: u64,
    pub batches: u64,
    pub max_batch: u64,
    pub connects: u64,
    pub disconnects: u64,
    /// Connections ended by a stateless reset (the peer restarted).
    pub resets: u64,
    pub handshake_failures: u64,
    pub identity_rejections: u64,
    pub bad_frames: u64,
    pub client_connections: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    batches: AtomicU64,
    max_batch: AtomicU64,
    connects: AtomicU64,
    disconnects: AtomicU64,
    resets: AtomicU64,
    handshake_failures: AtomicU64,
    identity_rejections: AtomicU64,
    bad_frames: AtomicU64,
    client_connections: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// A handle on a node's transport; clones share it. Dropping the last clone
/// (or [`PeerNet::shutdown`]) closes the endpoint.
#[derive(Clone)]
pub struct PeerNet {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    local_addr: SocketAddr,
    endpoint: Endpoint,
    queues: Vec<Option<mpsc::Sender<Message>>>,
    loopback: mpsc::Sender<(NodeId, Message)>,
    connected: Vec<Arc<AtomicBool>>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.endpoint
            .close(close_code::SHUTDOWN.into(), b"shutdown");
    }
}

impl PeerNet {
    /// Binds the node's UDP port, starts dialing every peer and accepting
    /// peers and clients. Must run inside a tokio runtime.
    pub async fn start(config: NetConfig) -> Result<(PeerNet, Inbound), NetError> {
        config.check()?;
        let n = config.cluster.len();
        let id = config.id;
        let listen = match config.listen {
            Some(addr) => addr,
            None => resolve(&config.cluster[id as usize], true).await?,
        };
        let transport = tls::transport_config(config.keep_alive, config.idle_timeout)?;
        let server = tls::server_config(&config.credentials, transport.clone())?;
        let client = tls::client_config(&config.credentials, ALPN_PEER, transport)?;
        let socket = std::net::UdpSocket::bind(listen).map_err(|source| NetError::Bind {
            addr: listen.to_string(),
            source,
        })?;
        let endpoint = Endpoint::new(
            tls::endpoint_config(config.credentials.key.secret_der()),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| NetError::Bind {
            addr: listen.to_string(),
            source,
        })?;
        let local_addr = endpoint.local_addr().map_err(|source| NetError::Bind {
            addr: listen.to_string(),
            source,
        })?;

        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let (messages_tx, messages_rx) = mpsc::channel(config.inbound_queue);
        let (clients_tx, clients_rx) = mpsc::channel(config.client_queue);
        let connected: Vec<_> = (0..n).map(|_| Arc::new(AtomicBool::new(false))).collect();

        let mut queues = Vec::with_capacity(n);
        for to in 0..n as NodeId {
            if to == id {
                queues.push(None);
                continue;
            }
            let (tx, rx) = mpsc::channel(config.peer_queue);
            queues.push(Some(tx));
            let dialer = Dialer {
                id,
                to,
                n,
                addr: config.cluster[to as usize].clone(),
                prefer_v4: local_addr.is_ipv4(),
                endpoint: endpoint.clone(),
                client: client.clone(),
                queue: rx,
                connected: connected[to as usize].clone(),
                counters: counters.clone(),
                cancel: cancel.clone(),
                max_frame: config.max_frame,
                max_batch: config.max_batch,
                backoff_min: config.backoff_min,
                backoff_max: config.backoff_max,
                connect_timeout: config.connect_timeout,
            };
            tokio::spawn(dialer.run());
        }

        let acceptor = Arc::new(Acceptor {
            id,
            n,
            max_frame: config.max_frame,
            hello_timeout: config.hello_timeout,
            messages: messages_tx.clone(),
            clients: clients_tx,
            counters: counters.clone(),
            peers: Mutex::new(HashMap::new()),
            cancel: cancel.clone(),
        });
        tokio::spawn(acceptor.run(endpoint.clone()));
        info!(node = %node_name(id), %local_addr, "transport listening");

        let inner = Inner {
            id,
            local_addr,
            endpoint,
            queues,
            loopback: messages_tx,
            connected,
            counters,
            cancel,
        };
        Ok((
            PeerNet {
                inner: Arc::new(inner),
            },
            Inbound {
                messages: messages_rx,
                clients: clients_rx,
            },
        ))
    }

    /// Queues `msg` for node `to` without blocking. A message to this node
    /// itself comes back through [`Inbound::messages`] without touching the
    /// network.
    pub fn send(&self, to: NodeId, msg: Message) -> Result<(), SendError> {
        let inner = &self.inner;
        if to == inner.id {
            return match inner.loopback.try_send((to, msg)) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(item)) => {
                    // The consumer of `messages` is the caller itself, most
                    // likely: never block it on its own queue.
                    let loopback = inner.loopback.clone();
                    tokio::spawn(async move {
                        let _ = loopback.send(item).await;
                    });
                    Ok(())
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
            };
        }
        let queue = inner
            .queues
            .get(to as usize)
            .and_then(Option::as_ref)
            .ok_or(SendError::UnknownPeer(to))?;
        queue.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                bump(&inner.counters.dropped);
                SendError::Full(to)
            }
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Whether this node's outgoing connection to `to` is up.
    pub fn is_connected(&self, to: NodeId) -> bool {
        self.inner
            .connected
            .get(to as usize)
            .is_some_and(|c| c.load(Relaxed))
    }

    pub fn stats(&self) -> NetStats {
        let c = &self.inner.counters;
        NetStats {
            messages_sent: c.sent.load(Relaxed),
            messages_received: c.received.load(Relaxed),
            messages_dropped: c.dropped.load(Relaxed),
            batches: c.batches.load(Relaxed),
            max_batch: c.max_batch.load(Relaxed),
            connects: c.connects.load(Relaxed),
            disconnects: c.disconnects.load(Relaxed),
            resets: c.resets.load(Relaxed),
            handshake_failures: c.handshake_failures.load(Relaxed),
            identity_rejections: c.identity_rejections.load(Relaxed),
            bad_frames: c.bad_frames.load(Relaxed),
            client_connections: c.client_connections.load(Relaxed),
        }
    }

    /// Stops every task, closes every connection (peers see the close at
    /// once) and waits, at most a second, for the close to go out.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner
            .endpoint
            .close(close_code::SHUTDOWN.into(), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }
}

/// Resolves `host:port`, preferring an address of the family asked for.
pub(crate) async fn resolve(addr: &str, prefer_v4: bool) -> Result<SocketAddr, NetError> {
    if let Ok(parsed) = addr.parse::<SocketAddr>() {
        return Ok(parsed);
    }
    let failed = |reason: String| NetError::Resolve {
        addr: addr.to_string(),
        reason,
    };
    let found: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| failed(e.to_string()))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4() == prefer_v4)
        .or(found.first())
        .copied()
        .ok_or_else(|| failed("no address".into()))
}

/// The task that owns the connection to one peer.
struct Dialer {
    id: NodeId,
    to: NodeId,
    n: usize,
    addr: String,
    prefer_v4: bool,
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    queue: mpsc::Receiver<Message>,
    connected: Arc<AtomicBool>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    max_frame: usize,
    max_batch: usize,
    backoff_min: Duration,
    backoff_max: Duration,
    connect_timeout: Duration,
}

/// How a connection's pump ended.
enum PumpEnd {
    /// Shutdown, or every handle dropped.
    Stop,
    /// The connection was lost.
    Lost(String),
}

impl Dialer {
    async fn run(mut self) {
        let peer = node_name(self.to);
        let mut backoff = self.backoff_min;
        let mut failures = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            match self.connect().await {
                Ok(conn) => {
                    failures = 0;
                    bump(&self.counters.connects);
                    self.connected.store(true, Relaxed);
                    info!(peer = %peer, remote = %conn.remote_address(), "connected");
                    let began = Instant::now();
                    let end = self.pump(&conn).await;
                    self.connected.store(false, Relaxed);
                    match end {
                        PumpEnd::Stop => {
                            conn.close(close_code::SHUTDOWN.into(), b"shutdown");
                            return;
                        }
                        PumpEnd::Lost(reason) => {
                            bump(&self.counters.disconnects);
                            warn!(peer = %peer, %reason, "connection lost");
                        }
                    }
                    // A connection that dies at once (refused identity, say)
                    // must not turn into a tight redial loop.
                    if began.elapsed() >= Duration::from_secs(1) {
                        backoff = self.backoff_min;
                        continue;
                    }
                }
                Err(reason) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        warn!(peer = %peer, addr = %self.addr, %reason, failures, "cannot connect");
                    } else {
                        debug!(peer = %peer, %reason, failures, "cannot connect");
                    }
                }
            }
            if !self.wait_dropping(jitter(backoff, self.to)).await {
                return;
            }
            backoff = (backoff * 2).min(self.backoff_max);
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let addr = resolve(&self.addr, self.prefer_v4)
            .await
            .map_err(|e| e.to_string())?;
        let connecting = self
            .endpoint
            .connect_with(self.client.clone(), addr, &node_name(self.to))
            .map_err(|e| e.to_string())?;
        tokio::select! {
            conn = tokio::time::timeout(self.connect_timeout, connecting) => match conn {
                Ok(conn) => conn.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no handshake within {:?}", self.connect_timeout)),
            },
            _ = self.cancel.cancelled() => Err("shutting down".into()),
        }
    }

    /// Sends the hello, then everything queued, in batches, until the
    /// connection is lost or the node stops.
    async fn pump(&mut self, conn: &Connection) -> PumpEnd {
        let lost = |conn: &Connection, e: &dyn std::fmt::Display| {
            PumpEnd::Lost(
                conn.close_reason()
                    .map_or_else(|| e.to_string(), |r| reason(&r)),
            )
        };
        let stream = match conn.open_uni().await {
            Ok(s) => s,
            Err(e) => return PumpEnd::Lost(reason(&e)),
        };
        let hello = PeerHello {
            magic: PeerHello::MAGIC,
            from: self.id,
            to: self.to,
            cluster_size: self.n as u32,
        };
        let mut hello_writer = FrameWriter::<PeerHello>::new(stream, self.max_frame);
        if let Err(e) = hello_writer.send(&hello).await {
            return lost(conn, &e);
        }
        let mut writer = hello_writer.retype::<Message>();
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return PumpEnd::Stop,
                first = self.queue.recv() => {
                    let Some(first) = first else {
                        let _ = writer.finish().await;
                        return PumpEnd::Stop;
                    };
                    let mut batch = 0u64;
                    let mut next = Some(first);
                    while let Some(msg) = next.take() {
                        match writer.feed(&msg).await {
                            Ok(()) => batch += 1,
                            Err(e) if e.is_bad_frame() => {
                                bump(&self.counters.dropped);
                                error!(peer = %node_name(self.to), kind = msg.kind(), error = %e, "message dropped");
                            }
                            Err(e) => return lost(conn, &e),
                        }
                        if batch < self.max_batch as u64 {
                            next = self.queue.try_recv().ok();
                        }
                    }
                    if let Err(e) = writer.flush().await {
                        return lost(conn, &e);
                    }
                    if batch > 0 {
                        self.counters.sent.fetch_add(batch, Relaxed);
                        bump(&self.counters.batches);
                        self.counters.max_batch.fetch_max(batch, Relaxed);
                    }
                }
                e = conn.closed() => {
                    if matches!(e, ConnectionError::Reset) {
                        bump(&self.counters.resets);
                    }
                    return PumpEnd::Lost(reason(&e));
                }
            }
        }
    }

    /// Sleeps for `wait`, discarding what is queued meanwhile: the peer is
    /// unreachable. False when the node is stopping.
    async fn wait_dropping(&mut self, wait: Duration) -> bool {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                _ = self.cancel.cancelled() => return false,
                msg = self.queue.recv() => match msg {
                    Some(_) => bump(&self.counters.dropped),
                    None => return false,
                },
            }
        }
    }
}

fn reason(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Reset => "stateless reset (the peer restarted)".into(),
        ConnectionError::ApplicationClosed(close) => {
            format!(
                "closed by the peer: code {} {}",
                close.error_code,
                String::from_utf8_lossy(&close.reason)
            )
        }
        other => other.to_string(),
    }
}

/// `base` scaled by a factor in [0.5, 1.5), so that peers that lost each
/// other at the same moment do not redial in lockstep.
fn jitter(base: Duration, salt: NodeId) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = (u64::from(nanos) ^ (u64::from(salt) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let frac = (mixed >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.5 + frac)
}

/// Accepts every incoming connection of the endpoint and serves it by ALPN.
struct Acceptor {
    id: NodeId,
    n: usize,
    max_frame: usize,
    hello_timeout: Duration,
    messages: mpsc::Sender<(NodeId, Message)>,
    clients: mpsc::Sender<ClientStream>,
    counters: Arc<Counters>,
    /// The newest accepted connection of each peer.
    peers: Mutex<HashMap<NodeId, Connection>>,
    cancel: CancellationToken,
}

impl Acceptor {
    async fn run(self: Arc<Self>, endpoint: Endpoint) {
        loop {
            let incoming = tokio::select! {
                _ = self.cancel.cancelled() => return,
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => return,
                },
            };
            let this = self.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                let conn = match incoming.await {
                    Ok(conn) => conn,
                    Err(e) => {
                        bump(&this.counters.handshake_failures);
                        warn!(%remote, error = %e, "handshake refused");
                        return;
                    }
                };
                let alpn = tls::alpn(&conn);
                match alpn.as_deref() {
                    Some(ALPN_PEER) => this.serve_peer(conn).await,
                    Some(ALPN_CLIENT) => this.serve_client(conn).await,
                    _ => conn.close(close_code::ALPN.into(), b"unknown ALPN"),
                }
            });
        }
    }

    fn refuse(&self, conn: &Connection, why: &str) {
        bump(&self.counters.identity_rejections);
        warn!(remote = %conn.remote_address(), why, "peer refused");
        conn.close(close_code::IDENTITY.into(), why.as_bytes());
    }

    /// Reads the hello, checks the certificate names the node the hello
    /// claims, then hands every message on.
    async fn serve_peer(&self, conn: Connection) {
        let Some(cert) = tls::peer_certificate(&conn) else {
            return self.refuse(&conn, "no certificate");
        };
        let stream = tokio::select! {
            s = tokio::time::timeout(self.hello_timeout, conn.accept_uni()) => s,
            _ = self.cancel.cancelled() => return,
        };
        let stream = match stream {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return debug!(remote = %conn.remote_address(), error = %e, "peer left before its hello")
            }
            Err(_) => return self.refuse(&conn, "no hello in time"),
        };
        let mut reader = FrameReader::<PeerHello>::new(stream, Some(conn.clone()), self.max_frame);
        let hello = match tokio::time::timeout(self.hello_timeout, reader.recv()).await {
            Ok(Ok(Some(hello))) => hello,
            Ok(Err(e)) if e.is_bad_frame() => return bump(&self.counters.bad_frames),
            Ok(_) => return debug!(remote = %conn.remote_address(), "peer left before its hello"),
            Err(_) => return self.refuse(&conn, "no hello in time"),
        };
        let from = hello.from;
        let why = if hello.magic != PeerHello::MAGIC {
            Some("unknown protocol version".to_string())
        } else if hello.cluster_size as usize != self.n {
            Some(format!(
                "cluster size {} differs from ours, {}",
                hello.cluster_size, self.n
            ))
        } else if hello.to != self.id {
            Some(format!(
                "dialed {} but reached {}",
                node_name(hello.to),
                node_name(self.id)
            ))
        } else if from as usize >= self.n || from == self.id {
            Some(format!("claims to be {}", node_name(from)))
        } else if !tls::certificate_names(&cert, &node_name(from)) {
            Some(format!(
                "claims to be {} but its certificate does not name it",
                node_name(from)
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return self.refuse(&conn, &why);
        }
        let replaced = self.peers.lock().unwrap().insert(from, conn.clone());
        if let Some(old) = replaced {
            old.close(
                close_code::REPLACED.into(),
                b"replaced by a newer connection",
            );
        }
        debug!(peer = %node_name(from), remote = %conn.remote_address(), "peer accepted");

        let mut reader = reader.retype::<Message>();
        loop {
            let next = tokio::select! {
                next = reader.recv() => next,
                _ = self.cancel.cancelled() => break,
            };
            match next {
                Ok(Some(msg)) => {
                    bump(&self.counters.received);
                    if self.messages.send((from, msg)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if e.is_bad_frame() {
                        bump(&self.counters.bad_frames);
                    } else {
                        debug!(peer = %node_name(from), error = %e, "inbound connection ended");
                    }
                    break;
                }
            }
        }
        let mut peers = self.peers.lock().unwrap();
        if peers
            .get(&from)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            peers.remove(&from);
        }
    }

    /// Hands every bidirectional stream a client opens to the server.
    async fn serve_client(&self, conn: Connection) {
        let identity = match tls::peer_certificate(&conn).and_then(|c| tls::identity_of(&c, self.n))
        {
            Some(identity) => identity,
            None => return self.refuse(&conn, "certificate names neither a client nor a node"),
        };
        bump(&self.counters.client_connections);
        debug!(%identity, remote = %conn.remote_address(), "client connected");
        loop {
            let accepted = tokio::select! {
                s = conn.accept_bi() => s,
                _ = self.cancel.cancelled() => return,
            };
            let (send, recv) = match accepted {
                Ok(pair) => pair,
                Err(e) => return debug!(%identity, error = %e, "client connection ended"),
            };
            let stream = ClientStream::new(identity, conn.clone(), send, recv, self.max_frame);
            if self.clients.send(stream).await.is_err() {
                conn.close(close_code::SHUTDOWN.into(), b"not serving clients");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::framing;
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        for salt in 0..100 {
            let j = jitter(Duration::from_millis(100), salt);
            assert!(
                j >= Duration::from_millis(50) && j < Duration::from_millis(150),
                "{j:?}"
            );
        }
    }

    #[test]
    fn hello_round_trips() {
        let hello = PeerHello {
            magic: PeerHello::MAGIC,
            from: 2,
            to: 0,
            cluster_size: 5,
        };
        let bytes = framing::encode(&hello).unwrap();
        assert_eq!(framing::decode::<PeerHello>(&bytes).unwrap(), hello);
    }
}
