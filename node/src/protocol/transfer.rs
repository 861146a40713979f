//! State transfer: a node that asks for instances its peers have compacted
//! away gets a snapshot instead (docs/DESIGN.md "State transfer", as Raft's
//! InstallSnapshot). Messages only; the replica installs what arrives.
//!
//! 1. A lagging learner's `Sync` reaches a peer that no longer holds the
//!    instance: the peer answers `SnapshotOffer` with the last snapshot it
//!    took (or takes one first, see [`Transfer::wanted`]).
//! 2. The lagging node takes the first offer ahead of it and fetches it
//!    from that peer chunk by chunk (`SnapshotFetch`, `SnapshotChunk`), so
//!    no message is larger than [`CHUNK_BYTES`]. A stalled fetch is asked
//!    again from the same offset (resumable) and given up after a few
//!    tries; the next `Sync` then finds another peer.
//! 3. The whole snapshot is handed to the replica, which refuses a stale or
//!    undecodable one and installs the rest durably.

use super::ballot::NodeId;
use super::message::{Instance, Message};
use super::outbox::Outbox;
use std::sync::Arc;

/// The largest chunk of a snapshot in one message.
pub const CHUNK_BYTES: usize = 256 << 10;

/// A snapshot offered as larger than this is refused.
pub const MAX_SNAPSHOT_BYTES: u64 = 2 << 30;

/// A fetch that made no progress for this many ticks is asked again.
const PATIENCE_TICKS: u64 = 20;

/// Asking again this many times without progress gives the transfer up.
const MAX_RETRIES: u32 = 5;

#[derive(Debug)]
struct Incoming {
    from: NodeId,
    instance: Instance,
    total: u64,
    bytes: Vec<u8>,
    last_progress: u64,
    retries: u32,
}

impl Incoming {
    fn fetch(&self, out: &mut Outbox) {
        out.send(
            self.from,
            Message::SnapshotFetch {
                instance: self.instance,
                offset: self.bytes.len() as u64,
            },
        );
    }
}

/// A snapshot complete from a peer, for the replica to install.
#[derive(Debug)]
pub struct Received {
    pub from: NodeId,
    pub instance: Instance,
    pub bytes: Vec<u8>,
}

/// Both ends of state transfer for one node.
#[derive(Debug, Default)]
pub struct Transfer {
    /// The snapshot this node offers: of every instance below the first.
    served: Option<(Instance, Arc<Vec<u8>>)>,
    incoming: Option<Incoming>,
    /// A peer asked for a compacted instance and no snapshot covers it:
    /// the driver should take one.
    wanted: bool,
}

impl Transfer {
    /// From now on, offer this snapshot (encoded `SnapshotState`).
    pub fn serve(&mut self, instance: Instance, bytes: Arc<Vec<u8>>) {
        if self.served.as_ref().is_none_or(|(i, _)| *i <= instance) {
            self.served = Some((instance, bytes));
        }
        self.wanted = false;
    }

    /// The instance the served snapshot covers up to, if any.
    pub fn served_instance(&self) -> Option<Instance> {
        self.served.as_ref().map(|(i, _)| *i)
    }

    /// The size of the snapshot offered, if any.
    pub fn served_bytes(&self) -> u64 {
        self.served.as_ref().map_or(0, |(_, b)| b.len() as u64)
    }

    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// Whether a transfer to this node is under way.
    pub fn receiving(&self) -> bool {
        self.incoming.is_some()
    }

    /// A peer asked (in a `Sync`) for `asked`, which this node compacted.
    pub fn on_compacted_sync(&mut self, from: NodeId, asked: Instance, out: &mut Outbox) {
        match &self.served {
            Some((instance, bytes)) if *instance > asked => out.send(
                from,
                Message::SnapshotOffer {
                    instance: *instance,
                    total: bytes.len() as u64,
                },
            ),
            _ => self.wanted = true,
        }
    }

    /// An offer of a snapshot below `instance`; this node's learner has
    /// closed every instance below `next`.
    pub fn on_offer(
        &mut self,
        from: NodeId,
        instance: Instance,
        total: u64,
        next: Instance,
        now: u64,
        out: &mut Outbox,
    ) {
        if instance <= next || total > MAX_SNAPSHOT_BYTES {
            return;
        }
        if let Some(cur) = &self.incoming {
            if cur.instance >= instance && cur.retries == 0 {
                return;
            }
        }
        let incoming = Incoming {
            from,
            instance,
            total,
            bytes: Vec::new(),
            last_progress: now,
            retries: 0,
        };
        incoming.fetch(out);
        self.incoming = Some(incoming);
    }

    /// A peer fetches part of the snapshot this node offered.
    pub fn on_fetch(&self, from: NodeId, instance: Instance, offset: u64, out: &mut Outbox) {
        let Some((served, bytes)) = &self.served else {
            return;
        };
        if *served != instance {
            // Replaced by a newer snapshot since the offer.
            out.send(
                from,
                Message::SnapshotOffer {
                    instance: *served,
                    total: bytes.len() as u64,
                },
            );
            return;
        }
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        if start >= bytes.len() && !(start == 0 && bytes.is_empty()) {
            return;
        }
        let end = bytes.len().min(start + CHUNK_BYTES);
        out.send(
            from,
            Message::SnapshotChunk {
                instance,
                offset,
                total: bytes.len() as u64,
                bytes: bytes[start..end].to_vec(),
            },
        );
    }

    /// A chunk arrives; returns the whole snapshot once its last chunk is
    /// in. Chunks of another transfer, out of place or too large are
    /// dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn on_chunk(
        &mut self,
        from: NodeId,
        instance: Instance,
        offset: u64,
        total: u64,
        bytes: Vec<u8>,
        now: u64,
        out: &mut Outbox,
    ) -> Option<Received> {
        let cur = self.incoming.as_mut()?;
        let fits = bytes.len() <= CHUNK_BYTES
            && (cur.bytes.len() as u64).checked_add(bytes.len() as u64) <= Some(total);
        if cur.from != from
            || cur.instance != instance
            || cur.total != total
            || offset != cur.bytes.len() as u64
            || !fits
            || (bytes.is_empty() && total != 0)
        {
            return None;
        }
        cur.bytes.extend_from_slice(&bytes);
        cur.last_progress = now;
        cur.retries = 0;
        if (cur.bytes.len() as u64) < total {
            cur.fetch(out);
            return None;
        }
        let done = self.incoming.take().expect("checked above");
        Some(Received {
            from: done.from,
            instance: done.instance,
            bytes: done.bytes,
        })
    }

    /// Drops a transfer the learner no longer needs (it caught up past it).
    pub fn forget_below(&mut self, next: Instance) {
        if self.incoming.as_ref().is_some_and(|c| c.instance <= next) {
            self.incoming = None;
        }
    }

    /// Asks again for a fetch that stalled; gives it up after a few tries.
    pub fn tick(&mut self, now: u64, out: &mut Outbox) {
        let Some(cur) = self.incoming.as_mut() else {
            return;
        };
        if now < cur.last_progress + PATIENCE_TICKS {
            return;
        }
        cur.retries += 1;
        cur.last_progress = now;
        if cur.retries > MAX_RETRIES {
            self.incoming = None;
            return;
        }
        cur.fetch(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::outbox::Effect;

    fn sent(out: &mut Outbox) -> Vec<(NodeId, Message)> {
        out.effects
            .drain(..)
            .filter_map(|e| match e {
                Effect::Send(super::super::outbox::Dest::To(to), m) => Some((to, m)),
                _ => None,
            })
            .collect()
    }

    /// Runs a transfer of `len` bytes from a server to a client over a
    /// perfect link.
    fn transfer(len: usize) -> Option<Received> {
        let mut out = Outbox::default();
        let mut server = Transfer::default();
        server.serve(9, Arc::new((0..len).map(|i| i as u8).collect()));
        let mut client = Transfer::default();
        server.on_compacted_sync(1, 3, &mut out);
        let Some((_, Message::SnapshotOffer { instance, total })) = sent(&mut out).pop() else {
            panic!("no offer");
        };
        client.on_offer(0, instance, total, 3, 0, &mut out);
        let mut to_server = sent(&mut out);
        for _ in 0..1000 {
            let Some((_, Message::SnapshotFetch { instance, offset })) = to_server.pop() else {
                return None;
            };
            server.on_fetch(1, instance, offset, &mut out);
            for (_, m) in sent(&mut out) {
                if let Message::SnapshotChunk {
                    instance,
                    offset,
                    total,
                    bytes,
                } = m
                {
                    if let Some(r) = client.on_chunk(0, instance, offset, total, bytes, 1, &mut out)
                    {
                        return Some(r);
                    }
                    to_server.extend(sent(&mut out));
                }
            }
        }
        None
    }

    #[test]
    fn a_snapshot_arrives_whole_in_chunks() {
        let len = 3 * CHUNK_BYTES + 17;
        let got = transfer(len).expect("complete");
        assert_eq!(got.instance, 9);
        assert_eq!(got.bytes, (0..len).map(|i| i as u8).collect::<Vec<u8>>());
    }

    #[test]
    fn stale_offers_and_misplaced_chunks_are_ignored() {
        let mut out = Outbox::default();
        let mut t = Transfer::default();
        t.on_offer(0, 3, 10, 3, 0, &mut out);
        assert!(!t.receiving(), "an offer not ahead of the learner");
        t.on_offer(0, 5, MAX_SNAPSHOT_BYTES + 1, 3, 0, &mut out);
        assert!(!t.receiving(), "an offer too large");
        t.on_offer(0, 5, 10, 3, 0, &mut out);
        assert!(t.receiving());
        assert!(t.on_chunk(1, 5, 0, 10, vec![0; 10], 1, &mut out).is_none());
        assert!(t.on_chunk(0, 5, 4, 10, vec![0; 6], 1, &mut out).is_none());
        assert!(t.on_chunk(0, 5, 0, 10, vec![0; 11], 1, &mut out).is_none());
        assert!(t.on_chunk(0, 5, 0, 10, vec![0; 10], 1, &mut out).is_some());
    }

    #[test]
    fn a_stalled_fetch_is_resumed_then_given_up() {
        let mut out = Outbox::default();
        let mut t = Transfer::default();
        t.on_offer(0, 5, 10, 3, 0, &mut out);
        assert!(t.on_chunk(0, 5, 0, 10, vec![1; 4], 1, &mut out).is_none());
        sent(&mut out);
        t.tick(1 + PATIENCE_TICKS, &mut out);
        let again = sent(&mut out);
        assert!(matches!(
            again[..],
            [(
                0,
                Message::SnapshotFetch {
                    instance: 5,
                    offset: 4
                }
            )]
        ));
        for i in 2..=(MAX_RETRIES as u64 + 1) {
            t.tick(1 + i * PATIENCE_TICKS, &mut out);
        }
        assert!(!t.receiving());
    }
}
