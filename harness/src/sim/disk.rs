//! The simulated disk, with a page cache.
//!
//! Appended records are written to the page cache at once (as the node's
//! storage thread writes each batch before its fsync) and stay volatile
//! until an fsync completes. What a failure takes depends on its kind:
//!
//! * a **process crash** ([`Disk::process_crash`]) kills the node but not
//!   the machine: every record written stays in the page cache, readable
//!   by the next incarnation though not on disk;
//! * a **power loss** ([`Disk::power_loss`], or [`Disk::crash`]) loses
//!   everything not yet synced, the page cache included.
//!
//! A restarted node reads the log through [`Disk::open`], which fsyncs
//! what the page cache holds before handing it out, as `Wal::open` does;
//! the planted bug [`PlantedBug::SkipFsyncOnOpen`] skips that fsync, so a
//! promise replayed from the page cache (and repeated to a peer with no new
//! write) is lost by a power loss before the node's next fsync. Any fsync
//! of the log also writes back what the page cache held from before.
//!
//! A compaction (replacing the log with a snapshot) takes effect with the
//! first fsync that covers the records appended before it, as the node's
//! storage thread does it: a crash before then leaves the old log.

#[cfg(doc)]
use gpaxos_node::protocol::PlantedBug;
use gpaxos_node::protocol::{Config, Record};

/// Whether `config` plants `PlantedBug::SkipFsyncOnOpen`. `Config::planted`
/// is `()` in builds without the node's `planted-bugs` feature (the
/// harness enables it only for its tests), so it is compared by name.
pub fn skips_fsync_on_open(config: &Config) -> bool {
    format!("{:?}", config.planted) == "Some(SkipFsyncOnOpen)"
}

#[derive(Debug, Default)]
pub struct Disk {
    durable: Vec<Record>,
    /// Written by an earlier incarnation, readable, not yet on disk; they
    /// come after `durable` in the log.
    cached: Vec<Record>,
    /// Written by the current incarnation and not yet synced.
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

    /// Whether this incarnation has writes an fsync has yet to cover (what
    /// an earlier one left in the page cache does not count: a node
    /// fsyncs only when it writes).
    pub fn has_unsynced(&self) -> bool {
        self.appended > self.synced || self.compaction.is_some()
    }

    /// Replaces the log with `snapshot` once the records appended so far
    /// are synced.
    pub fn compact(&mut self, snapshot: Vec<Record>) {
        self.compaction = Some((self.appended, snapshot));
    }

    /// An fsync covering the first `upto` records of this incarnation
    /// completed. It wrote back the page cache left by earlier
    /// incarnations too.
    pub fn synced(&mut self, upto: u64) {
        self.durable.append(&mut self.cached);
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

    /// The node's process crashed: what it wrote stays readable in the page
    /// cache (a compaction not yet in effect is lost); the next incarnation
    /// counts its writes from zero.
    pub fn process_crash(&mut self) {
        self.cached.append(&mut self.volatile);
        self.compaction = None;
        self.appended = 0;
        self.synced = 0;
    }

    /// The machine lost power: every write not yet synced is gone, the
    /// page cache included; the next incarnation counts from zero.
    pub fn power_loss(&mut self) {
        self.cached.clear();
        self.volatile.clear();
        self.compaction = None;
        self.appended = 0;
        self.synced = 0;
    }

    /// A crash that loses every unsynced write: a power loss of the node's
    /// machine.
    pub fn crash(&mut self) {
        self.power_loss();
    }

    /// What a restarted node reads from its log: the durable records and
    /// then what the page cache holds. Like `Wal::open`, it first fsyncs
    /// the page cache, unless `config` plants [`PlantedBug::SkipFsyncOnOpen`].
    pub fn open(&mut self, config: &Config) -> Vec<Record> {
        if !skips_fsync_on_open(config) {
            self.durable.append(&mut self.cached);
        }
        let mut records = self.durable.clone();
        records.extend(self.cached.iter().cloned());
        records
    }

    pub fn durable(&self) -> &[Record] {
        &self.durable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpaxos_node::protocol::PlantedBug;

    fn records(from: u64, n: u64) -> Vec<Record> {
        (from..from + n)
            .map(|i| Record::Forget { below: i })
            .collect()
    }

    fn planted(bug: Option<PlantedBug>) -> Config {
        let mut config = Config::new(3).unwrap();
        config.planted = bug;
        config
    }

    #[test]
    fn a_process_crash_keeps_unsynced_writes_readable_and_open_makes_them_durable() {
        let mut disk = Disk::default();
        disk.append(records(0, 2));
        disk.synced(2);
        disk.append(records(2, 3));
        disk.process_crash();
        assert_eq!(disk.durable(), records(0, 2));
        assert_eq!(disk.open(&planted(None)), records(0, 5));
        disk.power_loss();
        assert_eq!(disk.open(&planted(None)), records(0, 5));
    }

    #[test]
    fn a_power_loss_drops_what_the_page_cache_held() {
        let mut disk = Disk::default();
        disk.append(records(0, 2));
        disk.synced(2);
        disk.append(records(2, 3));
        disk.process_crash();
        disk.power_loss();
        assert_eq!(disk.open(&planted(None)), records(0, 2));
    }

    #[test]
    fn without_the_fsync_on_open_the_page_cache_is_lost_until_the_next_fsync() {
        let skip = planted(Some(PlantedBug::SkipFsyncOnOpen));
        let mut disk = Disk::default();
        disk.append(records(0, 3));
        disk.process_crash();
        assert_eq!(disk.open(&skip), records(0, 3), "readable");
        disk.power_loss();
        assert!(disk.open(&skip).is_empty(), "lost");
        // Written back by the next fsync otherwise.
        disk.append(records(0, 3));
        disk.process_crash();
        disk.open(&skip);
        disk.append(records(3, 1));
        disk.synced(1);
        disk.power_loss();
        assert_eq!(disk.open(&skip), records(0, 4));
    }

    #[test]
    fn a_compaction_replaces_the_page_cache_it_covers() {
        let mut disk = Disk::default();
        disk.append(records(0, 3));
        disk.process_crash();
        disk.open(&planted(Some(PlantedBug::SkipFsyncOnOpen)));
        disk.append(records(3, 1));
        disk.compact(records(100, 1));
        disk.synced(1);
        disk.power_loss();
        assert_eq!(disk.open(&planted(None)), records(100, 1));
    }
}
