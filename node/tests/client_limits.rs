//! What a node allows its clients: a cap on connections and on streams per
//! connection, a request frame limit below the peers', and a deadline per
//! request frame. Each limit closes only the client that crossed it.

use gpaxos_node::net::{
    certs, close_code, ClientConnection, ClientDialer, ClientOptions, Credentials, Inbound,
    NetConfig, PeerNet,
};
use quinn::ConnectionError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::time::timeout;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Request {
    Echo(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Response {
    Echoed(String),
}

struct Node {
    net: PeerNet,
    addr: SocketAddr,
    creds: Credentials,
    _dir: TempDir,
}

/// One node with `limits` applied to its configuration, serving echo
/// requests, each stream in its own task as the real server does.
async fn node(limits: impl FnOnce(&mut NetConfig)) -> Node {
    let dir = tempfile::tempdir().unwrap();
    certs::generate(dir.path(), &certs::node_names(1)).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    drop(socket);
    let mut config = NetConfig::new(
        0,
        vec![addr.to_string()],
        certs::load_node(dir.path(), 0).unwrap(),
    );
    limits(&mut config);
    let (net, inbound) = PeerNet::start(config).await.unwrap();
    serve(inbound);
    Node {
        net,
        addr,
        creds: certs::load_client(dir.path()).unwrap(),
        _dir: dir,
    }
}

fn serve(mut inbound: Inbound) {
    tokio::spawn(async move {
        while let Some(stream) = inbound.clients.recv().await {
            tokio::spawn(async move {
                let (mut requests, mut responses) = stream.typed::<Request, Response>();
                while let Ok(Some(Request::Echo(s))) = requests.recv().await {
                    if responses.send(&Response::Echoed(s)).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

impl Node {
    async fn connect(&self) -> ClientConnection {
        let options = ClientOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ClientOptions::default()
        };
        let dialer = ClientDialer::new(&self.creds, options).unwrap();
        dialer.connect(self.addr, "n1").await.unwrap()
    }
}

async fn echo(conn: &ClientConnection, s: &str) -> Result<Response, String> {
    let mut ch = timeout(Duration::from_secs(5), conn.open::<Request, Response>())
        .await
        .map_err(|_| "no stream in time".to_string())?
        .map_err(|e| e.to_string())?;
    timeout(Duration::from_secs(5), ch.call(&Request::Echo(s.into())))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())
}

/// The application close code `conn` ends with, within five seconds.
async fn closed_with(conn: &ClientConnection) -> Option<u64> {
    match timeout(Duration::from_secs(5), conn.connection().closed()).await {
        Ok(ConnectionError::ApplicationClosed(close)) => Some(close.error_code.into_inner()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_and_a_slot_frees_on_close() {
    let node = node(|c| c.max_client_connections = 2).await;
    let (a, b) = (node.connect().await, node.connect().await);
    assert!(echo(&a, "a").await.is_ok());
    assert!(echo(&b, "b").await.is_ok());
    let c = node.connect().await;
    assert!(
        echo(&c, "c").await.is_err(),
        "a third connection was served"
    );
    assert_eq!(closed_with(&c).await, Some(close_code::BUSY.into()));
    assert_eq!(node.net.stats().clients_refused, 1);
    assert!(echo(&a, "a again").await.is_ok(), "the others go on");
    a.close();
    let began = Instant::now();
    loop {
        let d = node.connect().await;
        if echo(&d, "d").await.is_ok() {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "the slot never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_connection_are_capped() {
    let node = node(|c| c.max_client_streams = 2).await;
    let conn = node.connect().await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut ch = conn.open::<Request, Response>().await.unwrap();
        ch.call(&Request::Echo("x".into())).await.unwrap();
        open.push(ch);
    }
    let third = timeout(Duration::from_millis(500), conn.open::<Request, Response>()).await;
    assert!(third.is_err(), "a third stream opened while two were open");
    drop(open);
    let mut ch = timeout(Duration::from_secs(5), conn.open::<Request, Response>())
        .await
        .expect("a stream once the others closed")
        .unwrap();
    let reply = ch.call(&Request::Echo("y".into())).await.unwrap();
    assert_eq!(reply, Response::Echoed("y".into()));
    node.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_above_the_client_frame_limit_closes_that_client_only() {
    let node = node(|c| c.max_client_frame = 4 << 10).await;
    let (big, small) = (node.connect().await, node.connect().await);
    let err = echo(&big, &"x".repeat(8 << 10)).await.unwrap_err();
    assert!(!err.is_empty());
    assert_eq!(closed_with(&big).await, Some(close_code::BAD_FRAME.into()));
    // Well below the peers' 16 MiB limit, yet refused; a smaller request
    // and a large response are fine.
    assert_eq!(
        echo(&small, &"y".repeat(3 << 10)).await,
        Ok(Response::Echoed("y".repeat(3 << 10)))
    );
    node.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_frame_that_stalls_closes_the_client_at_its_deadline() {
    let deadline = Duration::from_millis(400);
    let node = node(|c| c.client_frame_deadline = deadline).await;
    let (slow, other) = (node.connect().await, node.connect().await);
    let ch = slow.open::<Request, Response>().await.unwrap();
    let (mut writer, _reader) = ch.into_split();
    // Announce 1,000 bytes, send 10, stall.
    writer
        .get_mut()
        .write_all(&1000u32.to_be_bytes())
        .await
        .unwrap();
    writer.get_mut().write_all(&[0; 10]).await.unwrap();
    let began = Instant::now();
    assert_eq!(closed_with(&slow).await, Some(close_code::BAD_FRAME.into()));
    let took = began.elapsed();
    assert!(took < deadline * 3, "closed after {took:?}");
    assert!(took >= deadline / 2, "closed after {took:?}");
    // An idle connection longer than the deadline is not closed.
    tokio::time::sleep(deadline * 2).await;
    assert_eq!(
        echo(&other, "still here").await,
        Ok(Response::Echoed("still here".into()))
    );
    node.net.shutdown().await;
}
