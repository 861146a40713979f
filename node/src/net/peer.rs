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

use super::acceptor::{Acceptor, ClientLimits};
use super::client_stream::ClientStream;
use super::dialer::Dialer;
use super::framing::{DEFAULT_MAX_CLIENT_FRAME, DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT};
use super::{close_code, tls, Credentials, NetError, ALPN_PEER};
use crate::protocol::{node_name, Message, NodeId};
use quinn::Endpoint;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

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
    /// Client limits: the longest request frame a client may send (capped
    /// at `max_frame`; responses may be up to `max_frame`), the client
    /// connections served at once, the streams each may have open, and
    /// how long one request frame may take from its first byte to its last.
    /// Half-sent frames thus hold at most `max_client_connections *
    /// max_client_streams * max_client_frame` bytes, each for at most
    /// `client_frame_deadline`.
    pub max_client_frame: usize,
    pub max_client_connections: usize,
    pub max_client_streams: u32,
    pub client_frame_deadline: Duration,
    /// Handshakes (of peers and clients) in progress at once; more are
    /// refused before any TLS work.
    pub max_handshakes: usize,
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
            max_client_frame: DEFAULT_MAX_CLIENT_FRAME,
            max_client_connections: 512,
            max_client_streams: 8,
            client_frame_deadline: Duration::from_secs(10),
            max_handshakes: 128,
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
        if self.max_client_frame == 0
            || self.max_client_connections == 0
            || self.max_client_streams == 0
            || self.max_handshakes == 0
            || self.client_frame_deadline.is_zero()
        {
            return bad("client limits and the handshake limit must be positive".into());
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
    /// Client connections closed because `max_client_connections` were
    /// served, and handshakes refused because `max_handshakes` were in
    /// progress.
    pub clients_refused: u64,
    pub handshakes_refused: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) sent: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) max_batch: AtomicU64,
    pub(super) connects: AtomicU64,
    pub(super) disconnects: AtomicU64,
    pub(super) resets: AtomicU64,
    pub(super) handshake_failures: AtomicU64,
    pub(super) identity_rejections: AtomicU64,
    pub(super) bad_frames: AtomicU64,
    pub(super) client_connections: AtomicU64,
    pub(super) clients_refused: AtomicU64,
    pub(super) handshakes_refused: AtomicU64,
}

pub(super) fn bump(c: &AtomicU64) {
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
        let served = tls::server_transport_config(
            config.keep_alive,
            config.idle_timeout,
            config.max_client_streams,
        )?;
        let server = tls::server_config(&config.credentials, served)?;
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
            limits: ClientLimits {
                max_frame: config.max_client_frame.min(config.max_frame),
                max_connections: config.max_client_connections,
                frame_deadline: config.client_frame_deadline,
                max_handshakes: config.max_handshakes,
            },
            live_clients: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
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
            clients_refused: c.clients_refused.load(Relaxed),
            handshakes_refused: c.handshakes_refused.load(Relaxed),
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

#[cfg(test)]
mod tests {
    use super::super::framing;
    use super::*;

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
