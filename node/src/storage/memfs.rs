//! A file system in memory that keeps the page cache apart from the disk,
//! and fails on request: what the storage tests run the log over.
//!
//! What a running system sees (directory entries and file contents) is the
//! page cache. Only `sync_data`/`sync_all` on a file and `sync_dir` on a
//! directory copy it to the disk. [`MemFs::power_loss`] throws the page
//! cache away and leaves what was on disk; a process crash changes nothing
//! (drop the handles and open again), so writes that were never fsynced
//! stay readable after it, as they do on Linux.
//!
//! A failed fsync ([`MemFs::inject`] with [`FsOp::Sync`]) behaves as Linux
//! does since 4.13: the error is reported once and the dirty pages are
//! marked clean, so the bytes written before it stay readable but are never
//! written back; a later successful fsync does not save them.

use super::fs::{parent_dir, Fs, FsFile};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// An operation faults can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FsOp {
    CreateDir,
    Read,
    OpenAppend,
    Create,
    Write,
    /// `sync_data` or `sync_all` on a file.
    Sync,
    SetLen,
    Remove,
    Rename,
    SyncDir,
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with this OS error (`libc::ENOSPC`, `libc::EIO`, ...)
    /// and does nothing.
    Errno(i32),
    /// A write stores only its first `n` bytes and reports `n`.
    ShortWrite(usize),
    /// The process is killed during the call: it has no effect (an fsync
    /// does not reach the disk, but unlike a failed one loses nothing from
    /// the page cache) and returns an error, and every file handle open
    /// until then is dead: calls on it fail and do nothing, as the dead
    /// process can do nothing more. Opening again is the restart.
    ProcessDies,
}

fn killed() -> io::Error {
    io::Error::other("the process was killed")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(u64),
}

#[derive(Debug, Default)]
struct Data {
    cached: Vec<u8>,
    durable: Vec<u8>,
    /// Bytes `[from, to)` whose write-back failed: never written to disk.
    lost: Option<(usize, usize)>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<PathBuf, Entry>,
    durable_entries: BTreeMap<PathBuf, Entry>,
    files: HashMap<u64, Data>,
    next_inode: u64,
    /// Per operation: calls to let through, then the fault.
    faults: HashMap<FsOp, VecDeque<(usize, Fault)>>,
    calls: HashMap<FsOp, usize>,
    /// Bumped when a process dies; handles of earlier generations are dead.
    generation: u64,
}

/// The in-memory file system; clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

impl MemFs {
    /// An empty file system whose root `/` exists on disk.
    pub fn new() -> MemFs {
        let fs = MemFs::default();
        {
            let mut s = fs.lock();
            s.entries.insert(PathBuf::from("/"), Entry::Dir);
            s.durable_entries.insert(PathBuf::from("/"), Entry::Dir);
        }
        fs
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half
        // changed in a way later calls would trip on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the call after the next `skip` calls of `op` fail with
    /// `fault`. Faults of one operation fire in the order injected.
    pub fn inject(&self, op: FsOp, skip: usize, fault: Fault) {
        self.lock()
            .faults
            .entry(op)
            .or_default()
            .push_back((skip, fault));
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: FsOp) -> usize {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// The machine loses power: what was not fsynced is gone.
    pub fn power_loss(&self) {
        let mut s = self.lock();
        s.entries = s.durable_entries.clone();
        for data in s.files.values_mut() {
            data.cached = data.durable.clone();
            data.lost = None;
        }
    }

    /// The bytes of a file as they are on disk (not in the page cache).
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        match s.durable_entries.get(path)? {
            Entry::File(inode) => Some(s.files[inode].durable.clone()),
            Entry::Dir => None,
        }
    }

    /// Overwrites a file's contents in the page cache (to damage it).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = self.create(path)?;
        super::fs::write_all(file.as_mut(), bytes)
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl State {
    /// Counts the call and returns the fault it must suffer, if any.
    fn fault(&mut self, op: FsOp) -> Option<Fault> {
        *self.calls.entry(op).or_default() += 1;
        let queue = self.faults.get_mut(&op)?;
        let (skip, fault) = queue.front_mut()?;
        if *skip > 0 {
            *skip -= 1;
            return None;
        }
        let fault = *fault;
        queue.pop_front();
        if fault == Fault::ProcessDies {
            self.generation += 1;
        }
        Some(fault)
    }

    fn fail(&mut self, op: FsOp) -> io::Result<()> {
        match self.fault(op) {
            Some(Fault::Errno(code)) => Err(errno(code)),
            Some(Fault::ProcessDies) => Err(killed()),
            Some(Fault::ShortWrite(_)) | None => Ok(()),
        }
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.entries.get(path) {
            Some(Entry::File(inode)) => Ok(*inode),
            Some(Entry::Dir) => Err(errno(libc::EISDIR)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match self.entries.get(&parent_dir(path)) {
            Some(Entry::Dir) => Ok(()),
            Some(Entry::File(_)) => Err(errno(libc::ENOTDIR)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

impl Fs for MemFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.fail(FsOp::CreateDir)?;
        if s.entries.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        s.check_parent(path)?;
        s.entries.insert(path.to_path_buf(), Entry::Dir);
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.lock();
        s.fail(FsOp::Read)?;
        let inode = s.file(path)?;
        Ok(s.files[&inode].cached.clone())
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        s.fail(FsOp::OpenAppend)?;
        let inode = s.file(path)?;
        Ok(Box::new(MemFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        s.fail(FsOp::Create)?;
        let inode = match s.file(path) {
            Ok(inode) => {
                s.files
                    .get_mut(&inode)
                    .expect("entry has data")
                    .cached
                    .clear();
                inode
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                s.check_parent(path)?;
                s.next_inode += 1;
                let inode = s.next_inode;
                s.files.insert(inode, Data::default());
                s.entries.insert(path.to_path_buf(), Entry::File(inode));
                inode
            }
            Err(e) => return Err(e),
        };
        Ok(Box::new(MemFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.fail(FsOp::Remove)?;
        s.file(path)?;
        s.entries.remove(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.fail(FsOp::Rename)?;
        let inode = s.file(from)?;
        s.check_parent(to)?;
        s.entries.remove(from);
        s.entries.insert(to.to_path_buf(), Entry::File(inode));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.fail(FsOp::SyncDir)?;
        if s.entries.get(path) != Some(&Entry::Dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let inside = |p: &Path| p != path && parent_dir(p) == path;
        s.durable_entries.retain(|p, _| !inside(p));
        let synced: Vec<_> = s
            .entries
            .iter()
            .filter(|(p, _)| inside(p))
            .map(|(p, e)| (p.clone(), *e))
            .collect();
        s.durable_entries.extend(synced);
        Ok(())
    }
}

#[derive(Debug)]
struct MemFile {
    fs: MemFs,
    inode: u64,
    generation: u64,
}

impl MemFile {
    /// The file system, unless this handle's process died.
    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        let s = self.fs.lock();
        if s.generation != self.generation {
            return Err(killed());
        }
        Ok(s)
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut s = self.lock()?;
        let fault = s.fault(FsOp::Sync);
        let data = s.files.get_mut(&self.inode).expect("open file has data");
        match fault {
            Some(Fault::Errno(code)) => {
                // Reported once; the dirty pages are now clean and lost.
                let from = data.durable.len().min(data.cached.len());
                data.lost = Some((from, data.cached.len()));
                return Err(errno(code));
            }
            Some(Fault::ProcessDies) => return Err(killed()),
            Some(Fault::ShortWrite(_)) | None => {}
        }
        let mut durable = data.cached.clone();
        if let Some((from, to)) = data.lost {
            let to = to.min(durable.len());
            durable[from.min(to)..to].fill(0);
        }
        data.durable = durable;
        Ok(())
    }
}

impl FsFile for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.lock()?;
        let n = match s.fault(FsOp::Write) {
            Some(Fault::Errno(code)) => return Err(errno(code)),
            Some(Fault::ProcessDies) => return Err(killed()),
            Some(Fault::ShortWrite(n)) => n.min(buf.len()),
            None => buf.len(),
        };
        let data = s.files.get_mut(&self.inode).expect("open file has data");
        data.cached.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.lock()?;
        s.fail(FsOp::SetLen)?;
        let data = s.files.get_mut(&self.inode).expect("open file has data");
        data.cached.resize(len as usize, 0);
        if let Some((from, to)) = data.lost {
            // Bytes cut off are no longer waiting to be lost.
            data.lost = (from < len as usize).then_some((from, to.min(len as usize)));
        }
        Ok(())
    }
}
