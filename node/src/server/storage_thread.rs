//! The storage thread: group commit of the core's writes.

use crate::protocol::Record;
use crate::storage::Wal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

pub struct StorageThread {
    tx: mpsc::Sender<Vec<Record>>,
    syncs: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
}

impl StorageThread {
    /// Starts the thread; it reports after each sync how many records of
    /// this incarnation are durable.
    pub fn start(mut wal: Wal, durable: UnboundedSender<u64>) -> StorageThread {
        let (tx, rx) = mpsc::channel::<Vec<Record>>();
        let syncs = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        let (s, e) = (syncs.clone(), error.clone());
        std::thread::Builder::new()
            .name("gpaxos-wal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = batch
                        .iter()
                        .try_for_each(|b| wal.append(b.iter()))
                        .and_then(|()| wal.sync());
                    match result {
                        Ok(n) => {
                            s.fetch_add(1, Ordering::Relaxed);
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
        StorageThread { tx, syncs, error }
    }

    pub fn append(&self, records: Vec<Record>) {
        if self.tx.send(records).is_err() {
            self.error
                .lock()
                .expect("storage error lock")
                .get_or_insert_with(|| "storage thread stopped".into());
        }
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> Option<String> {
        self.error.lock().expect("storage error lock").clone()
    }
}
