//! Durable storage: a write-ahead log of the protocol's [`Record`]s.
//!
//! # Why
//!
//! An acceptor's 1b or 2b is a promise about its disk, not its memory
//! (docs/PAPER.md trap 9; Section 5.5: `mbal`, `bal` and `val` must survive a
//! crash). If it answered from memory, crashed, and came back having
//! forgotten, it could vote again in a way that contradicts what a quorum
//! already counted, and two learners could learn incompatible c-structs.
//! Learners persist what they learned so that Stability (Section 3.1)
//! survives a restart. [`Replica`](crate::protocol::Replica) therefore
//! holds every message back until the writes emitted before it are
//! reported durable; this module is what makes them so.
//!
//! # Format
//!
//! One file, `DIR/wal.log`: a 20-byte header (`gpaxwal`, version byte 2,
//! an 8-byte random salt drawn for this file, and a CRC32C of those), then
//! frames `[len u32 LE][crc32c u32 LE][payload]`, where `payload` is one
//! record encoded with bincode 2 (standard configuration), `len` is its
//! size (1 to 64 MiB) and the checksum (CRC32C, Castagnoli) covers the
//! salt, the four length bytes and the payload. Version 1 files (an 8-byte
//! header, no salt) are still read and appended to until their next
//! compaction.
//!
//! # The durability promise
//!
//! [`Wal::append`] only buffers. [`Wal::sync`] writes everything appended
//! since the last sync and calls `sync_data`; when it returns `Ok(n)`, the
//! first `n` records appended by this incarnation are on disk and `n` is
//! what the driver passes to `Replica::durable`. One fsync covers every
//! record appended before it (group commit), so a driver that owns the log
//! in a storage thread does: take every batch of writes waiting in its
//! channel, `append` each, `sync` once, report `n`.
//!
//! # Recovery
//!
//! [`Wal::open`] first fsyncs the log, its directory and the directory's
//! parent, then replays the file and returns every record in order, for
//! `Replica::recover`. The fsync comes first because of the page cache: a
//! process killed between a write and its fsync leaves the write readable
//! but not on disk, and a node that answered from it (a repeated 1a gets a
//! repeated 1b with no new write) would break that promise at the next
//! power loss. Creating the data directory fsyncs the parent of every
//! directory made ([`create_dir_durable`]); small files such as the node's
//! owner file are put in place by [`write_durably`].
//!
//! A crash in the middle of a write leaves a torn tail: a frame cut short
//! or failing its checksum, with no valid frame after it. Nothing in it
//! was reported durable, so it is cut off and recovery goes on. A bad frame
//! followed by a valid one cannot be a torn write: it is corruption of
//! records that were reported durable (and promised to other nodes), and
//! the node refuses to start with a [`StorageError`] naming the file and
//! byte offset. So does a frame whose checksum holds but whose record does
//! not decode. Finding the next valid frame means trying every offset, so
//! the checksum is salted: bytes a client stored in a value (a well-formed
//! frame, say) cannot pass for a record written after a tear.
//!
//! Limits: damage to the *last* record looks exactly like a torn write and
//! is cut off too; a file system that persists an unsynced append out of
//! order (a hole before later frames) is refused as corruption, which is
//! safe but needs an operator.
//!
//! # Failures
//!
//! | what fails | then |
//! |---|---|
//! | a write (ENOSPC, EIO, a short write that cannot be completed) or an fsync of the log | [`WalError::Failed`]: the file is cut back to what was durable (so a restart does not read records whose fsync failed), the log refuses every further call, the server stops; a restart recovers every acknowledged record |
//! | the new file or the rename of a compaction | [`WalError::CompactAborted`]: the old log is untouched, the queued records stay queued, the server goes on and snapshots again later |
//! | the fsync of the directory after a compaction's rename | [`WalError::Failed`] (which log a power loss keeps is unknown until a restart fsyncs the directory) |
//! | anything while opening | [`StorageError::Io`] naming the file; the node refuses to start |
//!
//! The log reaches files only through the [`Fs`] trait: [`RealFs`] in the
//! node, [`MemFs`] (a page cache apart from the disk, power loss, injected
//! faults) in the tests.
//!
//! # Compaction
//!
//! At a checkpoint the server calls [`Wal::compact`] with records that
//! rebuild its acceptor and learner state; the log is replaced atomically
//! (new file with a new salt, fsync, rename, fsync of the directory) by one
//! holding only those records.

mod frame;
mod fs;
mod memfs;
mod wal;

pub use frame::{FrameProblem, MAX_RECORD_BYTES};
pub use fs::{create_dir_durable, write_durably, Fs, FsFile, RealFs};
pub use memfs::{Fault, FsOp, MemFs};
pub use wal::{
    CompactionWrite, Recovered, TornTail, Wal, WalError, WalStats, WrittenCompaction, COMPACT_FILE,
    LOG_FILE,
};

#[cfg(doc)]
use crate::protocol::Record;
use std::io;
use std::path::{Path, PathBuf};

/// Why a log could not be opened. Every variant names the file; damage
/// names the byte offset too.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a gpaxos log (bad header at byte 0); refusing to start", path.display())]
    BadHeader { path: PathBuf },
    #[error(
        "{}: corrupt record at byte {offset} ({problem}), followed by a valid record at byte {next_valid}; refusing to start",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        problem: FrameProblem,
        next_valid: u64,
    },
    #[error(
        "{}: record at byte {offset} passes its checksum but does not decode ({reason}); refusing to start",
        path.display()
    )]
    Undecodable {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl StorageError {
    fn io(path: &Path, source: io::Error) -> Self {
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StorageError::Io { path, .. }
            | StorageError::BadHeader { path }
            | StorageError::Corrupt { path, .. }
            | StorageError::Undecodable { path, .. } => path,
        }
    }

    /// The byte offset of the damage, if the error is about damage.
    pub fn offset(&self) -> Option<u64> {
        match self {
            StorageError::Io { .. } => None,
            StorageError::BadHeader { .. } => Some(0),
            StorageError::Corrupt { offset, .. } | StorageError::Undecodable { offset, .. } => {
                Some(*offset)
            }
        }
    }
}
