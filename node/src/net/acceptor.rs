//! Accepts every connection of a node's endpoint and serves it by ALPN:
//! peers send a hello and then messages, clients open request streams.

use super::client_stream::ClientStream;
use super::framing::FrameReader;
use super::peer::{bump, Counters, PeerHello};
use super::{close_code, tls, ALPN_CLIENT, ALPN_PEER};
use crate::protocol::{node_name, Message, NodeId};
use quinn::{Connection, Endpoint};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// What a node allows its clients (see [`NetConfig`](super::NetConfig)).
pub(super) struct ClientLimits {
    pub(super) max_frame: usize,
    pub(super) max_connections: usize,
    pub(super) frame_deadline: Duration,
    pub(super) max_handshakes: usize,
}

/// Decrements a count of things in progress when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    /// Takes one of `max` slots, or none if all are taken.
    fn take(count: &'a AtomicUsize, max: usize) -> Option<Slot<'a>> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts every incoming connection of the endpoint and serves it by ALPN.
pub(super) struct Acceptor {
    pub(super) id: NodeId,
    pub(super) n: usize,
    pub(super) max_frame: usize,
    pub(super) hello_timeout: Duration,
    pub(super) messages: mpsc::Sender<(NodeId, Message)>,
    pub(super) clients: mpsc::Sender<ClientStream>,
    pub(super) counters: Arc<Counters>,
    /// The newest accepted connection of each peer.
    pub(super) peers: Mutex<HashMap<NodeId, Connection>>,
    pub(super) cancel: CancellationToken,
    pub(super) limits: ClientLimits,
    /// Client connections being served, and handshakes in progress.
    pub(super) live_clients: AtomicUsize,
    pub(super) handshakes: AtomicUsize,
}

impl Acceptor {
    pub(super) async fn run(self: Arc<Self>, endpoint: Endpoint) {
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
                let Some(slot) = Slot::take(&this.handshakes, this.limits.max_handshakes) else {
                    bump(&this.counters.handshakes_refused);
                    debug!(%remote, "too many handshakes in progress; refused");
                    return incoming.refuse();
                };
                let conn = match incoming.await {
                    Ok(conn) => conn,
                    Err(e) => {
                        bump(&this.counters.handshake_failures);
                        warn!(%remote, error = %e, "handshake refused");
                        return;
                    }
                };
                drop(slot);
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

    /// Hands every bidirectional stream a client opens to the server (QUIC
    /// flow control keeps at most `max_client_streams` open), unless
    /// `max_client_connections` are served already.
    async fn serve_client(&self, conn: Connection) {
        let identity = match tls::peer_certificate(&conn).and_then(|c| tls::identity_of(&c, self.n))
        {
            Some(identity) => identity,
            None => return self.refuse(&conn, "certificate names neither a client nor a node"),
        };
        let Some(_slot) = Slot::take(&self.live_clients, self.limits.max_connections) else {
            bump(&self.counters.clients_refused);
            debug!(%identity, remote = %conn.remote_address(), "too many client connections; refused");
            return conn.close(close_code::BUSY.into(), b"too many client connections");
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
            let stream = ClientStream::new(identity, conn.clone(), send, recv).with_limits(
                self.limits.max_frame,
                self.max_frame,
                self.limits.frame_deadline,
            );
            if self.clients.send(stream).await.is_err() {
                conn.close(close_code::SHUTDOWN.into(), b"not serving clients");
                return;
            }
        }
    }
}
