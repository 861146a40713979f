//! Commands proposed to the cluster and their interference relation
//! (Section 4.4, "Command Histories").
//!
//! Two commands interfere iff they touch a common key; a checkpoint touches
//! every key (Section 6.3). Every command carries a unique id `(client, seq)`
//! so that appending it twice to a history without duplicates is a no-op.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::OnceLock;

/// A key of the replicated store; bank accounts are keys too.
pub type Key = String;

/// The unique identifier of a command: the client that proposed it and that
/// client's sequence number. Retries keep the id, which makes them idempotent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CmdId {
    pub client: u64,
    pub seq: u64,
}

impl fmt::Debug for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.client, self.seq)
    }
}

impl fmt::Display for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.client, self.seq)
    }
}

/// A fast keyed hasher for command ids and keys, which clients choose.
/// SipHash (std's default) costs a third of the simulator's time, so this
/// is FxHash's mixing step started from a secret per-process key, with
/// murmur3's finaliser so that every input bit reaches the low bits that
/// pick a bucket: without the key and the finaliser, ids differing only
/// in high bits all land in one bucket, and a client can choose them.
#[derive(Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

static HASH_KEY: OnceLock<u64> = OnceLock::new();

/// The process's hash key: random unless [`fix_hash_key`] chose it first.
fn hash_key() -> u64 {
    *HASH_KEY.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x6770_6178_6f73u64)
    })
}

/// Fixes the hash key, for runs that must repeat exactly (the simulator):
/// iteration orders of maps then do not change from one process to the
/// next. Returns false if the key was already drawn.
pub fn fix_hash_key(key: u64) -> bool {
    HASH_KEY.set(key).is_ok()
}

/// Builds [`IdHasher`]s from the process's key.
#[derive(Clone, Copy, Default, Debug)]
pub struct FastHash;

impl BuildHasher for FastHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(hash_key())
    }
}

pub type IdMap<V> = HashMap<CmdId, V, FastHash>;
pub type IdSet = HashSet<CmdId, FastHash>;

/// What a command does to the state machine (`node::app` executes it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Get {
        key: Key,
    },
    Put {
        key: Key,
        value: String,
    },
    /// Compare-and-set: succeeds iff the current value equals `from`
    /// (`None` meaning the key is absent).
    Cas {
        key: Key,
        from: Option<String>,
        to: String,
    },
    Append {
        key: Key,
        value: String,
    },
    /// Moves `amount` from one account to another if `from` can afford it.
    Transfer {
        from: Key,
        to: Key,
        amount: i64,
    },
    /// Reads every listed account at once.
    Balances {
        accounts: Vec<Key>,
    },
    /// Interferes with every command; closes an instance (Section 6.3).
    Checkpoint,
}

/// The keys a command touches; its interference footprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Footprint<'a> {
    /// Touches every key: a checkpoint.
    All,
    One(&'a Key),
    Two(&'a Key, &'a Key),
    Many(&'a [Key]),
}

impl<'a> Footprint<'a> {
    /// The keys, or `None` for a footprint that covers every key.
    pub fn keys(self) -> Option<Vec<&'a Key>> {
        match self {
            Footprint::All => None,
            Footprint::One(a) => Some(vec![a]),
            Footprint::Two(a, b) if a == b => Some(vec![a]),
            Footprint::Two(a, b) => Some(vec![a, b]),
            Footprint::Many(ks) => {
                let mut v: Vec<&Key> = ks.iter().collect();
                v.sort();
                v.dedup();
                Some(v)
            }
        }
    }
}

/// What [`Command::digest`] returns.
pub type Digest = [u8; 16];

/// Feeds bincode's output straight into the hash, without a buffer.
struct DigestSink(ring::digest::Context);

impl bincode::enc::write::Writer for DigestSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.update(bytes);
        Ok(())
    }
}

/// A proposed command. The operation is shared: a command is copied into
/// many votes, logs and messages, and copying its strings each time was most
/// of the simulator's work.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    pub id: CmdId,
    pub op: Arc<Op>,
}

impl Command {
    pub fn new(client: u64, seq: u64, op: Op) -> Self {
        Command {
            id: CmdId { client, seq },
            op: Arc::new(op),
        }
    }

    /// A checkpoint command. Its id is chosen by the leader that proposes it.
    pub fn checkpoint(id: CmdId) -> Self {
        Command {
            id,
            op: Arc::new(Op::Checkpoint),
        }
    }

    pub fn is_checkpoint(&self) -> bool {
        matches!(*self.op, Op::Checkpoint)
    }

    /// Calls `f` once for each distinct key the command touches, without
    /// allocating. Returns `false` for a checkpoint, which touches every key.
    pub fn for_each_key<'a>(&'a self, mut f: impl FnMut(&'a Key)) -> bool {
        match &*self.op {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => f(key),
            Op::Transfer { from, to, .. } => {
                f(from);
                if from != to {
                    f(to);
                }
            }
            Op::Balances { accounts } => {
                for (i, k) in accounts.iter().enumerate() {
                    if !accounts[..i].contains(k) {
                        f(k);
                    }
                }
            }
            Op::Checkpoint => return false,
        }
        true
    }

    /// A digest of the operation, so that a message may name the command
    /// by `(id, digest)` instead of carrying it (`protocol::payloads`): an
    /// id alone is the client's to choose, and two nodes given different
    /// operations under one id must not take one for the other. SHA-256 of
    /// the operation's bincode encoding (stable across builds, unlike
    /// `Hash`), cut to 128 bits: a client that wanted two operations with
    /// one digest would need about 2^64 tries.
    pub fn digest(&self) -> Digest {
        let mut sink = DigestSink(ring::digest::Context::new(&ring::digest::SHA256));
        bincode::serde::encode_into_writer(&*self.op, &mut sink, bincode::config::standard())
            .expect("a digest sink never refuses bytes");
        let mut out = [0u8; 16];
        out.copy_from_slice(&sink.0.finish().as_ref()[..16]);
        out
    }

    pub fn footprint(&self) -> Footprint<'_> {
        match &*self.op {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => Footprint::One(key),
            Op::Transfer { from, to, .. } => Footprint::Two(from, to),
            Op::Balances { accounts } => Footprint::Many(accounts),
            Op::Checkpoint => Footprint::All,
        }
    }

    /// The interference relation `≍` of Section 4.4: a common key, or a
    /// checkpoint on either side. Symmetric by construction.
    pub fn interferes(&self, other: &Command) -> bool {
        match (self.footprint().keys(), other.footprint().keys()) {
            (None, _) | (_, None) => true,
            (Some(a), Some(b)) => a.iter().any(|k| b.contains(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids a client can choose to differ only in high bits still spread
    /// over the low bits a hash table picks its bucket from; without the
    /// finaliser all 1,000 land in one.
    #[test]
    fn chosen_ids_do_not_share_a_bucket() {
        let buckets: HashSet<u64> = (0..1_000u64)
            .map(|k| {
                FastHash.hash_one(CmdId {
                    client: 7,
                    seq: k << 40,
                }) & 0xffff
            })
            .collect();
        assert!(buckets.len() > 950, "{} buckets of 65,536", buckets.len());
    }
}
