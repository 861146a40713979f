//! The write-ahead log: one file, appended to, group-committed, replaced
//! atomically at checkpoints.

use super::frame::{self, FrameProblem};
use super::fs::{create_dir_durable, parent_dir, write_all, Fs, FsFile, RealFs};
use super::StorageError;
use crate::protocol::Record;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The log's file name inside the data directory.
pub const LOG_FILE: &str = "wal.log";
/// Where a compaction writes the new log before renaming it over the old.
pub const COMPACT_FILE: &str = "wal.log.compact";

/// What [`Wal::open`] found on disk.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every durable record, in the order it was appended. Feed them to
    /// `Replica::recover`.
    pub records: Vec<Record>,
    /// The torn tail that was cut off, if the last write before the crash
    /// was cut short.
    pub torn_tail: Option<TornTail>,
    /// The log did not exist and was created empty.
    pub created: bool,
}

/// A torn tail cut off the log at recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the first bad frame started; the log now ends here.
    pub offset: u64,
    /// How many bytes were cut off.
    pub dropped_bytes: u64,
    pub problem: FrameProblem,
}

/// Counters for `status` and the metrics endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended by this incarnation.
    pub appended: u64,
    /// Of those, how many are durable.
    pub durable: u64,
    /// `sync_data` calls on the log (compactions not counted).
    pub fsyncs: u64,
    /// Records made durable by the last sync that had any (group commit
    /// batch size), and the largest such batch.
    pub last_batch: u64,
    pub max_batch: u64,
    /// Frame bytes written by this incarnation, compactions included.
    pub bytes_written: u64,
    pub compactions: u64,
    /// Compactions that failed before their rename (the log went on).
    pub compactions_aborted: u64,
    /// Size of the log file and records in it, pending ones included: what
    /// a compaction policy looks at.
    pub file_bytes: u64,
    pub file_records: u64,
}

/// Why a log operation failed, and whether the log can go on.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A record could not be encoded or is larger than a frame may be.
    /// Nothing was queued; the log goes on.
    #[error("{}: record refused: {reason}", path.display())]
    Record { path: PathBuf, reason: String },
    /// A compaction failed before its rename took effect: the old log is
    /// intact, every record queued is still queued, and the log goes on.
    #[error("{}: compaction abandoned, going on with the old log: {source}", path.display())]
    CompactAborted { path: PathBuf, source: io::Error },
    /// A write or fsync failed: what reached the disk is unknown (a failed
    /// fsync may have dropped dirty pages). The log refuses every further
    /// call; the node must stop and recover from the file.
    #[error("{}: {op} failed: {source}; stopping, a restart recovers every acknowledged record", path.display())]
    Failed {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    /// An earlier write or fsync failed.
    #[error("{}: an earlier write or fsync failed; restart to recover from the log", path.display())]
    Poisoned { path: PathBuf },
}

impl WalError {
    /// True when the log refuses every further call and the node must
    /// stop; false when it goes on as before the failed call.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WalError::Failed { .. } | WalError::Poisoned { .. })
    }

    /// The kind of the underlying I/O error (`StorageFull` for ENOSPC,
    /// say); `InvalidInput` for a refused record.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            WalError::Record { .. } => io::ErrorKind::InvalidInput,
            WalError::CompactAborted { source, .. } | WalError::Failed { source, .. } => {
                source.kind()
            }
            WalError::Poisoned { .. } => io::ErrorKind::Other,
        }
    }
}

/// A write-ahead log of [`Record`]s in a data directory.
///
/// [`append`](Wal::append) only buffers; [`sync`](Wal::sync) writes the
/// buffer and calls `sync_data`, so one fsync covers every record appended
/// since the previous one (group commit). Counts are of records appended by
/// this incarnation, the numbering `Replica::durable` expects.
///
/// After a failed write or fsync the log cuts the file back to what was
/// last made durable (if it can) and refuses every further call: what
/// reached the disk is then unknown, and the only safe way on is to
/// restart and recover from the file. A failed compaction before its
/// rename is not fatal: the old log is still good.
#[derive(Debug)]
pub struct Wal {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    path: PathBuf,
    file: Box<dyn FsFile>,
    /// The salt of the file's checksums (empty for a version 1 log).
    salt: Vec<u8>,
    /// Frames appended but not yet written.
    pending: Vec<u8>,
    pending_records: u64,
    /// The length of the file up to which everything is durable.
    durable_len: u64,
    stats: WalStats,
    poisoned: bool,
}

impl Wal {
    /// Opens the log in `dir` (created if missing) on the real file
    /// system; see [`Wal::open_in`].
    pub fn open(dir: impl AsRef<Path>) -> Result<(Wal, Recovered), StorageError> {
        Wal::open_in(Arc::new(RealFs), dir)
    }

    /// Opens the log in `dir` on `fs` (the directory and its parents are
    /// created if missing, durably), replays it and returns every durable
    /// record. Before reading, the log and its directory are fsynced: after
    /// a process crash the page cache may still hold writes whose fsync
    /// never completed, and nothing read from them may be trusted (or sent
    /// to a peer) before they are on disk. A torn tail is cut off and
    /// reported in [`Recovered::torn_tail`]; damage before the tail is
    /// refused with an error naming the file and byte offset.
    pub fn open_in(
        fs: Arc<dyn Fs>,
        dir: impl AsRef<Path>,
    ) -> Result<(Wal, Recovered), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(LOG_FILE);
        create_dir_durable(fs.as_ref(), &dir).map_err(|e| StorageError::io(&dir, e))?;
        // A compaction that did not reach its rename left no trace in the
        // log; its unfinished file is garbage.
        let leftover = dir.join(COMPACT_FILE);
        match fs.remove_file(&leftover) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StorageError::io(&leftover, e))
            }
            _ => {}
        }
        let mut recovered = Recovered::default();
        let mut file = match fs.open_append(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let header = frame::new_header().map_err(|e| StorageError::io(&path, e))?;
                replace_durably(fs.as_ref(), &leftover, &path, &header)
                    .map_err(|e| StorageError::io(&path, e))?;
                recovered.created = true;
                fs.open_append(&path)
                    .map_err(|e| StorageError::io(&path, e))?
            }
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        // The page-cache trap: make what a crashed process wrote durable
        // (file, its entry, the directory's entry) before replaying it.
        file.sync_all().map_err(|e| StorageError::io(&path, e))?;
        fs.sync_dir(&dir)
            .and_then(|()| fs.sync_dir(&parent_dir(&dir)))
            .map_err(|e| StorageError::io(&dir, e))?;
        let bytes = fs.read(&path).map_err(|e| StorageError::io(&path, e))?;
        let (salt, end) = replay(&path, &bytes, &mut recovered)?;
        if end < bytes.len() {
            // Make the cut durable before anything is appended after it.
            file.set_len(end as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| StorageError::io(&path, e))?;
        }
        let stats = WalStats {
            file_bytes: end as u64,
            file_records: recovered.records.len() as u64,
            ..WalStats::default()
        };
        let wal = Wal {
            fs,
            dir,
            path,
            file,
            salt,
            pending: Vec::new(),
            pending_records: 0,
            durable_len: end as u64,
            stats,
            poisoned: false,
        };
        Ok((wal, recovered))
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// How many records appended by this incarnation are durable: the
    /// number to pass to `Replica::durable`.
    pub fn durable(&self) -> u64 {
        self.stats.durable
    }

    /// Queues records to be written by the next [`sync`](Wal::sync). Fails
    /// only if a record cannot be encoded or is larger than a frame may be
    /// (then none of `records` is queued), or if the log failed before.
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<(), WalError> {
        self.check_poisoned()?;
        let start = self.pending.len();
        let mut n = 0;
        for record in records {
            if let Err(e) = frame::encode_frame(&mut self.pending, &self.salt, record) {
                self.pending.truncate(start);
                return Err(WalError::Record {
                    path: self.path.clone(),
                    reason: e.to_string(),
                });
            }
            n += 1;
        }
        self.pending_records += n;
        self.stats.appended += n;
        self.stats.file_records += n;
        self.stats.file_bytes += (self.pending.len() - start) as u64;
        Ok(())
    }

    /// Writes every queued record and fsyncs the log; returns how many
    /// records of this incarnation are now durable. Does nothing when
    /// nothing is queued. A failed write or fsync is fatal
    /// ([`WalError::Failed`]).
    pub fn sync(&mut self) -> Result<u64, WalError> {
        self.check_poisoned()?;
        if self.pending_records == 0 {
            return Ok(self.stats.durable);
        }
        if let Err(e) = write_all(self.file.as_mut(), &self.pending) {
            return Err(self.fail("write", e));
        }
        if let Err(e) = self.file.sync_data() {
            return Err(self.fail("fsync", e));
        }
        let batch = self.pending_records;
        self.stats.fsyncs += 1;
        self.stats.bytes_written += self.pending.len() as u64;
        self.stats.last_batch = batch;
        self.stats.max_batch = self.stats.max_batch.max(batch);
        self.stats.durable += batch;
        self.durable_len = self.stats.file_bytes;
        self.pending.clear();
        self.pending_records = 0;
        Ok(self.stats.durable)
    }

    /// Replaces the log with one holding only `snapshot`, atomically: the
    /// new log is written to a separate file, fsynced, renamed over the old
    /// one, and the directory fsynced. A crash at any point leaves either
    /// the old log or the new one.
    ///
    /// `snapshot` must rebuild, through `Replica::recover`, the durable
    /// state after every record appended so far, the queued ones included:
    /// those are dropped, and counted durable once the new log is. Returns
    /// the durable count, which is then every record appended.
    ///
    /// An error before the rename took effect is
    /// [`WalError::CompactAborted`]: the old log is untouched, the queued
    /// records stay queued and the log goes on. A failed fsync of the
    /// directory after the rename is fatal.
    pub fn compact<'a>(
        &mut self,
        snapshot: impl IntoIterator<Item = &'a Record>,
    ) -> Result<u64, WalError> {
        let written = match self.prepare_compaction(snapshot)?.write() {
            Ok(written) => written,
            Err(e) => {
                self.abandon_compaction();
                return Err(e);
            }
        };
        self.finish_compaction(written, [])
    }

    /// The first step of a compaction that does not hold up the log:
    /// encodes `snapshot` as a new log, to be written beside this one by
    /// [`CompactionWrite::write`] (on any thread, while this log goes on)
    /// and put in its place by [`Wal::finish_compaction`].
    pub fn prepare_compaction<'a>(
        &self,
        snapshot: impl IntoIterator<Item = &'a Record>,
    ) -> Result<CompactionWrite, WalError> {
        self.check_poisoned()?;
        let tmp = self.dir.join(COMPACT_FILE);
        let aborted = |source| WalError::CompactAborted {
            path: tmp.clone(),
            source,
        };
        let mut bytes = frame::new_header().map_err(aborted)?;
        let (salt, _) = frame::parse_header(&bytes).expect("a fresh header parses");
        let salt = salt.to_vec();
        let mut records = 0;
        for record in snapshot {
            frame::encode_frame(&mut bytes, &salt, record).map_err(aborted)?;
            records += 1;
        }
        Ok(CompactionWrite {
            fs: self.fs.clone(),
            tmp: tmp.clone(),
            bytes,
            salt,
            records,
        })
    }

    /// Counts a compaction whose write failed: the log goes on as it was.
    pub fn abandon_compaction(&mut self) {
        self.stats.compactions_aborted += 1;
    }

    /// Puts a written compaction in place of the log: `tail`, every record
    /// appended to this log since the snapshot was taken (queued ones
    /// included), is appended to the new file, which is fsynced, renamed
    /// over the log, and the directory fsynced. A crash at any point leaves
    /// either the old log or the new one, each holding everything.
    ///
    /// An error before the rename is [`WalError::CompactAborted`]: the old
    /// log and its queue are untouched and go on. A failed fsync of the
    /// directory after the rename is fatal. Returns the durable count, then
    /// every record appended.
    pub fn finish_compaction<'a>(
        &mut self,
        written: WrittenCompaction,
        tail: impl IntoIterator<Item = &'a Record>,
    ) -> Result<u64, WalError> {
        self.check_poisoned()?;
        let WrittenCompaction {
            mut file,
            salt,
            bytes: snapshot_bytes,
            records: snapshot_records,
            tmp,
        } = written;
        let mut bytes = Vec::new();
        let mut records = 0;
        let placed = tail
            .into_iter()
            .try_for_each(|r| {
                records += 1;
                frame::encode_frame(&mut bytes, &salt, r)
            })
            .and_then(|()| {
                if bytes.is_empty() {
                    return Ok(());
                }
                write_all(file.as_mut(), &bytes)?;
                file.sync_all()
            })
            .and_then(|()| self.fs.rename(&tmp, &self.path));
        if let Err(source) = placed {
            let _ = self.fs.remove_file(&tmp);
            self.stats.compactions_aborted += 1;
            return Err(WalError::CompactAborted { path: tmp, source });
        }
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            return Err(self.fail("fsync of the directory after a compaction", e));
        }
        // The handle written above now names the log; appends go on after
        // the snapshot and the tail.
        self.file = file;
        self.salt = salt;
        self.pending.clear();
        self.pending_records = 0;
        self.stats.durable = self.stats.appended;
        self.stats.bytes_written += snapshot_bytes + bytes.len() as u64;
        self.stats.compactions += 1;
        self.stats.file_bytes = snapshot_bytes + bytes.len() as u64;
        self.stats.file_records = snapshot_records + records;
        self.durable_len = self.stats.file_bytes;
        Ok(self.stats.durable)
    }

    fn fail(&mut self, op: &'static str, source: io::Error) -> WalError {
        self.poisoned = true;
        let _ = self
            .file
            .set_len(self.durable_len)
            .and_then(|()| self.file.sync_all());
        WalError::Failed {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn check_poisoned(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

/// A snapshot encoded as a new log, not yet written.
pub struct CompactionWrite {
    fs: Arc<dyn Fs>,
    tmp: PathBuf,
    bytes: Vec<u8>,
    salt: Vec<u8>,
    records: u64,
}

impl CompactionWrite {
    /// Writes and fsyncs the new log beside the old one. Touches nothing
    /// the log uses, so it runs on any thread while the log goes on. On an
    /// error the new file is removed and the log is as it was.
    pub fn write(self) -> Result<WrittenCompaction, WalError> {
        let written = self.fs.create(&self.tmp).and_then(|mut file| {
            write_all(file.as_mut(), &self.bytes)?;
            file.sync_all()?;
            Ok(file)
        });
        match written {
            Ok(file) => Ok(WrittenCompaction {
                file,
                salt: self.salt,
                bytes: self.bytes.len() as u64,
                records: self.records,
                tmp: self.tmp,
            }),
            Err(source) => {
                let _ = self.fs.remove_file(&self.tmp);
                Err(WalError::CompactAborted {
                    path: self.tmp,
                    source,
                })
            }
        }
    }
}

/// A new log written and fsynced beside the old one, waiting for
/// [`Wal::finish_compaction`].
#[derive(Debug)]
pub struct WrittenCompaction {
    file: Box<dyn FsFile>,
    salt: Vec<u8>,
    bytes: u64,
    records: u64,
    tmp: PathBuf,
}

/// Replays the log's bytes into `recovered.records`; returns the log's
/// salt and where the valid part ends (a torn tail starts there).
fn replay(
    path: &Path,
    bytes: &[u8],
    recovered: &mut Recovered,
) -> Result<(Vec<u8>, usize), StorageError> {
    let Some((salt, mut pos)) = frame::parse_header(bytes) else {
        return Err(StorageError::BadHeader {
            path: path.to_path_buf(),
        });
    };
    while pos < bytes.len() {
        match frame::frame_at(bytes, salt, pos) {
            Ok(f) => match frame::decode_record(f.payload) {
                Ok(record) => {
                    recovered.records.push(record);
                    pos = f.end;
                }
                // The checksum says these are the bytes that were written:
                // not a torn write but a record this build cannot read.
                Err(reason) => {
                    return Err(StorageError::Undecodable {
                        path: path.to_path_buf(),
                        offset: pos as u64,
                        reason,
                    })
                }
            },
            Err(problem) => {
                if let Some(next) = frame::next_valid_frame(bytes, salt, pos) {
                    return Err(StorageError::Corrupt {
                        path: path.to_path_buf(),
                        offset: pos as u64,
                        problem,
                        next_valid: next as u64,
                    });
                }
                recovered.torn_tail = Some(TornTail {
                    offset: pos as u64,
                    dropped_bytes: (bytes.len() - pos) as u64,
                    problem,
                });
                return Ok((salt.to_vec(), pos));
            }
        }
    }
    Ok((salt.to_vec(), pos))
}

/// Puts a file holding `bytes` at `path` through the temporary file `tmp`,
/// so that a crash leaves either no file or the whole of it.
fn replace_durably(fs: &dyn Fs, tmp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs.create(tmp)?;
    write_all(file.as_mut(), bytes)?;
    file.sync_all()?;
    drop(file);
    fs.rename(tmp, path)?;
    fs.sync_dir(&parent_dir(path))
}
