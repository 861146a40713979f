//! The simulated disk: appended records stay volatile until an fsync
//! completes; a crash loses every record not yet synced. A compaction
//! (replacing the log with a snapshot) takes effect with the first fsync
//! that covers the records appended before it, as the node's storage
//! thread does it: a crash before then leaves the old log.

use gpaxos_node::protocol::Record;

#[derive(Debug, Default)]
pub struct Disk {
    durable: Vec<Record>,
    volatile: Vec<Record>,
    /// Records appended by the current incarnation of the node, and how many
    /// of them are durable; the replica counts its writes the same way.
    appended: u64,
    synced: u64,
    /// A snapshot waiting for an fsync, and how many records of this
    /// incarnation were appended before it.
    compaction: Option<(u64, Vec<Record>)>,
}

impl Disk {
    pub fn append(&mut self, records: Vec<Record>) {
        self.appended += records.len() as u64;
        self.volatile.extend(records);
    }

    /// How many records of this incarnation an fsync issued now covers.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    pub fn has_unsynced(&self) -> bool {
        self.appended > self.synced || self.compaction.is_some()
    }

    /// Replaces the log with `snapshot` once the records appended so far
    /// are synced.
    pub fn compact(&mut self, snapshot: Vec<Record>) {
        self.compaction = Some((self.appended, snapshot));
    }

    /// An fsync covering the first `upto` records of this incarnation
    /// completed.
    pub fn synced(&mut self, upto: u64) {
        if let Some((at, _)) = &self.compaction {
            if *at <= upto {
                let (at, snapshot) = self.compaction.take().expect("checked");
                // The records before the snapshot are in it.
                let covered = (at - self.synced.min(at)) as usize;
                self.volatile.drain(..covered);
                self.durable = snapshot;
                self.synced = self.synced.max(at);
            }
        }
        if upto <= self.synced {
            return;
        }
        let n = (upto - self.synced) as usize;
        self.durable.extend(self.volatile.drain(..n));
        self.synced = upto;
    }

    /// The node crashed: unsynced writes are lost; the next incarnation
    /// counts its writes from zero.
    pub fn crash(&mut self) {
        self.volatile.clear();
        self.compaction = None;
        self.appended = 0;
        self.synced = 0;
    }

    pub fn durable(&self) -> &[Record] {
        &self.durable
    }
}
