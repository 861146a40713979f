//! The storage thread: group commit of the core's writes.

use crate::protocol::Record;
use crate::storage::Wal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// What the core asks of the log, in order.
enum Job {
    Append(Vec<Record>),
    /// Replace the log with a snapshot of the state after every record
    /// appended before this job.
    Compact(Vec<Record>),
}

pub struct StorageThread {
    tx: mpsc::Sender<Job>,
    syncs: Arc<AtomicU64>,
    log_bytes: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
}

impl StorageThread {
    /// Starts the thread; it reports after each sync how many records of
    /// this incarnation are durable.
    pub fn start(mut wal: Wal, durable: UnboundedSender<u64>) -> StorageThread {
        let (tx, rx) = mpsc::channel::<Job>();
        let syncs = Arc::new(AtomicU64::new(0));
        let log_bytes = Arc::new(AtomicU64::new(wal.stats().file_bytes));
        let error = Arc::new(Mutex::new(None));
        let (s, e, b) = (syncs.clone(), error.clone(), log_bytes.clone());
        std::thread::Builder::new()
            .name("gpaxos-wal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = batch
                        .iter()
                        .try_for_each(|job| match job {
                            Job::Append(records) => wal.append(records.iter()),
                            Job::Compact(records) => {
                                let before = wal.stats().file_bytes;
                                wal.compact(records.iter()).map(|_| {
                                    tracing::info!(
                                        before,
                                        after = wal.stats().file_bytes,
                                        "replaced the log with a snapshot"
                                    );
                                })
                            }
                        })
                        .and_then(|()| wal.sync());
                    match result {
                        Ok(n) => {
                            s.fetch_add(1, Ordering::Relaxed);
                            b.store(wal.stats().file_bytes, Ordering::Relaxed);
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
            log_bytes,
            error,
        }
    }

    pub fn append(&self, records: Vec<Record>) {
        self.send(Job::Append(records));
    }

    /// Replaces the log with `snapshot` once every record appended before
    /// is written.
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
