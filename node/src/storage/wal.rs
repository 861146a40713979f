//! The write-ahead log: one file, appended to, group-committed, replaced
//! atomically at checkpoints.

use super::frame::{self, FrameProblem, HEADER};
use super::StorageError;
use crate::protocol::Record;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
    /// Size of the log file and records in it, pending ones included: what
    /// a compaction policy looks at.
    pub file_bytes: u64,
    pub file_records: u64,
}

/// A write-ahead log of [`Record`]s in a data directory.
///
/// [`append`](Wal::append) only buffers; [`sync`](Wal::sync) writes the
/// buffer and calls `sync_data`, so one fsync covers every record appended
/// since the previous one (group commit). Counts are of records appended by
/// this incarnation, the numbering `Replica::durable` expects.
///
/// After a failed write or fsync the log refuses every further call: what
/// reached the disk is then unknown (a failed fsync may have dropped dirty
/// pages), and the only safe way on is to restart and recover from the
/// file.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Frames appended but not yet written.
    pending: Vec<u8>,
    pending_records: u64,
    stats: WalStats,
    poisoned: bool,
}

impl Wal {
    /// Opens the log in `dir` (created if missing), replays it and returns
    /// every durable record. A torn tail is cut off and reported in
    /// [`Recovered::torn_tail`]; damage before the tail is refused with an
    /// error naming the file and byte offset.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Wal, Recovered), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(LOG_FILE);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        // A compaction that did not reach its rename left no trace in the
        // log; its unfinished file is garbage.
        let leftover = dir.join(COMPACT_FILE);
        match fs::remove_file(&leftover) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StorageError::io(&leftover, e))
            }
            _ => {}
        }
        let mut recovered = Recovered::default();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                replace_atomically(&dir, &path, HEADER).map_err(|e| StorageError::io(&path, e))?;
                recovered.created = true;
                HEADER.to_vec()
            }
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        let end = replay(&path, &bytes, &mut recovered)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
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
            dir,
            path,
            file,
            pending: Vec::new(),
            pending_records: 0,
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
    /// only if a record cannot be encoded or is larger than a frame may be;
    /// then none of `records` is queued.
    pub fn append<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) -> io::Result<()> {
        self.check_poisoned()?;
        let start = self.pending.len();
        let mut n = 0;
        for record in records {
            if let Err(e) = frame::encode_frame(&mut self.pending, record) {
                self.pending.truncate(start);
                return Err(e);
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
    /// nothing is queued.
    pub fn sync(&mut self) -> io::Result<u64> {
        self.check_poisoned()?;
        if self.pending_records == 0 {
            return Ok(self.stats.durable);
        }
        let result = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            self.poisoned = true;
            return Err(self.context(e));
        }
        let batch = self.pending_records;
        self.stats.fsyncs += 1;
        self.stats.bytes_written += self.pending.len() as u64;
        self.stats.last_batch = batch;
        self.stats.max_batch = self.stats.max_batch.max(batch);
        self.stats.durable += batch;
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
    /// On an error before the rename the old log is untouched and the log
    /// stays usable; after it the log is poisoned.
    pub fn compact<'a>(
        &mut self,
        snapshot: impl IntoIterator<Item = &'a Record>,
    ) -> io::Result<u64> {
        self.check_poisoned()?;
        let mut bytes = HEADER.to_vec();
        let mut n = 0;
        for record in snapshot {
            frame::encode_frame(&mut bytes, record)?;
            n += 1;
        }
        let tmp = self.dir.join(COMPACT_FILE);
        let file = match write_synced(&tmp, &bytes) {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io::Error::new(e.kind(), format!("{}: {e}", tmp.display())));
            }
        };
        if let Err(e) = fs::rename(&tmp, &self.path).and_then(|()| sync_dir(&self.dir)) {
            self.poisoned = true;
            return Err(self.context(e));
        }
        // The handle written above now names the log; appends go on after
        // the snapshot.
        self.file = file;
        self.pending.clear();
        self.pending_records = 0;
        self.stats.durable = self.stats.appended;
        self.stats.bytes_written += bytes.len() as u64;
        self.stats.compactions += 1;
        self.stats.file_bytes = bytes.len() as u64;
        self.stats.file_records = n;
        Ok(self.stats.durable)
    }

    fn check_poisoned(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(format!(
                "{}: an earlier write or fsync failed; restart to recover from the log",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn context(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }
}

/// Replays the log's bytes into `recovered.records`; returns where the
/// valid part ends (a torn tail starts there).
fn replay(path: &Path, bytes: &[u8], recovered: &mut Recovered) -> Result<usize, StorageError> {
    if bytes.get(..HEADER.len()) != Some(HEADER.as_slice()) {
        return Err(StorageError::BadHeader {
            path: path.to_path_buf(),
        });
    }
    let mut pos = HEADER.len();
    while pos < bytes.len() {
        match frame::frame_at(bytes, pos) {
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
                if let Some(next) = frame::next_valid_frame(bytes, pos) {
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
                return Ok(pos);
            }
        }
    }
    Ok(pos)
}

/// Creates (or truncates) `path`, writes `bytes` and fsyncs it; returns the
/// handle, positioned at the end.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(file)
}

/// Puts a file holding `bytes` at `path` so that a crash leaves either no
/// file or the whole of it.
fn replace_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(COMPACT_FILE);
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Makes a rename or creation in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
