//! Delay and reordering without `tc netem`: packets that an iptables rule
//! sends to `NFQUEUE` wait in the kernel until the harness gives their
//! verdict, so holding verdicts back delays them, and releasing them out of
//! order reorders them. Used by the docker backend on kernels built without
//! `sch_netem` (such as this project's CI machine).
//!
//! On a host reached over SSH the harness cannot enter the namespace;
//! there its own binary, installed on the host, serves the queue
//! ([`serve_until_signalled`], the hidden `gpaxos-harness nfqueue`).
//!
//! One [`Queue`] serves one container: a thread that enters the
//! container's network namespace (queues are per namespace), binds queue 0
//! over a raw netfilter netlink socket, and accepts each packet once its
//! time has come. The queue is opened fail-open, and the iptables rule
//! uses `--queue-bypass`, so a full queue or a vanished harness lets
//! packets through rather than cutting the node off.

use crate::faults::LinkFaults;
use anyhow::{bail, Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The queue number the docker backend's NFQUEUE rules name.
pub const QUEUE_NUM: u16 = 0;

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NF_ACCEPT: u32 = 1;
/// The shortest hold of a reordered packet, as the relays use.
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(5);

/// A running queue; dropping it releases every held packet and stops it.
pub struct Queue {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Queue {
    /// Starts serving queue [`QUEUE_NUM`] in the network namespace of
    /// process `pid`, holding each packet as `faults` say (delay, jitter,
    /// reorder; loss and duplication are iptables rules of their own).
    /// Returns once the queue is bound, or why it could not be.
    pub fn start(pid: u32, faults: LinkFaults, seed: u64) -> Result<Queue> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .with_context(|| format!("opening the network namespace of pid {pid}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("nfqueue-{pid}"))
            .spawn(move || {
                // setns moves only this thread into the namespace.
                // SAFETY: a valid namespace fd; CLONE_NEWNET is allowed for
                // one thread of a multi-threaded process.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let _ = tx.send(Err(anyhow::anyhow!(
                        "setns: {}",
                        std::io::Error::last_os_error()
                    )));
                    return;
                }
                match bind() {
                    Ok(sock) => {
                        let _ = tx.send(Ok(()));
                        serve(&sock, faults, SmallRng::seed_from_u64(seed), &flag);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(Queue {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e.context("binding an NFQUEUE in the container's namespace")),
            Err(_) => bail!("the NFQUEUE thread did not answer"),
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Set by SIGTERM or SIGINT: the queue lets its packets go and ends.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

/// Serves queue [`QUEUE_NUM`] in this process's own network namespace
/// until SIGTERM or SIGINT, then releases every held packet. Prints
/// `bound` once packets can be queued, which the ssh backend waits for.
pub fn serve_until_signalled(faults: LinkFaults, seed: u64) -> Result<()> {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    let sock = bind().context("binding an NFQUEUE on this host")?;
    {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "bound")?;
        out.flush()?;
    }
    serve(&sock, faults, SmallRng::seed_from_u64(seed), &SIGNALLED);
    Ok(())
}

fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// A netfilter-queue message: netlink header, nfgenmsg, attributes.
fn message(kind: u16, flags: u16, family: u8, attrs: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(20 + attrs.len());
    let len = (16 + 4 + attrs.len()) as u32;
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(family);
    m.push(0);
    m.extend_from_slice(&QUEUE_NUM.to_be_bytes());
    m.extend_from_slice(attrs);
    m
}

fn send(sock: &OwnedFd, msg: &[u8]) -> Result<()> {
    // SAFETY: a valid socket and buffer; the kernel's address is implied.
    let n = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        bail!("netlink send: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends a configuration message and waits for the kernel's answer.
fn configure(sock: &OwnedFd, attrs: &[u8]) -> Result<()> {
    send(
        sock,
        &message(NFQNL_MSG_CONFIG, NLM_F_ACK, libc::AF_INET as u8, attrs),
    )?;
    let mut buf = vec![0u8; 8192];
    // SAFETY: a valid socket and buffer.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        bail!("netlink: no answer ({})", std::io::Error::last_os_error());
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if kind == NLMSG_ERROR && code != 0 {
        bail!("netlink: {}", std::io::Error::from_raw_os_error(-code));
    }
    Ok(())
}

fn bind() -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, NETLINK_NETFILTER) };
    if fd < 0 {
        bail!("netlink socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor no one else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // A big receive buffer: a packet whose message cannot be delivered
    // is dropped by the kernel.
    let size: libc::c_int = 8 << 20;
    // SAFETY: a valid socket and option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
    // SAFETY: zeroed sockaddr_nl is valid; family set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: a valid socket and address of the right size.
    let r = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if r != 0 {
        bail!("netlink bind: {}", std::io::Error::last_os_error());
    }
    let mut a = Vec::new();
    let mut cmd = vec![NFQNL_CFG_CMD_BIND, 0];
    cmd.extend_from_slice(&(libc::AF_INET as u16).to_be_bytes());
    attr(&mut a, NFQA_CFG_CMD, &cmd);
    configure(&sock, &a)?;
    let mut a = Vec::new();
    let mut params = 0u32.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_META);
    attr(&mut a, NFQA_CFG_PARAMS, &params);
    attr(&mut a, NFQA_CFG_QUEUE_MAXLEN, &16_384u32.to_be_bytes());
    attr(&mut a, NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes());
    attr(&mut a, NFQA_CFG_FLAGS, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes());
    configure(&sock, &a)?;
    Ok(sock)
}

fn accept(sock: &OwnedFd, id: u32) {
    let mut a = Vec::new();
    let mut hdr = NF_ACCEPT.to_be_bytes().to_vec();
    hdr.extend_from_slice(&id.to_be_bytes());
    attr(&mut a, NFQA_VERDICT_HDR, &hdr);
    let _ = send(
        sock,
        &message(NFQNL_MSG_VERDICT, 0, libc::AF_UNSPEC as u8, &a),
    );
}

/// The packet ids of the queue's packet messages in `buf`.
fn packet_ids(buf: &[u8], out: &mut Vec<u32>) {
    let mut at = 0;
    while at + 20 <= buf.len() {
        let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        if len < 16 || at + len > buf.len() {
            return;
        }
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            let mut a = at + 20;
            while a + 4 <= at + len {
                let alen = u16::from_ne_bytes([buf[a], buf[a + 1]]) as usize;
                let akind = u16::from_ne_bytes([buf[a + 2], buf[a + 3]]) & 0x3fff;
                if alen < 4 || a + alen > at + len {
                    break;
                }
                if akind == NFQA_PACKET_HDR && alen >= 8 {
                    out.push(u32::from_be_bytes([
                        buf[a + 4],
                        buf[a + 5],
                        buf[a + 6],
                        buf[a + 7],
                    ]));
                    break;
                }
                a += (alen + 3) & !3;
            }
        }
        at += (len + 3) & !3;
    }
}

/// Holds each packet as the relays would, until `stop`; then lets every
/// held packet go.
fn serve(sock: &OwnedFd, f: LinkFaults, mut rng: SmallRng, stop: &AtomicBool) {
    let mut held: BinaryHeap<Reverse<(Instant, u64, u32)>> = BinaryHeap::new();
    let mut floor = Instant::now();
    let mut seq = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut ids = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            let Reverse((_, _, id)) = held.pop().expect("peeked");
            accept(sock, id);
        }
        let wait = held
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((at, _, _))| {
                at.saturating_duration_since(now)
            })
            .min(Duration::from_millis(50));
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_micros().div_ceil(1000) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            continue;
        }
        // SAFETY: a valid socket and buffer.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            continue;
        }
        ids.clear();
        packet_ids(&buf[..n as usize], &mut ids);
        let now = Instant::now();
        for &id in &ids {
            let mut hold = f.delay;
            if !f.jitter.is_zero() {
                let j = f.jitter.as_nanos() as i64;
                let off = rng.gen_range(-j..=j);
                hold = Duration::from_nanos((hold.as_nanos() as i64 + off).max(0) as u64);
            }
            let at = if f.reorder > 0.0 && rng.gen_bool(f.reorder.min(1.0)) {
                let window = (f.delay + f.jitter).max(MIN_REORDER_WINDOW);
                now + hold + window.mul_f64(rng.gen::<f64>())
            } else {
                floor = floor.max(now + hold);
                floor
            };
            seq += 1;
            held.push(Reverse((at, seq, id)));
        }
    }
    for Reverse((_, _, id)) in held.into_sorted_vec().into_iter().rev() {
        accept(sock, id);
    }
}
