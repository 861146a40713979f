//! The transport: QUIC (quinn) with mutual TLS under a cluster CA (rustls,
//! ring as the one crypto provider), and bincode frames over long-lived
//! length-delimited streams.
//!
//! One UDP port per node serves both peers and clients; ALPN tells them
//! apart ([`ALPN_PEER`], [`ALPN_CLIENT`]).
//!
//! * [`certs`]: the cluster CA, node and client certificates, and loading
//!   them back.
//! * [`tls`]: rustls and quinn configurations, the stable reset and
//!   connection-ID keys, and what a certificate names.
//! * [`framing`]: the one place that knows the encoding (bincode 2) and the
//!   frame size limit.
//! * [`PeerNet`]: node-to-node messages. Every node dials every other node
//!   and sends on its own outgoing connection (one unidirectional stream per
//!   connection); what arrives on the connections it accepted comes out of
//!   [`Inbound::messages`]. Reconnection with backoff is inside.
//! * [`ClientStream`] (server side, from [`Inbound::clients`]) and
//!   [`ClientDialer`] / [`connect_client`] (client side): typed
//!   request/response frames on bidirectional streams.
//!
//! A malformed or oversized frame closes only the connection it came on, with
//! a logged error; it never panics the node.

mod acceptor;
pub mod certs;
mod client_stream;
pub mod cluster_arg;
mod dialer;
pub mod framing;
mod peer;
pub mod tls;

pub use certs::{CertError, Credentials};
pub use client_stream::{
    connect_client, ClientChannel, ClientConnection, ClientDialer, ClientOptions, ClientStream,
};
pub use framing::{
    FrameError, FrameReader, FrameWriter, DEFAULT_MAX_CLIENT_FRAME, DEFAULT_MAX_FRAME,
    MAX_FRAME_LIMIT,
};
pub use peer::{Inbound, NetConfig, NetStats, PeerHello, PeerNet, SendError};

use crate::protocol::{node_name, NodeId};
use std::fmt;

/// ALPN of node-to-node connections.
pub const ALPN_PEER: &[u8] = b"gpaxos-peer/1";
/// ALPN of client connections.
pub const ALPN_CLIENT: &[u8] = b"gpaxos-client/1";
/// The subject name of client certificates. Node certificates name their
/// node (`n1`, `n2`, ...).
pub const CLIENT_NAME: &str = "client";

/// Application error codes a connection is closed with.
pub mod close_code {
    /// The endpoint is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// The peer's hello or certificate did not check out.
    pub const IDENTITY: u32 = 1;
    /// A malformed or oversized frame.
    pub const BAD_FRAME: u32 = 2;
    /// A newer connection from the same peer replaced this one.
    pub const REPLACED: u32 = 3;
    /// The other side does not speak an ALPN this node serves.
    pub const ALPN: u32 = 4;
    /// The node serves as many client connections as it may.
    pub const BUSY: u32 = 5;
}

/// Who is at the other end of an authenticated connection, as its
/// certificate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    Node(NodeId),
    Client,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node(id) => f.write_str(&node_name(*id)),
            Identity::Client => f.write_str(CLIENT_NAME),
        }
    }
}

/// Why an endpoint could not be set up or a connection not made.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot resolve {addr}: {reason}")]
    Resolve { addr: String, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Frame(#[from] FrameError),
}
