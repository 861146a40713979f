//! The storage thread: group commit of the core's writes.
//!
//! A snapshot replaces the log without holding up the writes queued behind
//! it: it is encoded here, written and fsynced beside the log by a thread
//! of its own while appends go on to the old log, and put in place between
//! two batches with the records appended meanwhile as its tail.

use crate::protocol::Record;
use crate::storage::{Wal, WalError, WrittenCompaction};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the core asks of the log, in order.
enum Job {
    Append(Vec<Record>),
    /// Replace the log with a snapshot of the state after every record
    /// appended before this job.
    Compact(Vec<Record>),
}

/// A snapshot being written beside the log.
struct InFlight {
    /// Records appended since the snapshot was taken: the new log's tail.
    tail: Vec<Record>,
    done: mpsc::Receiver<Result<WrittenCompaction, WalError>>,
}

/// The storage thread's state: the log and the snapshot being written.
struct Writer {
    wal: Wal,
    in_flight: Option<InFlight>,
    compactions: Arc<AtomicU64>,
}

impl Writer {
    /// Carries out one job. A compaction that failed before its rename is
    /// not an error: the old log holds everything and the node goes on
    /// (the next snapshot tries again); every other failure stops the
    /// node.
    fn run(&mut self, job: Job) -> Result<(), WalError> {
        match job {
            Job::Append(records) => {
                self.wal.append(records.iter())?;
                if let Some(f) = &mut self.in_flight {
                    f.tail.extend(records);
                }
                Ok(())
            }
            Job::Compact(_) if self.in_flight.is_some() => {
                tracing::debug!("a snapshot is still being written; this one is skipped");
                Ok(())
            }
            Job::Compact(records) => {
                let write = match self.wal.prepare_compaction(records.iter()) {
                    Ok(write) => write,
                    Err(e) => return non_fatal(e),
                };
                let (tx, done) = mpsc::channel();
                std::thread::Builder::new()
                    .name("gpaxos-snapshot".into())
                    .spawn(move || {
                        let _ = tx.send(write.write());
                    })
                    .expect("spawning the snapshot writer");
                self.in_flight = Some(InFlight {
                    tail: Vec::new(),
                    done,
                });
                Ok(())
            }
        }
    }

    /// Puts a written snapshot in place, if its writer has finished;
    /// returns whether it had.
    fn finish_compaction(&mut self) -> Result<bool, WalError> {
        let Some(result) = self
            .in_flight
            .as_ref()
            .and_then(|f| match f.done.try_recv() {
                Ok(result) => Some(result),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Err(WalError::Poisoned {
                    path: self.wal.path().to_path_buf(),
                })),
            })
        else {
            return Ok(false);
        };
        let tail = self.in_flight.take().map(|f| f.tail).unwrap_or_default();
        let written = match result {
            Ok(written) => written,
            Err(e) => {
                self.wal.abandon_compaction();
                return non_fatal(e).map(|()| true);
            }
        };
        let before = self.wal.stats().file_bytes;
        match self.wal.finish_compaction(written, tail.iter()) {
            Ok(_) => {
                self.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    before,
                    after = self.wal.stats().file_bytes,
                    tail = tail.len(),
                    "replaced the log with a snapshot"
                );
                Ok(true)
            }
            Err(e) => non_fatal(e).map(|()| true),
        }
    }

    /// The next jobs: waits for one, but only briefly while a snapshot is
    /// being written, so that it is put in place soon after. `None` when
    /// the core is gone.
    fn next_jobs(&self, rx: &mpsc::Receiver<Job>) -> Option<Vec<Job>> {
        let first = if self.in_flight.is_some() {
            match rx.recv_timeout(Duration::from_millis(2)) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        } else {
            Some(rx.recv().ok()?)
        };
        let mut batch: Vec<Job> = first.into_iter().collect();
        batch.extend(rx.try_iter());
        Some(batch)
    }
}

/// A compaction error that leaves the old log in use is logged; others
/// stop the node.
fn non_fatal(e: WalError) -> Result<(), WalError> {
    if e.is_fatal() {
        return Err(e);
    }
    tracing::warn!(error = %e, "snapshot not written; the log goes on");
    Ok(())
}

pub struct StorageThread {
    tx: mpsc::Sender<Job>,
    syncs: Arc<AtomicU64>,
    compactions: Arc<AtomicU64>,
    /// A snapshot is being written beside the log.
    writing: Arc<AtomicBool>,
    log_bytes: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
}

impl StorageThread {
    /// Starts the thread; it reports after each sync how many records of
    /// this incarnation are durable.
    pub fn start(wal: Wal, durable: UnboundedSender<u64>) -> StorageThread {
        let (tx, rx) = mpsc::channel::<Job>();
        let syncs = Arc::new(AtomicU64::new(0));
        let compactions = Arc::new(AtomicU64::new(0));
        let log_bytes = Arc::new(AtomicU64::new(wal.stats().file_bytes));
        let error = Arc::new(Mutex::new(None));
        let writing = Arc::new(AtomicBool::new(false));
        let (s, e, b, f) = (
            syncs.clone(),
            error.clone(),
            log_bytes.clone(),
            writing.clone(),
        );
        let mut writer = Writer {
            wal,
            in_flight: None,
            compactions: compactions.clone(),
        };
        std::thread::Builder::new()
            .name("gpaxos-wal".into())
            .spawn(move || {
                while let Some(batch) = writer.next_jobs(&rx) {
                    let jobs = batch.len();
                    let result = batch
                        .into_iter()
                        .try_for_each(|job| writer.run(job))
                        .and_then(|()| writer.finish_compaction())
                        .and_then(|finished| {
                            f.store(writer.in_flight.is_some(), Ordering::Relaxed);
                            if jobs == 0 && !finished {
                                return Ok(None);
                            }
                            writer.wal.sync().map(Some)
                        });
                    match result {
                        Ok(None) => {}
                        Ok(Some(n)) => {
                            s.fetch_add(1, Ordering::Relaxed);
                            b.store(writer.wal.stats().file_bytes, Ordering::Relaxed);
                            if durable.send(n).is_err() {
                                return;
                            }
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "write-ahead log failed");
                            *e.lock().expect("storage error lock") = Some(err.to_string());
                            return;
                        }
                    }
                }
            })
            .expect("spawning the storage thread");
        StorageThread {
            tx,
            syncs,
            compactions,
            writing,
            log_bytes,
            error,
        }
    }

    pub fn append(&self, records: Vec<Record>) {
        self.send(Job::Append(records));
    }

    /// Replaces the log with `snapshot` once every record appended before
    /// is written, without holding up the records appended after.
    pub fn compact(&self, snapshot: Vec<Record>) {
        self.send(Job::Compact(snapshot));
    }

    fn send(&self, job: Job) {
        if self.tx.send(job).is_err() {
            self.error
                .lock()
                .expect("storage error lock")
                .get_or_insert_with(|| "storage thread stopped".into());
        }
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Snapshots put in place of the log.
    pub fn compactions(&self) -> u64 {
        self.compactions.load(Ordering::Relaxed)
    }

    /// Whether a snapshot is being written beside the log (as of the last
    /// batch).
    pub fn writing_snapshot(&self) -> bool {
        self.writing.load(Ordering::Relaxed)
    }

    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// Marks the node's storage failed: the node stops rather than go on
    /// with state it cannot make durable.
    pub fn fail(&self, reason: String) {
        self.error
            .lock()
            .expect("storage error lock")
            .get_or_insert(reason);
    }

    pub fn failed(&self) -> Option<String> {
        self.error.lock().expect("storage error lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Ballot;
    use crate::storage::{Fault, Fs, FsFile, FsOp, MemFs, COMPACT_FILE};
    use std::path::Path;
    use std::time::Instant;

    fn records(from: u64, n: u64) -> Vec<Record> {
        (from..from + n)
            .map(|i| Record::Vote {
                instance: i,
                bal: Ballot::ZERO,
                base: 0,
                cmds: vec![],
            })
            .collect()
    }

    /// Waits for the thread to report `n` records durable; false if it
    /// stopped first.
    fn wait_durable(rx: &mut tokio::sync::mpsc::UnboundedReceiver<u64>, n: u64) -> bool {
        while let Some(durable) = rx.blocking_recv() {
            if durable >= n {
                return true;
            }
        }
        false
    }

    /// Waits until no snapshot is being written.
    fn settle(thread: &StorageThread) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while thread.writing_snapshot() {
            assert!(Instant::now() < deadline, "the snapshot write never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Like [`wait_durable`], giving up after `within`.
    fn durable_within(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<u64>,
        n: u64,
        within: Duration,
    ) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match rx.try_recv() {
                Ok(durable) if durable >= n => return true,
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        false
    }

    /// A gate the snapshot's file writes wait at, outside any lock of the
    /// file system beneath. It starts open: opening a new log writes its
    /// header through the same file name.
    #[derive(Clone, Debug)]
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

    impl Gate {
        fn new() -> Gate {
            Gate(Arc::new((Mutex::new(true), std::sync::Condvar::new())))
        }

        fn set(&self, open: bool) {
            *self.0 .0.lock().unwrap() = open;
            self.0 .1.notify_all();
        }

        fn pass(&self) {
            let mut open = self.0 .0.lock().unwrap();
            while !*open {
                open = self.0 .1.wait(open).unwrap();
            }
        }
    }

    /// [`MemFs`] whose new-log file (a compaction's) writes only once the
    /// gate is open: a slow disk under a large snapshot.
    #[derive(Debug)]
    struct GatedFs {
        inner: MemFs,
        gate: Gate,
    }

    #[derive(Debug)]
    struct GatedFile {
        inner: Box<dyn FsFile>,
        gate: Gate,
    }

    impl FsFile for GatedFile {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.gate.pass();
            self.inner.write(buf)
        }
        fn sync_data(&mut self) -> std::io::Result<()> {
            self.inner.sync_data()
        }
        fn sync_all(&mut self) -> std::io::Result<()> {
            self.inner.sync_all()
        }
        fn set_len(&mut self, len: u64) -> std::io::Result<()> {
            self.inner.set_len(len)
        }
    }

    impl Fs for GatedFs {
        fn create_dir(&self, path: &Path) -> std::io::Result<()> {
            self.inner.create_dir(path)
        }
        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            self.inner.read(path)
        }
        fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
            self.inner.open_append(path)
        }
        fn create(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
            let file = self.inner.create(path)?;
            if path.file_name().is_some_and(|n| n == COMPACT_FILE) {
                return Ok(Box::new(GatedFile {
                    inner: file,
                    gate: self.gate.clone(),
                }));
            }
            Ok(file)
        }
        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            self.inner.remove_file(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.inner.rename(from, to)
        }
        fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
            self.inner.sync_dir(path)
        }
    }

    /// Writes queued behind a snapshot are made durable while the snapshot
    /// is still being written; once it is, the log is the snapshot followed
    /// by them.
    #[test]
    fn a_snapshot_being_written_does_not_hold_up_the_writes_behind_it() {
        let mem = MemFs::new();
        let gate = Gate::new();
        let fs = GatedFs {
            inner: mem.clone(),
            gate: gate.clone(),
        };
        let (wal, _) = Wal::open_in(Arc::new(fs), "/d").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let thread = StorageThread::start(wal, tx);
        thread.append(records(0, 2));
        assert!(wait_durable(&mut rx, 2));
        gate.set(false);
        thread.compact(records(100, 1));
        thread.append(records(2, 3));
        let behind = durable_within(&mut rx, 5, Duration::from_secs(5));
        gate.set(true);
        assert!(behind, "the writes behind the snapshot waited for it");
        thread.append(records(5, 1));
        assert!(wait_durable(&mut rx, 6), "{:?}", thread.failed());
        settle(&thread);
        assert_eq!(thread.compactions(), 1);
        drop(thread);
        let (_, rec) = Wal::open_in(Arc::new(mem), "/d").unwrap();
        let mut expected = records(100, 1);
        expected.extend(records(2, 4));
        assert_eq!(rec.records, expected);
    }

    /// The node goes on after a compaction that failed before its rename
    /// (the old log holds everything) and stops on a full disk, with the
    /// error for the operator.
    #[test]
    fn a_failed_compaction_goes_on_and_a_full_disk_stops() {
        let fs = MemFs::new();
        let (wal, _) = Wal::open_in(Arc::new(fs.clone()), "/d").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let thread = StorageThread::start(wal, tx);
        fs.inject(FsOp::Rename, 0, Fault::Errno(libc::EIO));
        thread.append(records(0, 2));
        thread.compact(records(10, 1));
        thread.append(records(2, 1));
        assert!(wait_durable(&mut rx, 3), "{:?}", thread.failed());
        settle(&thread);
        assert_eq!(thread.failed(), None);
        fs.inject(FsOp::Write, 0, Fault::Errno(libc::ENOSPC));
        thread.append(records(3, 1));
        assert!(!wait_durable(&mut rx, 4), "a full disk reported durable");
        let error = thread.failed().expect("the failure is reported");
        assert!(error.contains("No space left on device"), "{error}");
        let (_, rec) = Wal::open_in(Arc::new(fs.clone()), "/d").unwrap();
        assert_eq!(rec.records, records(0, 3));
    }
}
