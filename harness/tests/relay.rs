//! The UDP relays of the `local` backend: plain UDP servers on loopback
//! stand in for nodes (forwarding, partitions, loss, delay, duplication,
//! reordering, teardown, per-link latency), the grudge builders are checked for their
//! promises, and three real node processes run a cluster through the relays.

use gpaxos_harness::cluster::local::{free_ports, node_binary};
use gpaxos_harness::cluster::relay::{grudge, Grudge, LinkFaults, RelayMesh};
use gpaxos_harness::latency::Latency;
use gpaxos_node::app::Reply;
use gpaxos_node::client::Client;
use gpaxos_node::net::certs;
use gpaxos_node::protocol::node_name;
use gpaxos_node::Op;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// What a server received, and from whom.
type Log = Arc<Mutex<Vec<(Vec<u8>, SocketAddr)>>>;

/// A stand-in node: records what it receives and, if `echo`, sends each
/// datagram back to its sender.
struct Server {
    addr: SocketAddr,
    got: Log,
}

impl Server {
    async fn start(echo: bool) -> Server {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let got: Log = Arc::default();
        let log = got.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                log.lock().unwrap().push((buf[..n].to_vec(), from));
                if echo {
                    let _ = sock.send_to(&buf[..n], from).await;
                }
            }
        });
        Server { addr, got }
    }

    fn received(&self) -> Vec<Vec<u8>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(d, _)| d.clone())
            .collect()
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

async fn servers(n: usize, echo: bool) -> (Vec<Server>, Vec<SocketAddr>) {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Server::start(echo).await);
    }
    let addrs = v.iter().map(|s| s.addr).collect();
    (v, addrs)
}

async fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Sends `msg` to `to` and waits up to `wait` for a reply: its payload and
/// sender.
async fn ping(s: &UdpSocket, to: SocketAddr, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    s.send_to(msg, to).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    match timeout(wait, s.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => {
            assert_eq!(from, to, "replies come from the relay's front");
            Some(buf[..n].to_vec())
        }
        _ => None,
    }
}

/// Waits until `f` holds or `wait` is up.
async fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// Sends `count` numbered datagrams from `s` to `to`, a few at a time so
/// that no socket buffer overflows.
async fn burst(s: &UdpSocket, to: SocketAddr, count: u32) {
    for k in 0..count {
        s.send_to(&k.to_be_bytes(), to).await.unwrap();
        if k % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_both_ways_on_every_link() {
    let (srv, real) = servers(3, true).await;
    let mesh = RelayMesh::start(&real, 1).unwrap();
    assert_eq!(mesh.n(), 3);
    let fronts: BTreeSet<SocketAddr> = mesh
        .all_stats()
        .iter()
        .map(|&((i, j), _)| mesh.front(i, j))
        .collect();
    assert_eq!(fronts.len(), 6, "one front per directed link");
    for i in 0..3 {
        let view = mesh.cluster_for(i);
        assert_eq!(view[i], real[i], "a node's own entry is its real address");
        let arg = mesh.cluster_arg_for(i);
        for j in 0..3 {
            assert!(arg.contains(&format!("{}={}", node_name(j as u32), view[j])));
            if j == i {
                continue;
            }
            assert_eq!(view[j], mesh.front(i, j));
            let s = socket().await;
            let msg = format!("{i}->{j}");
            let back = ping(&s, mesh.front(i, j), msg.as_bytes(), LONG).await;
            assert_eq!(back.as_deref(), Some(msg.as_bytes()));
            // Node j saw the relay's upstream socket, not the sender.
            let from = srv[j].got.lock().unwrap().last().unwrap().1;
            assert_ne!(from, s.local_addr().unwrap());
            assert!(!fronts.contains(&from));
            let st = mesh.stats(i, j);
            assert_eq!((st.forwarded, st.dropped, st.duplicated), (2, 0, 0));
        }
    }
    assert_eq!(mesh.total_stats().forwarded, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_drops_and_heal_restores() {
    let (_srv, real) = servers(3, true).await;
    let mesh = RelayMesh::start(&real, 2).unwrap();
    let s = socket().await;
    let g = grudge::isolate(&[0, 1, 2], 0);
    assert_eq!(
        g,
        Grudge::from([(0, 1), (0, 2), (1, 0), (2, 0)]),
        "isolation cuts both ways"
    );
    mesh.partition(&g);
    assert_eq!(mesh.grudge(), g);
    assert!(!mesh.is_healed());
    for (i, j) in [(0, 1), (1, 0), (0, 2), (2, 0)] {
        assert_eq!(ping(&s, mesh.front(i, j), b"x", SHORT).await, None);
        assert_eq!(mesh.stats(i, j).dropped, 1);
        assert_eq!(mesh.stats(i, j).forwarded, 0);
    }
    for (i, j) in [(1, 2), (2, 1)] {
        assert!(ping(&s, mesh.front(i, j), b"x", LONG).await.is_some());
    }
    // A new partition replaces the old one.
    mesh.partition(&Grudge::from([(1, 2)]));
    assert!(ping(&s, mesh.front(0, 1), b"x", LONG).await.is_some());
    assert_eq!(ping(&s, mesh.front(1, 2), b"x", SHORT).await, None);
    mesh.set_link(2, 1, LinkFaults::delay(Duration::from_millis(5)));
    for _ in 0..2 {
        mesh.heal();
        assert!(mesh.is_healed());
        assert!(mesh.grudge().is_empty());
        assert!(mesh.link_faults(2, 1).is_clean());
        for (i, j) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)] {
            assert!(ping(&s, mesh.front(i, j), b"x", LONG).await.is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_drops_datagrams_already_held() {
    let (srv, real) = servers(2, false).await;
    let mesh = RelayMesh::start(&real, 3).unwrap();
    mesh.set_link(0, 1, LinkFaults::delay(Duration::from_millis(300)));
    let s = socket().await;
    s.send_to(b"held", mesh.front(0, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    mesh.partition(&grudge::halves(&[0, 1]));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(srv[1].count(), 0);
    assert_eq!(mesh.stats(0, 1).dropped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_drops_about_the_fraction_asked() {
    let (srv, real) = servers(2, false).await;
    let mesh = RelayMesh::start(&real, 4).unwrap();
    mesh.set_link(
        0,
        1,
        LinkFaults {
            loss: 0.3,
            ..LinkFaults::default()
        },
    );
    let s = socket().await;
    let sent = 2000;
    burst(&s, mesh.front(0, 1), sent).await;
    assert!(eventually(LONG, || srv[1].count() as u64 == mesh.stats(0, 1).forwarded).await);
    let st = mesh.stats(0, 1);
    assert_eq!(st.forwarded + st.dropped, sent as u64, "{st:?}");
    let lost = st.dropped as f64 / sent as f64;
    // 0.3 ± 5 standard deviations (0.01 each).
    assert!((0.25..=0.35).contains(&lost), "lost {lost}: {st:?}");
    // The other links are untouched.
    assert_eq!(mesh.stats(1, 0), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_latency_each_way() {
    let (_srv, real) = servers(2, true).await;
    let mesh = RelayMesh::start(&real, 5).unwrap();
    let s = socket().await;
    let t = Instant::now();
    assert!(ping(&s, mesh.front(0, 1), b"x", LONG).await.is_some());
    let clean = t.elapsed();
    assert!(
        clean < Duration::from_millis(50),
        "clean round trip {clean:?}"
    );

    mesh.set_link(0, 1, LinkFaults::delay(Duration::from_millis(100)));
    let t = Instant::now();
    assert!(ping(&s, mesh.front(0, 1), b"x", LONG).await.is_some());
    let rtt = t.elapsed();
    assert!(
        rtt >= Duration::from_millis(200) && rtt < Duration::from_millis(600),
        "round trip {rtt:?} with 100 ms each way"
    );
    // The reverse link is another link: not delayed.
    let t = Instant::now();
    assert!(ping(&s, mesh.front(1, 0), b"x", LONG).await.is_some());
    assert!(t.elapsed() < Duration::from_millis(50));

    mesh.set_link(
        0,
        1,
        LinkFaults {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(20),
            ..LinkFaults::default()
        },
    );
    for _ in 0..5 {
        let t = Instant::now();
        assert!(ping(&s, mesh.front(0, 1), b"x", LONG).await.is_some());
        let rtt = t.elapsed();
        assert!(rtt >= Duration::from_millis(60), "round trip {rtt:?}");
    }
}

/// Sends one datagram through link 0 -> 1 from `s` to `node1` and back:
/// the time each way.
async fn one_way_each(mesh: &RelayMesh, s: &UdpSocket, node1: &UdpSocket) -> (Duration, Duration) {
    let mut buf = vec![0u8; 64];
    let t = Instant::now();
    s.send_to(b"there", mesh.front(0, 1)).await.unwrap();
    let (_, up) = timeout(LONG, node1.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let there = t.elapsed();
    let t = Instant::now();
    node1.send_to(b"back", up).await.unwrap();
    timeout(LONG, s.recv_from(&mut buf)).await.unwrap().unwrap();
    (there, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_each_direction_by_its_matrix_entry() {
    // Node 1 is a bare socket, so each direction is timed on its own.
    let node1 = socket().await;
    let (_srv, mut real) = servers(1, false).await;
    real.push(node1.local_addr().unwrap());
    let mesh = RelayMesh::start(&real, 6).unwrap();
    let s = socket().await;
    let slack = Duration::from_millis(80);
    let within = |d: Duration, ms: u64| {
        d >= Duration::from_millis(ms) && d < Duration::from_millis(ms) + slack
    };

    let (there, back) = one_way_each(&mesh, &s, &node1).await;
    assert!(
        within(there, 0) && within(back, 0),
        "clean: {there:?} {back:?}"
    );

    // n1 -> n2 takes 120 ms, n2 -> n1 40 ms: an asymmetric pair of links.
    mesh.set_latency(&Latency::parse("matrix:0,120;40,0", 2).unwrap());
    let (there, back) = one_way_each(&mesh, &s, &node1).await;
    assert!(within(there, 120), "n1 -> n2 took {there:?}, not 120 ms");
    assert!(within(back, 40), "n2 -> n1 took {back:?}, not 40 ms");

    // A heal keeps the distance; a delay fault adds to it.
    mesh.heal();
    assert!(within(one_way_each(&mesh, &s, &node1).await.0, 120));
    mesh.set_all(LinkFaults::delay(Duration::from_millis(50)));
    let (there, back) = one_way_each(&mesh, &s, &node1).await;
    assert!(within(there, 170) && within(back, 90), "{there:?} {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplication_sends_copies() {
    let (srv, real) = servers(2, false).await;
    let mesh = RelayMesh::start(&real, 6).unwrap();
    mesh.set_link(
        0,
        1,
        LinkFaults {
            duplicate: 1.0,
            ..LinkFaults::default()
        },
    );
    let s = socket().await;
    burst(&s, mesh.front(0, 1), 100).await;
    assert!(eventually(LONG, || srv[1].count() == 200).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(srv[1].count(), 200);
    let st = mesh.stats(0, 1);
    assert_eq!((st.forwarded, st.duplicated), (100, 100));

    // Half the time, with a delay: copies of held datagrams too.
    mesh.set_link(
        0,
        1,
        LinkFaults {
            duplicate: 0.5,
            delay: Duration::from_millis(2),
            ..LinkFaults::default()
        },
    );
    burst(&s, mesh.front(0, 1), 400).await;
    assert!(
        eventually(LONG, || srv[1].count() as u64
            == 200 + 400 + mesh.stats(0, 1).duplicated - 100)
        .await
    );
    let extra = mesh.stats(0, 1).duplicated - 100;
    assert!((120..=280).contains(&extra), "{extra} copies of 400");
}

/// How many pairs of received datagrams are out of their sending order.
fn inversions(got: &[Vec<u8>]) -> usize {
    let seqs: Vec<u32> = got
        .iter()
        .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
        .collect();
    seqs.windows(2).filter(|w| w[1] < w[0]).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorder_lets_later_datagrams_overtake_and_jitter_alone_does_not() {
    let (srv, real) = servers(3, false).await;
    let mesh = RelayMesh::start(&real, 7).unwrap();
    mesh.set_link(
        0,
        1,
        LinkFaults {
            reorder: 0.3,
            ..LinkFaults::default()
        },
    );
    mesh.set_link(
        0,
        2,
        LinkFaults {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(5),
            ..LinkFaults::default()
        },
    );
    let s = socket().await;
    burst(&s, mesh.front(0, 1), 300).await;
    burst(&s, mesh.front(0, 2), 300).await;
    assert!(eventually(LONG, || srv[1].count() == 300 && srv[2].count() == 300).await);
    let st = mesh.stats(0, 1);
    assert!((40..=140).contains(&st.reordered), "{st:?}");
    let reordered = inversions(&srv[1].received());
    assert!(reordered > 0, "no datagram overtaken");
    assert_eq!(inversions(&srv[2].received()), 0, "jitter kept the order");
    assert_eq!(mesh.stats(0, 2).reordered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_mesh_stops_its_relays_and_frees_their_ports() {
    let (srv, real) = servers(2, true).await;
    let mesh = RelayMesh::start(&real, 8).unwrap();
    let front = mesh.front(0, 1);
    let s = socket().await;
    assert!(ping(&s, front, b"x", LONG).await.is_some());
    drop(mesh);
    // The port is free once the aborted task has dropped its sockets.
    let freed = eventually(LONG, || std::net::UdpSocket::bind(front).is_ok()).await;
    assert!(freed, "{front} still bound");
    let before = srv[1].count();
    assert_eq!(ping(&s, front, b"y", SHORT).await, None);
    assert_eq!(srv[1].count(), before);
}

#[test]
fn grudge_builders_keep_their_promises() {
    // complete: links between components are cut both ways, none inside.
    let g = grudge::complete(&[vec![0, 1], vec![2], vec![3, 4]]);
    assert!(g.contains(&(0, 2)) && g.contains(&(2, 0)) && g.contains(&(4, 1)));
    assert!(!g.contains(&(0, 1)) && !g.contains(&(3, 4)));
    assert_eq!(g.len(), 2 * (2 + 4 + 2));

    let all = |n: usize| (0..n).collect::<Vec<_>>();
    let symmetric = |g: &Grudge| g.iter().all(|&(a, b)| g.contains(&(b, a)));
    let mut rng = SmallRng::seed_from_u64(9);
    for n in 2..=9 {
        let nodes = all(n);
        let majority = n / 2 + 1;

        // halves: disjoint, covering, neither larger by more than one.
        let (a, b) = grudge::split(&nodes);
        assert!(a.iter().all(|x| !b.contains(x)));
        assert_eq!(a.len() + b.len(), n);
        assert!(a.len() < majority && b.len() - a.len() <= 1);
        if n % 2 == 1 {
            assert!(b.len() >= majority, "with odd n the larger half rules");
        }
        for g in [
            grudge::halves(&nodes),
            grudge::random_halves(&nodes, &mut rng),
        ] {
            assert!(symmetric(&g));
            let sides: BTreeSet<Vec<usize>> =
                (0..n).map(|i| grudge::hears(&g, &nodes, i)).collect();
            assert_eq!(sides.len(), 2, "n={n}: {sides:?}");
            let (x, y) = (sides.first().unwrap(), sides.last().unwrap());
            assert!(x.iter().all(|v| !y.contains(v)), "halves are disjoint");
            assert_eq!(x.len() + y.len(), n);
        }

        // isolate: the node hears only itself, the others hear all but it.
        let g = grudge::isolate(&nodes, n - 1);
        assert!(symmetric(&g));
        assert_eq!(grudge::hears(&g, &nodes, n - 1), vec![n - 1]);
        assert_eq!(grudge::hears(&g, &nodes, 0), all(n - 1));

        // bridge: one node hears everyone, and everyone hears it; no other
        // node hears both sides.
        if n >= 3 {
            let g = grudge::bridge(&nodes);
            assert!(symmetric(&g));
            let hearing_all: Vec<usize> = (0..n)
                .filter(|&i| grudge::hears(&g, &nodes, i).len() == n)
                .collect();
            assert_eq!(hearing_all.len(), 1, "n={n}: {g:?}");
            let bridge = hearing_all[0];
            for i in 0..n {
                assert!(grudge::hears(&g, &nodes, i).contains(&bridge));
            }
        }

        // majorities ring: each node hears a majority, no two the same.
        if n >= 3 {
            let ring = grudge::shuffled(&nodes, &mut rng);
            let g = grudge::majorities_ring(&ring);
            assert!(!g.is_empty());
            let heard: Vec<Vec<usize>> = (0..n).map(|i| grudge::hears(&g, &nodes, i)).collect();
            for h in &heard {
                assert!(h.len() >= majority && h.len() < n, "n={n}: {heard:?}");
            }
            let distinct: BTreeSet<&Vec<usize>> = heard.iter().collect();
            assert_eq!(distinct.len(), n, "n={n}: {heard:?}");
            if n >= 4 {
                assert!(symmetric(&g), "n={n}: a partition cuts both ways");
            }
        }
    }
    // Five nodes on a ring: each hears itself and its two neighbours.
    let g = grudge::majorities_ring(&all(5));
    assert_eq!(grudge::hears(&g, &all(5), 0), vec![0, 1, 4]);
    assert_eq!(grudge::hears(&g, &all(5), 2), vec![1, 2, 3]);
}

/// Node processes killed when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_nodes(dir: &Path, mesh: &RelayMesh) -> Procs {
    let bin = node_binary().unwrap();
    let n = mesh.n();
    let names: Vec<String> = (0..n as u32).map(node_name).collect();
    let status = Command::new(&bin)
        .args(["certs", "--out"])
        .arg(dir.join("tls"))
        .args(["--nodes", &names.join(",")])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let procs = (0..n)
        .map(|i| {
            let log = std::fs::File::create(dir.join(format!("{}.log", names[i]))).unwrap();
            Command::new(&bin)
                .args(["run", "--id", &names[i]])
                .args(["--cluster", &mesh.cluster_arg_for(i)])
                .args(["--listen", &mesh.real_addrs()[i].to_string()])
                .arg("--data")
                .arg(dir.join(format!("{}.data", names[i])))
                .arg("--tls")
                .arg(dir.join("tls"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        })
        .collect();
    Procs(procs)
}

async fn put(client: &mut Client, key: &str, value: &str) {
    let reply = client
        .execute(Op::Put {
            key: key.to_owned(),
            value: value.to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
    assert!(matches!(reply, Reply::Done), "{reply:?}");
}

async fn get(client: &mut Client, key: &str) -> Option<String> {
    match client
        .execute(Op::Get {
            key: key.to_owned(),
        })
        .await
    {
        Ok(Reply::Value(v)) => v,
        other => panic!("get {key}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_through_relays_survive_an_isolated_node() {
    let dir = std::env::temp_dir().join(format!("gpaxos-relay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let real: Vec<SocketAddr> = free_ports(3)
        .unwrap()
        .into_iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .collect();
    let mesh = RelayMesh::start(&real, 10).unwrap();
    let procs = start_nodes(&dir, &mesh);
    let creds = certs::load_client(&dir.join("tls")).unwrap();
    let mut client = Client::new(&creds, real.clone(), 1).unwrap();
    client.retry.attempt = Duration::from_secs(1);
    client.retry.total = Duration::from_secs(30);

    put(&mut client, "a", "1").await;
    assert_eq!(get(&mut client, "a").await.as_deref(), Some("1"));
    let through = mesh.total_stats();
    assert!(through.forwarded > 0, "nodes talk through the relays");

    // Node 1 alone: nodes 2 and 3, a majority, still serve writes.
    mesh.partition(&grudge::isolate(&[0, 1, 2], 0));
    let mut majority = Client::new(&creds, real.clone(), 2).unwrap();
    majority.retry = client.retry.clone();
    majority.prefer(1);
    put(&mut majority, "b", "2").await;
    assert_eq!(get(&mut majority, "b").await.as_deref(), Some("2"));
    assert!(mesh.stats(0, 1).dropped + mesh.stats(1, 0).dropped > 0);

    // Healed, node 1 alone serves again and has caught up.
    mesh.heal();
    let mut healed = Client::new(&creds, vec![real[0]], 3).unwrap();
    healed.retry = client.retry.clone();
    put(&mut healed, "c", "3").await;
    assert_eq!(get(&mut healed, "b").await.as_deref(), Some("2"));
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}
