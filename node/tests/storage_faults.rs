//! The write-ahead log over a file system that fails on purpose
//! (`storage::MemFs`): a full disk, I/O errors, short writes, failed
//! renames, a process crash that leaves writes in the page cache, and a
//! power loss that takes them away. For each, the log either stops
//! (`WalError::is_fatal`) or goes on, as documented, and no record it
//! reported durable is lost.

use gpaxos_node::protocol::{Ballot, Record};
use gpaxos_node::storage::{
    write_durably, Fault, Fs, FsOp, MemFs, StorageError, Wal, WalError, COMPACT_FILE, LOG_FILE,
};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

fn dir() -> PathBuf {
    PathBuf::from("/data/n1")
}

/// `n` distinct records, numbered from `from`.
fn records(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|i| Record::Vote {
            instance: i,
            bal: Ballot::ZERO,
            base: i as u32,
            cmds: vec![],
        })
        .collect()
}

fn open(fs: &MemFs) -> (Wal, Vec<Record>) {
    let (wal, rec) = Wal::open_in(Arc::new(fs.clone()), dir()).expect("the log opens");
    (wal, rec.records)
}

/// A log holding `acked`, every record synced: what the node has promised.
fn log_with(fs: &MemFs, acked: &[Record]) -> Wal {
    let (mut wal, recovered) = open(fs);
    assert!(recovered.is_empty());
    wal.append(acked).unwrap();
    assert_eq!(wal.sync().unwrap(), acked.len() as u64);
    wal
}

fn concat(parts: &[&[Record]]) -> Vec<Record> {
    parts.concat()
}

/// The page-cache trap (the class of bug lazyfs finds): a process writes
/// records and is killed before their fsync completes. The records are
/// still readable after the restart; if the restarted node trusted them
/// without fsyncing, it could send a promise based on them that a later
/// power loss erases. Opening the log must make them durable first.
#[test]
fn open_makes_what_a_crashed_process_left_in_the_page_cache_durable() {
    let fs = MemFs::new();
    let (a, b) = (records(0, 3), records(3, 4));
    let mut wal = log_with(&fs, &a);
    wal.append(&b).unwrap();
    fs.inject(FsOp::Sync, 0, Fault::ProcessDies);
    assert!(wal.sync().is_err());
    drop(wal);
    // The restart reads the page cache, unsynced records included...
    let (_, seen) = open(&fs);
    assert_eq!(seen, concat(&[&a, &b]));
    // ... so they must survive a power loss from now on.
    fs.power_loss();
    let (_, after) = open(&fs);
    assert_eq!(after, seen, "a power loss took records the node had read");
}

/// A data directory created by the node, its log and its owner file
/// survive a power loss right after they were written: their directory
/// entries are fsynced, up to the first directory that already existed.
#[test]
fn a_new_data_directory_and_owner_file_survive_a_power_loss() {
    let fs = MemFs::new();
    let acked = records(0, 2);
    drop(log_with(&fs, &acked));
    write_durably(&fs, &dir().join("node"), b"n1\n").unwrap();
    fs.power_loss();
    assert_eq!(fs.read(&dir().join("node")).unwrap(), b"n1\n");
    let (wal, rec) = Wal::open_in(Arc::new(fs.clone()), dir()).unwrap();
    assert!(!rec.created, "the log was lost with its directory");
    assert_eq!(rec.records, acked);
    drop(wal);
}

fn assert_fatal(err: &WalError, op: &str, errno: i32) {
    assert!(err.is_fatal(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("(os error {errno})")), "{msg}");
    assert!(
        msg.contains(&dir().join(LOG_FILE).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains(op), "{msg}");
}

/// After a fatal failure the log refuses more work; the restart finds
/// exactly the acknowledged records, and so does a power loss after it.
fn assert_stops_and_recovers(fs: &MemFs, mut wal: Wal, acked: &[Record]) {
    let more = records(100, 1);
    let err = wal.append(&more).unwrap_err();
    assert!(matches!(err, WalError::Poisoned { .. }), "{err}");
    assert!(wal.sync().unwrap_err().is_fatal());
    assert!(wal.compact(&more).unwrap_err().is_fatal());
    drop(wal);
    let (_, seen) = open(fs);
    assert_eq!(seen, acked, "after the restart");
    fs.power_loss();
    let (_, after) = open(fs);
    assert_eq!(after, acked, "after a power loss");
}

#[test]
fn a_full_disk_stops_the_log_and_loses_nothing_acknowledged() {
    let fs = MemFs::new();
    let a = records(0, 5);
    let mut wal = log_with(&fs, &a);
    wal.append(&records(5, 3)).unwrap();
    fs.inject(FsOp::Write, 0, Fault::Errno(libc::ENOSPC));
    let err = wal.sync().unwrap_err();
    assert_fatal(&err, "write failed", libc::ENOSPC);
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(wal.durable(), 5);
    assert_stops_and_recovers(&fs, wal, &a);
}

/// A write cut short by a full disk leaves half a frame; the log cuts it
/// off at once, so the restart finds no torn tail.
#[test]
fn a_short_write_then_a_full_disk_leaves_no_half_frame() {
    let fs = MemFs::new();
    let a = records(0, 4);
    let mut wal = log_with(&fs, &a);
    wal.append(&records(4, 2)).unwrap();
    fs.inject(FsOp::Write, 0, Fault::ShortWrite(11));
    fs.inject(FsOp::Write, 0, Fault::Errno(libc::ENOSPC));
    let err = wal.sync().unwrap_err();
    assert_fatal(&err, "write failed", libc::ENOSPC);
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    drop(wal);
    let (_, rec) = Wal::open_in(Arc::new(fs.clone()), dir()).unwrap();
    assert!(rec.torn_tail.is_none(), "{:?}", rec.torn_tail);
    assert_eq!(rec.records, a);
}

/// If even cutting the half frame off fails, the restart cuts it as a torn
/// tail; nothing acknowledged is lost either way.
#[test]
fn a_short_write_that_cannot_be_cut_back_is_a_torn_tail_at_restart() {
    let fs = MemFs::new();
    let a = records(0, 4);
    let mut wal = log_with(&fs, &a);
    wal.append(&records(4, 2)).unwrap();
    fs.inject(FsOp::Write, 0, Fault::ShortWrite(11));
    fs.inject(FsOp::Write, 0, Fault::Errno(libc::EIO));
    fs.inject(FsOp::SetLen, 0, Fault::Errno(libc::EIO));
    assert_fatal(&wal.sync().unwrap_err(), "write failed", libc::EIO);
    drop(wal);
    let (_, rec) = Wal::open_in(Arc::new(fs.clone()), dir()).unwrap();
    assert_eq!(rec.torn_tail.expect("half a frame").dropped_bytes, 11);
    assert_eq!(rec.records, a);
    fs.power_loss();
    assert_eq!(open(&fs).1, a);
}

/// Short writes that the file system completes on the next call are not
/// failures: the log writes the rest and goes on.
#[test]
fn short_writes_are_completed() {
    let fs = MemFs::new();
    let (a, b) = (records(0, 2), records(2, 3));
    let mut wal = log_with(&fs, &a);
    wal.append(&b).unwrap();
    fs.inject(FsOp::Write, 0, Fault::ShortWrite(1));
    fs.inject(FsOp::Write, 0, Fault::ShortWrite(5));
    assert_eq!(wal.sync().unwrap(), 5);
    drop(wal);
    fs.power_loss();
    assert_eq!(open(&fs).1, concat(&[&a, &b]));
}

/// A failed fsync (EIO) may have dropped the dirty pages: on Linux they
/// stay readable but are never written. The log stops, and cuts the file
/// back so that a restart does not read (and trust) records a later fsync
/// would not save.
#[test]
fn an_fsync_error_stops_the_log_and_a_restart_does_not_trust_the_lost_pages() {
    let fs = MemFs::new();
    let a = records(0, 3);
    let mut wal = log_with(&fs, &a);
    wal.append(&records(3, 3)).unwrap();
    fs.inject(FsOp::Sync, 0, Fault::Errno(libc::EIO));
    let err = wal.sync().unwrap_err();
    assert_fatal(&err, "fsync failed", libc::EIO);
    assert!(err.to_string().contains("Input/output error"), "{err}");
    assert_stops_and_recovers(&fs, wal, &a);
}

/// A compaction whose rename fails leaves the old log in place: the log
/// goes on, the records queued before it are written by the next sync, and
/// a later compaction succeeds.
#[test]
fn a_failed_rename_abandons_the_compaction_and_the_log_goes_on() {
    let fs = MemFs::new();
    let (a, b, c) = (records(0, 4), records(4, 2), records(6, 2));
    let mut wal = log_with(&fs, &a);
    wal.append(&b).unwrap();
    fs.inject(FsOp::Rename, 0, Fault::Errno(libc::EIO));
    let err = wal.compact(&records(50, 1)).unwrap_err();
    assert!(matches!(err, WalError::CompactAborted { .. }), "{err}");
    assert!(!err.is_fatal());
    assert_eq!(wal.stats().compactions_aborted, 1);
    assert_eq!(wal.sync().unwrap(), 6, "the queued records are written");
    wal.append(&c).unwrap();
    assert_eq!(wal.sync().unwrap(), 8);
    assert_eq!(
        fs.read(&dir().join(COMPACT_FILE)).unwrap_err().kind(),
        io::ErrorKind::NotFound,
        "the abandoned file is removed"
    );
    fs.power_loss();
    let (mut wal, seen) = open(&fs);
    assert_eq!(seen, concat(&[&a, &b, &c]));
    let snapshot = records(50, 2);
    wal.compact(&snapshot).unwrap();
    drop(wal);
    fs.power_loss();
    assert_eq!(open(&fs).1, snapshot);
}

/// A disk that fills while the new log is written: the same.
#[test]
fn a_full_disk_during_a_compaction_abandons_it_and_the_log_goes_on() {
    let fs = MemFs::new();
    let (a, b) = (records(0, 4), records(4, 2));
    let mut wal = log_with(&fs, &a);
    fs.inject(FsOp::Write, 0, Fault::ShortWrite(7));
    fs.inject(FsOp::Write, 0, Fault::Errno(libc::ENOSPC));
    let err = wal.compact(&records(50, 3)).unwrap_err();
    assert!(!err.is_fatal(), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    wal.append(&b).unwrap();
    assert_eq!(wal.sync().unwrap(), 6);
    drop(wal);
    fs.power_loss();
    assert_eq!(open(&fs).1, concat(&[&a, &b]));
}

/// Once the rename is done, a failed fsync of the directory leaves it
/// unknown which log a power loss keeps: the log stops. A restart fsyncs
/// the directory before trusting the new log, so what it reads survives.
#[test]
fn a_failed_directory_fsync_after_the_rename_stops_the_log() {
    let fs = MemFs::new();
    let a = records(0, 4);
    let mut wal = log_with(&fs, &a);
    fs.inject(FsOp::SyncDir, 0, Fault::Errno(libc::EIO));
    let snapshot = records(50, 2);
    let err = wal.compact(&snapshot).unwrap_err();
    assert_fatal(&err, "fsync of the directory", libc::EIO);
    drop(wal);
    let (_, seen) = open(&fs);
    assert_eq!(seen, snapshot);
    fs.power_loss();
    assert_eq!(open(&fs).1, seen);
}

/// Errors while opening refuse to start, naming the file.
#[test]
fn an_io_error_while_opening_refuses_to_start() {
    let fs = MemFs::new();
    drop(log_with(&fs, &records(0, 2)));
    for op in [FsOp::Read, FsOp::Sync, FsOp::SyncDir, FsOp::OpenAppend] {
        fs.inject(op, 0, Fault::Errno(libc::EIO));
        let err = Wal::open_in(Arc::new(fs.clone()), dir()).unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{op:?}: {err}");
        assert!(err.to_string().contains("/data/n1"), "{op:?}: {err}");
    }
    assert_eq!(open(&fs).1, records(0, 2));
}

/// The calls the page-cache fix rests on, counted: opening fsyncs the log,
/// its directory and the directory's parent, and creating a directory
/// fsyncs the parent of every directory made.
#[test]
fn open_fsyncs_the_log_and_the_directories() {
    let fs = MemFs::new();
    drop(log_with(&fs, &[]));
    let (syncs, dir_syncs) = (fs.calls(FsOp::Sync), fs.calls(FsOp::SyncDir));
    drop(open(&fs));
    assert_eq!(fs.calls(FsOp::Sync) - syncs, 1);
    assert_eq!(fs.calls(FsOp::SyncDir) - dir_syncs, 2);
}
