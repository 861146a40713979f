//! The transport on loopback: messages between nodes, mutual TLS refusals,
//! bad frames, restarts.
//!
//! Run with `RUST_LOG=gpaxos_node=debug` to see the transport's logs.

use gpaxos_node::net::{
    certs, close_code, connect_client, tls, ClientDialer, ClientOptions, Credentials, FrameError,
    Inbound, NetConfig, PeerHello, PeerNet, ALPN_CLIENT, ALPN_PEER,
};
use gpaxos_node::protocol::{Ballot, Message, NodeId};
use gpaxos_node::{Command, Op};
use quinn::{Connection, ConnectionError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn tls_dir(n: usize) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    certs::generate(dir.path(), &certs::node_names(n)).unwrap();
    dir
}

/// `n` loopback addresses on ports that were free a moment ago.
fn free_addrs(n: usize) -> Vec<String> {
    let sockets: Vec<_> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect()
}

fn config(dir: &Path, id: NodeId, cluster: &[String]) -> NetConfig {
    let mut config = NetConfig::new(id, cluster.to_vec(), certs::load_node(dir, id).unwrap());
    config.keep_alive = Duration::from_millis(300);
    config.idle_timeout = Duration::from_secs(3);
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(300);
    config.max_frame = 64 << 10;
    config
}

async fn start(config: NetConfig) -> (PeerNet, Inbound) {
    // A port freed a moment ago may still be held by a dropped endpoint.
    let began = Instant::now();
    loop {
        match PeerNet::start(config.clone()).await {
            Ok(started) => return started,
            Err(e) if began.elapsed() < Duration::from_secs(5) => {
                eprintln!("start: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("start: {e}"),
        }
    }
}

fn numbered(i: u64) -> Message {
    Message::Resend {
        bal: Ballot::ZERO,
        instance: i,
        have: 7,
    }
}

async fn recv(inbound: &mut Inbound, within: Duration) -> Option<(NodeId, Message)> {
    timeout(within, inbound.messages.recv())
        .await
        .ok()
        .flatten()
}

/// Sends `numbered(i)` from `from` to `to` every 50 ms until `inbound`
/// receives one; returns how long it took.
async fn send_until_received(
    from: &PeerNet,
    to: NodeId,
    inbound: &mut Inbound,
    within: Duration,
) -> Duration {
    let began = Instant::now();
    let mut i = 0;
    while began.elapsed() < within {
        let _ = from.send(to, numbered(i));
        i += 1;
        if let Some((sender, _)) = recv(inbound, Duration::from_millis(50)).await {
            assert_eq!(sender, from.id());
            return began.elapsed();
        }
    }
    panic!(
        "nothing from n{} reached n{} within {within:?}",
        from.id() + 1,
        to + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_messages() {
    init_tracing();
    let dir = tls_dir(3);
    let cluster = free_addrs(3);
    let mut nodes = Vec::new();
    for id in 0..3 {
        nodes.push(start(config(dir.path(), id, &cluster)).await);
    }
    // Everyone to everyone, itself included.
    for (from, (net, _)) in nodes.iter().enumerate() {
        for to in 0..3 {
            net.send(to, numbered(100 * from as u64 + to as u64))
                .unwrap();
        }
    }
    for (to, (_, inbound)) in nodes.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..3 {
            let (from, msg) = recv(inbound, Duration::from_secs(10))
                .await
                .expect("a message");
            assert_eq!(msg, numbered(100 * from as u64 + to as u64));
            got.push(from);
        }
        got.sort();
        assert_eq!(got, vec![0, 1, 2], "node n{} heard from", to + 1);
    }

    // A burst arrives complete and in order, written in batches.
    let burst = 20_000u64;
    for i in 0..burst {
        nodes[0].0.send(1, numbered(i)).unwrap();
    }
    for i in 0..burst {
        let (from, msg) = recv(&mut nodes[1].1, Duration::from_secs(20))
            .await
            .expect("burst message");
        assert_eq!((from, msg), (0, numbered(i)));
    }
    let stats = nodes[0].0.stats();
    assert!(stats.messages_sent >= burst + 2, "{stats:?}");
    assert!(stats.max_batch > 1, "no batching: {stats:?}");
    assert_eq!(stats.messages_dropped, 0, "{stats:?}");
    assert!(nodes[0].0.is_connected(1) && nodes[0].0.is_connected(2));
    assert_eq!(nodes[1].0.stats().bad_frames, 0);

    // A message larger than a frame is dropped alone; the connection stays.
    let big = Message::Propose {
        cmds: (0..100)
            .map(|i| {
                Command::new(
                    1,
                    i,
                    Op::Put {
                        key: "k".into(),
                        value: "v".repeat(1000),
                    },
                )
            })
            .collect(),
    };
    nodes[0].0.send(1, big).unwrap();
    nodes[0].0.send(1, numbered(7)).unwrap();
    let (from, msg) = recv(&mut nodes[1].1, Duration::from_secs(10))
        .await
        .expect("message after a dropped one");
    assert_eq!((from, msg), (0, numbered(7)));
    assert_eq!(nodes[0].0.stats().messages_dropped, 1);
    assert_eq!(nodes[0].0.stats().disconnects, 0);

    for (net, _) in &nodes {
        net.shutdown().await;
    }
}

#[test]
fn certificates_are_written_and_loaded_back_with_errors_naming_the_file() {
    let dir = tls_dir(3);
    for name in [
        "ca.pem",
        "ca/ca.pem",
        "ca/ca.key",
        "n1/ca.pem",
        "n1/n1.pem",
        "n1/n1.key",
        "n3/n3.pem",
        "n3/n3.key",
        "client.pem",
        "client.key",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("n1/n1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    let n2 = certs::load_node(dir.path(), 1).unwrap();
    assert!(tls::certificate_names(&n2.chain[0], "n2"));
    assert!(!tls::certificate_names(&n2.chain[0], "n1"));
    let client = certs::load_client(dir.path()).unwrap();
    assert!(tls::certificate_names(&client.chain[0], "client"));
    assert_eq!(
        tls::identity_of(&client.chain[0], 3),
        Some(gpaxos_node::net::Identity::Client)
    );
    assert_eq!(
        tls::identity_of(&n2.chain[0], 3),
        Some(gpaxos_node::net::Identity::Node(1))
    );

    let err = certs::load_node(dir.path(), 7).unwrap_err().to_string();
    assert!(err.contains("n8.pem"), "{err}");
    std::fs::write(dir.path().join("n3/n3.key"), "not a key").unwrap();
    let err = certs::load_node(dir.path(), 2).unwrap_err().to_string();
    assert!(err.contains("n3.key"), "{err}");
    std::fs::write(dir.path().join("n1/ca.pem"), "garbage").unwrap();
    let err = certs::load_node(dir.path(), 0).unwrap_err().to_string();
    assert!(err.contains("ca.pem"), "{err}");

    let bad = certs::generate(dir.path(), &["n1".into(), "n1".into()]).unwrap_err();
    assert!(bad.to_string().contains("n1"), "{bad}");
    assert!(certs::generate(dir.path(), &["client".into()]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_certificate_that_does_not_name_it() {
    let dir = tls_dir(2);
    let cluster = free_addrs(2);
    let mut config = config(dir.path(), 0, &cluster);
    config.credentials = certs::load_node(dir.path(), 1).unwrap();
    let err = PeerNet::start(config)
        .await
        .err()
        .expect("n1 with n2's certificate must not start");
    assert!(err.to_string().contains("does not name n1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_certificate_another_ca_signed_is_refused() {
    init_tracing();
    let ours = tls_dir(2);
    let theirs = tls_dir(2);
    let cluster = free_addrs(2);
    let (n1, mut n1_in) = start(config(ours.path(), 0, &cluster)).await;
    let (n2, mut n2_in) = start(config(theirs.path(), 1, &cluster)).await;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(2) {
        let _ = n1.send(1, numbered(1));
        let _ = n2.send(0, numbered(2));
        assert!(
            recv(&mut n1_in, Duration::from_millis(100)).await.is_none(),
            "n1 heard the impostor"
        );
        assert!(
            recv(&mut n2_in, Duration::from_millis(100)).await.is_none(),
            "the impostor heard n1"
        );
    }
    assert!(n1.stats().handshake_failures > 0, "{:?}", n1.stats());
    assert!(!n1.is_connected(1) && !n2.is_connected(0));
    n1.shutdown().await;
    n2.shutdown().await;
}

/// A raw QUIC connection to `addr` with `creds`, speaking `alpn`.
async fn raw_connect(
    creds: &Credentials,
    alpn: &[u8],
    addr: &str,
    server_name: &str,
) -> (quinn::Endpoint, Connection) {
    let transport =
        tls::transport_config(Duration::from_millis(300), Duration::from_secs(3)).unwrap();
    let client = tls::client_config(creds, alpn, transport).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = endpoint
        .connect_with(client, addr.parse().unwrap(), server_name)
        .unwrap()
        .await
        .unwrap();
    (endpoint, conn)
}

async fn closed_with(conn: &Connection, within: Duration) -> ConnectionError {
    timeout(within, conn.closed())
        .await
        .expect("the node should have closed the connection")
}

fn assert_app_close(e: &ConnectionError, code: u32) {
    match e {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, code.into(), "{close:?}")
        }
        other => panic!("expected an application close with code {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_claiming_another_nodes_identity_is_refused() {
    init_tracing();
    let dir = tls_dir(3);
    let cluster = free_addrs(3);
    let (n1, mut n1_in) = start(config(dir.path(), 0, &cluster)).await;
    // n3's certificate, and a hello claiming to be n2.
    let n3_creds = certs::load_node(dir.path(), 2).unwrap();
    let (_ep, conn) = raw_connect(&n3_creds, ALPN_PEER, &cluster[0], "n1").await;
    let mut stream = conn.open_uni().await.unwrap();
    let hello = PeerHello {
        magic: PeerHello::MAGIC,
        from: 1,
        to: 0,
        cluster_size: 3,
    };
    write_frame(
        &mut stream,
        &gpaxos_node::net::framing::encode(&hello).unwrap(),
    )
    .await;
    write_frame(
        &mut stream,
        &gpaxos_node::net::framing::encode(&numbered(1)).unwrap(),
    )
    .await;
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::IDENTITY,
    );
    assert!(recv(&mut n1_in, Duration::from_millis(200)).await.is_none());
    assert_eq!(n1.stats().identity_rejections, 1);

    // A client certificate cannot speak the peer protocol at all.
    let client_creds = certs::load_client(dir.path()).unwrap();
    let (_ep, conn) = raw_connect(&client_creds, ALPN_PEER, &cluster[0], "n1").await;
    let mut stream = conn.open_uni().await.unwrap();
    let hello = PeerHello {
        magic: PeerHello::MAGIC,
        from: 2,
        to: 0,
        cluster_size: 3,
    };
    write_frame(
        &mut stream,
        &gpaxos_node::net::framing::encode(&hello).unwrap(),
    )
    .await;
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::IDENTITY,
    );
    n1.shutdown().await;
}

/// Writes one frame; errors are ignored, since the node may already have
/// closed the connection over an earlier frame (what the tests check).
async fn write_frame(stream: &mut quinn::SendStream, payload: &[u8]) {
    let _ = stream
        .write_all(&(payload.len() as u32).to_be_bytes())
        .await;
    let _ = stream.write_all(payload).await;
    let _ = stream.flush().await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Request {
    Echo(String),
    Add(u64, u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Response {
    Echoed(String),
    Sum(u64),
}

/// A server of the toy client protocol on top of `Inbound::clients`: every
/// stream in its own task, as the real server would.
fn serve_clients(mut inbound: Inbound) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(stream) = inbound.clients.recv().await {
            tokio::spawn(async move {
                let (mut requests, mut responses) = stream.typed::<Request, Response>();
                while let Ok(Some(req)) = requests.recv().await {
                    let resp = match req {
                        Request::Echo(s) => Response::Echoed(s),
                        Request::Add(a, b) => Response::Sum(a + b),
                    };
                    if responses.send(&resp).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_served_and_a_foreign_client_is_refused() {
    init_tracing();
    let dir = tls_dir(1);
    let foreign = tls_dir(1);
    let cluster = free_addrs(1);
    let (n1, inbound) = start(config(dir.path(), 0, &cluster)).await;
    let server = serve_clients(inbound);
    let addr: SocketAddr = cluster[0].parse().unwrap();

    let creds = certs::load_client(dir.path()).unwrap();
    let mut channel = connect_client::<Request, Response>(addr, "n1", &creds)
        .await
        .unwrap();
    assert_eq!(
        channel.call(&Request::Echo("hi".into())).await.unwrap(),
        Response::Echoed("hi".into())
    );
    assert_eq!(
        channel.call(&Request::Add(2, 3)).await.unwrap(),
        Response::Sum(5)
    );

    // Several streams on one connection, concurrently.
    let dialer = ClientDialer::new(&creds, ClientOptions::default()).unwrap();
    let conn = dialer.connect(addr, "n1").await.unwrap();
    let mut calls = Vec::new();
    for i in 0..8u64 {
        let conn = conn.clone();
        calls.push(tokio::spawn(async move {
            let mut ch = conn.open::<Request, Response>().await.unwrap();
            ch.call(&Request::Add(i, 1)).await.unwrap()
        }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), Response::Sum(i as u64 + 1));
    }

    // The wrong server name: the node's certificate does not name n2.
    let err = dialer
        .connect(addr, "n2")
        .await
        .err()
        .expect("n1 is not n2");
    assert!(err.to_string().contains("n2"), "{err}");

    // A client certificate from another CA: refused at the handshake or at
    // the first request, and the node keeps serving the others.
    let foreign_creds = certs::load_client(foreign.path()).unwrap();
    let refused = async {
        let mut ch = connect_client::<Request, Response>(addr, "n1", &foreign_creds).await?;
        ch.call(&Request::Echo("let me in".into()))
            .await
            .map_err(Into::into)
    };
    let result: Result<Response, gpaxos_node::net::NetError> =
        timeout(Duration::from_secs(10), refused).await.unwrap();
    assert!(result.is_err(), "foreign client was served: {result:?}");
    assert!(n1.stats().handshake_failures >= 1, "{:?}", n1.stats());
    assert_eq!(
        channel.call(&Request::Add(40, 2)).await.unwrap(),
        Response::Sum(42)
    );

    n1.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_only_their_connection() {
    init_tracing();
    let dir = tls_dir(3);
    let cluster = free_addrs(3);
    let (n1, mut n1_in) = start(config(dir.path(), 0, &cluster)).await;
    let (n3, _n3_in) = start(config(dir.path(), 2, &cluster)).await;
    send_until_received(&n3, 0, &mut n1_in, Duration::from_secs(10)).await;
    let n2_creds = certs::load_node(dir.path(), 1).unwrap();
    let hello = gpaxos_node::net::framing::encode(&PeerHello {
        magic: PeerHello::MAGIC,
        from: 1,
        to: 0,
        cluster_size: 3,
    })
    .unwrap();

    // A peer sends a valid message, then bytes that are no message.
    let (_ep, conn) = raw_connect(&n2_creds, ALPN_PEER, &cluster[0], "n1").await;
    let mut stream = conn.open_uni().await.unwrap();
    write_frame(&mut stream, &hello).await;
    write_frame(
        &mut stream,
        &gpaxos_node::net::framing::encode(&numbered(5)).unwrap(),
    )
    .await;
    write_frame(&mut stream, &[0xff, 0xfe, 0xfd, 0xfc, 0x01]).await;
    assert_eq!(
        recv(&mut n1_in, Duration::from_secs(5)).await,
        Some((1, numbered(5)))
    );
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::BAD_FRAME,
    );

    // A peer announces a frame longer than the limit.
    let (_ep, conn) = raw_connect(&n2_creds, ALPN_PEER, &cluster[0], "n1").await;
    let mut stream = conn.open_uni().await.unwrap();
    write_frame(&mut stream, &hello).await;
    // The node may close the connection as soon as it reads the prefix, so
    // the writes after it may fail.
    let _ = stream.write_all(&(10u32 << 20).to_be_bytes()).await;
    let _ = stream.write_all(&[0u8; 1024]).await;
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::BAD_FRAME,
    );

    // A peer sends a valid frame with bytes left over after the message.
    let (_ep, conn) = raw_connect(&n2_creds, ALPN_PEER, &cluster[0], "n1").await;
    let mut stream = conn.open_uni().await.unwrap();
    write_frame(&mut stream, &hello).await;
    let mut padded = gpaxos_node::net::framing::encode(&numbered(6))
        .unwrap()
        .to_vec();
    padded.push(0);
    write_frame(&mut stream, &padded).await;
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::BAD_FRAME,
    );
    assert_eq!(n1.stats().bad_frames, 3, "{:?}", n1.stats());

    // n1 still hears n3 on n3's own connection, which never dropped.
    n3.send(0, numbered(99)).unwrap();
    let (from, msg) = recv(&mut n1_in, Duration::from_secs(5))
        .await
        .expect("n3 still heard");
    assert_eq!(from, 2);
    assert!(matches!(msg, Message::Resend { .. }));
    assert_eq!(n3.stats().disconnects, 0);

    n1.shutdown().await;
    n3.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_client_frame_closes_only_that_client() {
    init_tracing();
    let dir = tls_dir(1);
    let cluster = free_addrs(1);
    let (n1, inbound) = start(config(dir.path(), 0, &cluster)).await;
    let server = serve_clients(inbound);
    let addr: SocketAddr = cluster[0].parse().unwrap();
    let creds = certs::load_client(dir.path()).unwrap();
    // The client's frame limit matches the node's.
    let options = ClientOptions {
        max_frame: 64 << 10,
        ..ClientOptions::default()
    };
    let dialer = ClientDialer::new(&creds, options).unwrap();
    let mut good = dialer
        .connect(addr, "n1")
        .await
        .unwrap()
        .open::<Request, Response>()
        .await
        .unwrap();

    // Garbage where a request should be.
    let (_ep, conn) = raw_connect(&creds, ALPN_CLIENT, &cluster[0], "n1").await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    write_frame(
        &mut send,
        &[
            0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    )
    .await;
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::BAD_FRAME,
    );

    // A length prefix past the limit.
    let (_ep, conn) = raw_connect(&creds, ALPN_CLIENT, &cluster[0], "n1").await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(&u32::MAX.to_be_bytes()).await;
    let _ = send.flush().await;
    assert_app_close(
        &closed_with(&conn, Duration::from_secs(5)).await,
        close_code::BAD_FRAME,
    );

    // The good client was not disturbed. A request too large for a frame is
    // refused by its writer, and the stream stays usable.
    assert_eq!(
        good.call(&Request::Echo("still here".into()))
            .await
            .unwrap(),
        Response::Echoed("still here".into())
    );
    let err = good
        .send(&Request::Echo("x".repeat(100 << 10)))
        .await
        .unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    assert_eq!(
        good.call(&Request::Add(1, 1)).await.unwrap(),
        Response::Sum(2)
    );
    n1.shutdown().await;
    server.abort();
}

/// Runs a node in a runtime of its own, so that dropping the runtime stops
/// it the way a crash would: no close frames, sockets just gone.
struct CrashableNode {
    runtime: Option<tokio::runtime::Runtime>,
    net: Option<PeerNet>,
}

impl CrashableNode {
    fn start(config: NetConfig) -> Result<(CrashableNode, Inbound), gpaxos_node::net::NetError> {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            match runtime.block_on(PeerNet::start(config)) {
                Ok((net, inbound)) => Ok((
                    CrashableNode {
                        runtime: Some(runtime),
                        net: Some(net),
                    },
                    inbound,
                )),
                Err(e) => {
                    runtime.shutdown_background();
                    Err(e)
                }
            }
        })
        .join()
        .unwrap()
    }

    fn net(&self) -> &PeerNet {
        self.net.as_ref().unwrap()
    }
}

impl Drop for CrashableNode {
    fn drop(&mut self) {
        // Stop the runtime's threads first (dropping every task, the
        // endpoint driver included, unpolled), so that the endpoint closing
        // when the handle drops has nobody left to send a close.
        if let Some(runtime) = self.runtime.take() {
            std::thread::spawn(move || runtime.shutdown_timeout(Duration::from_secs(2)))
                .join()
                .unwrap();
        }
        drop(self.net.take());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reconnected_at_once() {
    init_tracing();
    let dir = tls_dir(2);
    let cluster = free_addrs(2);
    // A long idle timeout: only a stateless reset (or a close) can make n1
    // notice the restart within the time allowed below.
    let slow_idle = |mut c: NetConfig| {
        c.idle_timeout = Duration::from_secs(20);
        c
    };
    let (n1, mut n1_in) = start(slow_idle(config(dir.path(), 0, &cluster))).await;
    let (n2, mut n2_in) = CrashableNode::start(slow_idle(config(dir.path(), 1, &cluster))).unwrap();
    send_until_received(&n1, 1, &mut n2_in, Duration::from_secs(10)).await;
    send_until_received(n2.net(), 0, &mut n1_in, Duration::from_secs(10)).await;

    drop(n2); // crash
    drop(n2_in);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let config2 = slow_idle(config(dir.path(), 1, &cluster));
    let began = Instant::now();
    let (n2, mut n2_in) = loop {
        let config2 = config2.clone();
        match tokio::task::spawn_blocking(move || CrashableNode::start(config2))
            .await
            .unwrap()
        {
            Ok(node) => break node,
            Err(e) if began.elapsed() < Duration::from_secs(5) => {
                eprintln!("restart: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("cannot restart n2 on its port: {e}"),
        }
    };
    let to_n2 = send_until_received(&n1, 1, &mut n2_in, Duration::from_secs(15)).await;
    let to_n1 = send_until_received(n2.net(), 0, &mut n1_in, Duration::from_secs(15)).await;
    eprintln!(
        "after the restart: n1 -> n2 in {to_n2:?}, n2 -> n1 in {to_n1:?}; n1 {:?}",
        n1.stats()
    );
    assert!(
        to_n2 < Duration::from_secs(5),
        "n1 took {to_n2:?} to reach the restarted n2"
    );
    let stats = n1.stats();
    assert!(stats.connects >= 2 && stats.disconnects >= 1, "{stats:?}");
    // The crash sent no close: n1 learned of it from n2's stateless reset.
    assert!(stats.resets >= 1, "{stats:?}");
    n1.shutdown().await;
    drop(n2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_shut_down_and_started_again_on_its_port_is_reconnected() {
    init_tracing();
    let dir = tls_dir(2);
    let cluster = free_addrs(2);
    let (n1, mut n1_in) = start(config(dir.path(), 0, &cluster)).await;
    let (n2, mut n2_in) = start(config(dir.path(), 1, &cluster)).await;
    send_until_received(&n1, 1, &mut n2_in, Duration::from_secs(10)).await;
    n2.shutdown().await;
    drop((n2, n2_in));
    // While n2 is down, what n1 queues for it is dropped, not hoarded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (n2, mut n2_in) = start(config(dir.path(), 1, &cluster)).await;
    let to_n2 = send_until_received(&n1, 1, &mut n2_in, Duration::from_secs(10)).await;
    send_until_received(&n2, 0, &mut n1_in, Duration::from_secs(10)).await;
    assert!(to_n2 < Duration::from_secs(3), "{to_n2:?}");
    n1.shutdown().await;
    n2.shutdown().await;
}

/// A UDP relay for one directed link, as the harness puts between nodes:
/// what arrives at its front goes to `back` from a socket of its own, and
/// the answers go back to whoever spoke last. Returns the front address and
/// a count of the datagrams it forwarded to `back`.
async fn relay(back: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let out = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    out.connect(back).await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let forwarded = Arc::new(AtomicU64::new(0));
    let client = Arc::new(Mutex::new(None::<SocketAddr>));
    {
        let (front, out, client, forwarded) = (
            front.clone(),
            out.clone(),
            client.clone(),
            forwarded.clone(),
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *client.lock().unwrap() = Some(from);
                forwarded.fetch_add(1, Ordering::Relaxed);
                let _ = out.send(&buf[..n]).await;
            }
        });
    }
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            // A connected UDP socket reports an ICMP "port unreachable" as
            // an error on the next receive: skip it.
            let Ok(n) = out.recv(&mut buf).await else {
                continue;
            };
            let to = *client.lock().unwrap();
            if let Some(to) = to {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    (front_addr, forwarded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_bound_elsewhere_is_reached_through_a_relay() {
    init_tracing();
    let dir = tls_dir(2);
    let real = free_addrs(2);
    let (front, forwarded) = relay(real[1].parse().unwrap()).await;
    // n1 reaches n2 through the relay; n2 binds its real address with
    // `listen` and reaches n1 directly.
    let view = vec![real[0].clone(), front.to_string()];
    let (n1, mut n1_in) = start(config(dir.path(), 0, &view)).await;
    let mut n2_config = config(dir.path(), 1, &view);
    n2_config.listen = Some(real[1].parse().unwrap());
    let (n2, mut n2_in) = start(n2_config).await;
    assert_eq!(n2.local_addr(), real[1].parse::<SocketAddr>().unwrap());
    send_until_received(&n1, 1, &mut n2_in, Duration::from_secs(10)).await;
    send_until_received(&n2, 0, &mut n1_in, Duration::from_secs(10)).await;
    assert!(forwarded.load(Ordering::Relaxed) > 0);
    n1.shutdown().await;
    n2.shutdown().await;
}

/// A sustained stream on one peer link, long enough to fill the peer queue
/// (`send` refuses with `Full` and the producer retries): every message
/// arrives. Prints the rate as a rough figure, not a benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_stream_arrives_whole() {
    let dir = tls_dir(2);
    let cluster = free_addrs(2);
    let mut c1 = config(dir.path(), 0, &cluster);
    c1.max_frame = 16 << 20;
    let (n1, _n1_in) = start(c1).await;
    let (_n2, mut n2_in) = start(config(dir.path(), 1, &cluster)).await;
    send_until_received(&n1, 1, &mut n2_in, Duration::from_secs(10)).await;
    while recv(&mut n2_in, Duration::from_millis(200)).await.is_some() {}
    let total = 100_000u64;
    let began = Instant::now();
    let producer = {
        let n1 = n1.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while i < total {
                match n1.send(1, numbered(i)) {
                    Ok(()) => i += 1,
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
    };
    let mut got = 0;
    while got < total {
        recv(&mut n2_in, Duration::from_secs(10))
            .await
            .expect("message");
        got += 1;
    }
    producer.await.unwrap();
    let secs = began.elapsed().as_secs_f64();
    let stats = n1.stats();
    eprintln!(
        "{total} messages in {secs:.2} s: {:.0} msg/s; {} batches, max batch {}",
        total as f64 / secs,
        stats.batches,
        stats.max_batch
    );
}
