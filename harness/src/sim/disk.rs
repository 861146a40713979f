//! The simulated disk: appended records stay volatile until an fsync
//! completes; a crash loses every record not yet synced.

use gpaxos_node::protocol::Record;

#[derive(Debug, Default)]
pub struct Disk {
    durable: Vec<Record>,
    volatile: Vec<Record>,
    /// Records appended by the current incarnation of the node, and how many
    /// of them are durable; the replica counts its writes the same way.
    appended: u64,
    synced: u64,
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
        self.appended > self.synced
    }

    /// An fsync covering the first `upto` records of this incarnation
    /// completed.
    pub fn synced(&mut self, upto: u64) {
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
        self.appended = 0;
        self.synced = 0;
    }

    pub fn durable(&self) -> &[Record] {
        &self.durable
    }
}
