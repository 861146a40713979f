//! Client connections: typed request/response frames on bidirectional QUIC
//! streams, ALPN [`ALPN_CLIENT`](super::ALPN_CLIENT).
//!
//! Server side: every stream a client opens arrives as a [`ClientStream`]
//! from [`Inbound::clients`](super::Inbound::clients); [`ClientStream::typed`]
//! turns it into a reader of requests and a writer of responses.
//!
//! Client side: a [`ClientDialer`] owns a UDP endpoint and dials nodes; a
//! [`ClientConnection`] opens [`ClientChannel`]s, one per outstanding
//! conversation. [`connect_client`] does all three for one channel.

use super::framing::{
    FrameError, FrameReader, FrameWriter, DEFAULT_MAX_CLIENT_FRAME, DEFAULT_MAX_FRAME,
    MAX_FRAME_LIMIT,
};
use super::{tls, Credentials, Identity, NetError, ALPN_CLIENT};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A stream a client opened, not yet typed.
pub struct ClientStream {
    identity: Identity,
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
    /// The longest request and response frames, and how long a request
    /// frame may take to arrive.
    max_request: usize,
    max_response: usize,
    frame_deadline: Option<Duration>,
}

impl ClientStream {
    pub(crate) fn new(
        identity: Identity,
        conn: Connection,
        send: SendStream,
        recv: RecvStream,
    ) -> Self {
        ClientStream {
            identity,
            conn,
            send,
            recv,
            max_request: DEFAULT_MAX_CLIENT_FRAME,
            max_response: DEFAULT_MAX_FRAME,
            frame_deadline: None,
        }
    }

    pub(crate) fn with_limits(
        mut self,
        max_request: usize,
        max_response: usize,
        frame_deadline: Duration,
    ) -> Self {
        self.max_request = max_request;
        self.max_response = max_response;
        self.frame_deadline = Some(frame_deadline);
        self
    }

    /// Who opened it, as its certificate says: [`Identity::Client`], or a
    /// node (a node's certificate may act as a client, e.g. for `health`).
    pub fn identity(&self) -> Identity {
        self.identity
    }

    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// The connection the stream belongs to (to close it, say).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// A reader of requests and a writer of responses. A bad request frame
    /// (longer than the client frame limit, malformed, or late) closes the
    /// client's connection; the reader returns the error.
    pub fn typed<Req: DeserializeOwned, Resp: Serialize>(
        self,
    ) -> (FrameReader<Req>, FrameWriter<Resp>) {
        let mut reader = FrameReader::new(self.recv, Some(self.conn), self.max_request);
        if let Some(deadline) = self.frame_deadline {
            reader = reader.with_frame_deadline(deadline);
        }
        (reader, FrameWriter::new(self.send, self.max_response))
    }
}

/// Settings of the client side.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub max_frame: usize,
    pub keep_alive: Duration,
    pub idle_timeout: Duration,
    /// The longest a dial may take (the handshake included).
    pub connect_timeout: Duration,
    /// The local address to bind; `0.0.0.0:0` by default.
    pub bind: SocketAddr,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_frame: DEFAULT_MAX_FRAME,
            keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

/// A client's UDP endpoint, from which it dials nodes.
#[derive(Clone)]
pub struct ClientDialer {
    endpoint: Endpoint,
    config: quinn::ClientConfig,
    options: Arc<ClientOptions>,
}

impl ClientDialer {
    /// Binds `options.bind`. Must run inside a tokio runtime.
    pub fn new(credentials: &Credentials, options: ClientOptions) -> Result<Self, NetError> {
        if options.max_frame == 0 || options.max_frame > MAX_FRAME_LIMIT {
            return Err(NetError::Config(format!(
                "max frame {} is not in 1..={MAX_FRAME_LIMIT}",
                options.max_frame
            )));
        }
        let transport = tls::transport_config(options.keep_alive, options.idle_timeout)?;
        let config = tls::client_config(credentials, ALPN_CLIENT, transport)?;
        let bind_error = |source| NetError::Bind {
            addr: options.bind.to_string(),
            source,
        };
        let socket = std::net::UdpSocket::bind(options.bind).map_err(bind_error)?;
        let endpoint = Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        Ok(ClientDialer {
            endpoint,
            config,
            options: Arc::new(options),
        })
    }

    /// Dials the node at `addr` whose certificate must name `server_name`
    /// (`n1`, ...).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<ClientConnection, NetError> {
        let failed = |reason: String| NetError::Connect {
            addr: format!("{server_name} at {addr}"),
            reason,
        };
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), addr, server_name)
            .map_err(|e| failed(e.to_string()))?;
        let conn = tokio::time::timeout(self.options.connect_timeout, connecting)
            .await
            .map_err(|_| failed("timed out".into()))?
            .map_err(|e| failed(e.to_string()))?;
        Ok(ClientConnection {
            conn,
            _endpoint: self.endpoint.clone(),
            max_frame: self.options.max_frame,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }
}

/// An authenticated connection from a client to one node.
#[derive(Clone)]
pub struct ClientConnection {
    conn: Connection,
    /// Keeps the endpoint's driver alive as long as the connection.
    _endpoint: Endpoint,
    max_frame: usize,
}

impl ClientConnection {
    /// Opens a new stream for requests of type `Req` answered by `Resp`.
    pub async fn open<Req: Serialize, Resp: DeserializeOwned>(
        &self,
    ) -> Result<ClientChannel<Req, Resp>, NetError> {
        let (send, recv) = self.conn.open_bi().await?;
        Ok(ClientChannel {
            writer: FrameWriter::new(send, self.max_frame),
            reader: FrameReader::new(recv, Some(self.conn.clone()), self.max_frame),
            _conn: self.clone(),
        })
    }

    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// The underlying connection (`closed()`, `close_reason()`, stats).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn close(&self) {
        self.conn.close(0u32.into(), b"done");
    }
}

/// One request/response conversation with a node.
pub struct ClientChannel<Req, Resp> {
    writer: FrameWriter<Req>,
    reader: FrameReader<Resp>,
    _conn: ClientConnection,
}

impl<Req: Serialize, Resp: DeserializeOwned> ClientChannel<Req, Resp> {
    /// Sends `req` and waits for the next response.
    pub async fn call(&mut self, req: &Req) -> Result<Resp, FrameError> {
        self.writer.send(req).await?;
        self.reader.recv().await?.ok_or(FrameError::Closed)
    }

    pub async fn send(&mut self, req: &Req) -> Result<(), FrameError> {
        self.writer.send(req).await
    }

    /// The next response, `None` when the node finished the stream.
    pub async fn recv(&mut self) -> Result<Option<Resp>, FrameError> {
        self.reader.recv().await
    }

    /// The two halves, to send and receive from different tasks. The halves
    /// keep the connection open.
    pub fn into_split(self) -> (FrameWriter<Req>, FrameReader<Resp>) {
        (self.writer, self.reader)
    }
}

/// Dials `server_name` at `server_addr` with a fresh endpoint and default
/// options, and opens one channel.
pub async fn connect_client<Req: Serialize, Resp: DeserializeOwned>(
    server_addr: SocketAddr,
    server_name: &str,
    credentials: &Credentials,
) -> Result<ClientChannel<Req, Resp>, NetError> {
    let options = ClientOptions {
        bind: if server_addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        },
        ..ClientOptions::default()
    };
    let dialer = ClientDialer::new(credentials, options)?;
    let conn = dialer.connect(server_addr, server_name).await?;
    conn.open().await
}
