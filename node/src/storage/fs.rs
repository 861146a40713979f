//! The few file-system operations the log uses, behind a trait so that
//! tests can run the log over a file system that fails on purpose (a full
//! disk, an I/O error, a short write, a failed rename) or that keeps a page
//! cache apart from the disk ([`MemFs`](super::MemFs)).
//!
//! [`RealFs`] is the operating system's file system; it is what
//! [`Wal::open`](super::Wal::open) uses.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file open for writing.
pub trait FsFile: Send + Debug {
    /// Writes some of `buf` (possibly fewer bytes than asked, as
    /// `write(2)` may) and returns how many.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// `fdatasync(2)`: the file's data is on disk.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `fsync(2)`: the file's data and metadata (its length) are on disk.
    fn sync_all(&mut self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// A file system, as far as the log needs one.
pub trait Fs: Send + Sync + Debug {
    /// Creates one directory; its parent must exist. An error of kind
    /// `AlreadyExists` if it does.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Reads a whole file; an error of kind `NotFound` if it is missing.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens an existing file to append to it.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Creates a file, or empties an existing one, to write it.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` over `to` (atomically, as `rename(2)`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Fsyncs a directory: the entries created, renamed or removed in it
    /// are on disk.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// Writes all of `buf`, going on after short writes; a write of nothing is
/// an error of kind `WriteZero`.
pub fn write_all(file: &mut dyn FsFile, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The directory holding `path`; `.` for a bare file name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` and any missing parents, and fsyncs the parent of every
/// directory it created, so that a power loss cannot take the directory
/// (and everything later made durable inside it) away.
pub fn create_dir_durable(fs: &dyn Fs, dir: &Path) -> io::Result<()> {
    match fs.create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent_dir(dir);
            if parent == dir {
                return Err(e);
            }
            create_dir_durable(fs, &parent)?;
            match fs.create_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        Err(e) => return Err(e),
    }
    fs.sync_dir(&parent_dir(dir))
}

/// Puts a file holding `bytes` at `path` so that a crash or power loss
/// leaves either the old file (or none) or the whole new one: a temporary
/// file beside it is written and fsynced, renamed over it, and the directory
/// fsynced.
pub fn write_durably(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs.create(&tmp).and_then(|mut file| {
        write_all(file.as_mut(), bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs.rename(&tmp, path)) {
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.sync_dir(&parent_dir(path))
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl FsFile for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Fs for RealFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}
