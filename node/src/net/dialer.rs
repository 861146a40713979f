//! The task that owns this node's connection to one peer: dial, send the
//! hello, write what is queued in batches, redial with backoff.

use super::close_code;
use super::framing::FrameWriter;
use super::peer::{bump, resolve, Counters, PeerHello};
use crate::protocol::{node_name, Message, NodeId};
use quinn::{Connection, ConnectionError, Endpoint};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// The task that owns the connection to one peer.
pub(super) struct Dialer {
    pub(super) id: NodeId,
    pub(super) to: NodeId,
    pub(super) n: usize,
    pub(super) addr: String,
    pub(super) prefer_v4: bool,
    pub(super) endpoint: Endpoint,
    pub(super) client: quinn::ClientConfig,
    pub(super) queue: mpsc::Receiver<Message>,
    pub(super) connected: Arc<AtomicBool>,
    pub(super) counters: Arc<Counters>,
    pub(super) cancel: CancellationToken,
    pub(super) max_frame: usize,
    pub(super) max_batch: usize,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) connect_timeout: Duration,
}

/// How a connection's pump ended.
enum PumpEnd {
    /// Shutdown, or every handle dropped.
    Stop,
    /// The connection was lost.
    Lost(String),
}

impl Dialer {
    pub(super) async fn run(mut self) {
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

#[cfg(test)]
mod tests {
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
}
