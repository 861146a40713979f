//! UDP relays between the nodes of a `local` cluster, one per directed link,
//! so the harness can drop, delay, duplicate and reorder real QUIC packets
//! per link without root, and hold each packet for its link's own one-way
//! delay (`--latency`, [`RelayMesh::set_latency`]).
//!
//! The relay of link `i -> j` has a *front* socket and an *upstream* socket.
//! Node `i` is told (by its own `--cluster` map) that node `j` lives at the
//! front; what arrives there goes from the upstream socket to node `j`'s
//! real address, and what node `j` sends back to the upstream socket goes
//! from the front to whoever last sent to the front (node `i`'s endpoint).
//! Nodes authenticate each other by certificate, so the addresses they see
//! do not matter. Every node dials every other node and sends on its own
//! connection, so link `i -> j` carries node `i`'s messages to `j` one way
//! and their acknowledgements the other way; a link's faults apply to its
//! packets in both directions.
//!
//! # Use by `LocalCluster`
//!
//! ```no_run
//! # use gpaxos_harness::cluster::relay::{grudge, LinkFaults, RelayMesh};
//! # use std::time::Duration;
//! # fn f(real: Vec<std::net::SocketAddr>) -> std::io::Result<()> {
//! // Inside a multi-thread Tokio runtime (or `runtime.enter()`): its
//! // workers run the relays while the caller blocks.
//! let mesh = RelayMesh::start(&real, 42)?;
//! for i in 0..real.len() {
//!     // gpaxos-node run --id n{i+1} --listen {real[i]} \
//!     //     --cluster {mesh.cluster_arg_for(i)} ...
//!     let _ = (real[i], mesh.cluster_arg_for(i));
//! }
//! mesh.partition(&grudge::halves(&[0, 1, 2, 3, 4]));
//! mesh.set_all(LinkFaults::delay(Duration::from_millis(5)));
//! mesh.heal(); // no cut link, no fault
//! # Ok(()) }
//! ```
//!
//! Clients talk to the nodes' real addresses, not through relays. A node
//! restarted on its real address is reached through the same relays. The
//! relays stop, and their sockets close, when the [`RelayMesh`] is dropped.

pub use crate::faults::{grudge, Grudge, LinkFaults};
use crate::latency::Latency;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The shortest hold of a reordered datagram's window.
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(5);

/// What one directed link did, both directions together, since the mesh
/// started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Datagrams passed on (a duplicated one counts once).
    pub forwarded: u64,
    /// Datagrams dropped: cut link or loss.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Datagrams held back out of order.
    pub reordered: u64,
}

impl std::ops::AddAssign for LinkStats {
    fn add_assign(&mut self, o: LinkStats) {
        self.forwarded += o.forwarded;
        self.dropped += o.dropped;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
    }
}

/// What the harness sets on a link and what its relay counts.
#[derive(Default)]
struct LinkState {
    cut: AtomicBool,
    faults: Mutex<LinkFaults>,
    /// The link's own one-way delay in ns, per direction (`Dir`): the
    /// distance between its nodes (`--latency`), under any fault and kept
    /// by a heal.
    latency_ns: [AtomicU64; 2],
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

impl LinkState {
    fn faults(&self) -> LinkFaults {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_faults(&self, f: LinkFaults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = f;
    }

    fn latency(&self, dir: Dir) -> Duration {
        Duration::from_nanos(self.latency_ns[dir as usize].load(Relaxed))
    }

    fn stats(&self) -> LinkStats {
        LinkStats {
            forwarded: self.forwarded.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            duplicated: self.duplicated.load(Relaxed),
            reordered: self.reordered.load(Relaxed),
        }
    }
}

struct Link {
    front: SocketAddr,
    state: Arc<LinkState>,
    task: JoinHandle<()>,
}

/// The relays of every directed link between `n` nodes.
pub struct RelayMesh {
    real: Vec<SocketAddr>,
    /// Index `from * n + to`; `None` on the diagonal.
    links: Vec<Option<Link>>,
}

impl RelayMesh {
    /// Binds a relay on 127.0.0.1 for every directed link between the
    /// nodes whose real (bound) addresses are `real`, and starts them on the
    /// current Tokio runtime (panics outside one). `seed` seeds the random
    /// choices of the packet faults.
    pub fn start(real: &[SocketAddr], seed: u64) -> io::Result<RelayMesh> {
        Self::start_on(&Handle::current(), real, seed)
    }

    /// [`RelayMesh::start`] on the runtime of `handle`.
    pub fn start_on(handle: &Handle, real: &[SocketAddr], seed: u64) -> io::Result<RelayMesh> {
        let _guard = handle.enter();
        let n = real.len();
        let mut mesh = RelayMesh {
            real: real.to_vec(),
            links: Vec::with_capacity(n * n),
        };
        for from in 0..n {
            for (to, &to_addr) in real.iter().enumerate() {
                if from == to {
                    mesh.links.push(None);
                    continue;
                }
                let front = bind()?;
                let up = bind()?;
                let front_addr = front.local_addr()?;
                let state = Arc::new(LinkState::default());
                let rng = SmallRng::seed_from_u64(seed ^ (((from * n + to) as u64 + 1) << 32));
                let task = handle.spawn(relay(front, up, to_addr, state.clone(), rng));
                mesh.links.push(Some(Link {
                    front: front_addr,
                    state,
                    task,
                }));
            }
        }
        Ok(mesh)
    }

    pub fn n(&self) -> usize {
        self.real.len()
    }

    /// The nodes' real addresses, where they bind and clients reach them.
    pub fn real_addrs(&self) -> &[SocketAddr] {
        &self.real
    }

    fn link(&self, from: usize, to: usize) -> &Link {
        assert!(from != to, "no relay from node {from} to itself");
        self.links[from * self.n() + to]
            .as_ref()
            .expect("off the diagonal")
    }

    /// Where node `from` must send to reach node `to`: the front of the
    /// relay of link `from -> to`.
    pub fn front(&self, from: usize, to: usize) -> SocketAddr {
        self.link(from, to).front
    }

    /// Node `i`'s view of the cluster: the relay fronts of its links to the
    /// others, and its own real address at index `i`.
    pub fn cluster_for(&self, i: usize) -> Vec<SocketAddr> {
        (0..self.n())
            .map(|j| {
                if j == i {
                    self.real[i]
                } else {
                    self.front(i, j)
                }
            })
            .collect()
    }

    /// Node `i`'s `--cluster` argument: `n1=ADDR,n2=ADDR,...` of
    /// [`RelayMesh::cluster_for`]. Start node `i` with it and with
    /// `--listen` its real address.
    pub fn cluster_arg_for(&self, i: usize) -> String {
        self.cluster_for(i)
            .iter()
            .enumerate()
            .map(|(j, a)| format!("{}={a}", gpaxos_node::protocol::node_name(j as u32)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Sets the packet faults of link `from -> to` (both directions of its
    /// connection), replacing the previous ones.
    pub fn set_link(&self, from: usize, to: usize, faults: LinkFaults) {
        self.link(from, to).state.set_faults(faults);
    }

    /// Sets the same packet faults on every link.
    pub fn set_all(&self, faults: LinkFaults) {
        for l in self.links.iter().flatten() {
            l.state.set_faults(faults);
        }
    }

    /// Sets every link's own one-way delays from `latency`: on link
    /// `i -> j`, node `i`'s datagrams take `latency[i][j]` and node `j`'s
    /// answers `latency[j][i]`. Heals keep them; packet faults add to them.
    pub fn set_latency(&self, latency: &Latency) {
        assert_eq!(latency.n(), self.n(), "a latency matrix for every node");
        for (from, to) in self.pairs() {
            let state = &self.link(from, to).state;
            let each = [
                (Dir::Forward, latency.one_way(from, to)),
                (Dir::Back, latency.one_way(to, from)),
            ];
            for (dir, d) in each {
                state.latency_ns[dir as usize].store(d.as_nanos() as u64, Relaxed);
            }
        }
    }

    /// The packet faults of link `from -> to`.
    pub fn link_faults(&self, from: usize, to: usize) -> LinkFaults {
        self.link(from, to).state.faults()
    }

    /// Cuts exactly the links of `grudge` (and reconnects every other
    /// link); packet faults stay as they are. Datagrams held back on a link
    /// when it is cut are dropped too.
    pub fn partition(&self, grudge: &Grudge) {
        let n = self.n();
        for &(from, to) in grudge {
            assert!(
                from < n && to < n && from != to,
                "grudge link {from} -> {to} outside a mesh of {n} nodes"
            );
        }
        for from in 0..n {
            for to in 0..n {
                if from != to {
                    let cut = grudge.contains(&(from, to));
                    self.link(from, to).state.cut.store(cut, Relaxed);
                }
            }
        }
    }

    /// The links cut now.
    pub fn grudge(&self) -> Grudge {
        self.pairs()
            .filter(|&(f, t)| self.link(f, t).state.cut.load(Relaxed))
            .collect()
    }

    /// Reconnects every link and clears every packet fault. Idempotent.
    /// Datagrams already held back still leave at their time.
    pub fn heal(&self) {
        for l in self.links.iter().flatten() {
            l.state.cut.store(false, Relaxed);
            l.state.set_faults(LinkFaults::default());
        }
    }

    /// Whether no link is cut and none has a fault.
    pub fn is_healed(&self) -> bool {
        self.links
            .iter()
            .flatten()
            .all(|l| !l.state.cut.load(Relaxed) && l.state.faults().is_clean())
    }

    /// What link `from -> to` did so far.
    pub fn stats(&self, from: usize, to: usize) -> LinkStats {
        self.link(from, to).state.stats()
    }

    /// Every link's counts, in `(from, to)` order.
    pub fn all_stats(&self) -> Vec<((usize, usize), LinkStats)> {
        self.pairs()
            .map(|(f, t)| ((f, t), self.stats(f, t)))
            .collect()
    }

    /// The sum over all links.
    pub fn total_stats(&self) -> LinkStats {
        let mut sum = LinkStats::default();
        for (_, s) in self.all_stats() {
            sum += s;
        }
        sum
    }

    fn pairs(&self) -> impl Iterator<Item = (usize, usize)> {
        let n = self.n();
        (0..n).flat_map(move |f| (0..n).filter(move |&t| t != f).map(move |t| (f, t)))
    }
}

impl Drop for RelayMesh {
    fn drop(&mut self) {
        for l in self.links.iter().flatten() {
            l.task.abort();
        }
    }
}

fn bind() -> io::Result<UdpSocket> {
    let s = StdUdpSocket::bind("127.0.0.1:0")?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// From the front (node `from`) to node `to`.
    Forward,
    /// From node `to` back to node `from`.
    Back,
}

/// A datagram held back until `at`; `seq` keeps equal times in arrival
/// order.
struct Held {
    at: Instant,
    seq: u64,
    dir: Dir,
    data: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Held) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Held) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Held) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The sockets of one relay and where its datagrams go.
struct Ends {
    front: UdpSocket,
    up: UdpSocket,
    to: SocketAddr,
    /// The last sender to the front: node `from`'s endpoint.
    client: Option<SocketAddr>,
}

impl Ends {
    async fn send(&self, dir: Dir, data: &[u8]) -> bool {
        match dir {
            Dir::Forward => self.up.send_to(data, self.to).await.is_ok(),
            Dir::Back => match self.client {
                Some(c) => self.front.send_to(data, c).await.is_ok(),
                None => false,
            },
        }
    }
}

enum Event {
    Front(io::Result<(usize, SocketAddr)>),
    Up(io::Result<(usize, SocketAddr)>),
    Due,
}

/// One relay: the whole life of a link, until its task is aborted.
async fn relay(
    front: UdpSocket,
    up: UdpSocket,
    to: SocketAddr,
    state: Arc<LinkState>,
    mut rng: SmallRng,
) {
    let mut ends = Ends {
        front,
        up,
        to,
        client: None,
    };
    let mut front_buf = vec![0u8; 65_536];
    let mut up_buf = vec![0u8; 65_536];
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    // The earliest time the next in-order held datagram may leave, per
    // direction, so that jitter alone does not reorder.
    let mut floor = [Instant::now(); 2];
    let mut seq = 0u64;
    loop {
        let next = held.peek().map(|Reverse(h)| h.at);
        let event = tokio::select! {
            r = ends.front.recv_from(&mut front_buf) => Event::Front(r),
            r = ends.up.recv_from(&mut up_buf) => Event::Up(r),
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                Event::Due
            }
        };
        let (dir, len) = match event {
            Event::Front(Ok((len, from))) => {
                ends.client = Some(from);
                (Dir::Forward, len)
            }
            Event::Up(Ok((len, from))) if from == ends.to => (Dir::Back, len),
            Event::Up(Ok(_)) => continue,
            Event::Front(Err(_)) | Event::Up(Err(_)) => {
                // Not expected on unconnected sockets; do not spin.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            Event::Due => {
                release(&mut held, &ends, &state).await;
                continue;
            }
        };
        let data = match dir {
            Dir::Forward => &front_buf[..len],
            Dir::Back => &up_buf[..len],
        };
        match fate(&state, dir, &mut rng, &mut floor) {
            Fate::Drop => {}
            Fate::Send { copies, at: None } => {
                for _ in 0..copies {
                    ends.send(dir, data).await;
                }
            }
            Fate::Send {
                copies,
                at: Some(at),
            } => {
                for _ in 0..copies {
                    seq += 1;
                    held.push(Reverse(Held {
                        at,
                        seq,
                        dir,
                        data: data.to_vec(),
                    }));
                }
                release(&mut held, &ends, &state).await;
            }
        }
    }
}

/// What becomes of one datagram.
enum Fate {
    Drop,
    /// `copies` of it leave at `at`, or at once.
    Send {
        copies: usize,
        at: Option<Instant>,
    },
}

/// Decides a datagram's fate under its link's cut, packet faults and
/// latency, and counts it. `floor` is the earliest time the next in-order
/// held datagram of each direction may leave.
fn fate(state: &LinkState, dir: Dir, rng: &mut SmallRng, floor: &mut [Instant; 2]) -> Fate {
    if state.cut.load(Relaxed) {
        state.dropped.fetch_add(1, Relaxed);
        return Fate::Drop;
    }
    let f = state.faults();
    if f.loss > 0.0 && rng.gen_bool(f.loss.min(1.0)) {
        state.dropped.fetch_add(1, Relaxed);
        return Fate::Drop;
    }
    let copies = if f.duplicate > 0.0 && rng.gen_bool(f.duplicate.min(1.0)) {
        state.duplicated.fetch_add(1, Relaxed);
        2
    } else {
        1
    };
    state.forwarded.fetch_add(1, Relaxed);
    let latency = state.latency(dir);
    if !f.holds() && latency.is_zero() {
        return Fate::Send { copies, at: None };
    }
    let now = Instant::now();
    let mut wait = latency + f.delay;
    if !f.jitter.is_zero() {
        let j = f.jitter.as_nanos() as i64;
        let off = rng.gen_range(-j..=j);
        wait = Duration::from_nanos((wait.as_nanos() as i64 + off).max(0) as u64);
    }
    let at = if f.reorder > 0.0 && rng.gen_bool(f.reorder.min(1.0)) {
        state.reordered.fetch_add(1, Relaxed);
        let window = (f.delay + f.jitter).max(MIN_REORDER_WINDOW);
        now + wait + window.mul_f64(rng.gen::<f64>())
    } else {
        let k = dir as usize;
        floor[k] = floor[k].max(now + wait);
        floor[k]
    };
    Fate::Send {
        copies,
        at: Some(at),
    }
}

/// Sends every held datagram whose time has come (drops it if its link has
/// been cut meanwhile).
async fn release(held: &mut BinaryHeap<Reverse<Held>>, ends: &Ends, state: &LinkState) {
    let now = Instant::now();
    while held.peek().is_some_and(|Reverse(h)| h.at <= now) {
        let Reverse(h) = held.pop().expect("peeked");
        if state.cut.load(Relaxed) {
            state.dropped.fetch_add(1, Relaxed);
        } else {
            ends.send(h.dir, &h.data).await;
        }
    }
}
